#include <limits.h>
#include "harness.h"

/* Unit tests for the Anthropic wire format: request encoding, non-streaming
 * answers, upstream errors and the SSE state machine, against the shared
 * fixtures and small inline cases.  Inline JSON is written with ' for " to
 * stay readable; jq() swaps them back. */

#define PROVIDER "claude"

typedef struct {
    apr_pool_t *pool;
    mn_provider prov;
    mn_wire_ctx ctx;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    apr_pool_create(&f->pool, NULL);
    mn_t_ctx(&f->ctx, f->pool, &f->prov, PROVIDER, MN_FORMAT_ANTHROPIC, 0, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    apr_pool_destroy(f->pool);
    free(f);
    return 0;
}

static json_t *jq(const char *s)
{
    char *c = strdup(s);
    char *p;
    json_error_t jerr;
    json_t *j;
    for (p = c; *p; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    j = json_loads(c, JSON_DECODE_ANY, &jerr);
    if (!j) {
        fail_msg("bad test JSON (%s): %s", jerr.text, c);
    }
    free(c);
    return j;
}

static void assert_json(json_t *got, const char *want_sq)
{
    json_t *want = jq(want_sq);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
        fail_msg("JSON differs\n got: %s\nwant: %s", g ? g : "(null)", w);
    }
    json_decref(want);
}

/* JSON at a path of object keys, e.g. at(body, "tool_choice", "type", NULL) */
static json_t *at(json_t *j, ...)
{
    va_list ap;
    const char *k;
    va_start(ap, j);
    while ((k = va_arg(ap, const char *)) != NULL) {
        j = json_object_get(j, k);
    }
    va_end(ap);
    return j;
}

/* ------------------------------------------------------------ request side */

static json_t *encode_ok(fx *f, const char *req_sq, mn_upstream_req *out_req)
{
    json_t *req = jq(req_sq);
    mn_upstream_req out;
    mn_error err;
    json_t *body;
    json_error_t jerr;
    int rc;

    memset(&out, 0, sizeof(out));
    mn_error_clear(&err);
    rc = mn_wire_anthropic.encode_request(&f->ctx, req, &out, &err);
    json_decref(req);
    if (rc != 0) {
        fail_msg("encode failed: %d %s %s: %s", err.status, err.type, err.param, err.message);
    }
    assert_int_equal(out.body_len, strlen(out.body));
    body = json_loadb(out.body, out.body_len, 0, &jerr);
    if (!body) {
        fail_msg("body is not JSON: %s", jerr.text);
    }
    if (out_req) {
        *out_req = out;
    }
    return body;
}

static void encode_fails(fx *f, const char *req_sq, const char *param, const char *msg_part)
{
    json_t *req = jq(req_sq);
    mn_upstream_req out;
    mn_error err;
    int rc;

    memset(&out, 0, sizeof(out));
    mn_error_clear(&err);
    rc = mn_wire_anthropic.encode_request(&f->ctx, req, &out, &err);
    json_decref(req);
    assert_int_equal(rc, -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, "invalid_request_error");
    assert_string_equal(err.param, param);
    assert_string_equal(err.code, "");
    if (msg_part && !strstr(err.message, msg_part)) {
        fail_msg("message \"%s\" lacks \"%s\"", err.message, msg_part);
    }
}

static void request_fixture(fx *f, const char *client, const char *expected)
{
    json_t *req = mn_t_fixture_json(client);
    json_t *want = mn_t_fixture_json(expected);
    mn_upstream_req out;
    mn_error err;
    json_t *body;

    f->ctx.stream = 1;
    f->ctx.include_usage = 1;
    f->ctx.model = json_string_value(json_object_get(want, "model"));
    memset(&out, 0, sizeof(out));
    assert_int_equal(mn_wire_anthropic.encode_request(&f->ctx, req, &out, &err), 0);
    body = json_loadb(out.body, out.body_len, 0, NULL);
    assert_non_null(body);
    if (!json_equal(body, want)) {
        char *w = json_dumps(want, JSON_COMPACT);
        fail_msg("%s\n got: %s\nwant: %s", expected, out.body, w);
    }
    assert_string_equal(out.path, "/messages");
    assert_string_equal(apr_table_get(out.headers, "accept"), "text/event-stream");
    json_decref(body);
    json_decref(want);
    json_decref(req);
}

static void test_request_fixture_text(void **state)
{
    request_fixture(*state, "requests/openai_text.json",
                    "anthropic/request_text.expected_anthropic.json");
}

static void test_request_fixture_tools_multiturn(void **state)
{
    request_fixture(*state, "requests/openai_tools_multiturn.json",
                    "anthropic/request_tools_multiturn.expected_anthropic.json");
}

static void test_request_headers_stream(void **state)
{
    fx *f = *state;
    mn_upstream_req out;
    json_t *body;

    f->ctx.stream = 1;
    apr_table_set(f->ctx.client_headers, "Anthropic-Beta", "prompt-caching-2024-07-31");
    apr_table_set(f->ctx.client_headers, "Authorization", "Bearer client-gateway-key");
    body = encode_ok(f, "{'model':'a/b','messages':[{'role':'user','content':'hi'}]}", &out);
    assert_string_equal(out.path, "/messages");
    assert_string_equal(apr_table_get(out.headers, "x-api-key"), "sk-test-key");
    assert_string_equal(apr_table_get(out.headers, "anthropic-version"), "2023-06-01");
    assert_string_equal(apr_table_get(out.headers, "content-type"), "application/json");
    assert_string_equal(apr_table_get(out.headers, "accept"), "text/event-stream");
    assert_string_equal(apr_table_get(out.headers, "anthropic-beta"), "prompt-caching-2024-07-31");
    assert_null(apr_table_get(out.headers, "authorization"));
    assert_int_equal(apr_table_elts(out.headers)->nelts, 5);
    assert_true(json_is_true(json_object_get(body, "stream")));
    json_decref(body);
}

static void test_request_headers_plain(void **state)
{
    fx *f = *state;
    mn_upstream_req out;
    json_t *body;

    f->prov.key = NULL;
    body = encode_ok(f, "{'model':'a/b','messages':[{'role':'user','content':'hi'}],"
                        "'stream':true,'stream_options':{'include_usage':true}}", &out);
    assert_string_equal(apr_table_get(out.headers, "accept"), "application/json");
    assert_null(apr_table_get(out.headers, "x-api-key"));
    assert_null(apr_table_get(out.headers, "authorization"));
    assert_null(apr_table_get(out.headers, "anthropic-beta"));
    assert_string_equal(apr_table_get(out.headers, "anthropic-version"), "2023-06-01");
    assert_null(json_object_get(body, "stream"));
    assert_null(json_object_get(body, "stream_options"));
    assert_json(body, "{'model':'test-model','max_tokens':4096,"
                      "'messages':[{'role':'user','content':[{'type':'text','text':'hi'}]}]}");
    json_decref(body);
}

static void test_request_system_developer_hoisted(void **state)
{
    json_t *body = encode_ok(*state,
        "{'model':'a/b','messages':["
        "{'role':'system','content':'S1','name':'sys'},"
        "{'role':'user','content':'U1','name':'bob'},"
        "{'role':'developer','content':[{'type':'text','text':'D1'},{'type':'text','text':''}]},"
        "{'role':'user','content':'U2'},"
        "{'role':'assistant','content':'A1','name':'bot'},"
        "{'role':'system','content':''},"
        "{'role':'assistant','content':[{'type':'text','text':'A2'}]},"
        "{'role':'system','content':'S2'},"
        "{'role':'user','content':'U3'}]}", NULL);
    assert_json(json_object_get(body, "system"),
                "[{'type':'text','text':'S1'},{'type':'text','text':'D1'},"
                "{'type':'text','text':'S2'}]");
    assert_json(json_object_get(body, "messages"),
                "[{'role':'user','content':[{'type':'text','text':'U1'},{'type':'text',"
                "'text':'U2'}]},"
                "{'role':'assistant','content':[{'type':'text','text':'A1'},"
                "{'type':'text','text':'A2'}]},"
                "{'role':'user','content':[{'type':'text','text':'U3'}]}]");
    json_decref(body);
}

static void test_request_no_system_member_without_system(void **state)
{
    json_t *body = encode_ok(*state, "{'model':'a/b','messages':[{'role':'user','content':'x'}]}",
                             NULL);
    assert_null(json_object_get(body, "system"));
    json_decref(body);
}

static void test_request_system_non_text_part_rejected(void **state)
{
    encode_fails(*state, "{'model':'a/b','messages':[{'role':'system','content':"
                         "[{'type':'image_url','image_url':{'url':'https://x/y.png'}}]},"
                         "{'role':'user','content':'x'}]}",
                 "messages[0].content[0]", "text");
}

static void test_request_tool_results_merged(void **state)
{
    json_t *body = encode_ok(*state,
        "{'model':'a/b','messages':["
        "{'role':'user','content':'go'},"
        "{'role':'assistant','content':'Checking.','tool_calls':["
        "{'id':'c1','type':'function','function':{'name':'f','arguments':'{\\'a\\':1}'}},"
        "{'id':'c2','type':'function','function':{'name':'g','arguments':''}}]},"
        "{'role':'tool','tool_call_id':'c1','content':'r1'},"
        "{'role':'tool','tool_call_id':'c2','content':[{'type':'text','text':'r2'},"
        "{'type':'text','text':''}]},"
        "{'role':'user','content':'and now?'},"
        "{'role':'tool','tool_call_id':'c3','content':[]}]}", NULL);
    assert_json(json_object_get(body, "messages"),
                "[{'role':'user','content':[{'type':'text','text':'go'}]},"
                "{'role':'assistant','content':[{'type':'text','text':'Checking.'},"
                "{'type':'tool_use','id':'c1','name':'f','input':{'a':1}},"
                "{'type':'tool_use','id':'c2','name':'g','input':{}}]},"
                "{'role':'user','content':["
                "{'type':'tool_result','tool_use_id':'c1','content':'r1'},"
                "{'type':'tool_result','tool_use_id':'c2','content':[{'type':'text','text':'r2'}]},"
                "{'type':'text','text':'and now?'},"
                "{'type':'tool_result','tool_use_id':'c3'}]}]");
    json_decref(body);
}

static void test_request_tool_call_args_variants(void **state)
{
    json_t *body = encode_ok(*state,
        "{'model':'a/b','messages':[{'role':'user','content':'go'},"
        "{'role':'assistant','content':null,'tool_calls':["
        "{'id':'c1','type':'function','function':{'name':'f','arguments':'{}'}},"
        "{'id':'c2','type':'function','function':{'name':'f'}},"
        "{'id':'c3','type':'function','function':{'name':'f','arguments':{'x':[1,2]}}},"
        "{'id':'c4','type':'function','function':{'name':'f',"
        "'arguments':'{\\'b\\': {\\'c\\': null}}'}}]},"
        "{'role':'tool','tool_call_id':'c1','content':'ok'}]}", NULL);
    assert_json(at(body, "messages", NULL),
                "[{'role':'user','content':[{'type':'text','text':'go'}]},"
                "{'role':'assistant','content':["
                "{'type':'tool_use','id':'c1','name':'f','input':{}},"
                "{'type':'tool_use','id':'c2','name':'f','input':{}},"
                "{'type':'tool_use','id':'c3','name':'f','input':{'x':[1,2]}},"
                "{'type':'tool_use','id':'c4','name':'f','input':{'b':{'c':null}}}]},"
                "{'role':'user','content':[{'type':'tool_result','tool_use_id':'c1',"
                "'content':'ok'}]}]");
    json_decref(body);
}

static void test_request_tool_call_invalid_json(void **state)
{
    fx *f = *state;
    encode_fails(f,
        "{'model':'a/b','messages':[{'role':'system','content':'s'},{'role':'user','content':'a'},"
        "{'role':'user','content':'b'},"
        "{'role':'assistant','tool_calls':[{'id':'c1','type':'function',"
        "'function':{'name':'f','arguments':'{not json'}}]}]}",
        "messages[3].tool_calls[0].function.arguments", "messages[3]");
    encode_fails(f,
        "{'model':'a/b','messages':[{'role':'user','content':'a'},"
        "{'role':'assistant','tool_calls':[{'id':'c1','type':'function','function':{'name':'f',"
        "'arguments':'{}'}},"
        "{'id':'c2','type':'function','function':{'name':'f','arguments':'[1,2]'}}]}]}",
        "messages[1].tool_calls[1].function.arguments", "not a JSON object");
    encode_fails(f,
        "{'model':'a/b','messages':[{'role':'user','content':'a'},"
        "{'role':'assistant','tool_calls':[{'type':'function','function':{'name':'f',"
        "'arguments':'{}'}}]}]}",
        "messages[1].tool_calls[0].id", NULL);
    encode_fails(f,
        "{'model':'a/b','messages':[{'role':'user','content':'a'},"
        "{'role':'tool','content':'r'}]}",
        "messages[1].tool_call_id", NULL);
}

static void test_request_final_assistant_stripped(void **state)
{
    fx *f = *state;
    json_t *body = encode_ok(f,
        "{'model':'a/b','messages':[{'role':'user','content':'Say hi  '},"
        "{'role':'assistant','content':'Sure: \\n\\t '}]}", NULL);
    assert_json(json_object_get(body, "messages"),
                "[{'role':'user','content':[{'type':'text','text':'Say hi  '}]},"
                "{'role':'assistant','content':[{'type':'text','text':'Sure:'}]}]");
    json_decref(body);

    /* a prefill that is only whitespace disappears entirely */
    body = encode_ok(f,
        "{'model':'a/b','messages':[{'role':'user','content':'Q'},"
        "{'role':'assistant','content':[{'type':'text','text':'A '},{'type':'text',"
        "'text':'  '}]}]}",
        NULL);
    assert_json(json_object_get(body, "messages"),
                "[{'role':'user','content':[{'type':'text','text':'Q'}]},"
                "{'role':'assistant','content':[{'type':'text','text':'A'}]}]");
    json_decref(body);
    body = encode_ok(f,
        "{'model':'a/b','messages':[{'role':'user','content':'Q'},"
        "{'role':'assistant','content':' \\n'}]}", NULL);
    assert_json(json_object_get(body, "messages"),
                "[{'role':'user','content':[{'type':'text','text':'Q'}]}]");
    json_decref(body);

    /* earlier assistant turns keep their text as it is */
    body = encode_ok(f,
        "{'model':'a/b','messages':[{'role':'user','content':'Q'},"
        "{'role':'assistant','content':'A '},{'role':'user','content':'R'}]}", NULL);
    assert_json(at(body, "messages", NULL),
                "[{'role':'user','content':[{'type':'text','text':'Q'}]},"
                "{'role':'assistant','content':[{'type':'text','text':'A '}]},"
                "{'role':'user','content':[{'type':'text','text':'R'}]}]");
    json_decref(body);
}

static void test_request_assistant_refusal_part(void **state)
{
    json_t *body = encode_ok(*state,
        "{'model':'a/b','messages':[{'role':'user','content':'Q'},"
        "{'role':'assistant','content':[{'type':'refusal','refusal':'No.'}]},"
        "{'role':'user','content':'ok'}]}", NULL);
    assert_json(json_object_get(body, "messages"),
                "[{'role':'user','content':[{'type':'text','text':'Q'}]},"
                "{'role':'assistant','content':[{'type':'text','text':'No.'}]},"
                "{'role':'user','content':[{'type':'text','text':'ok'}]}]");
    json_decref(body);
}

static void test_request_images(void **state)
{
    json_t *body = encode_ok(*state,
        "{'model':'a/b','messages':[{'role':'user','content':["
        "{'type':'text','text':''},"
        "{'type':'image_url','image_url':{'url':'data:image/jpeg;base64,/9j/AA==',"
        "'detail':'high'}},"
        "{'type':'image_url','image_url':{'url':'data:image/png;charset=utf-8;base64,iVBO'}},"
        "{'type':'image_url','image_url':{'url':'DATA:Image/WEBP;BASE64,UklG'}},"
        "{'type':'image_url','image_url':{'url':'data:image/gif;base64,R0lG,x'}},"
        "{'type':'image_url','image_url':{'url':'https://example.com/cat.png'}},"
        "{'type':'image_url','image_url':'http://example.com/dog.jpg'},"
        "{'type':'image_url','image_url':{'url':'data:application/pdf;base64,JVBERi0='}},"
        "{'type':'file','file':{'filename':'a.pdf','file_data':'data:application/pdf;base64,"
        "JVBE'}},"
        "{'type':'input_audio','input_audio':{'data':'AAAA','format':'wav'}}]}]}", NULL);
    assert_json(at(body, "messages", NULL),
                "[{'role':'user','content':["
                "{'type':'image','source':{'type':'base64','media_type':'image/jpeg',"
                "'data':'/9j/AA=='}},"
                "{'type':'image','source':{'type':'base64','media_type':'image/png',"
                "'data':'iVBO'}},"
                "{'type':'image','source':{'type':'base64','media_type':'image/webp',"
                "'data':'UklG'}},"
                "{'type':'image','source':{'type':'base64','media_type':'image/gif','data':'R0lG,"
                "x'}},"
                "{'type':'image','source':{'type':'url','url':'https://example.com/cat.png'}},"
                "{'type':'image','source':{'type':'url','url':'http://example.com/dog.jpg'}},"
                "{'type':'document','source':{'type':'base64','media_type':'application/pdf',"
                "'data':'JVBERi0='}},"
                "{'type':'document','source':{'type':'base64','media_type':'application/pdf',"
                "'data':'JVBE'}}]}]");
    json_decref(body);
}

static void test_request_image_errors(void **state)
{
    fx *f = *state;
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':[{'type':'text',"
                    "'text':'x'},"
                    "{'type':'image_url','image_url':{'url':'data:image/bmp;base64,Qk0='}}]}]}",
                 "messages[0].content[1].image_url", "image/bmp");
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':["
                    "{'type':'image_url','image_url':{'url':'data:image/png,rawbytes'}}]}]}",
                 "messages[0].content[0].image_url", "base64");
    /* ";base64" inside the payload does not make it base64 */
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':["
                    "{'type':'image_url','image_url':{'url':'data:image/png,abc;base64,x'}}]}]}",
                 "messages[0].content[0].image_url", "base64");
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':["
                    "{'type':'image_url','image_url':{'url':'data:;base64,AAAA'}}]}]}",
                 "messages[0].content[0].image_url", "no media type");
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':["
                    "{'type':'image_url','image_url':{'url':'ftp://example.com/a.png'}}]}]}",
                 "messages[0].content[0].image_url", "URL");
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':["
                    "{'type':'image_url','image_url':{}}]}]}",
                 "messages[0].content[0].image_url", NULL);
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':["
                    "{'type':'file','file':{'file_data':'data:text/plain;base64,aGk='}}]}]}",
                 "messages[0].content[0].file", "text/plain");
}

