#include "harness.h"
#include "mn_face_messages.h"

/* Unit tests for the Anthropic Messages face: request mapping, answers,
 * errors, the OpenAI-frames -> Anthropic-events translator and the
 * Anthropic passthrough wire, all with exact bytes.  Inline JSON is written
 * with ' for " (jq() swaps them back). */

static char *swapq(const char *s)
{
    char *c = strdup(s), *p;
    for (p = c; *p; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    return c;
}

static json_t *jq(const char *s)
{
    char *c = swapq(s);
    json_error_t jerr;
    json_t *j = json_loads(c, JSON_DECODE_ANY, &jerr);
    if (!j) {
        fail_msg("bad test JSON (%s): %s", jerr.text, c);
    }
    free(c);
    return j;
}

/* compact serialisation of got, member order included, equals want */
static void assert_dump(json_t *got, const char *want_sq)
{
    char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    char *w = swapq(want_sq);
    if (strcmp(g, w)) {
        fail_msg("JSON differs\n got: %s\nwant: %s", g, w);
    }
    free(g);
    free(w);
}

static void assert_bytes(const mn_buf *b, const char *want_sq)
{
    char *w = swapq(want_sq);
    char *g = strndup(b->data ? b->data : "", b->len);
    if (strcmp(g, w)) {
        fail_msg("bytes differ\n got: %s\nwant: %s", g, w);
    }
    free(g);
    free(w);
}

/* ------------------------------------------------------------------ request */

static void test_request_full(void **state)
{
    json_t *in = jq(
        "{'model':'claude-sonnet-4-5','max_tokens':1024,'stream':true,"
        "'system':[{'type':'text','text':'You are terse.','cache_control':{'type':'ephemeral'}},"
        "{'type':'text','text':'Use tools.'}],"
        "'messages':[{'role':'user','content':'What is the weather in Paris?'},"
        "{'role':'assistant','content':[{'type':'thinking','thinking':'hm','signature':'sig'},"
        "{'type':'text','text':'Let me look.'},"
        "{'type':'tool_use','id':'toolu_1','name':'get_weather','input':{'city':'Paris'}}]},"
        "{'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_1',"
        "'content':[{'type':'text','text':'18C'}]},{'type':'text','text':'And tomorrow?'},"
        "{'type':'image','source':{'type':'base64','media_type':'image/png','data':'iVBO'}}]}],"
        "'tools':[{'name':'get_weather','description':'Weather','input_schema':{'type':'object',"
        "'properties':{'city':{'type':'string'}}}},{'type':'web_search_20250305','name':'web_search'}],"
        "'tool_choice':{'type':'auto','disable_parallel_tool_use':true},"
        "'stop_sequences':['END'],'temperature':0.5,'top_p':0.25,'top_k':40,"
        "'thinking':{'type':'enabled','budget_tokens':2048},"
        "'metadata':{'user_id':'u-42'},'output_config':{'effort':'high'},'tags':['cc']}");
    json_t *out;
    mn_fm_info info;
    mn_error err;
    (void)state;

    mn_error_clear(&err);
    assert_int_equal(mn_fm_request(in, &out, &info, &err), 0);
    assert_int_equal(info.stream, 1);
    assert_string_equal(info.dropped, "top_k,output_config,tools.server_tools");
    assert_dump(out,
        "{'messages':[{'role':'system','content':'You are terse.\\n\\nUse tools.'},"
        "{'role':'user','content':'What is the weather in Paris?'},"
        "{'role':'assistant','content':'Let me look.','tool_calls':[{'id':'toolu_1',"
        "'type':'function','function':{'name':'get_weather','arguments':'{\\'city\\':\\'Paris\\'}'}}]},"
        "{'role':'tool','tool_call_id':'toolu_1','content':'18C'},"
        "{'role':'user','content':[{'type':'text','text':'And tomorrow?'},"
        "{'type':'image_url','image_url':{'url':'data:image/png;base64,iVBO'}}]}],"
        "'max_completion_tokens':1024,'stop':['END'],'user':'u-42','stream':true,"
        "'stream_options':{'include_usage':true},'model':'claude-sonnet-4-5',"
        "'temperature':0.5,'top_p':0.25,'tags':['cc'],"
        "'tools':[{'type':'function','function':{'name':'get_weather','description':'Weather',"
        "'parameters':{'type':'object','properties':{'city':{'type':'string'}}}}}],"
        "'tool_choice':'auto','parallel_tool_calls':false,'reasoning_effort':'medium'}");
    json_decref(out);
    json_decref(in);
}

static void test_request_tool_choice_and_errors(void **state)
{
    struct { const char *in; int rc; const char *param; const char *want; } cases[] = {
        { "{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'x'}],"
          "'tools':[{'name':'t','input_schema':{'type':'object'}}],"
          "'tool_choice':{'type':'tool','name':'t'}}", 0, NULL,
          "{'messages':[{'role':'user','content':'x'}],'max_completion_tokens':5,'model':'m',"
          "'tools':[{'type':'function','function':{'name':'t','parameters':{'type':'object'}}}],"
          "'tool_choice':{'type':'function','function':{'name':'t'}}}" },
        { "{'model':'m','max_tokens':5,'messages':[{'role':'user','content':[{'type':'tool_result',"
          "'tool_use_id':'a','is_error':true,'content':'boom'}]}],'tool_choice':{'type':'any'},"
          "'thinking':{'type':'disabled'}}", 0, NULL,
          "{'messages':[{'role':'tool','tool_call_id':'a','content':'Error: boom'}],"
          "'max_completion_tokens':5,'model':'m','tool_choice':'required'}" },
        { "{'model':'m','messages':[{'role':'user','content':'x'}]}", -1, "max_tokens", NULL },
        { "{'model':'m','max_tokens':1,'messages':[]}", -1, "messages", NULL },
        { "{'model':'m','max_tokens':1,'messages':[{'role':'tool','content':'x'}]}", -1,
          "messages[0].role", NULL },
        { "{'model':'m','max_tokens':1,'messages':[{'role':'system','content':5}]}", -1,
          "messages[0].content", NULL },
        /* Claude Code sends system turns inside messages */
        { "{'model':'m','max_tokens':2,'messages':[{'role':'user','content':'x'},"
          "{'role':'system','content':[{'type':'text','text':'a'},{'type':'text','text':'b'}]}]}",
          0, NULL,
          "{'messages':[{'role':'user','content':'x'},{'role':'system','content':'a\\n\\nb'}],"
          "'max_completion_tokens':2,'model':'m'}" },
        { "{'model':'m','max_tokens':1,'messages':[{'role':'user','content':[{'type':'image',"
          "'source':{'type':'base64'}}]}]}", -1, "messages[0].content[0]", NULL },
        { "{'model':'m','max_tokens':1,'messages':[{'role':'user','content':'x'}],"
          "'tool_choice':{'type':'sometimes'}}", -1, "tool_choice.type", NULL },
        { "{'model':'m','max_tokens':1,'messages':[{'role':'user','content':'x'}],"
          "'thinking':{'type':'enabled'}}", -1, "thinking.budget_tokens", NULL },
        { "{'max_tokens':1,'messages':[{'role':'user','content':'x'}]}", -1, "model", NULL },
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *in = jq(cases[i].in), *out = NULL;
        mn_fm_info info;
        mn_error err;
        mn_error_clear(&err);
        assert_int_equal(mn_fm_request(in, &out, &info, &err), cases[i].rc);
        if (cases[i].rc == 0) {
            assert_dump(out, cases[i].want);
            assert_string_equal(info.dropped, "");
        }
        else {
            assert_null(out);
            assert_int_equal(err.status, 400);
            assert_string_equal(err.type, "invalid_request_error");
            assert_string_equal(err.param, cases[i].param);
        }
        json_decref(out);
        json_decref(in);
    }
}

static void test_paths(void **state)
{
    (void)state;
    assert_int_equal(mn_fm_path("/v1/messages"), MN_FM_PATH_MESSAGES);
    assert_int_equal(mn_fm_path("/gw/v1/messages/count_tokens"), MN_FM_PATH_COUNT);
    assert_int_equal(mn_fm_path("/v1/chat/completions"), 0);
    assert_int_equal(mn_fm_path("/v1/messages/"), 0);
    assert_int_equal(mn_fm_path("/v1/messagesx"), 0);
    assert_int_equal(mn_fm_path(NULL), 0);
}

static void test_count_tokens(void **state)
{
    json_t *in = jq("{'model':'m','system':'abc','messages':[{'role':'user','content':'hi'}]}");
    long n = 0;
    mn_error err;
    (void)state;
    /* "abc" (5) + [{"role":"user","content":"hi"}] (32) = 37 bytes -> 10 */
    assert_int_equal(mn_fm_count_tokens(in, &n, &err), 0);
    assert_int_equal(n, 10);
    json_decref(in);
    in = jq("{'model':'m'}");
    assert_int_equal(mn_fm_count_tokens(in, &n, &err), -1);
    assert_string_equal(err.param, "messages");
    json_decref(in);
}

/* ----------------------------------------------------------------- response */

static void test_response(void **state)
{
    json_t *chat = jq(
        "{'id':'chatcmpl-1','object':'chat.completion','created':1,'model':'gpt-4o',"
        "'choices':[{'index':0,'message':{'role':'assistant','content':'Checking.',"
        "'reasoning_content':'think','tool_calls':[{'id':'call_1','type':'function',"
        "'function':{'name':'get_weather','arguments':'{\\'city\\':\\'Paris\\'}'}},"
        "{'id':'call_2','type':'function','function':{'name':'x','arguments':'not json'}}]},"
        "'finish_reason':'tool_calls'}],'usage':{'prompt_tokens':30,'completion_tokens':7,"
        "'total_tokens':37,'prompt_tokens_details':{'cached_tokens':10}},'provider':'oai'}");
    json_t *res;
    mn_usage u;
    (void)state;

    res = mn_fm_response(chat, NULL);
    assert_dump(res,
        "{'id':'chatcmpl-1','type':'message','role':'assistant','model':'gpt-4o','content':["
        "{'type':'thinking','thinking':'think','signature':''},{'type':'text','text':'Checking.'},"
        "{'type':'tool_use','id':'call_1','name':'get_weather','input':{'city':'Paris'}},"
        "{'type':'tool_use','id':'call_2','name':'x','input':{}}],'stop_reason':'tool_use',"
        "'stop_sequence':null,'usage':{'input_tokens':20,'cache_creation_input_tokens':0,"
        "'cache_read_input_tokens':10,'output_tokens':7},'provider':'oai'}");
    json_decref(res);

    /* the wire's usage wins (it knows cache writes) */
    memset(&u, 0, sizeof(u));
    u.prompt_tokens = 100;
    u.cached_tokens = 50;
    u.cache_write_tokens = 20;
    u.completion_tokens = 3;
    json_object_set_new(json_array_get(json_object_get(chat, "choices"), 0), "finish_reason",
                        json_string("length"));
    res = mn_fm_response(chat, &u);
    assert_dump(json_object_get(res, "usage"),
                "{'input_tokens':30,'cache_creation_input_tokens':20,"
                "'cache_read_input_tokens':50,'output_tokens':3}");
    assert_string_equal(json_string_value(json_object_get(res, "stop_reason")), "max_tokens");
    json_decref(res);
    json_decref(chat);
}

static void test_errors(void **state)
{
    struct { int status; const char *type; const char *code; const char *want; } cases[] = {
        { 400, "invalid_request_error", NULL, "invalid_request_error" },
        { 401, "authentication_error", "invalid_api_key", "authentication_error" },
        { 403, "permission_error", "origin_not_allowed", "permission_error" },
        { 404, "invalid_request_error", "model_not_found", "not_found_error" },
        { 413, "invalid_request_error", "request_too_large", "request_too_large" },
        { 429, "rate_limit_error", "rate_limit_exceeded", "rate_limit_error" },
        { 429, "insufficient_quota", NULL, "rate_limit_error" },
        { 529, "overloaded_error", NULL, "overloaded_error" },
        { 500, "server_error", NULL, "api_error" },
        { 502, "upstream_error", "upstream_unreachable", "api_error" },
        { 504, "timeout_error", "upstream_timeout", "timeout_error" },
        { 503, "weird_type", NULL, "api_error" },
        { 422, "weird_type", NULL, "invalid_request_error" },
        { 0, "upstream_error", "upstream_reset", "api_error" },
        { 401, "invalid_request_error", "invalid_api_key", "authentication_error" },
        { 502, "overloaded_error", NULL, "overloaded_error" },
        { 400, "invalid_request_error", "model_not_found", "not_found_error" },
    };
    size_t i;
    mn_error e;
    mn_buf b;
    mn_sink sink;
    json_t *j;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mn_error_set(&e, cases[i].status, cases[i].type, NULL, cases[i].code, "m");
        assert_string_equal(mn_fm_error_type(&e), cases[i].want);
    }
    mn_error_set(&e, 404, "invalid_request_error", "model", "model_not_found",
                 "unknown provider \"x\"");
    j = mn_fm_error_json(&e, NULL);
    assert_dump(j, "{'type':'error','error':{'type':'not_found_error',"
                   "'message':'unknown provider \\'x\\''}}");
    json_decref(j);
    mn_buf_init(&b);
    sink = mn_buf_sink(&b);
    mn_error_set(&e, 502, "overloaded_error", NULL, NULL, "Overloaded");
    mn_fm_error_event(&sink, &e, "claude");
    assert_bytes(&b, "event: error\ndata: {'type':'error','error':{'type':'overloaded_error',"
                     "'message':'Overloaded'},'provider':'claude'}\n\n");
    mn_buf_free(&b);
}

