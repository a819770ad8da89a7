/* Unit tests for src/wire/gemini.c: every gemini/ fixture against its
 * expected partner (streams replayed split at every byte offset, with and
 * without include_usage), plus one small case per mapping rule. */
#include <limits.h>
#include <malloc.h>
#include <time.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#include "harness.h"

#define PROVIDER "gemini-test"
#define MODEL "gemini-2.5-flash"

static int setup(void **state)
{
    apr_pool_t *p;
    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return -1;
    }
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    apr_pool_destroy(*state);
    return 0;
}

static void ctx_for(mn_wire_ctx *ctx, mn_provider *prov, void **state, int stream,
                    int include_usage)
{
    mn_t_ctx(ctx, *state, prov, PROVIDER, MN_FORMAT_GEMINI, stream, include_usage);
    ctx->model = MODEL;
}

/* Inline JSON is written with ' for " to keep the C strings readable. */
static json_t *jq(const char *text)
{
    char *s = strdup(text);
    char *c;
    json_error_t jerr;
    json_t *j;
    for (c = s; *c; c++) {
        if (*c == '\'') {
            *c = '"';
        }
    }
    j = json_loads(s, 0, &jerr);
    if (!j) {
        fail_msg("bad test JSON (%s): %s", jerr.text, s);
    }
    free(s);
    return j;
}

static void assert_json_eq(json_t *got, json_t *want)
{
    if (!json_equal(got, want)) {
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
        fail_msg("JSON differs\n got: %s\nwant: %s", g ? g : "(null)", w);
    }
}

/* got is borrowed, want_q is jq() text. */
static void assert_jq(json_t *got, const char *want_q)
{
    json_t *want = jq(want_q);
    assert_json_eq(got, want);
    json_decref(want);
}

/* ------------------------------------------------------------------------ */
/* Request helpers                                                           */

static json_t *encode_ok_ctx(mn_wire_ctx *ctx, json_t *req, mn_upstream_req *out)
{
    mn_error err;
    json_t *body;
    mn_error_clear(&err);
    memset(out, 0, sizeof(*out));
    if (mn_wire_gemini.encode_request(ctx, req, out, &err) != 0) {
        fail_msg("encode failed: %d %s param=%s: %s", err.status, err.type, err.param,
                 err.message);
    }
    body = json_loadb(out->body, out->body_len, 0, NULL);
    assert_non_null(body);
    return body;
}

static json_t *encode_q(void **state, const char *req_q)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_upstream_req out;
    json_t *req = jq(req_q);
    json_t *body;
    ctx_for(&ctx, &prov, state, 0, 0);
    body = encode_ok_ctx(&ctx, req, &out);
    json_decref(req);
    return body;
}

static void encode_fails(void **state, const char *req_q, const char *param)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_upstream_req out;
    mn_error err;
    json_t *req = jq(req_q);
    ctx_for(&ctx, &prov, state, 0, 0);
    mn_error_clear(&err);
    memset(&out, 0, sizeof(out));
    assert_int_equal(mn_wire_gemini.encode_request(&ctx, req, &out, &err), -1);
    json_decref(req);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, "invalid_request_error");
    assert_string_equal(err.param, param);
    assert_true(err.message[0] != '\0');
}

/* ------------------------------------------------------------------------ */
/* Request fixtures                                                          */

static void check_request_fixture(void **state, const char *client, const char *expected,
                                  int stream)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_upstream_req out;
    json_t *req = mn_t_fixture_json(client);
    json_t *want = mn_t_fixture_json(expected);
    json_t *body;

    ctx_for(&ctx, &prov, state, stream, stream);
    body = encode_ok_ctx(&ctx, req, &out);
    assert_json_eq(body, want);
    assert_string_equal(out.path, stream ? "/models/" MODEL ":streamGenerateContent?alt=sse"
                                         : "/models/" MODEL ":generateContent");
    assert_string_equal(apr_table_get(out.headers, "x-goog-api-key"), "sk-test-key");
    assert_string_equal(apr_table_get(out.headers, "content-type"), "application/json");
    assert_null(apr_table_get(out.headers, "Authorization"));
    assert_int_equal(out.body_len, strlen(out.body));
    json_decref(body);
    json_decref(want);
    json_decref(req);
}

static void test_request_text_fixture(void **state)
{
    check_request_fixture(state, "requests/openai_text.json",
                          "gemini/request_text.expected_gemini.json", 1);
    check_request_fixture(state, "requests/openai_text.json",
                          "gemini/request_text.expected_gemini.json", 0);
}

static void test_request_tools_fixture(void **state)
{
    check_request_fixture(state, "requests/openai_tools_multiturn.json",
                          "gemini/request_tools_multiturn.expected_gemini.json", 1);
    check_request_fixture(state, "requests/openai_tools_multiturn.json",
                          "gemini/request_tools_multiturn.expected_gemini.json", 0);
}

/* ------------------------------------------------------------------------ */
/* Request mapping rules                                                     */

static void test_request_path_and_headers(void **state)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_upstream_req out;
    json_t *req = jq("{'model':'g/x','messages':[{'role':'user','content':'hi'}]}");
    json_t *body;

    ctx_for(&ctx, &prov, state, 1, 0);
    ctx.model = "models/tuned model:v1";
    prov.key = NULL;
    body = encode_ok_ctx(&ctx, req, &out);
    assert_string_equal(out.path, "/models/tuned%20model%3Av1:streamGenerateContent?alt=sse");
    assert_null(apr_table_get(out.headers, "x-goog-api-key"));
    assert_null(apr_table_get(out.headers, "Authorization"));
    assert_string_equal(apr_table_get(out.headers, "Content-Type"), "application/json");
    assert_jq(body, "{'contents':[{'role':'user','parts':[{'text':'hi'}]}]}");
    json_decref(body);
    json_decref(req);
}

static void test_request_roles_and_merge(void **state)
{
    json_t *body = encode_q(state,
        "{'model':'g/x','messages':["
        "{'role':'system','content':'s1'},"
        "{'role':'user','content':'u1'},"
        "{'role':'developer','content':[{'type':'text','text':'d1'},{'type':'text','text':'d2'}]},"
        "{'role':'user','content':[{'type':'text','text':'u2'}]},"
        "{'role':'assistant','content':'a1'},"
        "{'role':'assistant','content':[{'type':'text','text':'a2'},{'type':'refusal','refusal':'no'}]},"
        "{'role':'system','content':''},"
        "{'role':'user','content':'u3'}]}");
    assert_jq(body,
        "{'systemInstruction':{'parts':[{'text':'s1'},{'text':'d1'},{'text':'d2'}]},"
        "'contents':["
        "{'role':'user','parts':[{'text':'u1'},{'text':'u2'}]},"
        "{'role':'model','parts':[{'text':'a1'},{'text':'a2'}]},"
        "{'role':'user','parts':[{'text':'u3'}]}]}");
    json_decref(body);
}

static void test_request_tool_calls_and_results(void **state)
{
    json_t *body = encode_q(state,
        "{'model':'g/x','messages':["
        "{'role':'user','content':'go'},"
        "{'role':'assistant','content':'calling','tool_calls':["
        "  {'id':'c1','type':'function','function':{'name':'f','arguments':'{\\'a\\':[1,2]}'}},"
        "  {'id':'c2','type':'function','function':{'name':'g','arguments':''}}]},"
        "{'role':'tool','tool_call_id':'c2','content':'out2'},"
        "{'role':'tool','tool_call_id':'c1','content':[{'type':'text','text':'o'},"
        "                                             {'type':'text','text':'ut1'}]},"
        "{'role':'user','content':'thanks'}]}");
    assert_jq(body,
        "{'contents':["
        "{'role':'user','parts':[{'text':'go'}]},"
        "{'role':'model','parts':[{'text':'calling'},"
        "  {'functionCall':{'name':'f','args':{'a':[1,2]}}},"
        "  {'functionCall':{'name':'g','args':{}}}]},"
        "{'role':'user','parts':["
        "  {'functionResponse':{'name':'g','response':{'output':'out2'}}},"
        "  {'functionResponse':{'name':'f','response':{'output':'out1'}}},"
        "  {'text':'thanks'}]}]}");
    json_decref(body);
}

static void test_request_unknown_tool_call_id(void **state)
{
    encode_fails(state,
        "{'model':'g/x','messages':["
        "{'role':'user','content':'go'},"
        "{'role':'assistant','tool_calls':[{'id':'c1','type':'function',"
        "  'function':{'name':'f','arguments':'{}'}}]},"
        "{'role':'tool','tool_call_id':'nope','content':'x'}]}",
        "messages[2].tool_call_id");
    /* a result may only answer an earlier call */
    encode_fails(state,
        "{'model':'g/x','messages':["
        "{'role':'tool','tool_call_id':'c1','content':'x'},"
        "{'role':'assistant','tool_calls':[{'id':'c1','type':'function',"
        "  'function':{'name':'f','arguments':'{}'}}]}]}",
        "messages[0].tool_call_id");
}

static void test_request_bad_arguments(void **state)
{
    encode_fails(state,
        "{'model':'g/x','messages':[{'role':'user','content':'go'},"
        "{'role':'assistant','tool_calls':[{'id':'c1','type':'function',"
        "  'function':{'name':'f','arguments':'{not json'}}]}]}",
        "messages[1].tool_calls[0].function.arguments");
    encode_fails(state,
        "{'model':'g/x','messages':[{'role':'user','content':'go'},"
        "{'role':'assistant','tool_calls':[{'id':'c1','type':'function',"
        "  'function':{'name':'f','arguments':'[1]'}}]}]}",
        "messages[1].tool_calls[0].function.arguments");
}

