/* Unit tests for src/wire/gemini_request.c and gemini_schema.c: the gemini/
 * request fixtures against their expected partner, one small case per
 * mapping rule, and the schema cleaner's budget (fan-out, expansion factor,
 * worst case measured). */
#include <limits.h>
#include <malloc.h>
#include <time.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#include "gemini_test.h"

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
        "  {'functionCall':{'name':'f','args':{'a':[1,2]}},"
        "   'thoughtSignature':'skip_thought_signature_validator'},"
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
        cmocka_unit_test_setup_teardown(test_request_schema_required_merge_linear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_schema_worst_case, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_tools_and_choice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_dropped_and_passthrough, setup, teardown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