/* ------------------------------------------------------------------- stream */

typedef struct {
    mn_buf out;
    mn_sink down;
    mn_fm_stream *s;
    mn_sink in;
} st_fx;

static void st_open(st_fx *f, size_t max)
{
    mn_buf_init(&f->out);
    f->down = mn_buf_sink(&f->out);
    f->s = mn_fm_stream_create(&f->down, max);
    f->in = mn_fm_stream_sink(f->s);
}

static void st_close(st_fx *f)
{
    mn_fm_stream_destroy(f->s);
    mn_buf_free(&f->out);
}

/* one OpenAI frame, written in two pieces as the wires may */
static void frame(st_fx *f, const char *payload_sq)
{
    char *p = swapq(payload_sq);
    size_t n = strlen(p);
    f->in.write(f->in.baton, "data: ", 6);
    f->in.write(f->in.baton, p, n / 2);
    f->in.write(f->in.baton, p + n / 2, n - n / 2);
    f->in.write(f->in.baton, "\n\n", 2);
    f->in.frame_end(f->in.baton);
    free(p);
}

#define CH "'id':'c1','object':'chat.completion.chunk','created':1,'model':'gpt-4o'"

static void test_stream_text_tools(void **state)
{
    st_fx f;
    (void)state;
    st_open(&f, 1 << 16);
    frame(&f, "{" CH ",'choices':[{'index':0,'delta':{'role':'assistant','content':''},"
              "'finish_reason':null}],'provider':'oai'}");
    frame(&f, "{" CH ",'choices':[{'index':0,'delta':{'reasoning_content':'Hmm'},"
              "'finish_reason':null}],'provider':'oai'}");
    frame(&f, "{" CH ",'choices':[{'index':0,'delta':{'content':'Hi'},"
              "'finish_reason':null}],'provider':'oai'}");
    frame(&f, "{" CH ",'choices':[{'index':0,'delta':{'tool_calls':[{'index':0,'id':'call_1',"
              "'type':'function','function':{'name':'get_weather','arguments':''}}]},"
              "'finish_reason':null}],'provider':'oai'}");
    frame(&f, "{" CH ",'choices':[{'index':0,'delta':{'tool_calls':[{'index':0,"
              "'function':{'arguments':'{\\'city\\':'}}]},'finish_reason':null}],'provider':'oai'}");
    frame(&f, "{" CH ",'choices':[{'index':0,'delta':{'tool_calls':[{'index':0,"
              "'function':{'arguments':'\\'Paris\\'}'}}]},'finish_reason':null}],'provider':'oai'}");
    frame(&f, "{" CH ",'choices':[{'index':0,'delta':{},'finish_reason':'tool_calls'}],"
              "'provider':'oai'}");
    frame(&f, "{" CH ",'choices':[],'usage':{'prompt_tokens':12,'completion_tokens':5,"
              "'total_tokens':17,'prompt_tokens_details':{'cached_tokens':2}},'provider':'oai'}");
    assert_int_equal(mn_fm_stream_ended(f.s), 0);
    f.in.write(f.in.baton, "data: [DONE]\n\n", 14);
    f.in.frame_end(f.in.baton);
    assert_int_equal(mn_fm_stream_ended(f.s), 1);
    assert_bytes(&f.out,
        "event: message_start\ndata: {'type':'message_start','message':{'id':'c1','type':'message',"
        "'role':'assistant','model':'gpt-4o','content':[],'stop_reason':null,'stop_sequence':null,"
        "'usage':{'input_tokens':0,'cache_creation_input_tokens':0,'cache_read_input_tokens':0,"
        "'output_tokens':0}},'provider':'oai'}\n\n"
        "event: ping\ndata: {'type':'ping','provider':'oai'}\n\n"
        "event: content_block_start\ndata: {'type':'content_block_start','index':0,"
        "'content_block':{'type':'thinking','thinking':'','signature':''},'provider':'oai'}\n\n"
        "event: content_block_delta\ndata: {'type':'content_block_delta','index':0,"
        "'delta':{'type':'thinking_delta','thinking':'Hmm'},'provider':'oai'}\n\n"
        "event: content_block_stop\ndata: {'type':'content_block_stop','index':0,'provider':'oai'}\n\n"
        "event: content_block_start\ndata: {'type':'content_block_start','index':1,"
        "'content_block':{'type':'text','text':''},'provider':'oai'}\n\n"
        "event: content_block_delta\ndata: {'type':'content_block_delta','index':1,"
        "'delta':{'type':'text_delta','text':'Hi'},'provider':'oai'}\n\n"
        "event: content_block_stop\ndata: {'type':'content_block_stop','index':1,'provider':'oai'}\n\n"
        "event: content_block_start\ndata: {'type':'content_block_start','index':2,"
        "'content_block':{'type':'tool_use','id':'call_1','name':'get_weather','input':{}},"
        "'provider':'oai'}\n\n"
        "event: content_block_delta\ndata: {'type':'content_block_delta','index':2,"
        "'delta':{'type':'input_json_delta','partial_json':'{\\'city\\':'},'provider':'oai'}\n\n"
        "event: content_block_delta\ndata: {'type':'content_block_delta','index':2,"
        "'delta':{'type':'input_json_delta','partial_json':'\\'Paris\\'}'},'provider':'oai'}\n\n"
        "event: content_block_stop\ndata: {'type':'content_block_stop','index':2,'provider':'oai'}\n\n"
        "event: message_delta\ndata: {'type':'message_delta','delta':{'stop_reason':'tool_use',"
        "'stop_sequence':null},'usage':{'input_tokens':10,'cache_creation_input_tokens':0,"
        "'cache_read_input_tokens':2,'output_tokens':5},'provider':'oai'}\n\n"
        "event: message_stop\ndata: {'type':'message_stop','provider':'oai'}\n\n");
    /* nothing after the end */
    frame(&f, "{" CH ",'choices':[{'index':0,'delta':{'content':'late'}}]}");
    assert_null(strstr(f.out.data, "late"));
    st_close(&f);
}

