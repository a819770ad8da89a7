/* Unit tests for src/wire/anthropic_request.c: request encoding against the
 * shared fixtures and small inline cases. */
#include "anthropic_test.h"
#include "mn_anthropic.h"

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

/* What the newest models refuse is left out and noted, the rest kept. */
static void test_request_sampling_by_model(void **state)
{
    static const struct {
        const char *model, *sampling, *want, *dropped;
    } cases[] = {
        { "claude-3-5-sonnet-20241022", "'temperature':0.2,'top_p':0.9",
          "{'temperature':0.2,'top_p':0.9}", NULL },
        { "claude-sonnet-4-5", "'temperature':0.2,'top_p':0.9", "{'temperature':0.2}", "top_p" },
        { "claude-opus-4-1", "'temperature':0.2,'top_p':0.9", "{'temperature':0.2}", "top_p" },
        { "claude-sonnet-4-6", "'top_p':0.9", "{'top_p':0.9}", NULL },
        { "claude-sonnet-4-6", "'temperature':null,'top_p':0.9", "{'top_p':0.9}", NULL },
        { "claude-opus-4-7", "'temperature':0.2,'top_p':0.9,'top_k':5", "{}",
          "temperature,top_p,top_k" },
        { "claude-opus-4-7", "'top_k':5", "{}", "top_k" },
        { "claude-opus-4-7", "'max_tokens':9", "{}", NULL },
        { "gpt-4o", "'temperature':0.2,'top_p':0.9,'top_k':5",
          "{'temperature':0.2,'top_p':0.9,'top_k':5}", NULL },
    };
    fx *f = *state;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char req[256];
        json_t *body, *got = json_object();
        json_t *want = jq(cases[i].want);
        const char *k;
        snprintf(req, sizeof(req), "{'model':'a/b',%s,'messages':[{'role':'user','content':'x'}]}",
                 cases[i].sampling);
        f->ctx.model = cases[i].model;
        f->ctx.dropped = NULL;
        body = encode_ok(f, req, NULL);
        for (k = "temperature"; k; k = !strcmp(k, "temperature") ? "top_p"
                                      : !strcmp(k, "top_p") ? "top_k" : NULL) {
            if (json_object_get(body, k)) {
                json_object_set(got, k, json_object_get(body, k));
            }
        }
        if (!json_equal(got, want)) {
            fail_msg("%s %s: got %s", cases[i].model, cases[i].sampling,
                     json_dumps(got, JSON_COMPACT));
        }
        if (cases[i].dropped) {
            assert_non_null(f->ctx.dropped);
            assert_string_equal(f->ctx.dropped, cases[i].dropped);
        }
        else {
            assert_null(f->ctx.dropped);
        }
        json_decref(want);
        json_decref(got);
        json_decref(body);
    }
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

/* The exact upstream body for every reasoning_effort value on each model
 * class (docs/wire-anthropic.md, "Models"): budget thinking only; Opus 4.5
 * (budget + effort up to high); 4.6 (adaptive, effort up to max); 4.7 and
 * later (adaptive, effort up to xhigh and max); and the thinking= option. */