static void test_request_unsupported_parts(void **state)
{
    fx *f = *state;
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':'a'},"
                    "{'role':'user','content':[{'type':'text','text':'x'},"
                    "{'type':'file','file':{'file_id':'file-abc'}}]}]}",
                 "messages[1].content[1].file", "file_data");
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':[{'type':'video',"
                    "'video':{}}]}]}",
                 "messages[0].content[0]", "video");
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':[{'text':'untyped'}]}]}",
                 "messages[0].content[0]", NULL);
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':[{'type':'text',"
                    "'text':5}]}]}",
                 "messages[0].content[0]", NULL);
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':42}]}",
                 "messages[0].content", NULL);
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':'a'},"
                    "{'role':'assistant','content':[{'type':'image_url',"
                    "'image_url':{'url':'https://x'}}]}]}",
                 "messages[1].content[0]", NULL);
    encode_fails(f, "{'model':'a/b','messages':[{'role':'function','name':'f','content':'x'}]}",
                 "messages[0].role", "function");
    encode_fails(f, "{'model':'a/b','messages':[{'content':'x'}]}", "messages[0].role", NULL);
    encode_fails(f, "{'model':'a/b','messages':[{'role':'system','content':'only system'}]}",
                 "messages", NULL);
    encode_fails(f, "{'model':'a/b','messages':[]}", "messages", NULL);
    encode_fails(f, "{'model':'a/b'}", "messages", NULL);
}