static void test_stream_anthropic_frames_pass(void **state)
{
    st_fx f;
    static const char ev[] = "event: ping\ndata: {\"provider\":\"c\",\"type\":\"ping\"}\n\n";
    (void)state;
    st_open(&f, 1 << 16);
    f.in.write(f.in.baton, ev, 6);
    f.in.write(f.in.baton, ev + 6, sizeof(ev) - 7);
    f.in.frame_end(f.in.baton);
    assert_int_equal(f.out.len, sizeof(ev) - 1);
    assert_memory_equal(f.out.data, ev, sizeof(ev) - 1);
    st_close(&f);
}

static void test_stream_error_mid(void **state)
{
    st_fx f;
    (void)state;
    st_open(&f, 1 << 16);
    frame(&f, "{" CH ",'choices':[{'index':0,'delta':{'content':'Hi'},"
              "'finish_reason':null}],'provider':'oai'}");
    frame(&f, "{'error':{'message':'Rate limited','type':'rate_limit_error','param':null,"
              "'code':null},'provider':'oai'}");
    f.in.write(f.in.baton, "data: [DONE]\n\n", 14);
    f.in.frame_end(f.in.baton);
    assert_int_equal(mn_fm_stream_ended(f.s), 1);
    assert_non_null(strstr(f.out.data, "\"text_delta\",\"text\":\"Hi\""));
    assert_null(strstr(f.out.data, "message_stop"));
    {
        const char *tail = strstr(f.out.data, "event: error");
        char *w = swapq("event: error\ndata: {'type':'error','error':{'type':'rate_limit_error',"
                        "'message':'Rate limited'},'provider':'oai'}\n\n");
        assert_non_null(tail);
        assert_string_equal(tail, w);
        free(w);
    }
    st_close(&f);
}