static void test_request_effort_by_model_class(void **state)
{
    static const char *const efforts[] = {
        "none", "minimal", "low", "medium", "high", "xhigh", "max"
    };
    static const struct {
        const char *model;
        int thinking;
        const char *want[7];   /* the members after messages, per effort */
    } cases[] = {
        { "claude-sonnet-4-5", 0, {
            "",
            ",'thinking':{'type':'enabled','budget_tokens':1024}",
            ",'thinking':{'type':'enabled','budget_tokens':1024}",
            ",'thinking':{'type':'enabled','budget_tokens':2048}",
            ",'thinking':{'type':'enabled','budget_tokens':4096}",
            ",'thinking':{'type':'enabled','budget_tokens':8192}",
            ",'thinking':{'type':'enabled','budget_tokens':16384}" } },
        { "claude-opus-4-5-20251101", 0, {
            "",
            ",'thinking':{'type':'enabled','budget_tokens':1024},'output_config':{'effort':'low'}",
            ",'thinking':{'type':'enabled','budget_tokens':1024},'output_config':{'effort':'low'}",
            ",'thinking':{'type':'enabled','budget_tokens':2048},"
            "'output_config':{'effort':'medium'}",
            ",'thinking':{'type':'enabled','budget_tokens':4096},'output_config':{'effort':'high'}",
            ",'thinking':{'type':'enabled','budget_tokens':8192},'output_config':{'effort':'high'}",
            ",'thinking':{'type':'enabled','budget_tokens':16384},"
            "'output_config':{'effort':'high'}" } },
        { "claude-opus-4-6", 0, {
            "",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'low'}",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'low'}",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'medium'}",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'high'}",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'high'}",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'max'}" } },
        { "claude-opus-4-7", 0, {
            "",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'low'}",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'low'}",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'medium'}",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'high'}",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'xhigh'}",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'max'}" } },
        { "gateway-alias", MN_AN_THINKING_ADAPTIVE, {
            "",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'low'}",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'low'}",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'medium'}",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'high'}",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'xhigh'}",
            ",'thinking':{'type':'adaptive'},'output_config':{'effort':'max'}" } },
        { "claude-opus-4-7", MN_AN_THINKING_BUDGET, {
            "",
            ",'thinking':{'type':'enabled','budget_tokens':1024}",
            ",'thinking':{'type':'enabled','budget_tokens':1024}",
            ",'thinking':{'type':'enabled','budget_tokens':2048}",
            ",'thinking':{'type':'enabled','budget_tokens':4096}",
            ",'thinking':{'type':'enabled','budget_tokens':8192}",
            ",'thinking':{'type':'enabled','budget_tokens':16384}" } },
    };
    fx *f = *state;
    char req[256], want[512];
    size_t i, e;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        f->ctx.model = cases[i].model;
        f->prov.thinking_form = cases[i].thinking;
        for (e = 0; e < sizeof(efforts) / sizeof(efforts[0]); e++) {
            json_t *body, *w;
            snprintf(req, sizeof(req), "{'model':'p/m','max_tokens':20000,"
                     "'reasoning_effort':'%s','messages':[{'role':'user','content':'x'}]}",
                     efforts[e]);
            snprintf(want, sizeof(want), "{'model':'%s','max_tokens':20000,"
                     "'messages':[{'role':'user','content':[{'type':'text','text':'x'}]}]%s}",
                     cases[i].model, cases[i].want[e]);
            body = encode_ok(f, req, NULL);
            w = jq(want);
            if (!json_equal(body, w)) {
                char *g = json_dumps(body, JSON_COMPACT);
                fail_msg("%s (thinking=%d) %s:\n got: %s\nwant: %s", cases[i].model,
                         cases[i].thinking, efforts[e], g, want);
            }
            json_decref(w);
            json_decref(body);
        }
    }
}

/* A client's own thinking wins, effort included; a client's own
 * output_config members win over the mapped ones and pass through alone. */
static void test_request_client_thinking_and_output_config(void **state)
{
    fx *f = *state;
    json_t *body;

    f->ctx.model = "claude-opus-4-7";
    body = encode_ok(f, "{'model':'p/m','reasoning_effort':'low','thinking':{'type':'disabled'},"
                        "'messages':[{'role':'user','content':'x'}]}", NULL);
    assert_json(json_object_get(body, "thinking"), "{'type':'disabled'}");
    assert_null(json_object_get(body, "output_config"));
    json_decref(body);

    body = encode_ok(f, "{'model':'p/m','reasoning_effort':'low',"
                        "'output_config':{'effort':'max','task_budget':{'total':9}},"
                        "'messages':[{'role':'user','content':'x'}]}", NULL);
    assert_json(json_object_get(body, "thinking"), "{'type':'adaptive'}");
    assert_json(json_object_get(body, "output_config"),
                "{'effort':'max','task_budget':{'total':9}}");
    json_decref(body);

    body = encode_ok(f, "{'model':'p/m','output_config':{'effort':'medium'},"
                        "'messages':[{'role':'user','content':'x'}]}", NULL);
    assert_null(json_object_get(body, "thinking"));
    assert_json(json_object_get(body, "output_config"), "{'effort':'medium'}");
    json_decref(body);
}

/* json_schema -> output_config.format on models with structured outputs
 * (schema rewritten to the subset, no system text); the prompt otherwise. */