static void test_request_images(void **state)
{
    json_t *body = encode_q(state,
        "{'model':'g/x','messages':[{'role':'user','content':["
        "{'type':'image_url','image_url':{'url':'data:image/PNG;charset=x;base64,AAAA','detail':'high'}},"
        "{'type':'image_url','image_url':{'url':'https://ex.com/a/b.Png?x=1.gif#f'}},"
        "{'type':'image_url','image_url':{'url':'http://ex.com/c.jpg'}},"
        "{'type':'image_url','image_url':{'url':'https://ex.com/c.jpeg'}},"
        "{'type':'image_url','image_url':{'url':'https://ex.com/c.gif'}},"
        "{'type':'image_url','image_url':{'url':'https://ex.com/c.webp'}},"
        "{'type':'image_url','image_url':{'url':'https://ex.com/c.HEIC'}},"
        "{'type':'image_url','image_url':{'url':'https://ex.com/c.heif'}},"
        "{'type':'image_url','image_url':{'url':'https://ex.com/c.bmp'}},"
        "{'type':'image_url','image_url':{'url':'https://ex.com.png'}},"
        "{'type':'image_url','image_url':{'url':'gs://bucket/dir/x.webp'}},"
        "{'type':'input_audio','input_audio':{'data':'AAAA','format':'wav'}},"
        "{'type':'file','file':{'file_data':'data:application/pdf;base64,JVBE'}}]}]}");
    assert_jq(json_object_get(body, "contents"),
        "[{'role':'user','parts':["
        "{'inlineData':{'mimeType':'image/png','data':'AAAA'}},"
        "{'fileData':{'mimeType':'image/png','fileUri':'https://ex.com/a/b.Png?x=1.gif#f'}},"
        "{'fileData':{'mimeType':'image/jpeg','fileUri':'http://ex.com/c.jpg'}},"
        "{'fileData':{'mimeType':'image/jpeg','fileUri':'https://ex.com/c.jpeg'}},"
        "{'fileData':{'mimeType':'image/gif','fileUri':'https://ex.com/c.gif'}},"
        "{'fileData':{'mimeType':'image/webp','fileUri':'https://ex.com/c.webp'}},"
        "{'fileData':{'mimeType':'image/heic','fileUri':'https://ex.com/c.HEIC'}},"
        "{'fileData':{'mimeType':'image/heif','fileUri':'https://ex.com/c.heif'}},"
        "{'fileData':{'mimeType':'image/jpeg','fileUri':'https://ex.com/c.bmp'}},"
        "{'fileData':{'mimeType':'image/jpeg','fileUri':'https://ex.com.png'}},"
        "{'fileData':{'mimeType':'image/webp','fileUri':'gs://bucket/dir/x.webp'}},"
        "{'inlineData':{'mimeType':'application/pdf','data':'JVBE'}}]}]");
    json_decref(body);
}

static void test_request_bad_parts(void **state)
{
    encode_fails(state,
        "{'model':'g/x','messages':[{'role':'user','content':["
        "{'type':'text','text':'a'},{'type':'video','video':{}}]}]}",
        "messages[0].content[1].type");
    encode_fails(state,
        "{'model':'g/x','messages':[{'role':'user','content':["
        "{'type':'image_url','image_url':{'url':'data:image/png,AAAA'}}]}]}",
        "messages[0].content[0].image_url.url");
    encode_fails(state,
        "{'model':'g/x','messages':[{'role':'user','content':["
        "{'type':'image_url','image_url':{'url':'data:;base64,AAAA'}}]}]}",
        "messages[0].content[0].image_url.url");
    encode_fails(state,
        "{'model':'g/x','messages':[{'role':'user','content':["
        "{'type':'image_url','image_url':{'url':'ftp://ex.com/a.png'}}]}]}",
        "messages[0].content[0].image_url.url");
    encode_fails(state,
        "{'model':'g/x','messages':[{'role':'user','content':'x'},"
        "{'role':'system','content':[{'type':'image_url','image_url':{'url':'https://e/a.png'}}]}]}",
        "messages[1].content[0]");
    encode_fails(state,
        "{'model':'g/x','messages':[{'role':'robot','content':'x'}]}", "messages[0].role");
    encode_fails(state,
        "{'model':'g/x','messages':[{'role':'system','content':'only system'}]}", "messages");
}

static void test_request_generation_config(void **state)
{
    json_t *body = encode_q(state,
        "{'model':'g/x','messages':[{'role':'user','content':'hi'}],"
        "'temperature':1.5,'top_p':0.9,'top_k':40,'max_tokens':100,'seed':7,"
        "'presence_penalty':0.5,'frequency_penalty':-0.5,'stop':'END',"
        "'response_format':{'type':'json_object'},'reasoning_effort':'medium'}");
    assert_jq(json_object_get(body, "generationConfig"),
        "{'temperature':1.5,'topP':0.9,'topK':40,'maxOutputTokens':100,'seed':7,"
        "'presencePenalty':0.5,'frequencyPenalty':-0.5,'stopSequences':['END'],"
        "'responseMimeType':'application/json','thinkingConfig':{'thinkingBudget':8192}}");
    json_decref(body);

    /* max_completion_tokens wins over max_tokens; empty stop and text format add nothing */
    body = encode_q(state,
        "{'model':'g/x','messages':[{'role':'user','content':'hi'}],"
        "'max_tokens':100,'max_completion_tokens':50,'stop':[],"
        "'response_format':{'type':'text'},'temperature':null}");
    assert_jq(json_object_get(body, "generationConfig"), "{'maxOutputTokens':50}");
    json_decref(body);

    body = encode_q(state, "{'model':'g/x','messages':[{'role':'user','content':'hi'}]}");
    assert_null(json_object_get(body, "generationConfig"));
    json_decref(body);

    encode_fails(state, "{'model':'g/x','messages':[{'role':'user','content':'x'}],"
                        "'stop':['a',1]}", "stop");
    encode_fails(state, "{'model':'g/x','messages':[{'role':'user','content':'x'}],"
                        "'max_tokens':1.5}", "max_tokens");
    encode_fails(state, "{'model':'g/x','messages':[{'role':'user','content':'x'}],"
                        "'response_format':{'type':'xml'}}", "response_format.type");
}

static void test_request_reasoning_effort(void **state)
{
    static const struct { const char *effort; int budget; } cases[] = {
        { "none", 0 }, { "minimal", 512 }, { "low", 1024 }, { "medium", 8192 },
        { "high", 24576 }, { "xhigh", 24576 },
    };
    size_t i;
    char req[256];
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *body, *tb;
        snprintf(req, sizeof(req), "{'model':'g/x','messages':[{'role':'user','content':'x'}],"
                 "'reasoning_effort':'%s'}", cases[i].effort);
        body = encode_q(state, req);
        tb = json_object_get(json_object_get(json_object_get(body, "generationConfig"),
                                             "thinkingConfig"), "thinkingBudget");
        assert_true(json_is_integer(tb));
        assert_int_equal(json_integer_value(tb), cases[i].budget);
        json_decref(body);
    }
    encode_fails(state, "{'model':'g/x','messages':[{'role':'user','content':'x'}],"
                        "'reasoning_effort':'extreme'}", "reasoning_effort");
}

static void test_request_reasoning_content_provider(void **state)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_upstream_req out;
    json_t *req = jq("{'model':'g/x','messages':[{'role':'user','content':'x'}],"
                     "'reasoning_effort':'low'}");
    json_t *body;
    ctx_for(&ctx, &prov, state, 0, 0);
    prov.reasoning_content = 1;
    body = encode_ok_ctx(&ctx, req, &out);
    assert_jq(json_object_get(body, "generationConfig"),
              "{'thinkingConfig':{'thinkingBudget':1024,'includeThoughts':true}}");
    json_decref(body);
    json_decref(req);
}

static void test_request_json_schema(void **state)
{
    json_t *body = encode_q(state,
        "{'model':'g/x','messages':[{'role':'user','content':'x'}],"
        "'response_format':{'type':'json_schema','json_schema':{'name':'r','strict':true,'schema':{"
        "  '$schema':'http://json-schema.org/draft-07/schema#','type':'object',"
        "  'additionalProperties':false,'title':'R',"
        "  'properties':{"
        "    'when':{'type':'string','format':'date-time','default':'now'},"
        "    'mail':{'type':['string','null'],'format':'email','examples':['a@b']},"
        "    'kind':{'const':'fixed'},"
        "    'item':{'$ref':'#/$defs/Item','description':'the item'},"
        "    'list':{'type':'array','items':{'$ref':'#/definitions/Leaf'},'uniqueItems':true},"
        "    'either':{'oneOf':[{'type':'integer','exclusiveMinimum':0},{'type':'boolean'}]},"
        "    'both':{'allOf':[{'properties':{'a':{'type':'string'}},'required':['a']},"
        "                     {'properties':{'b':{'type':'number'}},'required':['b','a']}]}},"
        "  'required':['when'],"
        "  '$defs':{'Item':{'type':'object','additionalProperties':{'type':'string'},"
        "                   'properties':{'n':{'type':'integer','format':'int64'}}}},"
        "  'definitions':{'Leaf':{'type':'string','enum':['x','y']}}}}}}");
    assert_jq(json_object_get(body, "generationConfig"),
        "{'responseMimeType':'application/json','responseSchema':{"
        "  'type':'object','title':'R',"
        "  'properties':{"
        "    'when':{'type':'string','format':'date-time','default':'now'},"
        "    'mail':{'type':'string','nullable':true},"
        "    'kind':{'enum':['fixed']},"
        "    'item':{'type':'object','properties':{'n':{'type':'integer','format':'int64'}},"
        "            'description':'the item'},"
        "    'list':{'type':'array','items':{'type':'string','enum':['x','y']}},"
        "    'either':{'anyOf':[{'type':'integer'},{'type':'boolean'}]},"
        "    'both':{'properties':{'a':{'type':'string'},'b':{'type':'number'}},'required':['a','b']}},"
        "  'required':['when']}}");
    json_decref(body);

    encode_fails(state,
        "{'model':'g/x','messages':[{'role':'user','content':'x'}],"
        "'response_format':{'type':'json_schema','json_schema':{'name':'r','schema':{"
        "  'type':'object','properties':{'next':{'$ref':'#/$defs/Node'}},"
        "  '$defs':{'Node':{'type':'object','properties':{'next':{'$ref':'#/$defs/Node'}}}}}}}}",
        "response_format.json_schema.schema");
    encode_fails(state,
        "{'model':'g/x','messages':[{'role':'user','content':'x'}],"
        "'response_format':{'type':'json_schema','json_schema':{'name':'r','schema':{"
        "  'type':'object','properties':{'p':{'$ref':'https://ex.com/s.json'}}}}}}",
        "response_format.json_schema.schema");
}

/* ------------------------------------------------------------------------ */
/* Schema expansion budget                                                   */

static void buf_puts(mn_buf *b, const char *s)
{
    mn_buf_append(b, s, strlen(s));
}

/* A schema whose $defs L0..L(depth-1) each hold `fan` properties that all
 * $ref the next level: inlined, it has fan^depth leaves. */