static void test_stream_finish_and_overflow(void **state)
{
    st_fx f;
    mn_error e;
    (void)state;
    /* the glue gives up before any frame */
    st_open(&f, 1 << 16);
    mn_error_set(&e, 504, "timeout_error", NULL, "upstream_timeout", "no answer in 5 s");
    mn_fm_stream_finish(f.s, &e, "oai");
    assert_bytes(&f.out, "event: error\ndata: {'type':'error','error':{'type':'timeout_error',"
                         "'message':'no answer in 5 s'},'provider':'oai'}\n\n");
    mn_fm_stream_finish(f.s, &e, "oai");   /* once only */
    assert_bytes(&f.out, "event: error\ndata: {'type':'error','error':{'type':'timeout_error',"
                         "'message':'no answer in 5 s'},'provider':'oai'}\n\n");
    st_close(&f);

    st_open(&f, 32);
    frame(&f, "{" CH ",'choices':[{'index':0,'delta':{'content':'Hi'}}]}");
    assert_bytes(&f.out, "event: error\ndata: {'type':'error','error':{'type':'api_error',"
                         "'message':'a stream chunk was larger than the gateway allows'}}\n\n");
    st_close(&f);
}

/* Found by fuzz_face_messages: an upstream that sent [DONE] and no chunk
 * gave events without "provider" (the translator learnt it from chunks). */