static void test_request_max_tokens(void **state)
{
    fx *f = *state;
    json_t *body;

    body = encode_ok(f, "{'model':'a/b','max_tokens':77,'messages':[{'role':'user',"
                        "'content':'x'}]}",
                     NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 77);
    json_decref(body);
    body = encode_ok(f, "{'model':'a/b','max_completion_tokens':88,'max_tokens':77,"
                        "'messages':[{'role':'user','content':'x'}]}", NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 88);
    assert_null(json_object_get(body, "max_completion_tokens"));
    json_decref(body);
    f->prov.max_tokens = 1234;
    body = encode_ok(f, "{'model':'a/b','messages':[{'role':'user','content':'x'}]}", NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 1234);
    json_decref(body);
    f->prov.max_tokens = 0;
    body = encode_ok(f, "{'model':'a/b','max_tokens':null,'messages':[{'role':'user',"
                        "'content':'x'}]}",
                     NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 4096);
    json_decref(body);
    encode_fails(f, "{'model':'a/b','max_tokens':'many','messages':[{'role':'user',"
                    "'content':'x'}]}",
                 "max_tokens", NULL);
    encode_fails(f, "{'model':'a/b','max_completion_tokens':0,'messages':[{'role':'user',"
                    "'content':'x'}]}",
                 "max_completion_tokens", NULL);
}

static void test_request_stop(void **state)
{
    fx *f = *state;
    json_t *body;

    body = encode_ok(f, "{'model':'a/b','stop':'END','messages':[{'role':'user','content':'x'}]}",
                     NULL);
    assert_json(json_object_get(body, "stop_sequences"), "['END']");
    assert_null(json_object_get(body, "stop"));
    json_decref(body);
    body = encode_ok(f, "{'model':'a/b','stop':['a',' ','\\n\\t','b'],"
                        "'messages':[{'role':'user','content':'x'}]}", NULL);
    assert_json(json_object_get(body, "stop_sequences"), "['a','b']");
    json_decref(body);
    body = encode_ok(f, "{'model':'a/b','stop':['  '],'messages':[{'role':'user','content':'x'}]}",
                     NULL);
    assert_null(json_object_get(body, "stop_sequences"));
    json_decref(body);
    body = encode_ok(f, "{'model':'a/b','stop':null,'messages':[{'role':'user','content':'x'}]}",
                     NULL);
    assert_null(json_object_get(body, "stop_sequences"));
    json_decref(body);
    encode_fails(f, "{'model':'a/b','stop':['a',3],'messages':[{'role':'user','content':'x'}]}",
                 "stop[1]", NULL);
}

static void test_request_sampling(void **state)
{
    fx *f = *state;
    json_t *body;

    body = encode_ok(f, "{'model':'a/b','temperature':1.5,'top_p':0.9,"
                        "'messages':[{'role':'user','content':'x'}]}", NULL);
    assert_json(json_object_get(body, "temperature"), "1.0");
    assert_json(json_object_get(body, "top_p"), "0.9");
    json_decref(body);
    body = encode_ok(f, "{'model':'a/b','temperature':2,'messages':[{'role':'user',"
                        "'content':'x'}]}",
                     NULL);
    assert_json(json_object_get(body, "temperature"), "1.0");
    json_decref(body);
    body = encode_ok(f, "{'model':'a/b','temperature':0.3,'messages':[{'role':'user',"
                        "'content':'x'}]}",
                     NULL);
    assert_json(json_object_get(body, "temperature"), "0.3");
    json_decref(body);
    body = encode_ok(f, "{'model':'a/b','temperature':1,'messages':[{'role':'user',"
                        "'content':'x'}]}",
                     NULL);
    assert_json(json_object_get(body, "temperature"), "1");
    assert_null(json_object_get(body, "top_p"));
    json_decref(body);
}

static void test_request_user_metadata(void **state)
{
    fx *f = *state;
    json_t *body = encode_ok(f, "{'model':'a/b','user':'u-42','messages':[{'role':'user',"
                                "'content':'x'}]}",
                             NULL);
    assert_json(json_object_get(body, "metadata"), "{'user_id':'u-42'}");
    assert_null(json_object_get(body, "user"));
    json_decref(body);
    body = encode_ok(f, "{'model':'a/b','messages':[{'role':'user','content':'x'}]}", NULL);
    assert_null(json_object_get(body, "metadata"));
    json_decref(body);
}

static void test_request_tools(void **state)
{
    fx *f = *state;
    json_t *body = encode_ok(f,
        "{'model':'a/b','messages':[{'role':'user','content':'x'}],'tools':["
        "{'type':'function','function':{'name':'now'}},"
        "{'type':'function','function':{'name':'w','description':'Weather','strict':true,"
        "'parameters':{'type':'object','properties':{'c':{'type':'string'}},'required':['c']}}}]}",
        NULL);
    assert_json(json_object_get(body, "tools"),
                "[{'name':'now','input_schema':{'type':'object','properties':{}}},"
                "{'name':'w','description':'Weather','input_schema':{'type':'object',"
                "'properties':{'c':{'type':'string'}},'required':['c']}}]");
    assert_null(json_object_get(body, "tool_choice"));
    json_decref(body);
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':'x'}],'tools':["
                    "{'type':'function','function':{'name':'a'}},{'type':'custom',"
                    "'custom':{'name':'c'}}]}",
                 "tools[1]", NULL);
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':'x'}],'tools':["
                    "{'type':'function','function':{'description':'nameless'}}]}",
                 "tools[0].function.name", NULL);
}

static json_t *tool_choice_for(fx *f, const char *extra)
{
    char req[512];
    json_t *body, *tc;
    snprintf(req, sizeof(req),
             "{'model':'a/b','messages':[{'role':'user','content':'x'}],"
             "'tools':[{'type':'function','function':{'name':'f'}},"
             "{'type':'function','function':{'name':'g'}}]%s}", extra);
    body = encode_ok(f, req, NULL);
    tc = json_incref(json_object_get(body, "tool_choice"));
    json_decref(body);
    return tc;
}

static void test_request_tool_choice(void **state)
{
    fx *f = *state;
    json_t *tc, *body;

    tc = tool_choice_for(f, ",'tool_choice':'auto'");
    assert_json(tc, "{'type':'auto'}");
    json_decref(tc);
    tc = tool_choice_for(f, ",'tool_choice':'required'");
    assert_json(tc, "{'type':'any'}");
    json_decref(tc);
    tc = tool_choice_for(f, ",'tool_choice':'none'");
    assert_json(tc, "{'type':'none'}");
    json_decref(tc);
    tc = tool_choice_for(f, ",'tool_choice':{'type':'function','function':{'name':'g'}}");
    assert_json(tc, "{'type':'tool','name':'g'}");
    json_decref(tc);
    tc = tool_choice_for(f, ",'parallel_tool_calls':true");
    assert_null(tc);
    tc = tool_choice_for(f, ",'parallel_tool_calls':false");
    assert_json(tc, "{'type':'auto','disable_parallel_tool_use':true}");
    json_decref(tc);
    tc = tool_choice_for(f, ",'tool_choice':'required','parallel_tool_calls':false");
    assert_json(tc, "{'type':'any','disable_parallel_tool_use':true}");
    json_decref(tc);
    tc = tool_choice_for(f, ",'tool_choice':{'type':'function','function':{'name':'f'}},"
                            "'parallel_tool_calls':false");
    assert_json(tc, "{'type':'tool','name':'f','disable_parallel_tool_use':true}");
    json_decref(tc);
    tc = tool_choice_for(f, ",'tool_choice':'none','parallel_tool_calls':false");
    assert_json(tc, "{'type':'none'}");
    json_decref(tc);

    /* allowed_tools: only the listed tools go up */
    body = encode_ok(f, "{'model':'a/b','messages':[{'role':'user','content':'x'}],"
                        "'tools':[{'type':'function','function':{'name':'f'}},"
                        "{'type':'function','function':{'name':'g'}}],"
                        "'tool_choice':{'type':'allowed_tools','allowed_tools':{'mode':'required',"
                        "'tools':[{'type':'function','function':{'name':'g'}}]}}}", NULL);
    assert_json(json_object_get(body, "tool_choice"), "{'type':'any'}");
    assert_json(json_object_get(body, "tools"),
                "[{'name':'g','input_schema':{'type':'object','properties':{}}}]");
    json_decref(body);

    /* no tools: parallel_tool_calls alone adds nothing */
    body = encode_ok(f, "{'model':'a/b','messages':[{'role':'user','content':'x'}],"
                        "'parallel_tool_calls':false}", NULL);
    assert_null(json_object_get(body, "tool_choice"));
    assert_null(json_object_get(body, "parallel_tool_calls"));
    json_decref(body);

    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':'x'}],"
                    "'tool_choice':'sometimes'}",
                 "tool_choice", NULL);
    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':'x'}],"
                    "'tool_choice':{'type':'function','function':{}}}",
                 "tool_choice.function.name", NULL);
}

static void test_request_response_format(void **state)
{
    fx *f = *state;
    json_t *body, *sys;
    const char *t;

    body = encode_ok(f, "{'model':'a/b','messages':[{'role':'system','content':'S'},"
                        "{'role':'user','content':'x'}],'response_format':{'type':'json_object'}}",
                     NULL);
    sys = json_object_get(body, "system");
    assert_int_equal(json_array_size(sys), 2);
    assert_string_equal(json_string_value(at(json_array_get(sys, 0), "text", NULL)), "S");
    assert_string_equal(json_string_value(at(json_array_get(sys, 1), "type", NULL)), "text");
    t = json_string_value(at(json_array_get(sys, 1), "text", NULL));
    assert_non_null(strstr(t, "JSON object"));
    assert_null(json_object_get(body, "response_format"));
    json_decref(body);

    body = encode_ok(f, "{'model':'a/b','messages':[{'role':'user','content':'x'}],"
                        "'response_format':{'type':'json_schema','json_schema':{'name':'p',"
                        "'schema':{'type':'object',"
                        "'properties':{'n':{'type':'integer'}}}}}}", NULL);
    sys = json_object_get(body, "system");
    assert_int_equal(json_array_size(sys), 1);
    t = json_string_value(at(json_array_get(sys, 0), "text", NULL));
    assert_non_null(strstr(t, "JSON Schema"));
    assert_non_null(strstr(t, "{\"type\":\"object\","
                              "\"properties\":{\"n\":{\"type\":\"integer\"}}}"));
    json_decref(body);

    body = encode_ok(f, "{'model':'a/b','messages':[{'role':'user','content':'x'}],"
                        "'response_format':{'type':'text'}}", NULL);
    assert_null(json_object_get(body, "system"));
    assert_null(json_object_get(body, "response_format"));
    json_decref(body);

    encode_fails(f, "{'model':'a/b','messages':[{'role':'user','content':'x'}],"
                    "'response_format':{'type':'yaml'}}", "response_format.type", NULL);
}