static void append_fanout_schema(mn_buf *b, int fan, int depth)
{
    char tmp[128];
    int l, i;

    buf_puts(b, "{\"type\":\"object\",\"properties\":{");
    for (i = 0; i < fan; i++) {
        snprintf(tmp, sizeof(tmp), "%s\"p%d\":{\"$ref\":\"#/$defs/L0\"}", i ? "," : "", i);
        mn_buf_append(b, tmp, strlen(tmp));
    }
    buf_puts(b, "},\"$defs\":{");
    for (l = 0; l < depth; l++) {
        snprintf(tmp, sizeof(tmp), "\"L%d\":{\"type\":\"object\",\"properties\":{", l);
        mn_buf_append(b, tmp, strlen(tmp));
        for (i = 0; i < fan; i++) {
            if (l + 1 < depth) {
                snprintf(tmp, sizeof(tmp), "%s\"p%d\":{\"$ref\":\"#/$defs/L%d\"}", i ? "," : "",
                         i, l + 1);
            }
            else {
                snprintf(tmp, sizeof(tmp), "%s\"p%d\":{\"type\":\"string\"}", i ? "," : "", i);
            }
            mn_buf_append(b, tmp, strlen(tmp));
        }
        buf_puts(b, l + 1 < depth ? "}}," : "}}");
    }
    buf_puts(b, "}}");
}

static json_t *tools_request(const char *const *schemas, size_t n)
{
    mn_buf b;
    size_t i;
    json_t *j;
    char tmp[96];

    mn_buf_init(&b);
    buf_puts(&b, "{\"model\":\"g/x\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                      "\"tools\":[");
    for (i = 0; i < n; i++) {
        snprintf(tmp, sizeof(tmp), "%s{\"type\":\"function\",\"function\":{\"name\":\"f%zu\","
                 "\"parameters\":", i ? "," : "", i);
        mn_buf_append(&b, tmp, strlen(tmp));
        mn_buf_append(&b, schemas[i], strlen(schemas[i]));
        buf_puts(&b, "}}");
    }
    buf_puts(&b, "]}");
    j = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(j);
    mn_buf_free(&b);
    return j;
}

/* Encodes req with the given expansion factor: 0, or -1 with err. */
static int encode_with(void **state, json_t *req, int factor, mn_upstream_req *out,
                       mn_error *err)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    ctx_for(&ctx, &prov, state, 0, 0);
    ctx.max_schema_expansion = factor;
    mn_error_clear(err);
    memset(out, 0, sizeof(*out));
    return mn_wire_gemini.encode_request(&ctx, req, out, err);
}

static void test_request_schema_fanout_refused(void **state)
{
    mn_buf bomb;
    const char *schemas[2];
    mn_upstream_req out;
    mn_error err;
    json_t *req;
    clock_t t0;
    double secs;
    char *rf;

    /* fan 8, depth 6: a 1.7 KB schema that inlines to 8^6 = 262144 leaves
     * (about 10 MB); before the budget it was built and sent upstream */
    mn_buf_init(&bomb);
    append_fanout_schema(&bomb, 8, 6);
    assert_true(bomb.len < 1800);
    mn_buf_append(&bomb, "", 1);
    schemas[0] = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}";
    schemas[1] = bomb.data;
    req = tools_request(schemas, 2);
    t0 = clock();
    assert_int_equal(encode_with(state, req, 0, &out, &err), -1);
    secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 0.5);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, "invalid_request_error");
    assert_string_equal(err.param, "tools[1].function.parameters");
    assert_string_equal(err.message, "schema grows beyond 8 times its size when its $refs and "
                                     "allOf are inlined for Gemini (ManiacMaxSchemaExpansion)");
    json_decref(req);

    /* the same schema as the response schema */
    rf = malloc(bomb.len + 200);
    snprintf(rf, bomb.len + 200, "{\"model\":\"g/x\",\"messages\":[{\"role\":\"user\","
             "\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\","
             "\"json_schema\":{\"name\":\"r\",\"schema\":%s}}}", bomb.data);
    req = json_loads(rf, 0, NULL);
    assert_non_null(req);
    assert_int_equal(encode_with(state, req, 0, &out, &err), -1);
    assert_string_equal(err.param, "response_format.json_schema.schema");
    json_decref(req);
    free(rf);
    mn_buf_free(&bomb);
}

static void test_request_schema_expansion_factor(void **state)
{
    mn_buf b;
    const char *schemas[1];
    mn_upstream_req out;
    mn_error err;
    json_t *req, *body, *props;
    size_t i;

    /* fan 4, depth 3: 64 leaves, inlined 9 KB from 0.6 KB */
    mn_buf_init(&b);
    append_fanout_schema(&b, 4, 3);
    mn_buf_append(&b, "", 1);
    schemas[0] = b.data;
    req = tools_request(schemas, 1);
    assert_int_equal(encode_with(state, req, 0, &out, &err), 0);
    body = json_loadb(out.body, out.body_len, 0, NULL);
    props = json_object_get(json_object_get(json_object_get(json_array_get(json_object_get(
        json_array_get(json_object_get(body, "tools"), 0), "functionDeclarations"), 0),
        "parameters"), "properties"), "p3");
    for (i = 0; i < 3; i++) {
        props = json_object_get(json_object_get(props, "properties"), "p0");
    }
    assert_jq(props, "{'type':'string'}");
    json_decref(body);
    json_decref(req);
    mn_buf_free(&b);

    /* fan 4, depth 6: 4096 leaves, 584 KB from 1 KB: over the default,
     * within a factor of 1000 */
    mn_buf_init(&b);
    append_fanout_schema(&b, 4, 6);     /* 4096 leaves, ~120 KB */
    mn_buf_append(&b, "", 1);
    schemas[0] = b.data;
    req = tools_request(schemas, 1);
    assert_int_equal(encode_with(state, req, 0, &out, &err), -1);
    assert_string_equal(err.param, "tools[0].function.parameters");
    assert_int_equal(encode_with(state, req, 1, &out, &err), -1);
    assert_string_equal(err.param, "tools[0].function.parameters");
    assert_string_equal(err.message, "schema grows beyond 1 times its size when its $refs and "
                                     "allOf are inlined for Gemini (ManiacMaxSchemaExpansion)");
    assert_int_equal(encode_with(state, req, 1000, &out, &err), 0);
    assert_true(out.body_len > 100000);
    json_decref(req);
    mn_buf_free(&b);
}

/* allOf parts listing the same long required list: merged once each, in
 * linear time (it was a list walk per name: quadratic). */
static void test_request_schema_required_merge_linear(void **state)
{
    enum { PARTS = 64, NAMES = 4000 };
    mn_buf b;
    mn_upstream_req out;
    mn_error err;
    const char *schemas[1];
    json_t *req, *body, *required;
    char tmp[64];
    int p, n;
    clock_t t0;
    double secs;

    mn_buf_init(&b);
    buf_puts(&b, "{\"type\":\"object\",\"properties\":{\"n0\":{}},\"required\":[\"n0\",7],"
                "\"allOf\":[");
    for (p = 0; p < PARTS; p++) {
        buf_puts(&b, p ? ",{\"required\":[" : "{\"required\":[");
        for (n = 0; n < NAMES; n++) {
            /* each part lists the names in another order, plus one of its own */
            snprintf(tmp, sizeof(tmp), "%s\"n%d\"", n ? "," : "", (n * 7 + p) % NAMES);
            mn_buf_append(&b, tmp, strlen(tmp));
        }
        snprintf(tmp, sizeof(tmp), ",\"own%d\"]}", p);
        mn_buf_append(&b, tmp, strlen(tmp));
    }
    buf_puts(&b, "]}");
    mn_buf_append(&b, "", 1);
    schemas[0] = b.data;
    req = tools_request(schemas, 1);
    t0 = clock();
    assert_int_equal(encode_with(state, req, 0, &out, &err), 0);
    secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    print_message("required merge: %zu bytes of schema in %.3f s\n", b.len, secs);
    assert_true(secs < 1.0);
    body = json_loadb(out.body, out.body_len, 0, NULL);
    required = json_object_get(json_object_get(json_array_get(json_object_get(json_array_get(
        json_object_get(body, "tools"), 0), "functionDeclarations"), 0), "parameters"),
        "required");
    /* every name once, in first-seen order, the non-name 7 dropped */
    assert_int_equal(json_array_size(required), NAMES + PARTS);
    assert_string_equal(json_string_value(json_array_get(required, 0)), "n0");
    assert_string_equal(json_string_value(json_array_get(required, 1)), "n7");
    assert_string_equal(json_string_value(json_array_get(required, NAMES)), "own0");
    assert_string_equal(json_string_value(json_array_get(required, NAMES + 1)), "own1");
    json_decref(body);
    json_decref(req);
    mn_buf_free(&b);
}

/* Jansson's heap in use, counted without a header (malloc_usable_size), so
 * that strings it returns may still be released with free(). */
static long long mem_cur, mem_peak;

static void *count_malloc(size_t n)
{
    void *p = malloc(n);
    if (p) {
        mem_cur += (long long)malloc_usable_size(p);
        mem_peak = mem_cur > mem_peak ? mem_cur : mem_peak;
    }
    return p;
}

static void count_free(void *p)
{
    if (p) {
        mem_cur -= (long long)malloc_usable_size(p);
        free(p);
    }
}

/* valgrind runs 20-50 times slower: the same generators at 1/8 of the size
 * there, without the clock bound (the sanitizer run checks the full size) */
static int under_valgrind(void)
{
#if defined(RUNNING_ON_VALGRIND)
    return RUNNING_ON_VALGRIND;
#else
    return mn_t_quick();
#endif
}

typedef struct worst_result {
    int rc;
    mn_error err;
    double secs;
    long long peak;         /* Jansson heap above the start, bytes */
    size_t body_len;
} worst_result;

static void encode_measured(void **state, json_t *req, worst_result *w)
{
    mn_upstream_req out;
    clock_t t0;
    json_malloc_t m0;
    json_free_t f0;

    json_get_alloc_funcs(&m0, &f0);
    mem_cur = mem_peak = 0;
    json_set_alloc_funcs(count_malloc, count_free);
    t0 = clock();
    w->rc = encode_with(state, req, 0, &out, &w->err);
    w->secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    json_set_alloc_funcs(m0, f0);
    w->peak = mem_peak;
    w->body_len = w->rc ? 0 : out.body_len;
}

static json_t *parse_measured(const mn_buf *b, long long *peak)
{
    json_malloc_t m0;
    json_free_t f0;
    json_t *j;

    json_get_alloc_funcs(&m0, &f0);
    mem_cur = mem_peak = 0;
    json_set_alloc_funcs(count_malloc, count_free);
    j = json_loadb(b->data, b->len, 0, NULL);
    json_set_alloc_funcs(m0, f0);
    assert_non_null(j);
    *peak = mem_peak;
    return j;
}