static void test_request_structured_output(void **state)
{
    static const char req[] =
        "{'model':'p/m','max_tokens':100,'messages':[{'role':'user','content':'x'}],"
        "'response_format':{'type':'json_schema','json_schema':{'name':'p',"
        "'schema':{'type':'object','properties':{'n':{'type':'integer','minimum':1}},"
        "'required':['n']}}}}";
    fx *f = *state;
    json_t *body;
    const char *t;

    f->ctx.model = "claude-sonnet-4-5-20250929";
    body = encode_ok(f, req, NULL);
    assert_json(body, "{'model':'claude-sonnet-4-5-20250929','max_tokens':100,"
                      "'messages':[{'role':'user','content':[{'type':'text','text':'x'}]}],"
                      "'output_config':{'format':{'type':'json_schema','schema':{"
                      "'type':'object','properties':{'n':{'type':'integer',"
                      "'description':'{minimum: 1}'}},'additionalProperties':false,"
                      "'required':['n']}}}}");
    json_decref(body);

    /* with effort on a 4.7 model: both members in one output_config */
    f->ctx.model = "claude-opus-4-7";
    body = encode_ok(f, "{'model':'p/m','reasoning_effort':'high','messages':[{'role':'user',"
                        "'content':'x'}],'response_format':{'type':'json_schema',"
                        "'json_schema':{'name':'p','schema':{'type':'string'}}}}", NULL);
    assert_json(json_object_get(body, "output_config"),
                "{'format':{'type':'json_schema','schema':{'type':'string'}},'effort':'high'}");
    assert_null(json_object_get(body, "system"));
    json_decref(body);

    /* json_object has no native form: still the prompt, even on 4.5+ */
    body = encode_ok(f, "{'model':'p/m','messages':[{'role':'user','content':'x'}],"
                        "'response_format':{'type':'json_object'}}", NULL);
    assert_null(json_object_get(body, "output_config"));
    t = json_string_value(at(json_array_get(json_object_get(body, "system"), 0), "text", NULL));
    assert_non_null(strstr(t, "JSON object"));
    json_decref(body);

    /* a schema outside the subset (no type): the prompt, schema embedded */
    body = encode_ok(f, "{'model':'p/m','messages':[{'role':'user','content':'x'}],"
                        "'response_format':{'type':'json_schema','json_schema':{'name':'p',"
                        "'schema':{'properties':{}}}}}", NULL);
    assert_null(json_object_get(body, "output_config"));
    t = json_string_value(at(json_array_get(json_object_get(body, "system"), 0), "text", NULL));
    assert_non_null(strstr(t, "JSON Schema: {\"properties\":{}}"));
    json_decref(body);

    /* models without structured outputs: unchanged (prompt form) */
    f->ctx.model = "claude-opus-4-1";
    body = encode_ok(f, req, NULL);
    assert_null(json_object_get(body, "output_config"));
    assert_int_equal(json_array_size(json_object_get(body, "system")), 1);
    json_decref(body);
    f->ctx.model = "some-compatible-model";
    body = encode_ok(f, req, NULL);
    assert_null(json_object_get(body, "output_config"));
    assert_int_equal(json_array_size(json_object_get(body, "system")), 1);
    json_decref(body);
}

/* No beta header is needed for any of these (all GA). */
static void test_request_no_beta_for_new_fields(void **state)
{
    fx *f = *state;
    mn_upstream_req out;
    json_t *body;

    f->ctx.model = "claude-opus-4-7";
    body = encode_ok(f, "{'model':'p/m','reasoning_effort':'high','messages':[{'role':'user',"
                        "'content':'x'}],'response_format':{'type':'json_schema',"
                        "'json_schema':{'name':'p','schema':{'type':'string'}}}}", &out);
    assert_null(apr_table_get(out.headers, "anthropic-beta"));
    json_decref(body);
}

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
        T(test_request_sampling_by_model),
        T(test_bug_budget_tokens_overflow_rejected),
        T(test_request_effort_by_model_class),
        T(test_request_client_thinking_and_output_config),
        T(test_request_structured_output),
        T(test_request_no_beta_for_new_fields),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests_name("anthropic_request", tests, NULL, NULL);
    apr_terminate();
    return rc;
}