static void test_stream_provider_without_chunks(void **state)
{
    st_fx f;
    (void)state;
    st_open(&f, 1 << 16);
    mn_fm_stream_provider(f.s, "oai");
    frame(&f, "[DONE]");
    assert_bytes(&f.out,
        "event: message_start\ndata: {'type':'message_start','message':{'id':'','type':'message',"
        "'role':'assistant','model':'','content':[],'stop_reason':null,'stop_sequence':null,"
        "'usage':{'input_tokens':0,'cache_creation_input_tokens':0,'cache_read_input_tokens':0,"
        "'output_tokens':0}},'provider':'oai'}\n\n"
        "event: ping\ndata: {'type':'ping','provider':'oai'}\n\n"
        "event: message_delta\ndata: {'type':'message_delta','delta':{'stop_reason':'end_turn',"
        "'stop_sequence':null},'usage':{'input_tokens':0,'cache_creation_input_tokens':0,"
        "'cache_read_input_tokens':0,'output_tokens':0},'provider':'oai'}\n\n"
        "event: message_stop\ndata: {'type':'message_stop','provider':'oai'}\n\n");
    st_close(&f);
}

/* The real OpenAI wire translator's output, through the face. */
static void test_stream_through_openai_wire(void **state)
{
    static const char upstream[] =
        "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Yo\"},"
        "\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
        "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
        "\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n"
        "data: [DONE]\n\n";
    apr_pool_t *pool;
    mn_provider prov;
    mn_wire_ctx ctx;
    mn_buf face_out, dummy;
    mn_sink down;
    mn_fm_stream *s;
    mn_sink in;
    mn_sse_parser p;
    mn_t_replay r;
    (void)state;

    apr_pool_create(&pool, NULL);
    mn_t_ctx(&ctx, pool, &prov, "oai", MN_FORMAT_OPENAI, 1, 1);
    mn_buf_init(&face_out);
    mn_buf_init(&dummy);
    down = mn_buf_sink(&face_out);
    s = mn_fm_stream_create(&down, 1 << 16);
    in = mn_fm_stream_sink(s);
    r.wire = &mn_wire_openai;
    r.out = &in;
    r.st = mn_wire_openai.stream_create(&ctx);
    r.status = MN_STREAM_MORE;
    mn_sse_init(&p, 1 << 20, mn_t_replay_cb, &r);
    mn_sse_feed(&p, upstream, sizeof(upstream) - 1);
    mn_sse_finish(&p);
    assert_int_equal(r.status, MN_STREAM_DONE);
    assert_int_equal(mn_fm_stream_ended(s), 1);
    assert_bytes(&face_out,
        "event: message_start\ndata: {'type':'message_start','message':{'id':'x','type':'message',"
        "'role':'assistant','model':'m','content':[],'stop_reason':null,'stop_sequence':null,"
        "'usage':{'input_tokens':0,'cache_creation_input_tokens':0,'cache_read_input_tokens':0,"
        "'output_tokens':0}},'provider':'oai'}\n\n"
        "event: ping\ndata: {'type':'ping','provider':'oai'}\n\n"
        "event: content_block_start\ndata: {'type':'content_block_start','index':0,"
        "'content_block':{'type':'text','text':''},'provider':'oai'}\n\n"
        "event: content_block_delta\ndata: {'type':'content_block_delta','index':0,"
        "'delta':{'type':'text_delta','text':'Yo'},'provider':'oai'}\n\n"
        "event: content_block_stop\ndata: {'type':'content_block_stop','index':0,'provider':'oai'}\n\n"
        "event: message_delta\ndata: {'type':'message_delta','delta':{'stop_reason':'end_turn',"
        "'stop_sequence':null},'usage':{'input_tokens':3,'cache_creation_input_tokens':0,"
        "'cache_read_input_tokens':0,'output_tokens':1},'provider':'oai'}\n\n"
        "event: message_stop\ndata: {'type':'message_stop','provider':'oai'}\n\n");
    mn_sse_free(&p);
    mn_wire_openai.stream_destroy(r.st);
    mn_fm_stream_destroy(s);
    mn_buf_free(&face_out);
    mn_buf_free(&dummy);
    apr_pool_destroy(pool);
}