/* Request bodies of the size ManiacMaxRequestBody allows by default (32 MiB)
 * built to cost the most: every tool a $ref fan-out that stays within its
 * own budget (so the request-wide cap must stop it), and one schema of
 * nested allOf whose parts list long required lists.  The bound tested:
 * encoding takes under 4 s of CPU (sanitizer build), and its Jansson heap
 * peaks under 256 MiB and (at 32 MiB) under what parsing the body took. */
static void test_request_schema_worst_case(void **state)
{
    const size_t target = under_valgrind() ? 4u << 20 : 32u << 20;
    const long long mem_bound = 256LL << 20;
    mn_buf one, b;
    json_t *req;
    worst_result w;
    long long parse_peak;
    size_t n = 0, tool_len;
    char tmp[96];
    int p, k;

    /* (1) fan 4, depth 3: 0.6 KB each, inlined 9 KB (under 8 x + slack),
     * as many tools as fit */
    mn_buf_init(&one);
    append_fanout_schema(&one, 4, 3);
    mn_buf_init(&b);
    buf_puts(&b, "{\"model\":\"g/x\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                      "\"tools\":[");
    tool_len = one.len + 64;
    while (b.len + tool_len + 2 < target) {
        snprintf(tmp, sizeof(tmp), "%s{\"type\":\"function\",\"function\":{\"name\":\"f%zu\","
                 "\"parameters\":", n ? "," : "", n);
        mn_buf_append(&b, tmp, strlen(tmp));
        mn_buf_append(&b, one.data, one.len);
        buf_puts(&b, "}}");
        n++;
    }
    buf_puts(&b, "]}");
    req = parse_measured(&b, &parse_peak);
    encode_measured(state, req, &w);
    print_message("worst case fan-out: %zu bytes, %zu tools: rc %d (%s) in %.3f s, "
                  "Jansson peak %.1f MiB (parsing it: %.1f MiB)\n", b.len, n, w.rc, w.err.param,
                  w.secs, (double)w.peak / (1 << 20), (double)parse_peak / (1 << 20));
    assert_int_equal(w.rc, -1);
    assert_int_equal(w.err.status, 400);
    assert_true(!strncmp(w.err.param, "tools[", 6));
    assert_string_equal(w.err.message, "the schemas of this request grow by more than 8 MiB "
                                       "when their $refs and allOf are inlined for Gemini");
    assert_true(under_valgrind() || w.secs < 4.0);
    assert_true(w.peak < mem_bound && (target < (32u << 20) || w.peak < parse_peak));
    json_decref(req);
    mn_buf_free(&one);
    mn_buf_reset(&b);

    /* (2) allOf nested 30 deep, every level a part with the same long
     * required list (each name merged ~once per level) */
    buf_puts(&b, "{\"model\":\"g/x\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                      "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
                      "\"parameters\":{\"type\":\"object\",\"properties\":{\"r\":{}},\"allOf\":[");
    for (p = 0; p < 30; p++) {
        size_t level_end = b.len + (target - b.len) / (30 - p) - 64;
        buf_puts(&b, "{\"required\":[\"r\"");
        for (k = 0; b.len < level_end; k++) {
            snprintf(tmp, sizeof(tmp), ",\"r%d\"", k % 200000);
            mn_buf_append(&b, tmp, strlen(tmp));
        }
        buf_puts(&b, "],\"allOf\":[");
    }
    for (p = 0; p < 30; p++) {
        buf_puts(&b, "]}");
    }
    buf_puts(&b, "]}}}]}");
    req = parse_measured(&b, &parse_peak);
    encode_measured(state, req, &w);
    print_message("worst case allOf/required: %zu bytes: rc %d in %.3f s, Jansson peak "
                  "%.1f MiB (parsing it: %.1f MiB), body %zu bytes\n", b.len, w.rc, w.secs,
                  (double)w.peak / (1 << 20), (double)parse_peak / (1 << 20), w.body_len);
    assert_int_equal(w.rc, 0);
    assert_true(w.body_len < b.len);
    assert_true(under_valgrind() || w.secs < 4.0);
    assert_true(w.peak < mem_bound && (target < (32u << 20) || w.peak < parse_peak));
    json_decref(req);
    mn_buf_free(&b);
}

static void test_request_tools_and_choice(void **state)
{
    static const char *tools =
        "'tools':[{'type':'function','function':{'name':'f','description':'F','strict':true,"
        "  'parameters':{'type':'object','additionalProperties':false,'properties':{"
        "    'o':{'type':'object','additionalProperties':false,'properties':{'x':{'type':'string'}}},"
        "    'l':{'type':'array','items':{'type':'object','additionalProperties':true,"
        "         'properties':{'y':{'type':'integer'}}}}}}}},"
        " {'type':'function','function':{'name':'g','parameters':{'type':'object','properties':{}}}},"
        " {'type':'function','function':{'name':'h'}}]";
    static const char *decls =
        "[{'name':'f','description':'F','parameters':{'type':'object','properties':{"
        "   'o':{'type':'object','properties':{'x':{'type':'string'}}},"
        "   'l':{'type':'array','items':{'type':'object','properties':{'y':{'type':'integer'}}}}}}},"
        " {'name':'g'},{'name':'h'}]";
    static const struct { const char *choice; const char *config; } cases[] = {
        { "'auto'", "{'functionCallingConfig':{'mode':'AUTO'}}" },
        { "'none'", "{'functionCallingConfig':{'mode':'NONE'}}" },
        { "'required'", "{'functionCallingConfig':{'mode':'ANY'}}" },
        { "{'type':'function','function':{'name':'g'}}",
          "{'functionCallingConfig':{'mode':'ANY','allowedFunctionNames':['g']}}" },
        { "{'type':'allowed_tools','allowed_tools':{'mode':'required','tools':["
          "{'type':'function','function':{'name':'f'}},{'type':'function','function':{'name':'h'}}]}}",
          "{'functionCallingConfig':{'mode':'ANY','allowedFunctionNames':['f','h']}}" },
    };
    char req[2048];
    size_t i;
    json_t *body, *want;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(req, sizeof(req), "{'model':'g/x','messages':[{'role':'user','content':'x'}],"
                 "%s,'tool_choice':%s}", tools, cases[i].choice);
        body = encode_q(state, req);
        want = jq(decls);
        assert_json_eq(json_object_get(json_array_get(json_object_get(body, "tools"), 0),
                                       "functionDeclarations"), want);
        json_decref(want);
        assert_int_equal(json_array_size(json_object_get(body, "tools")), 1);
        assert_jq(json_object_get(body, "toolConfig"), cases[i].config);
        json_decref(body);
    }

    /* allowed_tools in auto mode: Gemini can only be told by declaring fewer tools */
    snprintf(req, sizeof(req), "{'model':'g/x','messages':[{'role':'user','content':'x'}],"
             "%s,'tool_choice':{'type':'allowed_tools','allowed_tools':{'mode':'auto','tools':["
             "{'type':'function','function':{'name':'h'}}]}}}", tools);
    body = encode_q(state, req);
    assert_jq(json_object_get(body, "tools"), "[{'functionDeclarations':[{'name':'h'}]}]");
    assert_jq(json_object_get(body, "toolConfig"), "{'functionCallingConfig':{'mode':'AUTO'}}");
    json_decref(body);

    /* no tool_choice: no toolConfig */
    snprintf(req, sizeof(req), "{'model':'g/x','messages':[{'role':'user','content':'x'}],%s}",
             tools);
    body = encode_q(state, req);
    assert_null(json_object_get(body, "toolConfig"));
    json_decref(body);

    encode_fails(state, "{'model':'g/x','messages':[{'role':'user','content':'x'}],"
                        "'tools':[{'type':'custom','custom':{'name':'c'}}]}", "tools[0].type");
    encode_fails(state, "{'model':'g/x','messages':[{'role':'user','content':'x'}],"
                        "'tool_choice':'sometimes'}", "tool_choice");
}

static void test_request_dropped_and_passthrough(void **state)
{
    json_t *body = encode_q(state,
        "{'model':'g/x','messages':[{'role':'user','content':'x'}],"
        "'n':1,'logit_bias':{'1':2},'user':'u','store':true,'stream':false,"
        "'stream_options':{'include_usage':true},'parallel_tool_calls':false,"
        "'service_tier':'auto','prediction':{'type':'content','content':'p'},"
        "'prompt_cache_key':'k','safety_identifier':'s','verbosity':'low',"
        "'modalities':['text'],'audio':{'voice':'v','format':'mp3'},"
        "'web_search_options':{},'functions':[],'function_call':'auto',"
        "'safetySettings':[{'category':'HARM_CATEGORY_HARASSMENT','threshold':'BLOCK_NONE'}],"
        "'cachedContent':'cachedContents/abc',"
        "'generationConfig':{'candidateCount':1,'temperature':0.1},'temperature':0.3}");
    assert_jq(body,
        "{'contents':[{'role':'user','parts':[{'text':'x'}]}],"
        "'safetySettings':[{'category':'HARM_CATEGORY_HARASSMENT','threshold':'BLOCK_NONE'}],"
        "'cachedContent':'cachedContents/abc',"
        "'generationConfig':{'candidateCount':1,'temperature':0.3}}");
    json_decref(body);
}

/* ------------------------------------------------------------------------ */
/* Non-streaming responses                                                   */

static json_t *decode_ok(void **state, const char *body, size_t len, mn_usage *usage)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_error err;
    json_t *out = NULL;
    json_t *pv;

    ctx_for(&ctx, &prov, state, 0, 0);
    mn_error_clear(&err);
    memset(usage, 0, sizeof(*usage));
    if (mn_wire_gemini.decode_response(&ctx, body, len, &out, usage, &err) != 0) {
        fail_msg("decode failed: %d %s: %s", err.status, err.code, err.message);
    }
    pv = json_object_get(out, "provider");
    assert_true(json_is_string(pv));
    assert_string_equal(json_string_value(pv), PROVIDER);
    json_object_del(out, "provider");
    return out;
}

static json_t *decode_q(void **state, const char *body_q, mn_usage *usage)
{
    json_t *j = jq(body_q);
    char *s = json_dumps(j, 0);
    json_t *out = decode_ok(state, s, strlen(s), usage);
    free(s);
    json_decref(j);
    return out;
}

static void check_response_fixture(void **state, const char *name, long prompt,
                                   long completion, long total)
{
    char rel[256];
    size_t len;
    char *body;
    json_t *got, *want;
    mn_usage usage;

    snprintf(rel, sizeof(rel), "gemini/%s.json", name);
    body = mn_t_fixture(rel, &len);
    got = decode_ok(state, body, len, &usage);
    snprintf(rel, sizeof(rel), "gemini/%s.expected_openai.json", name);
    want = mn_t_fixture_json(rel);
    assert_json_eq(got, want);
    assert_int_equal(usage.have, 1);
    assert_int_equal(usage.prompt_tokens, prompt);
    assert_int_equal(usage.completion_tokens, completion);
    assert_int_equal(usage.total_tokens, total);
    json_decref(got);
    json_decref(want);
    free(body);
}