static void test_request_reasoning_effort(void **state)
{
    static const struct { const char *effort; long budget; long max_tokens; } cases[] = {
        { "minimal", 1024, 5000 }, { "low", 1024, 5000 }, { "medium", 2048, 5000 },
        { "high", 4096, 5000 }, { "xhigh", 8192, 8192 + 5000 }
    };
    fx *f = *state;
    json_t *body;
    char req[256];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(req, sizeof(req), "{'model':'a/b','max_tokens':5000,'reasoning_effort':'%s',"
                 "'messages':[{'role':'user','content':'x'}]}", cases[i].effort);
        body = encode_ok(f, req, NULL);
        assert_string_equal(json_string_value(at(body, "thinking", "type", NULL)), "enabled");
        assert_int_equal(json_integer_value(at(body, "thinking", "budget_tokens", NULL)),
                         cases[i].budget);
        assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")),
                         cases[i].max_tokens);
        assert_null(json_object_get(body, "reasoning_effort"));
        json_decref(body);
    }
    /* max_tokens not above the budget: the budget is added on top */
    body = encode_ok(f, "{'model':'a/b','max_tokens':1024,'reasoning_effort':'medium',"
                        "'messages':[{'role':'user','content':'x'}]}", NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 2048 + 1024);
    json_decref(body);
    body = encode_ok(f, "{'model':'a/b','max_tokens':1024,'reasoning_effort':'low',"
                        "'messages':[{'role':'user','content':'x'}]}", NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 2048);
    json_decref(body);
    body = encode_ok(f, "{'model':'a/b','reasoning_effort':'none',"
                        "'messages':[{'role':'user','content':'x'}]}", NULL);
    assert_null(json_object_get(body, "thinking"));
    assert_null(json_object_get(body, "reasoning_effort"));
    json_decref(body);
    /* a client-supplied thinking wins and still gets a max_tokens above it */
    body = encode_ok(f, "{'model':'a/b','max_tokens':100,'reasoning_effort':'high',"
                        "'thinking':{'type':'enabled','budget_tokens':3000},"
                        "'messages':[{'role':'user','content':'x'}]}", NULL);
    assert_json(json_object_get(body, "thinking"), "{'type':'enabled','budget_tokens':3000}");
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 3100);
    json_decref(body);
    encode_fails(f, "{'model':'a/b','reasoning_effort':'extreme',"
                    "'messages':[{'role':'user','content':'x'}]}", "reasoning_effort", NULL);
}

static void test_request_dropped_and_passthrough(void **state)
{
    fx *f = *state;
    json_t *body = encode_ok(f,
        "{'model':'prov/claude','messages':[{'role':'user','content':'x'}],"
        "'n':1,'seed':7,'frequency_penalty':0.1,'presence_penalty':0.2,'logit_bias':{'1':2},"
        "'logprobs':false,'top_logprobs':0,'store':true,'prediction':{'type':'content',"
        "'content':'p'},"
        "'prompt_cache_key':'k','safety_identifier':'s','verbosity':'low',"
        "'web_search_options':{},'modalities':['text'],'audio':{'voice':'x','format':'mp3'},"
        "'service_tier':'priority','max_completion_tokens':9,'parallel_tool_calls':true,"
        "'response_format':{'type':'text'},'reasoning_effort':'none',"
        "'functions':[{'name':'f'}],'function_call':'auto','stream':true,"
        "'stream_options':{'include_usage':true},"
        "'top_k':5,'container':'c1','x_extra':{'a':[1]}}", NULL);
    assert_json(body, "{'model':'test-model','max_tokens':9,"
                      "'messages':[{'role':'user','content':[{'type':'text','text':'x'}]}],"
                      "'top_k':5,'container':'c1','x_extra':{'a':[1]}}");
    json_decref(body);

    body = encode_ok(f, "{'model':'a/b','service_tier':'auto','messages':[{'role':'user',"
                        "'content':'x'}]}",
                     NULL);
    assert_json(json_object_get(body, "service_tier"), "'auto'");
    json_decref(body);
    body = encode_ok(f, "{'model':'a/b','service_tier':'standard_only',"
                        "'messages':[{'role':'user','content':'x'}]}", NULL);
    assert_json(json_object_get(body, "service_tier"), "'standard_only'");
    json_decref(body);
}

/* ----------------------------------------------------------- response side */

static void response_fixture(fx *f, const char *name, const char *expected,
                             long prompt, long completion)
{
    size_t len;
    char *raw = mn_t_fixture(name, &len);
    json_t *want = mn_t_fixture_json(expected);
    json_t *out = NULL;
    mn_usage usage;
    mn_error err;

    memset(&usage, 0, sizeof(usage));
    assert_int_equal(mn_wire_anthropic.decode_response(&f->ctx, raw, len, &out, &usage, &err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "provider")), PROVIDER);
    json_object_del(out, "provider");
    if (!json_equal(out, want)) {
        char *g = json_dumps(out, JSON_COMPACT);
        fail_msg("%s\n got: %s", expected, g);
    }
    assert_int_equal(usage.have, 1);
    assert_int_equal(usage.prompt_tokens, prompt);
    assert_int_equal(usage.completion_tokens, completion);
    assert_int_equal(usage.total_tokens, prompt + completion);
    json_decref(out);
    json_decref(want);
    free(raw);
}

static void test_response_fixture_text(void **state)
{
    response_fixture(*state, "anthropic/response_text.json",
                     "anthropic/response_text.expected_openai.json", 21 + 0 + 1830, 24);
}

static void test_response_fixture_tool_call(void **state)
{
    response_fixture(*state, "anthropic/response_tool_call.json",
                     "anthropic/response_tool_call.expected_openai.json", 412, 112);
}

static json_t *decode_ok(fx *f, const char *body_sq, mn_usage *usage)
{
    json_t *b = jq(body_sq);
    char *s = json_dumps(b, JSON_COMPACT);
    json_t *out = NULL;
    mn_usage u;
    mn_error err;
    int rc = mn_wire_anthropic.decode_response(&f->ctx, s, strlen(s), &out,
                                               usage ? usage : &u, &err);
    if (rc) {
        fail_msg("decode failed: %s", err.message);
    }
    free(s);
    json_decref(b);
    return out;
}

static void test_response_finish_reasons(void **state)
{
    static const char *const map[][2] = {
        { "'end_turn'", "stop" }, { "'stop_sequence'", "stop" }, { "'pause_turn'", "stop" },
        { "'max_tokens'", "length" }, { "'model_context_window_exceeded'", "length" },
        { "'tool_use'", "tool_calls" }, { "'refusal'", "content_filter" },
        { "'something_new'", "stop" }, { "null", "stop" }
    };
    fx *f = *state;
    size_t i;
    char body[512];

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        json_t *out;
        snprintf(body, sizeof(body), "{'id':'msg_1','type':'message','role':'assistant',"
                 "'model':'m','content':[{'type':'text','text':'t'}],'stop_reason':%s,"
                 "'usage':{'input_tokens':1,'output_tokens':2}}", map[i][0]);
        out = decode_ok(f, body, NULL);
        assert_string_equal(json_string_value(
            at(json_array_get(json_object_get(out, "choices"), 0), "finish_reason", NULL)),
            map[i][1]);
        json_decref(out);
    }
}

static void test_response_shapes(void **state)
{
    fx *f = *state;
    mn_usage u;
    json_t *out;

    /* no text: content null; empty input: "{}"; several texts joined */
    out = decode_ok(f, "{'id':'msg_2','type':'message','role':'assistant','model':'m',"
                       "'content':[{'type':'thinking','thinking':'hmm','signature':'s'},"
                       "{'type':'tool_use','id':'toolu_1','name':'now','input':{}}],"
                       "'stop_reason':'tool_use','usage':{'input_tokens':3,"
                       "'cache_creation_input_tokens':4,'cache_read_input_tokens':5,"
                       "'output_tokens':6,"
                       "'output_tokens_details':{'thinking_tokens':2}}}", &u);
    json_object_del(out, "provider");
    assert_json(out, "{'id':'msg_2','object':'chat.completion','created':1767225600,'model':'m',"
                     "'choices':[{'index':0,'message':{'role':'assistant','content':null,"
                     "'refusal':null,"
                     "'tool_calls':[{'id':'toolu_1','type':'function','function':{'name':'now',"
                     "'arguments':'{}'}}]},'logprobs':null,'finish_reason':'tool_calls'}],"
                     "'usage':{'prompt_tokens':12,'completion_tokens':6,'total_tokens':18,"
                     "'prompt_tokens_details':{'cached_tokens':5},"
                     "'completion_tokens_details':{'reasoning_tokens':2}}}");
    assert_int_equal(u.prompt_tokens, 12);
    assert_int_equal(u.completion_tokens, 6);
    assert_int_equal(u.total_tokens, 18);
    json_decref(out);

    out = decode_ok(f, "{'id':'msg_3','type':'message','role':'assistant','model':'m',"
                       "'content':[{'type':'text','text':'a'},{'type':'server_tool_use','id':'x',"
                       "'name':'web_search','input':{}},{'type':'text','text':'b'}],"
                       "'stop_reason':'end_turn','usage':{'input_tokens':1,"
                       "'output_tokens':1}}", NULL);
    assert_json(at(json_array_get(json_object_get(out, "choices"), 0), "message", NULL),
                "{'role':'assistant','content':'ab','refusal':null}");
    json_decref(out);

    /* thinking surfaces only when the provider opted into reasoning_content */
    f->prov.reasoning_content = 1;
    out = decode_ok(f, "{'id':'msg_4','type':'message','role':'assistant','model':'m',"
                       "'content':[{'type':'thinking','thinking':'hmm','signature':'s'},"
                       "{'type':'text','text':'42'}],'stop_reason':'end_turn',"
                       "'usage':{'input_tokens':1,'output_tokens':1}}", NULL);
    assert_json(at(json_array_get(json_object_get(out, "choices"), 0), "message", NULL),
                "{'role':'assistant','content':'42','refusal':null,'reasoning_content':'hmm'}");
    json_decref(out);
}