/* -------------------------------------------------------------- passthrough */

typedef struct {
    apr_pool_t *pool;
    mn_provider prov;
    mn_wire_ctx ctx;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    apr_pool_create(&f->pool, NULL);
    mn_t_ctx(&f->ctx, f->pool, &f->prov, "claude", MN_FORMAT_ANTHROPIC, 1, 0);
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

static void test_pass_encode(void **state)
{
    fx *f = *state;
    json_t *body = jq("{'model':'claude/claude-sonnet-4-5','max_tokens':9,'stream':true,"
                      "'thinking':{'type':'enabled','budget_tokens':1024},"
                      "'messages':[{'role':'assistant','content':[{'type':'thinking',"
                      "'thinking':'t','signature':'SIG'}]}],'tags':['x'],"
                      "'system':[{'type':'text','text':'s','cache_control':{'type':'ephemeral'}}]}");
    mn_upstream_req req;
    mn_error err;
    char *want;

    f->ctx.face_body = body;
    f->ctx.model = "claude-sonnet-4-5";
    apr_table_set(f->ctx.client_headers, "anthropic-beta", "interleaved-thinking-2025-05-14");
    apr_table_set(f->ctx.client_headers, "anthropic-version", "2023-06-01");
    assert_int_equal(mn_wire_anthropic_passthrough.encode_request(&f->ctx, NULL, &req, &err), 0);
    want = swapq("{'model':'claude-sonnet-4-5','max_tokens':9,'stream':true,"
                 "'thinking':{'type':'enabled','budget_tokens':1024},"
                 "'messages':[{'role':'assistant','content':[{'type':'thinking',"
                 "'thinking':'t','signature':'SIG'}]}],"
                 "'system':[{'type':'text','text':'s','cache_control':{'type':'ephemeral'}}]}");
    assert_string_equal(req.body, want);
    free(want);
    assert_string_equal(req.path, "/messages");
    assert_string_equal(apr_table_get(req.headers, "x-api-key"), "sk-test-key");
    assert_string_equal(apr_table_get(req.headers, "anthropic-beta"),
                        "interleaved-thinking-2025-05-14");
    assert_string_equal(apr_table_get(req.headers, "anthropic-version"), "2023-06-01");
    /* the client's body is not changed */
    assert_string_equal(json_string_value(json_object_get(body, "model")),
                        "claude/claude-sonnet-4-5");
    json_decref(body);
}

static void test_pass_response(void **state)
{
    fx *f = *state;
    static const char body[] =
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":"
        "\"thinking\",\"thinking\":\"t\",\"signature\":\"S\"}],\"usage\":{\"input_tokens\":5,"
        "\"cache_read_input_tokens\":4,\"cache_creation_input_tokens\":2,\"output_tokens\":3}}";
    const char *out;
    size_t n;
    mn_usage u;
    mn_error err;

    memset(&u, 0, sizeof(u));
    assert_int_equal(mn_wire_anthropic_passthrough.decode_response_bytes(
        &f->ctx, body, sizeof(body) - 1, &out, &n, &u, &err), 0);
    assert_int_equal(n, strlen(out));
    assert_string_equal(out, "{\"provider\":\"claude\",\"id\":\"msg_1\",\"type\":\"message\","
                        "\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":"
                        "\"t\",\"signature\":\"S\"}],\"usage\":{\"input_tokens\":5,"
                        "\"cache_read_input_tokens\":4,\"cache_creation_input_tokens\":2,"
                        "\"output_tokens\":3}}");
    assert_int_equal(u.prompt_tokens, 11);
    assert_int_equal(u.cached_tokens, 4);
    assert_int_equal(u.cache_write_tokens, 2);
    assert_int_equal(u.completion_tokens, 3);
    assert_int_equal(u.total_tokens, 14);
    assert_int_equal(mn_wire_anthropic_passthrough.decode_response_bytes(
        &f->ctx, "{\"error\":{}}", 12, &out, &n, &u, &err), -1);
    assert_int_equal(err.status, 502);
}

static void test_pass_stream(void **state)
{
    fx *f = *state;
    static const char up[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
        "\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n"
        "event: ping\ndata: {\"type\": \"ping\"}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"signature_delta\",\"signature\":\"SIG\"}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\"},\"usage\":{\"output_tokens\":4}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    mn_buf out;
    mn_usage u;
    size_t split;

    for (split = 0; split < sizeof(up) - 1; split += mn_t_quick() ? 97 : 13) {
        mn_buf_init(&out);
        assert_int_equal(mn_t_replay_stream_ex(&mn_wire_anthropic_passthrough, &f->ctx, up,
                                               sizeof(up) - 1, split, &out, &u, NULL, NULL),
                         MN_STREAM_DONE);
        assert_bytes(&out,
            "event: message_start\ndata: {'provider':'claude','type':'message_start','message':"
            "{'id':'msg_1','usage':{'input_tokens':7,'output_tokens':1}}}\n\n"
            "event: ping\ndata: {'provider':'claude','type': 'ping'}\n\n"
            "event: content_block_delta\ndata: {'provider':'claude','type':'content_block_delta',"
            "'index':0,'delta':{'type':'signature_delta','signature':'SIG'}}\n\n"
            "event: message_delta\ndata: {'provider':'claude','type':'message_delta','delta':"
            "{'stop_reason':'end_turn'},'usage':{'output_tokens':4}}\n\n"
            "event: message_stop\ndata: {'provider':'claude','type':'message_stop'}\n\n");
        assert_int_equal(u.prompt_tokens, 7);
        assert_int_equal(u.completion_tokens, 4);
        mn_buf_free(&out);
    }
}

/* Found by fuzz_face_messages: the upstream's event type went into the
 * client's `event:` line unchecked (a line break in it added lines to the
 * client's stream), data split over several `data:` lines went out with a
 * raw line break, and an upstream "provider" member overrode the gateway's
 * (the last of two members wins). */
static void test_pass_stream_hostile(void **state)
{
    fx *f = *state;
    static const char two_lines[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\n"
        "data: \"provider\":\"evil\",\"message\":{}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    static const char inject[] =
        "event: ping\ndata: {\"type\":\"ping\\ndata: {}\"}\n\n";
    static const char no_type[] =
        "event: ping\ndata: {}\n\n";
    static const char with_nul[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":null\0}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    mn_buf out;
    mn_usage u;

    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream_ex(&mn_wire_anthropic_passthrough, &f->ctx, two_lines,
                                           sizeof(two_lines) - 1, 0, &out, &u, NULL, NULL),
                     MN_STREAM_DONE);
    assert_bytes(&out,
        "event: message_start\ndata: {'type':'message_start','provider':'claude','message':{}}\n\n"
        "event: message_stop\ndata: {'provider':'claude','type':'message_stop'}\n\n");
    mn_buf_free(&out);

    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream_ex(&mn_wire_anthropic_passthrough, &f->ctx, inject,
                                           sizeof(inject) - 1, 0, &out, &u, NULL, NULL),
                     MN_STREAM_FAILED);
    assert_bytes(&out,
        "event: error\ndata: {'type':'error','error':{'type':'api_error','message':"
        "'upstream sent an invalid stream: an event type that is not a name'},"
        "'provider':'claude'}\n\n");
    mn_buf_free(&out);

    /* Jansson lets a NUL pass after a scalar: the client's parser would not */
    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream_ex(&mn_wire_anthropic_passthrough, &f->ctx, with_nul,
                                           sizeof(with_nul) - 1, 0, &out, &u, NULL, NULL),
                     MN_STREAM_DONE);
    assert_bytes(&out,
        "event: message_start\ndata: {'type':'message_start','message':null,'provider':'claude'}"
        "\n\nevent: message_stop\ndata: {'provider':'claude','type':'message_stop'}\n\n");
    mn_buf_free(&out);

    mn_buf_init(&out);
    mn_t_replay_stream_ex(&mn_wire_anthropic_passthrough, &f->ctx, no_type,
                          sizeof(no_type) - 1, 0, &out, &u, NULL, NULL);
    assert_bytes(&out,
        "event: ping\ndata: {'type':'ping','provider':'claude'}\n\n"
        "event: error\ndata: {'type':'error','error':{'type':'api_error','message':"
        "'upstream stream ended before message_stop'},'provider':'claude'}\n\n");
    mn_buf_free(&out);
}

/* The events the passthrough only forwards (its byte fast path) meet the
 * same rules: an upstream provider, a line break or a NUL gets the event
 * rewritten by Jansson, with the gateway's provider. */
static void test_pass_fast_hostile(void **state)
{
    fx *f = *state;
    static const char in[] =
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"provider\":\"evil\",\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n"
        "event: ping\ndata: {\"type\":\"ping\",\ndata: \"x\":1}\n\n"
        "event: ping\ndata: {\"type\":\"ping\",\"x\":null\0}\n\n"
        "event: ping\ndata: {\"type\":\"Ping\"}\n\n";
    mn_buf out;
    mn_usage u;

    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream_ex(&mn_wire_anthropic_passthrough, &f->ctx, in,
                                           sizeof(in) - 1, 0, &out, &u, NULL, NULL),
                     MN_STREAM_FAILED);
    assert_bytes(&out,
        "event: content_block_delta\ndata: {'type':'content_block_delta','index':0,"
        "'provider':'claude','delta':{'type':'text_delta','text':'hi'}}\n\n"
        "event: ping\ndata: {'type':'ping','x':1,'provider':'claude'}\n\n"
        "event: ping\ndata: {'type':'ping','x':null,'provider':'claude'}\n\n"
        "event: error\ndata: {'type':'error','error':{'type':'api_error','message':"
        "'upstream sent an invalid stream: an event type that is not a name'},"
        "'provider':'claude'}\n\n");
    mn_buf_free(&out);
}