static void test_response_fixtures(void **state)
{
    check_response_fixture(state, "response_text", 8, 504, 512);
    check_response_fixture(state, "response_tool_call", 96, 205, 301);
    check_response_fixture(state, "response_prompt_blocked", 14, 0, 14);
}

static void test_response_finish_reasons(void **state)
{
    static const struct { const char *gemini; const char *openai; } cases[] = {
        { "STOP", "stop" }, { "MAX_TOKENS", "length" }, { "SAFETY", "content_filter" },
        { "RECITATION", "content_filter" }, { "BLOCKLIST", "content_filter" },
        { "PROHIBITED_CONTENT", "content_filter" }, { "SPII", "content_filter" },
        { "IMAGE_SAFETY", "content_filter" }, { "LANGUAGE", "content_filter" },
        { "OTHER", "stop" }, { "MALFORMED_FUNCTION_CALL", "stop" },
        { "FINISH_REASON_UNSPECIFIED", "stop" }, { "TOO_MANY_TOOL_CALLS", "stop" },
    };
    size_t i;
    char body[512];
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mn_usage usage;
        json_t *got, *fr;
        snprintf(body, sizeof(body), "{'candidates':[{'content':{'role':'model','parts':"
                 "[{'text':'t'}]},'finishReason':'%s'}],'responseId':'r','modelVersion':'m'}",
                 cases[i].gemini);
        got = decode_q(state, body, &usage);
        fr = json_object_get(json_array_get(json_object_get(got, "choices"), 0), "finish_reason");
        assert_string_equal(json_string_value(fr), cases[i].openai);
        json_decref(got);
    }
}

static void test_response_parts_ids_usage(void **state)
{
    mn_usage usage;
    json_t *got = decode_q(state,
        "{'candidates':[{'content':{'role':'model','parts':["
        "  {'text':'thinking...','thought':true},"
        "  {'text':'Hello '},{'text':'world'},"
        "  {'functionCall':{'id':'fc-own','name':'f','args':{'b':1,'a':'\\u2014'}}},"
        "  {'functionCall':{'name':'g'}}]},'finishReason':'STOP'}],"
        "'usageMetadata':{'promptTokenCount':10,'toolUsePromptTokenCount':5,"
        "  'cachedContentTokenCount':4,'candidatesTokenCount':7,'totalTokenCount':22},"
        "'modelVersion':'gemini-x','responseId':'RID'}", &usage);
    assert_jq(got,
        "{'id':'RID','object':'chat.completion','created':1767225600,'model':'gemini-x',"
        "'choices':[{'index':0,'message':{'role':'assistant','content':'Hello world','refusal':null,"
        "  'tool_calls':[{'id':'fc-own','type':'function','function':{'name':'f',"
        "     'arguments':'{\\'b\\':1,\\'a\\':\\'\\u2014\\'}'}},"
        "   {'id':'call_RID_1','type':'function','function':{'name':'g','arguments':'{}'}}]},"
        "  'logprobs':null,'finish_reason':'tool_calls'}],"
        "'usage':{'prompt_tokens':15,'completion_tokens':7,'total_tokens':22,"
        "  'prompt_tokens_details':{'cached_tokens':4}}}");
    assert_int_equal(usage.prompt_tokens, 15);
    assert_int_equal(usage.completion_tokens, 7);
    assert_int_equal(usage.total_tokens, 22);
    json_decref(got);

    /* MAX_TOKENS with a call stays length; no usageMetadata counts zero */
    got = decode_q(state,
        "{'candidates':[{'content':{'parts':[{'functionCall':{'name':'g','args':{}}}]},"
        "'finishReason':'MAX_TOKENS'}],'responseId':'R2','modelVersion':'m'}", &usage);
    assert_string_equal(json_string_value(json_object_get(json_array_get(
        json_object_get(got, "choices"), 0), "finish_reason")), "length");
    assert_jq(json_object_get(got, "usage"),
              "{'prompt_tokens':0,'completion_tokens':0,'total_tokens':0,"
              "'prompt_tokens_details':{'cached_tokens':0}}");
    assert_int_equal(usage.have, 0);
    json_decref(got);
}

static void test_response_blocked_prompt(void **state)
{
    mn_usage usage;
    json_t *got = decode_q(state,
        "{'promptFeedback':{'blockReason':'SAFETY'},'responseId':'B','modelVersion':'m',"
        "'usageMetadata':{'promptTokenCount':3,'totalTokenCount':3}}", &usage);
    assert_jq(got,
        "{'id':'B','object':'chat.completion','created':1767225600,'model':'m',"
        "'choices':[{'index':0,'message':{'role':'assistant','content':null,'refusal':null},"
        "'logprobs':null,'finish_reason':'content_filter'}],"
        "'usage':{'prompt_tokens':3,'completion_tokens':0,'total_tokens':3,"
        "'prompt_tokens_details':{'cached_tokens':0}}}");
    json_decref(got);
}

static void test_response_not_gemini(void **state)
{
    static const char *bodies[] = {
        "<html>oops</html>", "{\"choices\":[]}", "[1,2]", "",
    };
    size_t i;
    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        mn_wire_ctx ctx;
        mn_provider prov;
        mn_error err;
        mn_usage usage;
        json_t *out = NULL;
        ctx_for(&ctx, &prov, state, 0, 0);
        mn_error_clear(&err);
        memset(&usage, 0, sizeof(usage));
        assert_int_equal(mn_wire_gemini.decode_response(&ctx, bodies[i], strlen(bodies[i]),
                                                        &out, &usage, &err), -1);
        assert_null(out);
        assert_int_equal(err.status, 502);
        assert_string_equal(err.code, "upstream_bad_response");
    }
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

static void check_error_fixture(void **state, const char *name, int status,
                                const char *retry_after)
{
    char rel[256];
    size_t len;
    char *body;
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_error err;
    json_t *got, *want;

    ctx_for(&ctx, &prov, state, 0, 0);
    snprintf(rel, sizeof(rel), "gemini/%s.json", name);
    body = mn_t_fixture(rel, &len);
    mn_error_clear(&err);
    mn_wire_gemini.decode_error(&ctx, status, body, len, NULL, &err);
    snprintf(rel, sizeof(rel), "gemini/%s.expected_openai.json", name);
    want = mn_t_fixture_json(rel);
    got = mn_error_to_json(&err, NULL);
    assert_json_eq(got, want);
    assert_int_equal(err.status, status);
    assert_string_equal(err.retry_after, retry_after);
    json_decref(got);
    json_decref(want);

    /* a Retry-After header from upstream wins over RetryInfo */
    mn_error_clear(&err);
    mn_wire_gemini.decode_error(&ctx, status, body, len, "7", &err);
    assert_string_equal(err.retry_after, "7");
    free(body);
}

static void test_error_fixtures(void **state)
{
    check_error_fixture(state, "error_400_api_key_invalid", 400, "");
    check_error_fixture(state, "error_404_model_not_found", 404, "");
    check_error_fixture(state, "error_429_resource_exhausted", 429, "41");
    check_error_fixture(state, "error_500_internal", 500, "");
    check_error_fixture(state, "error_503_unavailable", 503, "");
}

static void decode_error_q(void **state, int status, const char *body_q, mn_error *err)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    json_t *j = jq(body_q);
    char *s = json_dumps(j, 0);
    ctx_for(&ctx, &prov, state, 0, 0);
    mn_error_clear(err);
    mn_wire_gemini.decode_error(&ctx, status, s, strlen(s), NULL, err);
    free(s);
    json_decref(j);
}

static void test_error_mapping(void **state)
{
    static const struct { int http; const char *status; const char *type; } cases[] = {
        { 400, "INVALID_ARGUMENT", "invalid_request_error" },
        { 400, "FAILED_PRECONDITION", "invalid_request_error" },
        { 400, "OUT_OF_RANGE", "invalid_request_error" },
        { 401, "UNAUTHENTICATED", "authentication_error" },
        { 403, "PERMISSION_DENIED", "permission_error" },
        { 404, "NOT_FOUND", "not_found_error" },
        { 429, "RESOURCE_EXHAUSTED", "rate_limit_error" },
        { 500, "INTERNAL", "server_error" },
        { 503, "UNAVAILABLE", "server_error" },
        { 504, "DEADLINE_EXCEEDED", "server_error" },
        { 500, "UNKNOWN", "server_error" },
    };
    size_t i;
    char body[256];
    mn_error err;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "{'error':{'code':%d,'message':'m%zu','status':'%s'}}",
                 cases[i].http, i, cases[i].status);
        decode_error_q(state, cases[i].http, body, &err);
        assert_int_equal(err.status, cases[i].http);
        assert_string_equal(err.type, cases[i].type);
        assert_string_equal(err.code, cases[i].status);
        assert_string_equal(err.param, "");
    }
}

static void test_error_retry_delay(void **state)
{
    static const struct { const char *delay; const char *want; } cases[] = {
        { "41s", "41" }, { "1.5s", "2" }, { "0.2s", "1" }, { "3.000s", "3" }, { "0s", "0" },
        { "12", "" }, { "abc", "" }, { "1.s", "" },
    };
    size_t i;
    char body[512];
    mn_error err;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "{'error':{'code':429,'message':'slow','status':"
                 "'RESOURCE_EXHAUSTED','details':[{'@type':"
                 "'type.googleapis.com/google.rpc.RetryInfo','retryDelay':'%s'}]}}",
                 cases[i].delay);
        decode_error_q(state, 429, body, &err);
        assert_string_equal(err.retry_after, cases[i].want);
    }
}

static void test_error_not_gemini(void **state)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_error err;
    const char *html = "<html><body>502 Bad Gateway</body></html>";

    ctx_for(&ctx, &prov, state, 0, 0);
    mn_error_clear(&err);
    mn_wire_gemini.decode_error(&ctx, 502, html, strlen(html), NULL, &err);
    assert_int_equal(err.status, 502);
    assert_string_equal(err.type, "upstream_error");
    assert_true(strstr(err.message, "502") != NULL);

    /* the key is never echoed to a client */
    decode_error_q(state, 400, "{'error':{'code':400,'message':'bad key sk-test-key here',"
                               "'status':'INVALID_ARGUMENT'}}", &err);
    assert_string_equal(err.message, "bad key *** here");

    /* any of the round-robin keys */
    {
        static const char *const keys[] = { "sk-test-key", "sk-second-key" };
        json_t *j = jq("{'error':{'code':400,'message':'bad key sk-second-key',"
                       "'status':'INVALID_ARGUMENT'}}");
        char *s = json_dumps(j, 0);
        ctx_for(&ctx, &prov, state, 0, 0);
        prov.keys = keys;
        prov.nkeys = 2;
        mn_error_clear(&err);
        mn_wire_gemini.decode_error(&ctx, 400, s, strlen(s), NULL, &err);
        assert_string_equal(err.message, "bad key ***");
        free(s);
        json_decref(j);
    }
}