static void decode_bad(fx *f, const char *body)
{
    json_t *out = NULL;
    mn_usage u;
    mn_error err;
    mn_error_clear(&err);
    assert_int_equal(mn_wire_anthropic.decode_response(&f->ctx, body, strlen(body), &out, &u, &err),
                     -1);
    assert_null(out);
    assert_int_equal(err.status, 502);
    assert_string_equal(err.type, "upstream_error");
    assert_string_equal(err.code, "upstream_bad_response");
}

static void test_response_bad_bodies(void **state)
{
    fx *f = *state;
    decode_bad(f, "<html>502 Bad Gateway</html>");
    decode_bad(f, "");
    decode_bad(f, "[]");
    decode_bad(f, "{\"id\":\"msg_1\",\"type\":\"message\",\"model\":\"m\"}");
    decode_bad(f, "{\"id\":\"msg_1\",\"type\":\"message\",\"content\":\"text\"}");
    decode_bad(f, "{\"id\":\"msg_1\",\"type\":\"completion\",\"content\":[]}");
    decode_bad(f, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                  "\"message\":\"Overloaded\"}}");
}

/* ------------------------------------------------------------- error side */

static void error_fixture(fx *f, const char *name, int status, const char *retry_after)
{
    char rel[128], exp[160];
    size_t len;
    char *raw;
    json_t *want, *got;
    mn_error err;

    snprintf(rel, sizeof(rel), "anthropic/%s.json", name);
    snprintf(exp, sizeof(exp), "anthropic/%s.expected_openai.json", name);
    raw = mn_t_fixture(rel, &len);
    want = mn_t_fixture_json(exp);
    mn_error_clear(&err);
    mn_wire_anthropic.decode_error(&f->ctx, status, raw, len, retry_after, &err);
    assert_int_equal(err.status, status);
    assert_string_equal(err.retry_after, retry_after ? retry_after : "");
    got = mn_error_to_json(&err, NULL);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT);
        fail_msg("%s\n got: %s", exp, g);
    }
    json_decref(got);
    json_decref(want);
    free(raw);
}

static void test_error_fixtures(void **state)
{
    fx *f = *state;
    error_fixture(f, "error_400_invalid_request", 400, NULL);
    error_fixture(f, "error_401_authentication", 401, NULL);
    error_fixture(f, "error_404_not_found", 404, NULL);
    error_fixture(f, "error_413_request_too_large", 413, NULL);
    error_fixture(f, "error_429_rate_limit", 429, "17");
    error_fixture(f, "error_500_api_error", 500, NULL);
    error_fixture(f, "error_529_overloaded", 529, NULL);
}

static void test_error_unexpected_bodies(void **state)
{
    fx *f = *state;
    mn_error err;
    const char *html = "<html><body>503 Service Unavailable</body></html>";

    mn_wire_anthropic.decode_error(&f->ctx, 503, html, strlen(html), "5", &err);
    assert_int_equal(err.status, 503);
    assert_string_equal(err.type, "server_error");
    assert_string_equal(err.param, "");
    assert_string_equal(err.code, "");
    assert_non_null(strstr(err.message, "503"));
    assert_string_equal(err.retry_after, "5");

    mn_wire_anthropic.decode_error(&f->ctx, 429, "{\"detail\":\"slow\"}", 17, NULL, &err);
    assert_int_equal(err.status, 429);
    assert_string_equal(err.type, "rate_limit_error");
    assert_string_equal(err.retry_after, "");

    mn_wire_anthropic.decode_error(&f->ctx, 401, NULL, 0, NULL, &err);
    assert_string_equal(err.type, "authentication_error");
    assert_non_null(strstr(err.message, "401"));

    /* type missing: derived from the status; message kept */
    mn_wire_anthropic.decode_error(&f->ctx, 400, "{\"error\":{\"message\":\"bad\"}}", 27, NULL,
                                   &err);
    assert_string_equal(err.type, "invalid_request_error");
    assert_string_equal(err.message, "bad");
}

static void test_error_key_scrubbed(void **state)
{
    fx *f = *state;
    mn_error err;
    const char *body = "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
                       "\"message\":\"invalid x-api-key sk-test-key\"}}";
    mn_wire_anthropic.decode_error(&f->ctx, 401, body, strlen(body), NULL, &err);
    assert_string_equal(err.message, "invalid x-api-key ***");
}

/* --------------------------------------------------------------- streaming */

typedef struct {
    mn_stream_status status;
    mn_usage usage;
    mn_error err;
    int has_err;
} run_res;

static void run_stream(mn_wire_ctx *ctx, const char *bytes, size_t len, size_t split,
                       mn_buf *out, run_res *res)
{
    res->status = mn_t_replay_stream_ex(&mn_wire_anthropic, ctx, bytes, len, split, out,
                                        &res->usage, &res->err, &res->has_err);
}

static void run_text(mn_wire_ctx *ctx, const char *sse, mn_buf *out, run_res *res)
{
    mn_buf_init(out);
    run_stream(ctx, sse, strlen(sse), 0, out, res);
}

static void stream_fixture(fx *f, const char *name, const char *expected, int reasoning,
                           mn_stream_status want_status, long prompt, long completion)
{
    size_t len, wlen, i, k;
    char *raw = mn_t_fixture(name, &len);
    char *want_full = mn_t_fixture(expected, &wlen);
    int iu;

    f->prov.reasoning_content = reasoning;
    for (iu = 1; iu >= 0; iu--) {
        mn_buf want;
        size_t splits[8];
        size_t nsplits;
        mn_buf_init(&want);
        if (iu) {
            mn_buf_append(&want, want_full, wlen);
        }
        else {
            {
                size_t n;
                char *w = mn_t_without_usage(want_full, wlen, &n);
                mn_buf_append(&want, w, n);
                free(w);
            }
        }
        f->ctx.stream = 1;
        f->ctx.include_usage = iu;
        /* 0 = whole, -1 = byte by byte, then every offset (or a few) */
        splits[0] = 0;
        splits[1] = (size_t)-1;
        nsplits = 2;
        if (mn_t_quick()) {
            splits[2] = 1;
            splits[3] = len / 3;
            splits[4] = len / 2;
            splits[5] = len - 1;
            nsplits = 6;
        }
        for (k = 0; k < nsplits + (mn_t_quick() ? 0 : len - 1); k++) {
            size_t split = k < nsplits ? splits[k] : k - nsplits + 1;
            mn_buf out;
            run_res res;
            mn_buf_init(&out);
            run_stream(&f->ctx, raw, len, split, &out, &res);
            if (res.status != want_status) {
                fail_msg("%s split %zu include_usage %d: status %d\n%.*s", name, split, iu,
                         res.status, (int)out.len, out.data);
            }
            mn_t_assert_frames(out.data, out.len, want.data, want.len, PROVIDER, 0);
            /* without include_usage there is no usage member at all */
            if (!iu) {
                json_t *frames = mn_t_data_frames(out.data, out.len);
                json_t *fr;
                json_array_foreach(frames, i, fr) {
                    json_t *j = json_loads(json_string_value(fr), 0, NULL);
                    if (j) {
                        assert_null(json_object_get(j, "usage"));
                    }
                    json_decref(j);
                }
                json_decref(frames);
            }
            assert_int_equal(res.usage.have, 1);
            assert_int_equal(res.usage.prompt_tokens, prompt);
            assert_int_equal(res.usage.completion_tokens, completion);
            assert_int_equal(res.usage.total_tokens, prompt + completion);
            assert_int_equal(res.has_err, want_status == MN_STREAM_FAILED);
            mn_buf_free(&out);
        }
        mn_buf_free(&want);
    }
    free(raw);
    free(want_full);
}

static void test_stream_fixture_text(void **state)
{
    stream_fixture(*state, "anthropic/stream_text.sse", "anthropic/stream_text.expected_openai.sse",
                   0, MN_STREAM_DONE, 21 + 1830, 24);
}

static void test_stream_fixture_tool_call(void **state)
{
    stream_fixture(*state, "anthropic/stream_tool_call.sse",
                   "anthropic/stream_tool_call.expected_openai.sse", 0, MN_STREAM_DONE, 412, 112);
}

static void test_stream_fixture_tool_call_empty_input(void **state)
{
    stream_fixture(*state, "anthropic/stream_tool_call_empty_input.sse",
                   "anthropic/stream_tool_call_empty_input.expected_openai.sse", 0,
                   MN_STREAM_DONE, 298, 38);
}

static void test_stream_fixture_thinking(void **state)
{
    stream_fixture(*state, "anthropic/stream_thinking.sse",
                   "anthropic/stream_thinking.expected_openai.sse", 0, MN_STREAM_DONE, 44, 61);
}

static void test_stream_fixture_thinking_reasoning_ext(void **state)
{
    stream_fixture(*state, "anthropic/stream_thinking.sse",
                   "anthropic/stream_thinking.expected_openai_reasoning_ext.sse", 1,
                   MN_STREAM_DONE, 44, 61);
}

static void test_stream_fixture_error_overloaded(void **state)
{
    stream_fixture(*state, "anthropic/stream_error_overloaded.sse",
                   "anthropic/stream_error_overloaded.expected_openai.sse", 0,
                   MN_STREAM_FAILED, 21, 1);
}

/* Frames of a whole-fed fixture as parsed JSON ([DONE] stays a string). */
static json_t *fixture_frames(fx *f, const char *name, run_res *res)
{
    size_t len, i;
    char *raw = mn_t_fixture(name, &len);
    mn_buf out;
    json_t *frames, *parsed = json_array(), *fr;

    mn_buf_init(&out);
    run_stream(&f->ctx, raw, len, 0, &out, res);
    frames = mn_t_data_frames(out.data, out.len);
    json_array_foreach(frames, i, fr) {
        json_t *j = json_loads(json_string_value(fr), 0, NULL);
        json_array_append_new(parsed, j ? j : json_incref(fr));
    }
    json_decref(frames);
    mn_buf_free(&out);
    free(raw);
    return parsed;
}

static json_t *delta_of(json_t *frame)
{
    return at(json_array_get(json_object_get(frame, "choices"), 0), "delta", NULL);
}