static void test_pass_response_provider(void **state)
{
    fx *f = *state;
    static const char body[] =
        "{\"type\":\"message\",\"content\":[],\"provider\":\"evil\"}";
    const char *out;
    size_t n;
    mn_usage u;
    mn_error err;

    memset(&u, 0, sizeof(u));
    assert_int_equal(mn_wire_anthropic_passthrough.decode_response_bytes(
        &f->ctx, body, sizeof(body) - 1, &out, &n, &u, &err), 0);
    assert_string_equal(out, "{\"type\":\"message\",\"content\":[],\"provider\":\"claude\"}");
    assert_int_equal(n, strlen(out));
    assert_int_equal(mn_wire_anthropic_passthrough.decode_response_bytes(
        &f->ctx, "{\"type\":\"message\",\"content\":null\0}", 34, &out, &n, &u, &err), 0);
    assert_string_equal(out, "{\"type\":\"message\",\"content\":null,\"provider\":\"claude\"}");
    assert_int_equal(n, strlen(out));
}

static void test_pass_stream_errors(void **state)
{
    fx *f = *state;
    static const char err_mid[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n"
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
        "\"message\":\"Overloaded sk-test-key\"}}\n\n";
    static const char eof[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n";
    mn_buf out;
    mn_error e;
    int has;

    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream_ex(&mn_wire_anthropic_passthrough, &f->ctx, err_mid,
                                           sizeof(err_mid) - 1, 0, &out, NULL, &e, &has),
                     MN_STREAM_FAILED);
    assert_int_equal(has, 1);
    assert_string_equal(e.type, "overloaded_error");
    assert_bytes(&out,
        "event: message_start\ndata: {'provider':'claude','type':'message_start','message':{}}\n\n"
        "event: error\ndata: {'type':'error','error':{'type':'overloaded_error',"
        "'message':'Overloaded ***'},'provider':'claude'}\n\n");
    mn_buf_free(&out);

    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream(&mn_wire_anthropic_passthrough, &f->ctx, eof,
                                        sizeof(eof) - 1, 0, &out), MN_STREAM_FAILED);
    assert_bytes(&out,
        "event: message_start\ndata: {'provider':'claude','type':'message_start','message':{}}\n\n"
        "event: error\ndata: {'type':'error','error':{'type':'api_error',"
        "'message':'upstream stream ended before message_stop'},'provider':'claude'}\n\n");
    mn_buf_free(&out);

    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream(&mn_wire_anthropic_passthrough, &f->ctx,
                                        "data: nope\n\n", 12, 0, &out), MN_STREAM_FAILED);
    assert_bytes(&out, "event: error\ndata: {'type':'error','error':{'type':'api_error',"
                       "'message':'upstream sent an invalid stream: an event that is not a JSON "
                       "object'},'provider':'claude'}\n\n");
    mn_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_full),
        cmocka_unit_test(test_request_tool_choice_and_errors),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_count_tokens),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_stream_text_tools),
        cmocka_unit_test(test_stream_anthropic_frames_pass),
        cmocka_unit_test(test_stream_error_mid),
        cmocka_unit_test(test_stream_finish_and_overflow),
        cmocka_unit_test(test_stream_through_openai_wire),
        cmocka_unit_test(test_stream_provider_without_chunks),
        cmocka_unit_test_setup_teardown(test_pass_encode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_stream_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_stream_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_fast_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_response_provider, setup, teardown),
    };
    apr_initialize();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