/* ------------------------------------------------------------------------ */
/* Streaming                                                                 */

static void replay_all_splits(void **state, const char *in, size_t in_len, const char *want,
                              size_t want_len, int include_usage, mn_stream_status want_status)
{
    size_t quick[6];
    size_t nsplits, k;
    int quickmode = mn_t_quick();

    quick[0] = 0;
    quick[1] = 1;
    quick[2] = in_len / 3;
    quick[3] = in_len / 2;
    quick[4] = in_len - 1;
    quick[5] = (size_t)-1;
    nsplits = quickmode ? 6 : in_len + 1;
    for (k = 0; k < nsplits; k++) {
        size_t split = quickmode ? quick[k] : (k == in_len ? (size_t)-1 : k);
        mn_wire_ctx ctx;
        mn_provider prov;
        mn_buf out;
        mn_stream_status st;

        ctx_for(&ctx, &prov, state, 1, include_usage);
        mn_buf_init(&out);
        st = mn_t_replay_stream(&mn_wire_gemini, &ctx, in, in_len, split, &out);
        if (st != want_status) {
            fail_msg("split %zu: status %d, want %d\n%.*s", split, st, want_status,
                     (int)out.len, out.data);
        }
        mn_t_assert_frames(out.data, out.len, want, want_len, PROVIDER, 0);
        mn_buf_free(&out);
    }
}

static void check_stream_fixture(void **state, const char *name, mn_stream_status want_status)
{
    char rel[256];
    size_t in_len, want_len, bare_len;
    char *in, *want, *bare;

    snprintf(rel, sizeof(rel), "gemini/%s.sse", name);
    in = mn_t_fixture(rel, &in_len);
    snprintf(rel, sizeof(rel), "gemini/%s.expected_openai.sse", name);
    want = mn_t_fixture(rel, &want_len);
    bare = mn_t_without_usage(want, want_len, &bare_len);

    replay_all_splits(state, in, in_len, want, want_len, 1, want_status);
    replay_all_splits(state, in, in_len, bare, bare_len, 0, want_status);
    free(bare);
    free(want);
    free(in);
}

static void test_stream_text_fixture(void **state)
{
    check_stream_fixture(state, "stream_text", MN_STREAM_DONE);
}

static void test_stream_tool_call_fixture(void **state)
{
    check_stream_fixture(state, "stream_tool_call", MN_STREAM_DONE);
}

static void test_stream_error_midstream_fixture(void **state)
{
    check_stream_fixture(state, "stream_error_midstream", MN_STREAM_FAILED);
}

typedef struct run_result {
    mn_buf out;
    mn_stream_status status;
    mn_usage usage;
    mn_error err;
    int have_err;
} run_result;

static int run_cb(void *baton, mn_sse_kind kind, const char *event, const char *data,
                  size_t len)
{
    void **r = baton;
    mn_stream *st = r[0];
    run_result *res = r[1];
    mn_sink *sink = r[2];
    if (res->status == MN_STREAM_MORE) {
        res->status = mn_wire_gemini.stream_feed(st, kind, event, data, len, sink);
    }
    return 0;
}

/* Replays text (' stands for ") whole and ends the stream with cause. */
static void run_stream(void **state, const char *text_q, int include_usage,
                       const mn_error *cause, run_result *res)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_sse_parser p;
    mn_sink sink;
    mn_stream *st;
    void *baton[3];
    char *text = strdup(text_q);
    char *c;
    const mn_error *e;

    for (c = text; *c; c++) {
        if (*c == '\'') {
            *c = '"';
        }
    }
    ctx_for(&ctx, &prov, state, 1, include_usage);
    memset(res, 0, sizeof(*res));
    mn_buf_init(&res->out);
    sink = mn_buf_sink(&res->out);
    st = mn_wire_gemini.stream_create(&ctx);
    assert_non_null(st);
    baton[0] = st;
    baton[1] = res;
    baton[2] = &sink;
    res->status = MN_STREAM_MORE;
    mn_sse_init(&p, 1 << 20, run_cb, baton);
    mn_sse_feed(&p, text, strlen(text));
    mn_sse_finish(&p);
    mn_sse_free(&p);
    if (res->status == MN_STREAM_MORE) {
        res->status = mn_wire_gemini.stream_end(st, cause, &sink);
    }
    /* a finished stream writes nothing more */
    {
        size_t before = res->out.len;
        assert_int_equal(mn_wire_gemini.stream_end(st, NULL, &sink), res->status);
        assert_int_equal(res->out.len, before);
    }
    res->usage = *mn_wire_gemini.stream_usage(st);
    e = mn_wire_gemini.stream_error(st);
    if (e) {
        res->err = *e;
        res->have_err = 1;
    }
    mn_wire_gemini.stream_destroy(st);
    free(text);
}

static void assert_stream(run_result *res, const char *want_q)
{
    char *want = strdup(want_q);
    char *c;
    for (c = want; *c; c++) {
        if (*c == '\'') {
            *c = '"';
        }
    }
    mn_t_assert_frames(res->out.data, res->out.len, want, strlen(want), PROVIDER, 0);
    free(want);
    mn_buf_free(&res->out);
}

#define HEAD "'id':'R','object':'chat.completion.chunk','created':1767225600,'model':'m'"
#define ROLE "data: {" HEAD ",'choices':[{'index':0,'delta':{'role':'assistant','content':''}," \
             "'logprobs':null,'finish_reason':null}]}\n\n"
#define DELTA(d) "data: {" HEAD ",'choices':[{'index':0,'delta':" d ",'logprobs':null," \
                 "'finish_reason':null}]}\n\n"
#define FINISH(f) "data: {" HEAD ",'choices':[{'index':0,'delta':{},'logprobs':null," \
                  "'finish_reason':'" f "'}]}\n\n"
#define DONE "data: [DONE]\n\n"
#define EV(j) "data: " j "\r\n\r\n"

static void test_stream_tool_index_and_ids(void **state)
{
    run_result res;
    run_stream(state,
        EV("{'candidates':[{'content':{'role':'model','parts':["
           "{'functionCall':{'name':'a','args':{'x':1}}},"
           "{'functionCall':{'id':'own-id','name':'b'}}]}}],'responseId':'R','modelVersion':'m'}")
        EV("{'candidates':[{'content':{'role':'model','parts':[{'text':''},"
           "{'functionCall':{'name':'c','args':{}}}]},'finishReason':'STOP'}],"
           "'responseId':'R','modelVersion':'m'}"),
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_false(res.have_err);
    assert_stream(&res,
        ROLE
        DELTA("{'tool_calls':[{'index':0,'id':'call_R_0','type':'function',"
              "'function':{'name':'a','arguments':'{\\'x\\':1}'}}]}")
        DELTA("{'tool_calls':[{'index':1,'id':'own-id','type':'function',"
              "'function':{'name':'b','arguments':'{}'}}]}")
        DELTA("{'tool_calls':[{'index':2,'id':'call_R_2','type':'function',"
              "'function':{'name':'c','arguments':'{}'}}]}")
        FINISH("tool_calls")
        DONE);
}

static void test_stream_thoughts_and_finish_map(void **state)
{
    run_result res;
    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'hmm','thought':true},{'text':'A'}]}}],"
           "'responseId':'R','modelVersion':'m'}")
        EV("{'candidates':[{'content':{'parts':[{'text':'B'}]},'finishReason':'MAX_TOKENS'}],"
           "'responseId':'R','modelVersion':'m'}")
        EV("{'candidates':[{'content':{'parts':[{'text':'late'}]}}],'responseId':'R',"
           "'modelVersion':'m','usageMetadata':{'promptTokenCount':2,'candidatesTokenCount':3,"
           "'thoughtsTokenCount':4,'cachedContentTokenCount':1,'totalTokenCount':9}}"),
        1, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    /* with include_usage every chunk carries usage:null */
    assert_stream(&res,
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'role':'assistant','content':''},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'content':'A'},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'content':'B'},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'content':'late'},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[{'index':0,'delta':{},"
        "'logprobs':null,'finish_reason':'length'}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[],'usage':{'prompt_tokens':2,'completion_tokens':7,"
        "'total_tokens':9,'prompt_tokens_details':{'cached_tokens':1},"
        "'completion_tokens_details':{'reasoning_tokens':4}}}\n\n"
        DONE);
    /* the last usageMetadata wins, even after the finish */
    assert_int_equal(res.usage.have, 1);
    assert_int_equal(res.usage.prompt_tokens, 2);
    assert_int_equal(res.usage.completion_tokens, 7);
    assert_int_equal(res.usage.total_tokens, 9);

    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]},'finishReason':'SAFETY'}],"
           "'responseId':'R','modelVersion':'m'}"), 0, NULL, &res);
    assert_stream(&res, ROLE DELTA("{'content':'A'}") FINISH("content_filter") DONE);
}

static void test_stream_reasoning_content_provider(void **state)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_buf out;
    const char *in = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hmm\","
                     "\"thought\":true},{\"text\":\"A\"}]},\"finishReason\":\"STOP\"}],"
                     "\"responseId\":\"R\",\"modelVersion\":\"m\"}\r\n\r\n";
    char *want = strdup(ROLE DELTA("{'reasoning_content':'hmm'}") DELTA("{'content':'A'}")
                        FINISH("stop") DONE);
    char *c;
    for (c = want; *c; c++) {
        if (*c == '\'') {
            *c = '"';
        }
    }
    ctx_for(&ctx, &prov, state, 1, 0);
    prov.reasoning_content = 1;
    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream(&mn_wire_gemini, &ctx, in, strlen(in), 0, &out),
                     MN_STREAM_DONE);
    mn_t_assert_frames(out.data, out.len, want, strlen(want), PROVIDER, 0);
    mn_buf_free(&out);
    free(want);
}