/* Reassembles tool calls as a client does: index -> {id, name, args}. */
static json_t *assemble_tool_calls(json_t *frames)
{
    json_t *calls = json_array(), *fr, *tc;
    size_t i, k;
    json_array_foreach(frames, i, fr) {
        json_array_foreach(json_object_get(delta_of(fr), "tool_calls"), k, tc) {
            size_t idx = (size_t)json_integer_value(json_object_get(tc, "index"));
            json_t *call;
            const char *piece = json_string_value(at(tc, "function", "arguments", NULL));
            while (json_array_size(calls) <= idx) {
                json_array_append_new(calls, json_pack("{s:s}", "args", ""));
            }
            call = json_array_get(calls, idx);
            if (json_object_get(tc, "id")) {
                assert_null(json_object_get(call, "id"));   /* one header per index */
                json_object_set(call, "id", json_object_get(tc, "id"));
                json_object_set(call, "name", at(tc, "function", "name", NULL));
            }
            if (piece) {
                char *joined = malloc(strlen(json_string_value(json_object_get(call, "args")))
                                      + strlen(piece) + 1);
                strcpy(joined, json_string_value(json_object_get(call, "args")));
                strcat(joined, piece);
                json_object_set_new(call, "args", json_string(joined));
                free(joined);
            }
        }
    }
    return calls;
}

static void test_bug_tool_call_chunks_not_lost(void **state)
{
    fx *f = *state;
    run_res res;
    json_t *frames, *calls, *a0, *a1;
    size_t i, fragments = 0, k;
    json_t *fr, *tc;

    frames = fixture_frames(f, "anthropic/stream_tool_call.sse", &res);
    json_array_foreach(frames, i, fr) {
        json_array_foreach(json_object_get(delta_of(fr), "tool_calls"), k, tc) {
            if (!json_object_get(tc, "id")) {
                fragments++;
            }
        }
    }
    assert_int_equal(fragments, 6);
    calls = assemble_tool_calls(frames);
    assert_int_equal(json_array_size(calls), 2);
    a0 = json_loads(json_string_value(at(json_array_get(calls, 0), "args", NULL)), 0, NULL);
    a1 = json_loads(json_string_value(at(json_array_get(calls, 1), "args", NULL)), 0, NULL);
    assert_json(a0, "{'location':'Paris, France','unit':'celsius'}");
    assert_json(a1, "{'location':'Tokyo, Japan','unit':'celsius'}");
    json_decref(a0);
    json_decref(a1);
    json_decref(calls);
    json_decref(frames);
}

static void test_bug_parallel_tool_calls_distinct_indexes(void **state)
{
    fx *f = *state;
    run_res res;
    json_t *frames = fixture_frames(f, "anthropic/stream_tool_call.sse", &res);
    json_t *calls = assemble_tool_calls(frames);

    assert_int_equal(json_array_size(calls), 2);
    assert_string_equal(json_string_value(at(json_array_get(calls, 0), "id", NULL)),
                        "toolu_01A7cVq9Lm2XkR8pTz4WnB3s");
    assert_string_equal(json_string_value(at(json_array_get(calls, 1), "id", NULL)),
                        "toolu_01D4hNx6Sy8QeJ2wKv5ZbT9m");
    assert_string_equal(json_string_value(at(json_array_get(calls, 1), "name", NULL)),
                        "get_weather");
    json_decref(calls);
    json_decref(frames);

    /* tool indexes count tool calls only, not content blocks */
    {
        mn_buf out;
        const char *sse =
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_p\","
            "\"model\":\"m\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n"
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
            "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n"
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
            "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"a\","
            "\"input\":{}}}\n\n"
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,"
            "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t2\",\"name\":\"b\","
            "\"input\":{}}}\n\n"
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,"
            "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"y\\\":2}\"}}\n\n"
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
            "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"x\\\":1}\"}}\n\n"
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
            "\"tool_use\"},\"usage\":{\"output_tokens\":5}}\n\n"
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        json_t *fs, *cs;
        size_t i;
        json_t *fr;
        run_text(&f->ctx, sse, &out, &res);
        assert_int_equal(res.status, MN_STREAM_DONE);
        fs = mn_t_data_frames(out.data, out.len);
        frames = json_array();
        json_array_foreach(fs, i, fr) {
            json_t *j = json_loads(json_string_value(fr), 0, NULL);
            json_array_append_new(frames, j ? j : json_incref(fr));
        }
        cs = assemble_tool_calls(frames);
        assert_json(cs, "[{'id':'t1','name':'a','args':'{\\'x\\':1}'},"
                        "{'id':'t2','name':'b','args':'{\\'y\\':2}'}]");
        json_decref(cs);
        json_decref(frames);
        json_decref(fs);
        mn_buf_free(&out);
    }
}

static void test_bug_empty_tool_input_is_braces(void **state)
{
    fx *f = *state;
    run_res res;
    json_t *frames = fixture_frames(f, "anthropic/stream_tool_call_empty_input.sse", &res);
    json_t *calls = assemble_tool_calls(frames);
    json_t *fr, *tc;
    size_t i, k;

    assert_json(calls, "[{'id':'toolu_01Gk7RmV2xT9pL4sQz8NbW3c','name':'get_current_time',"
                       "'args':'{}'}]");
    /* the only argument text besides the header's "" is "{}" */
    json_array_foreach(frames, i, fr) {
        json_array_foreach(json_object_get(delta_of(fr), "tool_calls"), k, tc) {
            if (!json_object_get(tc, "id")) {
                assert_string_equal(json_string_value(at(tc, "function", "arguments", NULL)), "{}");
            }
        }
    }
    json_decref(calls);
    json_decref(frames);
}

static void test_bug_first_chunk_has_role(void **state)
{
    static const char *const names[] = {
        "anthropic/stream_text.sse", "anthropic/stream_tool_call.sse",
        "anthropic/stream_tool_call_empty_input.sse", "anthropic/stream_thinking.sse",
        "anthropic/stream_error_overloaded.sse"
    };
    fx *f = *state;
    size_t n;

    f->prov.reasoning_content = 1;
    for (n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
        run_res res;
        json_t *frames = fixture_frames(f, names[n], &res);
        size_t i;
        json_t *fr;
        assert_json(delta_of(json_array_get(frames, 0)), "{'role':'assistant','content':''}");
        json_array_foreach(frames, i, fr) {
            if (i > 0 && json_is_object(delta_of(fr))) {
                assert_null(json_object_get(delta_of(fr), "role"));
            }
        }
        json_decref(frames);
    }
}

static void test_bug_finish_reason_null_not_missing(void **state)
{
    static const char *const names[] = {
        "anthropic/stream_text.sse", "anthropic/stream_tool_call.sse",
        "anthropic/stream_tool_call_empty_input.sse", "anthropic/stream_thinking.sse"
    };
    fx *f = *state;
    size_t n;

    for (n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
        run_res res;
        json_t *frames = fixture_frames(f, names[n], &res);
        size_t i, finishes = 0, chunks = 0;
        json_t *fr;
        json_array_foreach(frames, i, fr) {
            json_t *choice = json_array_get(json_object_get(fr, "choices"), 0);
            json_t *fin;
            if (!choice) {
                continue;
            }
            chunks++;
            fin = json_object_get(choice, "finish_reason");
            assert_non_null(fin);
            assert_true(json_is_null(json_object_get(choice, "logprobs")));
            if (!json_is_null(fin)) {
                finishes++;
                assert_json(delta_of(fr), "{}");
            }
        }
        assert_true(chunks >= 3);
        assert_int_equal(finishes, 1);
        json_decref(frames);
    }
}