static void test_stream_blocked_prompt(void **state)
{
    run_result res;
    run_stream(state,
        EV("{'promptFeedback':{'blockReason':'PROHIBITED_CONTENT'},'usageMetadata':"
           "{'promptTokenCount':14,'totalTokenCount':14},'responseId':'R','modelVersion':'m'}"),
        1, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_stream(&res,
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'role':'assistant','content':''},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[{'index':0,'delta':{},"
        "'logprobs':null,'finish_reason':'content_filter'}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[],'usage':{'prompt_tokens':14,'completion_tokens':0,"
        "'total_tokens':14,'prompt_tokens_details':{'cached_tokens':0}}}\n\n"
        DONE);
}

static void test_stream_error_frames(void **state)
{
    run_result res;
    mn_error cause;

    /* an error object in a data: frame, type from status */
    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]}}],'responseId':'R','modelVersion':'m'}")
        EV("{'error':{'code':429,'message':'quota','status':'RESOURCE_EXHAUSTED'}}"),
        1, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_true(res.have_err);
    assert_int_equal(res.err.status, 429);
    assert_stream(&res,
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'role':'assistant','content':''},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'content':'A'},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {'error':{'message':'quota','type':'rate_limit_error','param':null,"
        "'code':'RESOURCE_EXHAUSTED'}}\n\n"
        DONE);

    /* EOF without a finish reason */
    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]}}],'responseId':'R','modelVersion':'m'}"),
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_string_equal(res.err.code, "upstream_eof");
    assert_int_equal(res.err.status, 502);
    assert_stream(&res, ROLE DELTA("{'content':'A'}")
        "data: {'error':{'message':'upstream closed the stream before a finish reason',"
        "'type':'upstream_error','param':null,'code':'upstream_eof'}}\n\n" DONE);

    /* a cause given to stream_end wins, even after a finishReason (the
     * finish chunk is only sent at a clean end) */
    mn_error_set(&cause, 504, "timeout_error", NULL, "upstream_timeout", "upstream went quiet");
    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]},'finishReason':'STOP'}],"
           "'responseId':'R','modelVersion':'m'}"),
        1, &cause, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_int_equal(res.err.status, 504);
    assert_stream(&res,
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'role':'assistant','content':''},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'content':'A'},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {'error':{'message':'upstream went quiet','type':'timeout_error','param':null,"
        "'code':'upstream_timeout'}}\n\n" DONE);

    /* a frame that is not JSON */
    run_stream(state, "data: {oops\r\n\r\n", 0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_string_equal(res.err.code, "upstream_bad_response");
    assert_stream(&res,
        "data: {'error':{'message':'upstream sent a stream event that is not a JSON object',"
        "'type':'upstream_error','param':null,'code':'upstream_bad_response'}}\n\n" DONE);
}

static void test_stream_raw_lines(void **state)
{
    run_result res;

    /* stray raw text and a non-error raw object are ignored; braces inside
     * strings do not end the object early; a compact raw error is found */
    run_stream(state,
        "garbage line\r\n"
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]}}],'responseId':'R','modelVersion':'m'}")
        "{\n  'note': 'not an error }'\n}\n"
        "[{'error': {'code': 500, 'message': 'x { y', 'status': 'INTERNAL'}}]\n",
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_int_equal(res.err.status, 500);
    assert_stream(&res, ROLE DELTA("{'content':'A'}")
        "data: {'error':{'message':'x { y','type':'server_error','param':null,"
        "'code':'INTERNAL'}}\n\n" DONE);

    /* an unterminated raw object is still tried at EOF */
    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]}}],'responseId':'R','modelVersion':'m'}")
        "{\n  'error': {'code': 503, 'message': 'busy', 'status': 'UNAVAILABLE'}\n",
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_string_equal(res.err.code, "upstream_eof");
    mn_buf_free(&res.out);
}

static void test_stream_raw_overflow(void **state)
{
    run_result res;
    mn_buf in;
    size_t i;
    const char *line = "  'k': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',\n";

    mn_buf_init(&in);
    mn_buf_append(&in, "{\n", 2);
    for (i = 0; i < 2000; i++) {
        mn_buf_append(&in, line, strlen(line));
    }
    run_stream(state, in.data, 0, NULL, &res);
    mn_buf_free(&in);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_string_equal(res.err.code, "upstream_bad_response");
    assert_int_equal(res.err.status, 502);
    mn_buf_free(&res.out);
}

/* Every JSON frame of out carries the same made-up id (chatcmpl- and 24 hex
 * digits); it is replaced by "" in out, for comparing the rest.  Returns
 * the id (static). */
static const char *take_made_id(mn_buf *out)
{
    static char id[64];
    json_t *frames = mn_t_data_frames(out->data, out->len);
    json_t *fr;
    size_t i, n = 0;
    mn_buf copy;
    char *at;

    id[0] = '\0';
    json_array_foreach(frames, i, fr) {
        json_t *j = json_loads(json_string_value(fr), 0, NULL);
        const char *v = json_string_value(json_object_get(j, "id"));
        if (v) {
            if (!id[0]) {
                assert_int_equal(strlen(v), 33);
                assert_memory_equal(v, "chatcmpl-", 9);
                assert_int_equal(strspn(v + 9, "0123456789abcdef"), 24);
                snprintf(id, sizeof(id), "%s", v);
            }
            assert_string_equal(v, id);
            n++;
        }
        json_decref(j);
    }
    json_decref(frames);
    assert_true(n > 0);
    mn_buf_init(&copy);
    mn_buf_append(&copy, out->data, out->len);
    mn_buf_append(&copy, "", 1);
    mn_buf_reset(out);
    for (at = copy.data; *at;) {
        char *hit = strstr(at, id);
        size_t len = hit ? (size_t)(hit - at) : strlen(at);
        mn_buf_append(out, at, len);
        at += len + (hit ? strlen(id) : 0);
    }
    mn_buf_free(&copy);
    return id;
}

static void test_stream_role_chunk_without_ids(void **state)
{
    run_result res;
    char first[64];
    /* an event without responseId/modelVersion: the request's model stands
     * in, and an id of ours, the same on every chunk */
    run_stream(state, EV("{'candidates':[{'content':{'parts':[{'text':'A'}]},'finishReason':'STOP'}]}"),
               0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    snprintf(first, sizeof(first), "%s", take_made_id(&res.out));
    assert_stream(&res,
        "data: {'id':'','object':'chat.completion.chunk','created':1767225600,'model':'" MODEL "',"
        "'choices':[{'index':0,'delta':{'role':'assistant','content':''},'logprobs':null,"
        "'finish_reason':null}]}\n\n"
        "data: {'id':'','object':'chat.completion.chunk','created':1767225600,'model':'" MODEL "',"
        "'choices':[{'index':0,'delta':{'content':'A'},'logprobs':null,"
        "'finish_reason':null}]}\n\n"
        "data: {'id':'','object':'chat.completion.chunk','created':1767225600,'model':'" MODEL "',"
        "'choices':[{'index':0,'delta':{},'logprobs':null,'finish_reason':'stop'}]}\n\n"
        DONE);

    /* a blocked prompt (no responseId, no candidates), with the usage
     * chunk; a later responseId does not change the id mid-stream; every
     * stream gets its own */
    run_stream(state,
        EV("{'promptFeedback':{'blockReason':'SAFETY'},'usageMetadata':{'promptTokenCount':3}}")
        EV("{'usageMetadata':{'promptTokenCount':3},'responseId':'LATE'}"),
        1, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_string_not_equal(take_made_id(&res.out), first);
    assert_stream(&res,
        "data: {'id':'','object':'chat.completion.chunk','created':1767225600,'model':'" MODEL "',"
        "'choices':[{'index':0,'delta':{'role':'assistant','content':''},'logprobs':null,"
        "'finish_reason':null}],'usage':null}\n\n"
        "data: {'id':'','object':'chat.completion.chunk','created':1767225600,'model':'" MODEL "',"
        "'choices':[{'index':0,'delta':{},'logprobs':null,'finish_reason':'content_filter'}],"
        "'usage':null}\n\n"
        "data: {'id':'','object':'chat.completion.chunk','created':1767225600,'model':'" MODEL "',"
        "'choices':[],'usage':{'prompt_tokens':3,'completion_tokens':0,'total_tokens':3,"
        "'prompt_tokens_details':{'cached_tokens':0}}}\n\n"
        DONE);
}

/* Replayed from what Gemini and Vertex have been recorded sending: text
 * after the finishReason, then an error.  Every text reaches the client. */
static void test_stream_text_after_finish(void **state)
{
    run_result res;

    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]},'finishReason':'STOP'}],"
           "'responseId':'R','modelVersion':'m'}")
        EV("{'candidates':[{'content':{'parts':[{'text':'B'}]}}],'responseId':'R','modelVersion':'m'}")
        EV("{'error':{'code':500,'message':'boom','status':'INTERNAL'}}"),
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_int_equal(res.err.status, 500);
    assert_stream(&res, ROLE DELTA("{'content':'A'}") DELTA("{'content':'B'}")
        "data: {'error':{'message':'boom','type':'server_error','param':null,"
        "'code':'INTERNAL'}}\n\n" DONE);

    /* the same with the error as raw JSON after the events (Vertex) */
    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]},'finishReason':'STOP'}],"
           "'responseId':'R','modelVersion':'m'}")
        EV("{'candidates':[{'content':{'parts':[{'text':'B'}]}}],'responseId':'R','modelVersion':'m'}")
        "[{\n  'error': {'code': 503, 'message': 'busy', 'status': 'UNAVAILABLE'}\n}]\n",
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_stream(&res, ROLE DELTA("{'content':'A'}") DELTA("{'content':'B'}")
        "data: {'error':{'message':'busy','type':'server_error','param':null,"
        "'code':'UNAVAILABLE'}}\n\n" DONE);

    /* more text after STOP and a clean end: the text, one finish (the last
     * finishReason's) */
    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]},'finishReason':'STOP'}],"
           "'responseId':'R','modelVersion':'m'}")
        EV("{'candidates':[{'content':{'parts':[{'text':'B'}]}}],'responseId':'R','modelVersion':'m'}")
        EV("{'candidates':[{'content':{'parts':[{'text':'C'}]},'finishReason':'MAX_TOKENS'}],"
           "'responseId':'R','modelVersion':'m'}"),
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_stream(&res, ROLE DELTA("{'content':'A'}") DELTA("{'content':'B'}")
        DELTA("{'content':'C'}") FINISH("length") DONE);
}

#define FC_EV(fc) EV("{'candidates':[{'content':{'role':'model','parts':[{'functionCall':" fc \
                     "}]}}],'responseId':'R','modelVersion':'m'}")
#define FC_START(i, name) DELTA("{'tool_calls':[{'index':" #i ",'id':'call_R_" #i "'," \
                                "'type':'function','function':{'name':'" name "','arguments':''}}]}")