static void test_bug_usage_chunk_with_cache_tokens(void **state)
{
    fx *f = *state;
    run_res res;
    json_t *frames, *u;
    size_t n;
    mn_buf out;
    const char *sse =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_c\","
        "\"model\":\"m\",\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":20,"
        "\"cache_read_input_tokens\":300,\"output_tokens\":1}}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"max_tokens\"},\"usage\":{\"input_tokens\":null,\"cache_read_input_tokens\":400,"
        "\"output_tokens\":50,\"output_tokens_details\":{\"thinking_tokens\":7}}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    f->ctx.include_usage = 1;
    frames = fixture_frames(f, "anthropic/stream_text.sse", &res);
    n = json_array_size(frames);
    assert_string_equal(json_string_value(json_array_get(frames, n - 1)), "[DONE]");
    assert_json(json_object_get(json_array_get(frames, n - 2), "choices"), "[]");
    assert_json(json_object_get(json_array_get(frames, n - 2), "usage"),
                "{'prompt_tokens':1851,'completion_tokens':24,'total_tokens':1875,"
                "'prompt_tokens_details':{'cached_tokens':0}}");
    assert_int_equal(res.usage.prompt_tokens, 1851);
    json_decref(frames);

    /* null keeps the message_start value; later values win; finish before usage */
    run_text(&f->ctx, sse, &out, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    frames = mn_t_data_frames(out.data, out.len);
    assert_int_equal(json_array_size(frames), 4);
    u = json_loads(json_string_value(json_array_get(frames, 1)), 0, NULL);
    assert_string_equal(json_string_value(
        at(json_array_get(json_object_get(u, "choices"), 0), "finish_reason", NULL)), "length");
    json_decref(u);
    u = json_loads(json_string_value(json_array_get(frames, 2)), 0, NULL);
    assert_json(json_object_get(u, "usage"),
                "{'prompt_tokens':430,'completion_tokens':50,'total_tokens':480,"
                "'prompt_tokens_details':{'cached_tokens':400},"
                "'completion_tokens_details':{'reasoning_tokens':7}}");
    assert_string_equal(json_string_value(json_object_get(u, "provider")), PROVIDER);
    assert_string_equal(json_string_value(json_object_get(u, "id")), "msg_c");
    json_decref(u);
    assert_int_equal(res.usage.have, 1);
    assert_int_equal(res.usage.prompt_tokens, 430);
    assert_int_equal(res.usage.completion_tokens, 50);
    assert_int_equal(res.usage.total_tokens, 480);
    json_decref(frames);
    mn_buf_free(&out);
}

static void test_bug_error_event_is_failure(void **state)
{
    fx *f = *state;
    run_res res;
    json_t *frames, *fr;
    size_t n, i;

    f->ctx.include_usage = 1;
    frames = fixture_frames(f, "anthropic/stream_error_overloaded.sse", &res);
    n = json_array_size(frames);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_int_equal(res.has_err, 1);
    assert_string_equal(res.err.type, "overloaded_error");
    assert_string_equal(res.err.message, "Overloaded");
    assert_string_equal(res.err.code, "");
    assert_string_equal(json_string_value(json_array_get(frames, n - 1)), "[DONE]");
    assert_json(json_object_get(json_array_get(frames, n - 2), "error"),
                "{'message':'Overloaded','type':'overloaded_error','param':null,'code':null}");
    assert_string_equal(json_string_value(at(json_array_get(frames, n - 2), "provider", NULL)),
                        PROVIDER);
    json_array_foreach(frames, i, fr) {
        json_t *choices = json_object_get(fr, "choices");
        if (i < n - 2) {
            assert_int_equal(json_array_size(choices), 1);   /* no usage chunk */
            assert_true(json_is_null(at(json_array_get(choices, 0), "finish_reason", NULL)));
            assert_null(json_object_get(fr, "error"));
        }
    }
    json_decref(frames);
}

static void test_bug_eof_without_message_stop_fails(void **state)
{
    fx *f = *state;
    size_t len;
    char *raw = mn_t_fixture("anthropic/stream_text.sse", &len);
    char *cut = strstr(raw, "event: message_stop");
    mn_buf out;
    run_res res;
    json_t *frames, *last;
    size_t n;

    assert_non_null(cut);
    f->ctx.include_usage = 1;
    mn_buf_init(&out);
    run_stream(&f->ctx, raw, (size_t)(cut - raw), 0, &out, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_int_equal(res.err.status, 502);
    assert_string_equal(res.err.type, "upstream_error");
    assert_string_equal(res.err.code, "upstream_eof");
    assert_non_null(strstr(res.err.message, "message_stop"));
    frames = mn_t_data_frames(out.data, out.len);
    n = json_array_size(frames);
    assert_string_equal(json_string_value(json_array_get(frames, n - 1)), "[DONE]");
    last = json_loads(json_string_value(json_array_get(frames, n - 2)), 0, NULL);
    assert_json(json_object_get(last, "error"),
                "{'message':'upstream closed the stream before message_stop',"
                "'type':'upstream_error','param':null,'code':'upstream_eof'}");
    json_decref(last);
    /* the finish chunk went out, but no usage chunk: the answer is incomplete */
    last = json_loads(json_string_value(json_array_get(frames, n - 3)), 0, NULL);
    assert_string_equal(json_string_value(
        at(json_array_get(json_object_get(last, "choices"), 0), "finish_reason", NULL)), "stop");
    json_decref(last);
    json_decref(frames);
    mn_buf_free(&out);

    /* an empty body fails too */
    mn_buf_init(&out);
    run_stream(&f->ctx, "", 0, 0, &out, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_int_equal(res.usage.have, 0);
    assert_non_null(strstr(out.data, "upstream_eof"));
    assert_non_null(strstr(out.data, "data: [DONE]\n\n"));
    mn_buf_free(&out);
    free(raw);
}

static void test_stream_end_with_cause(void **state)
{
    fx *f = *state;
    mn_stream *st = mn_wire_anthropic.stream_create(&f->ctx);
    mn_buf out;
    mn_sink sink;
    mn_error cause;
    const char *start = "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_t\",\"model\":\"m\","
                        "\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}";
    json_t *frames, *e;

    mn_buf_init(&out);
    sink = mn_buf_sink(&out);
    assert_int_equal(mn_wire_anthropic.stream_usage(st)->have, 0);
    assert_null(mn_wire_anthropic.stream_error(st));
    assert_int_equal(mn_wire_anthropic.stream_feed(st, MN_SSE_EVENT, "message_start", start,
                                                   strlen(start), &sink), MN_STREAM_MORE);
    assert_int_equal(mn_wire_anthropic.stream_usage(st)->have, 1);
    assert_int_equal(mn_wire_anthropic.stream_usage(st)->prompt_tokens, 5);
    mn_error_set(&cause, 504, "timeout_error", NULL, "upstream_timeout", "upstream went quiet");
    assert_int_equal(mn_wire_anthropic.stream_end(st, &cause, &sink), MN_STREAM_FAILED);
    assert_string_equal(mn_wire_anthropic.stream_error(st)->code, "upstream_timeout");
    assert_int_equal(mn_wire_anthropic.stream_error(st)->status, 504);
    frames = mn_t_data_frames(out.data, out.len);
    assert_int_equal(json_array_size(frames), 3);
    e = json_loads(json_string_value(json_array_get(frames, 1)), 0, NULL);
    assert_json(e, "{'error':{'message':'upstream went quiet','type':'timeout_error','param':null,"
                   "'code':'upstream_timeout'},'provider':'claude'}");
    json_decref(e);
    assert_string_equal(json_string_value(json_array_get(frames, 2)), "[DONE]");
    json_decref(frames);

    /* finished: nothing more is written, whatever arrives */
    out.len = 0;
    assert_int_equal(mn_wire_anthropic.stream_end(st, NULL, &sink), MN_STREAM_FAILED);
    assert_int_equal(mn_wire_anthropic.stream_feed(st, MN_SSE_EVENT, "message_start", start,
                                                   strlen(start), &sink), MN_STREAM_FAILED);
    assert_int_equal(out.len, 0);
    mn_wire_anthropic.stream_destroy(st);
    mn_buf_free(&out);
}

static void test_stream_after_done_is_inert(void **state)
{
    fx *f = *state;
    size_t len;
    char *raw = mn_t_fixture("anthropic/stream_tool_call_empty_input.sse", &len);
    mn_stream *st = mn_wire_anthropic.stream_create(&f->ctx);
    mn_buf out;
    mn_sink sink;
    const char *ev = "{\"type\":\"message_stop\"}";
    const char *d = "{\"type\":\"content_block_delta\",\"index\":0,"
                    "\"delta\":{\"type\":\"text_delta\",\"text\":\"late\"}}";
    mn_sse_parser p;
    mn_t_replay r;

    mn_buf_init(&out);
    sink = mn_buf_sink(&out);
    r.wire = &mn_wire_anthropic;
    r.st = st;
    r.out = &sink;
    r.status = MN_STREAM_MORE;
    mn_sse_init(&p, 1 << 20, mn_t_replay_cb, &r);
    mn_sse_feed(&p, raw, len);
    mn_sse_finish(&p);
    mn_sse_free(&p);
    assert_int_equal(r.status, MN_STREAM_DONE);
    assert_null(mn_wire_anthropic.stream_error(st));
    out.len = 0;
    assert_int_equal(mn_wire_anthropic.stream_feed(st, MN_SSE_EVENT, "content_block_delta", d,
                                                   strlen(d), &sink), MN_STREAM_DONE);
    assert_int_equal(mn_wire_anthropic.stream_feed(st, MN_SSE_EVENT, "message_stop", ev,
                                                   strlen(ev), &sink), MN_STREAM_DONE);
    assert_int_equal(mn_wire_anthropic.stream_end(st, NULL, &sink), MN_STREAM_DONE);
    assert_int_equal(out.len, 0);
    mn_wire_anthropic.stream_destroy(st);
    mn_buf_free(&out);
    free(raw);
}

static void expect_bad_stream(fx *f, const char *sse, const char *msg_part)
{
    mn_buf out;
    run_res res;
    json_t *frames, *e;
    size_t n;

    run_text(&f->ctx, sse, &out, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_int_equal(res.err.status, 502);
    assert_string_equal(res.err.type, "upstream_error");
    assert_string_equal(res.err.code, "upstream_bad_response");
    if (msg_part && !strstr(res.err.message, msg_part)) {
        fail_msg("message \"%s\" lacks \"%s\"", res.err.message, msg_part);
    }
    frames = mn_t_data_frames(out.data, out.len);
    n = json_array_size(frames);
    assert_string_equal(json_string_value(json_array_get(frames, n - 1)), "[DONE]");
    e = json_loads(json_string_value(json_array_get(frames, n - 2)), 0, NULL);
    assert_string_equal(json_string_value(at(e, "error", "code", NULL)), "upstream_bad_response");
    json_decref(e);
    json_decref(frames);
    mn_buf_free(&out);
}

#define START "event: message_start\ndata: {\"type\":\"message_start\"," \
              "\"message\":{\"id\":\"msg_b\"," \
              "\"model\":\"m\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n"

static void test_stream_bad_events(void **state)
{
    fx *f = *state;
    expect_bad_stream(f, START "event: content_block_delta\ndata: {not json\n\n", "JSON");
    expect_bad_stream(f, START "event: content_block_delta\ndata: [1,2]\n\n", "JSON");
    expect_bad_stream(f, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                         "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n",
                      "message_start");
    expect_bad_stream(f, START "event: content_block_delta\n"
                         "data: {\"type\":\"content_block_delta\","
                         "\"index\":3,\"delta\":{\"type\":\"input_json_delta\","
                         "\"partial_json\":\"{}\"}}\n\n",
                      "input_json_delta");
    expect_bad_stream(f, START "data: [DONE]\n\n", "[DONE]");
}

static void test_stream_misc_events(void **state)
{
    fx *f = *state;
    mn_buf out;
    run_res res;
    json_t *frames;
    /* unknown events and delta types are ignored; a [DONE] after the finish
     * counts as message_stop; a text block may start with text */
    const char *sse = START
        "event: ping\ndata: {\"type\": \"ping\"}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"citations_delta\",\"citation\":{}}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"\"}}\n\n"
        "event: something_new\ndata: {\"type\":\"something_new\"}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"refusal\"},\"usage\":{\"output_tokens\":3}}\n\n"
        "data: [DONE]\n\n";
    const char *want =
        "data: {\"id\":\"msg_b\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,"
        "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
        "\"content\":\"\"},"
        "\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"msg_b\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,"
        "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},"
        "\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"msg_b\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,"
        "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},"
        "\"logprobs\":null,\"finish_reason\":\"content_filter\"}]}\n\n"
        "data: [DONE]\n\n";

    f->ctx.include_usage = 0;
    run_text(&f->ctx, sse, &out, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    mn_t_assert_frames(out.data, out.len, want, strlen(want), PROVIDER, 0);
    assert_int_equal(res.usage.completion_tokens, 3);
    mn_buf_free(&out);

    /* message_stop without message_delta still sends one finish chunk */
    f->ctx.include_usage = 1;
    run_text(&f->ctx, START "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
             &out, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    frames = mn_t_data_frames(out.data, out.len);
    assert_int_equal(json_array_size(frames), 4);
    assert_non_null(strstr(json_string_value(json_array_get(frames, 1)),
                           "\"finish_reason\":\"stop\""));
    assert_non_null(strstr(json_string_value(json_array_get(frames, 2)), "\"choices\":[]"));
    json_decref(frames);
    mn_buf_free(&out);
}

static void test_stream_tool_input_in_block_start(void **state)
{
    fx *f = *state;
    mn_buf out;
    run_res res;
    json_t *frames, *parsed, *fr, *calls;
    size_t i;
    const char *sse = START
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t9\",\"name\":\"f\","
        "\"input\":{\"q\":1}}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"tool_use\"},\"usage\":{\"output_tokens\":3}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    run_text(&f->ctx, sse, &out, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    frames = mn_t_data_frames(out.data, out.len);
    parsed = json_array();
    json_array_foreach(frames, i, fr) {
        json_t *j = json_loads(json_string_value(fr), 0, NULL);
        json_array_append_new(parsed, j ? j : json_incref(fr));
    }
    calls = assemble_tool_calls(parsed);
    assert_json(calls, "[{'id':'t9','name':'f','args':'{\\'q\\':1}'}]");
    json_decref(calls);
    json_decref(parsed);
    json_decref(frames);
    mn_buf_free(&out);
}

/* ------------------------------------------------- hostile input (issue 11) */

#define BIG "9223372036854775807"   /* INT64_MAX */

static void test_bug_usage_sums_saturate(void **state)
{
    fx *f = *state;
    mn_buf out;
    run_res res;
    json_t *frames, *u, *resp;
    mn_usage mu;
    const char *sse =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_o\","
        "\"model\":\"m\",\"usage\":{\"input_tokens\":" BIG ",\"cache_creation_input_tokens\":"
        BIG ",\"cache_read_input_tokens\":" BIG ",\"output_tokens\":1}}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\"},\"usage\":{\"output_tokens\":" BIG ",\"output_tokens_details\":"
        "{\"thinking_tokens\":-5}}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    f->ctx.include_usage = 1;
    run_text(&f->ctx, sse, &out, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_int_equal(res.usage.prompt_tokens, LONG_MAX);
    assert_int_equal(res.usage.completion_tokens, LONG_MAX);
    assert_int_equal(res.usage.total_tokens, LONG_MAX);
    frames = mn_t_data_frames(out.data, out.len);
    assert_int_equal(json_array_size(frames), 4);
    u = json_loads(json_string_value(json_array_get(frames, 2)), 0, NULL);
    assert_json(json_object_get(u, "usage"),
                "{'prompt_tokens':" BIG ",'completion_tokens':" BIG ",'total_tokens':" BIG ","
                "'prompt_tokens_details':{'cached_tokens':" BIG "},"
                "'completion_tokens_details':{'reasoning_tokens':0}}");
    json_decref(u);
    json_decref(frames);
    mn_buf_free(&out);

    /* the same for a whole answer; negative counts count as 0 */
    resp = decode_ok(f, "{'id':'msg_1','type':'message','role':'assistant','model':'m',"
                        "'content':[],'stop_reason':'end_turn','usage':{'input_tokens':" BIG
                        ",'cache_read_input_tokens':1,'cache_creation_input_tokens':-7,"
                        "'output_tokens':2}}", &mu);
    assert_int_equal(mu.prompt_tokens, LONG_MAX);
    assert_int_equal(mu.total_tokens, LONG_MAX);
    assert_json(json_object_get(resp, "usage"),
                "{'prompt_tokens':" BIG ",'completion_tokens':2,'total_tokens':" BIG ","
                "'prompt_tokens_details':{'cached_tokens':1}}");
    json_decref(resp);
    resp = decode_ok(f, "{'id':'msg_1','type':'message','role':'assistant','model':'m',"
                        "'content':[],'stop_reason':'end_turn','usage':{'input_tokens':-3,"
                        "'output_tokens':-2}}", &mu);
    assert_int_equal(mu.prompt_tokens, 0);
    assert_int_equal(mu.completion_tokens, 0);
    assert_int_equal(mu.total_tokens, 0);
    json_decref(resp);
}

static void test_bug_budget_tokens_overflow_rejected(void **state)
{
    fx *f = *state;
    json_t *body;

    encode_fails(f, "{'model':'a/b','max_tokens':100,'thinking':{'type':'enabled',"
                    "'budget_tokens':" BIG "},'messages':[{'role':'user','content':'x'}]}",
                 "thinking.budget_tokens", "too large");
    /* with the provider's default max_tokens */
    encode_fails(f, "{'model':'a/b','thinking':{'type':'enabled',"
                    "'budget_tokens':9223372036854771712},"
                    "'messages':[{'role':'user','content':'x'}]}",
                 "thinking.budget_tokens", "too large");
    /* the largest budget that still fits is sent, positive */
    body = encode_ok(f, "{'model':'a/b','max_tokens':1,'thinking':{'type':'enabled',"
                        "'budget_tokens':9223372036854775806},"
                        "'messages':[{'role':'user','content':'x'}]}", NULL);
    assert_true(json_integer_value(json_object_get(body, "max_tokens")) == LLONG_MAX);
    json_decref(body);
    /* a huge max_tokens with reasoning_effort needs no addition and stays as sent */
    body = encode_ok(f, "{'model':'a/b','max_tokens':" BIG ",'reasoning_effort':'max',"
                        "'messages':[{'role':'user','content':'x'}]}", NULL);
    assert_true(json_integer_value(json_object_get(body, "max_tokens")) == LLONG_MAX);
    json_decref(body);
}

static void test_bug_retry_after_normalised(void **state)
{
    static const char *const cases[][2] = {
        { "30", "30" }, { " 7 ", "7" }, { "0.2", "1" }, { "2.5", "3" }, { "1e300", "86400" },
        { "1e999", "86400" }, { "99999999999999999999999", "86400" }, { "-5", "" },
        { "soon", "" }, { "12abc", "" }, { "", "" },
        /* an HTTP-date counts from the gateway clock (1767225600 = 1 Jan 2026) */
        { "Thu, 01 Jan 2026 00:01:40 GMT", "100" }, { "Wed, 31 Dec 2025 23:00:00 GMT", "0" },
    };
    fx *f = *state;
    mn_error err;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mn_wire_anthropic.decode_error(&f->ctx, 429, "{}", 2, cases[i][0], &err);
        if (strcmp(err.retry_after, cases[i][1])) {
            fail_msg("Retry-After '%s' became '%s', want '%s'", cases[i][0], err.retry_after,
                     cases[i][1]);
        }
    }
}

static void test_bug_content_after_finish_dropped(void **state)
{
    fx *f = *state;
    mn_buf out;
    run_res res;
    json_t *frames;
    const char *sse = START
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"LATE1\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"LATE2\"}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,"
        "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"LATE3\","
        "\"input\":{}}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"LATE4\"}}\n\n";

    f->ctx.include_usage = 1;
    run_text(&f->ctx, sse, &out, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_null(strstr(out.data, "LATE"));
    frames = mn_t_data_frames(out.data, out.len);
    /* role, "Hi", finish, usage, [DONE] */
    assert_int_equal(json_array_size(frames), 5);
    assert_non_null(strstr(json_string_value(json_array_get(frames, 2)),
                           "\"finish_reason\":\"stop\""));
    assert_non_null(strstr(json_string_value(json_array_get(frames, 3)), "\"choices\":[]"));
    assert_string_equal(json_string_value(json_array_get(frames, 4)), "[DONE]");
    assert_int_equal(res.usage.completion_tokens, 3);
    json_decref(frames);
    mn_buf_free(&out);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_request_fixture_text),
        T(test_request_fixture_tools_multiturn),
        T(test_request_headers_stream),
        T(test_request_headers_plain),
        T(test_request_system_developer_hoisted),
        T(test_request_no_system_member_without_system),
        T(test_request_system_non_text_part_rejected),
        T(test_request_tool_results_merged),
        T(test_request_tool_call_args_variants),
        T(test_request_tool_call_invalid_json),
        T(test_request_final_assistant_stripped),
        T(test_request_assistant_refusal_part),
        T(test_request_images),
        T(test_request_image_errors),
        T(test_request_unsupported_parts),
        T(test_request_max_tokens),
        T(test_request_stop),
        T(test_request_sampling),
        T(test_request_user_metadata),
        T(test_request_tools),
        T(test_request_tool_choice),
        T(test_request_response_format),
        T(test_request_reasoning_effort),
        T(test_request_dropped_and_passthrough),
        T(test_response_fixture_text),
        T(test_response_fixture_tool_call),
        T(test_response_finish_reasons),
        T(test_response_shapes),
        T(test_response_bad_bodies),
        T(test_error_fixtures),
        T(test_error_unexpected_bodies),
        T(test_error_key_scrubbed),
        T(test_stream_fixture_text),
        T(test_stream_fixture_tool_call),
        T(test_stream_fixture_tool_call_empty_input),
        T(test_stream_fixture_thinking),
        T(test_stream_fixture_thinking_reasoning_ext),
        T(test_stream_fixture_error_overloaded),
        T(test_bug_tool_call_chunks_not_lost),
        T(test_bug_parallel_tool_calls_distinct_indexes),
        T(test_bug_empty_tool_input_is_braces),
        T(test_bug_first_chunk_has_role),
        T(test_bug_finish_reason_null_not_missing),
        T(test_bug_usage_chunk_with_cache_tokens),
        T(test_bug_error_event_is_failure),
        T(test_bug_eof_without_message_stop_fails),
        T(test_stream_end_with_cause),
        T(test_stream_after_done_is_inert),
        T(test_stream_bad_events),
        T(test_stream_misc_events),
        T(test_stream_tool_input_in_block_start),
        T(test_bug_usage_sums_saturate),
        T(test_bug_budget_tokens_overflow_rejected),
        T(test_bug_content_after_finish_dropped),
        T(test_bug_retry_after_normalised),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests_name("wire_anthropic", tests, NULL, NULL);
    apr_terminate();
    return rc;
}