#define FC_ARGS(i, a) DELTA("{'tool_calls':[{'index':" #i ",'function':{'arguments':'" a "'}}]}")
#define STOP_EV EV("{'candidates':[{'content':{'parts':[]},'finishReason':'STOP'}],'responseId':'R'," \
                   "'modelVersion':'m'}")

/* Vertex streamFunctionCallArguments: a named part opens the call, nameless
 * parts carry partialArgs (jsonPath + value; a string continues while
 * willContinue), the part without willContinue ends it. */
static void test_stream_partial_args(void **state)
{
    run_result res;

    run_stream(state,
        FC_EV("{'name':'get_weather','willContinue':true}")
        FC_EV("{'partialArgs':[{'jsonPath':'$.location','stringValue':'Bos','willContinue':true}],"
              "'willContinue':true}")
        FC_EV("{'partialArgs':[{'jsonPath':'$.location','stringValue':'ton'}],'willContinue':true}")
        FC_EV("{'partialArgs':[{'jsonPath':'$.days','numberValue':3},"
              "{'jsonPath':'$.opts.units[0]','stringValue':'C'},"
              "{'jsonPath':'$.opts.units[1]','stringValue':'F'},"
              "{'jsonPath':'$[\\u0027opts\\u0027][\\u0027metric\\u0027]','boolValue':true},"
              "{'jsonPath':'$.note','nullValue':'NULL_VALUE'}],'willContinue':true}")
        FC_EV("{}")
        /* a nameless part with no call open is no call */
        FC_EV("{'partialArgs':[{'jsonPath':'$.x','stringValue':'y'}]}")
        FC_EV("{'args':{'k':1}}")
        STOP_EV,
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_stream(&res, ROLE FC_START(0, "get_weather")
        FC_ARGS(0, "{\\'location\\':\\'Boston\\',\\'days\\':3,\\'opts\\':{\\'units\\':"
                   "[\\'C\\',\\'F\\'],\\'metric\\':true},\\'note\\':null}")
        FINISH("tool_calls") DONE);

    /* a second named call closes the first; a call may start with args;
     * the finish closes the last one */
    run_stream(state,
        FC_EV("{'name':'a','args':{'p':1},'willContinue':true}")
        FC_EV("{'partialArgs':[{'jsonPath':'$.q','stringValue':'x'}],'willContinue':true}")
        FC_EV("{'name':'b','partialArgs':[{'jsonPath':'$.r','boolValue':false}],'willContinue':true}")
        STOP_EV,
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_stream(&res, ROLE FC_START(0, "a")
        FC_ARGS(0, "{\\'p\\':1,\\'q\\':\\'x\\'}")
        FC_START(1, "b")
        FC_ARGS(1, "{\\'r\\':false}")
        FINISH("tool_calls") DONE);

    /* a path that does not fit what is there fails the stream */
    run_stream(state,
        FC_EV("{'name':'a','willContinue':true}")
        FC_EV("{'partialArgs':[{'jsonPath':'$.v','numberValue':1},"
              "{'jsonPath':'$.v.w','numberValue':2}],'willContinue':true}")
        STOP_EV,
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_string_equal(res.err.code, "upstream_bad_response");
    assert_int_equal(res.err.status, 502);
    assert_stream(&res, ROLE FC_START(0, "a")
        "data: {'error':{'message':'upstream streamed function-call arguments with a JSON path "
        "that does not fit the arguments','type':'upstream_error','param':null,"
        "'code':'upstream_bad_response'}}\n\n" DONE);
}

static void test_stream_partial_args_bounded(void **state)
{
    run_result res;
    mn_buf in;
    size_t i;
    char *chunk = malloc(70000);

    /* 100 fragments of 64 KB, appended to one string: over the 4 MiB bound */
    memset(chunk, 'x', 65536);
    chunk[65536] = '\0';
    mn_buf_init(&in);
    buf_puts(&in, FC_EV("{'name':'a','willContinue':true}"));
    for (i = 0; i < 100; i++) {
        buf_puts(&in, "data: {'candidates':[{'content':{'parts':[{'functionCall':{'partialArgs':"
                      "[{'jsonPath':'$.s','willContinue':true,'stringValue':'");
        buf_puts(&in, chunk);
        buf_puts(&in, "'}],'willContinue':true}}]}}]}\r\n\r\n");
    }
    mn_buf_append(&in, "", 1);
    run_stream(state, in.data, 0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_string_equal(res.err.code, "upstream_bad_response");
    assert_string_equal(res.err.message,
                        "upstream streamed function-call arguments over the size limit");
    mn_buf_free(&res.out);

    /* the same through whole args objects, each under a new key */
    mn_buf_reset(&in);
    buf_puts(&in, FC_EV("{'name':'a','willContinue':true}"));
    for (i = 0; i < 100; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%zu", i);
        buf_puts(&in, "data: {'candidates':[{'content':{'parts':[{'functionCall':{'args':{'");
        buf_puts(&in, key);
        buf_puts(&in, "':'");
        buf_puts(&in, chunk);
        buf_puts(&in, "'},'willContinue':true}}]}}]}\r\n\r\n");
    }
    mn_buf_append(&in, "", 1);
    run_stream(state, in.data, 0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_string_equal(res.err.message,
                        "upstream streamed function-call arguments over the size limit");
    mn_buf_free(&res.out);
    mn_buf_free(&in);
    free(chunk);
}

/* Found by fuzzing: a nameless functionCall leaked (and became a call named
 * ""); it is no call at all, in answers and in streams. */
static void test_nameless_function_call(void **state)
{
    mn_usage usage;
    run_result res;
    json_t *got = decode_q(state,
        "{'candidates':[{'content':{'parts':[{'functionCall':{'args':{'a':1}}},"
        "{'functionCall':{'name':''}},{'functionCall':{'name':7}},"
        "{'functionCall':{'name':'g'}}]},'finishReason':'STOP'}],'responseId':'R'}", &usage);
    assert_jq(json_object_get(json_array_get(json_object_get(got, "choices"), 0), "message"),
        "{'role':'assistant','content':null,'refusal':null,"
        " 'tool_calls':[{'id':'call_R_0','type':'function','function':{'name':'g',"
        "   'arguments':'{}'}}]}");
    json_decref(got);

    got = decode_q(state,
        "{'candidates':[{'content':{'parts':[{'text':'t'},{'functionCall':{}}]},"
        "'finishReason':'STOP'}],'responseId':'R'}", &usage);
    assert_jq(json_array_get(json_object_get(got, "choices"), 0),
        "{'index':0,'message':{'role':'assistant','content':'t','refusal':null},"
        "'logprobs':null,'finish_reason':'stop'}");
    json_decref(got);

    run_stream(state,
        FC_EV("{'args':{'a':1}}") FC_EV("{'name':''}") STOP_EV, 0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_stream(&res, ROLE FINISH("stop") DONE);
}

/* Found by fuzzing: token counts near the top of the range wrapped the
 * sums negative.  Negative counts read as 0, sums saturate. */
static void test_usage_saturates(void **state)
{
    mn_usage usage;
    run_result res;
    json_t *got = decode_q(state,
        "{'candidates':[{'content':{'parts':[{'text':'t'}]},'finishReason':'STOP'}],"
        "'responseId':'R','usageMetadata':{'promptTokenCount':9223372036854775807,"
        "'toolUsePromptTokenCount':9223372036854775807,'candidatesTokenCount':-5,"
        "'thoughtsTokenCount':9223372036854775000,'cachedContentTokenCount':-1}}", &usage);
    assert_jq(json_object_get(got, "usage"),
        "{'prompt_tokens':9223372036854775807,'completion_tokens':9223372036854775000,"
        "'total_tokens':9223372036854775807,'prompt_tokens_details':{'cached_tokens':0},"
        "'completion_tokens_details':{'reasoning_tokens':9223372036854775000}}");
    assert_true(usage.prompt_tokens == LONG_MAX);
    assert_true(usage.completion_tokens == 9223372036854775000L);
    assert_true(usage.total_tokens == LONG_MAX);
    json_decref(got);

    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]},'finishReason':'STOP'}],"
           "'responseId':'R','modelVersion':'m','usageMetadata':{'promptTokenCount':-7,"
           "'candidatesTokenCount':9223372036854775807,'thoughtsTokenCount':1,"
           "'totalTokenCount':-3}}"),
        1, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_true(res.usage.prompt_tokens == 0);
    assert_true(res.usage.completion_tokens == LONG_MAX);
    assert_true(res.usage.total_tokens == 0);
    mn_buf_free(&res.out);
}

/* Answers without responseId (blocked prompts, safety): an id of ours, also
 * in the tool-call ids built from it, different for every answer. */
static void test_response_without_response_id(void **state)
{
    mn_usage usage;
    json_t *a = decode_q(state,
        "{'promptFeedback':{'blockReason':'SAFETY'},'modelVersion':'m'}", &usage);
    json_t *b = decode_q(state,
        "{'candidates':[{'content':{'parts':[{'functionCall':{'name':'f'}}]},"
        "'finishReason':'STOP'}],'responseId':''}", &usage);
    const char *ia = json_string_value(json_object_get(a, "id"));
    const char *ib = json_string_value(json_object_get(b, "id"));
    char want[96];

    assert_non_null(ia);
    assert_int_equal(strlen(ia), 33);
    assert_memory_equal(ia, "chatcmpl-", 9);
    assert_int_equal(strspn(ia + 9, "0123456789abcdef"), 24);
    assert_non_null(ib);
    assert_string_not_equal(ia, ib);
    snprintf(want, sizeof(want), "call_%s_0", ib);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(
        json_object_get(json_array_get(json_object_get(b, "choices"), 0), "message"),
        "tool_calls"), 0), "id")), want);
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_text_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_tools_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_path_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_roles_and_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_tool_calls_and_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_unknown_tool_call_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_bad_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_generation_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_reasoning_effort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_reasoning_content_provider, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_json_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_schema_fanout_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_schema_expansion_factor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_schema_required_merge_linear, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_request_schema_worst_case, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_tools_and_choice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_dropped_and_passthrough, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_fixtures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_finish_reasons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_parts_ids_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_blocked_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_not_gemini, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_fixtures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_retry_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_not_gemini, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_text_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_tool_call_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_error_midstream_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_tool_index_and_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_thoughts_and_finish_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_reasoning_content_provider, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_blocked_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_error_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_raw_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_raw_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_role_chunk_without_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_text_after_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_partial_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_partial_args_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nameless_function_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_saturates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_without_response_id, setup, teardown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
