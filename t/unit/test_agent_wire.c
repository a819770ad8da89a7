/* Unit tests: the reasoning artefacts of tool loops through the encoders
 * (Gemini signatures back on functionCall parts, plain ids for OpenAI and
 * Anthropic, Claude thinking blocks first, thinking off without them) and
 * the Gemini 3 request fields. */
#include "harness.h"
#include <apr_strings.h>
#include "mn_sigid.h"

static apr_pool_t *pool;

static int setup(void **state)
{
    apr_pool_create(&pool, NULL);
    return 0;
}

static int teardown(void **state)
{
    apr_pool_destroy(pool);
    return 0;
}

/* JSON written with ' for " (no ' inside strings). */
static json_t *jq(const char *q)
{
    char *t = apr_pstrdup(pool, q), *c;
    for (c = t; *c; c++) {
        if (*c == '\'') {
            *c = '"';
        }
    }
    json_t *v = json_loads(t, JSON_DECODE_ANY, NULL);
    if (!v) {
        fail_msg("bad test JSON: %s", t);
    }
    return v;
}

/* The upstream body for req_q on format f (model for the ctx); NULL when it fails. */
static json_t *encode(mn_format f, const char *model, json_t *req, mn_wire_ctx *ctx,
                      mn_error *err)
{
    static mn_provider prov;
    mn_upstream_req up;
    json_t *body;
    mn_t_ctx(ctx, pool, &prov, "p", f, 0, 0);
    ctx->model = model;
    memset(&up, 0, sizeof(up));
    memset(err, 0, sizeof(*err));
    if (mn_wire_for(f)->encode_request(ctx, req, &up, err)) {
        return NULL;
    }
    body = json_loadb(up.body, up.body_len, 0, NULL);
    assert_non_null(body);
    return body;
}

static void assert_member(json_t *got, const char *path_q, const char *want_q)
{
    json_t *want = jq(want_q);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        fail_msg("%s: got %s, want %s", path_q, g ? g : "(null)", want_q);
    }
    json_decref(want);
}

static json_t *at(json_t *v, const char *k1, size_t i, const char *k2)
{
    return json_object_get(json_array_get(json_object_get(v, k1), i), k2);
}

/* An assistant turn with two calls (first id given), their results. */
static json_t *history(const char *id0, const char *extra0)
{
    char *q = apr_psprintf(pool,
        "{'model':'p/m','messages':[{'role':'user','content':'go'},"
        "{'role':'assistant','content':null,'tool_calls':["
        " {'id':'%s','type':'function','function':{'name':'f','arguments':'{}'}%s},"
        " {'id':'c2','type':'function','function':{'name':'g','arguments':'{}'}}]},"
        "{'role':'tool','tool_call_id':'%s','content':'1'},"
        "{'role':'tool','tool_call_id':'c2','content':'2'}]}",
        id0, extra0, id0);
    return jq(q);
}

static void test_gemini_signature_back(void **state)
{
    const char *id = mn_sigid_encode(pool, "call_r_0", 8, "SIG+/=", 6);
    static const struct { const char *extra; const char *want; } cases[] = {
        { "", "'SIG+/='" },                                                   /* from the id */
        { ",'extra_content':{'google':{'thought_signature':'XS'}}", "'XS'" },  /* extra first */
    };
    size_t k;
    for (k = 0; k < 2; k++) {
        mn_wire_ctx ctx;
        mn_error err;
        json_t *req = history(id, cases[k].extra);
        json_t *body = encode(MN_FORMAT_GEMINI, "gemini-3-pro-preview", req, &ctx, &err);
        json_t *parts = json_object_get(json_array_get(json_object_get(body, "contents"), 1),
                                        "parts");
        assert_member(json_object_get(json_array_get(parts, 0), "thoughtSignature"), "sig",
                      cases[k].want);
        assert_null(json_object_get(json_array_get(parts, 1), "thoughtSignature"));
        /* the tool results still find their names through the encoded id */
        assert_member(at(json_array_get(json_object_get(body, "contents"), 2), "parts", 0,
                         "functionResponse"), "fr", "{'name':'f','response':{'output':'1'}}");
        json_decref(body);
        json_decref(req);
    }
}

static void test_gemini_placeholder(void **state)
{
    const char *id = mn_sigid_encode(pool, "call_r_0", 8, "SIG", 3);
    const char *ids[] = { "call_plain", "toolu_01", apr_pstrndup(pool, id, strlen(id) - 2),
                          "gsig1_!!" };
    size_t k;
    for (k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
        mn_wire_ctx ctx;
        mn_error err;
        json_t *req = history(ids[k], "");
        json_t *body = encode(MN_FORMAT_GEMINI, "gemini-3-flash", req, &ctx, &err);
        json_t *parts = json_object_get(json_array_get(json_object_get(body, "contents"), 1),
                                        "parts");
        assert_non_null(body);
        assert_member(json_object_get(json_array_get(parts, 0), "thoughtSignature"), ids[k],
                      "'skip_thought_signature_validator'");
        assert_null(json_object_get(json_array_get(parts, 1), "thoughtSignature"));
        json_decref(body);
        json_decref(req);
    }
}

static void test_plain_ids_for_openai_and_anthropic(void **state)
{
    const char *id = mn_sigid_encode(pool, "call_r_0", 8, "SIG", 3);
    mn_wire_ctx ctx;
    mn_error err;
    json_t *req = history(id, ",'extra_content':{'google':{'thought_signature':'SIG'}}");
    json_t *before = json_deep_copy(req);
    json_t *body = encode(MN_FORMAT_OPENAI, "gpt-4o", req, &ctx, &err);
    json_t *msgs = json_object_get(body, "messages");
    assert_member(json_object_get(json_array_get(json_object_get(json_array_get(msgs, 1),
                                                                 "tool_calls"), 0), "id"),
                  "openai call id", "'call_r_0'");
    assert_null(json_object_get(json_array_get(json_object_get(json_array_get(msgs, 1),
                                                               "tool_calls"), 0),
                                "extra_content"));
    assert_member(json_object_get(json_array_get(msgs, 2), "tool_call_id"), "tool id",
                  "'call_r_0'");
    json_decref(body);
    /* the client's request (encoded again for a fallback) is untouched */
    json_object_del(req, "model");
    json_object_del(before, "model");
    json_object_del(req, "stream_options");
    assert_true(json_equal(req, before));

    body = encode(MN_FORMAT_ANTHROPIC, "claude-x", req, &ctx, &err);
    msgs = json_object_get(body, "messages");
    assert_member(at(json_array_get(msgs, 1), "content", 0, "id"), "tool_use id", "'call_r_0'");
    assert_member(at(json_array_get(msgs, 2), "content", 0, "tool_use_id"), "tool_result id",
                  "'call_r_0'");
    json_decref(body);
    json_decref(req);
    json_decref(before);
}

static const char *const CLAUDE_LOOP =
    "{'model':'p/m','reasoning_effort':'low','messages':[{'role':'user','content':'go'},"
    "{'role':'assistant','content':'ok','thinking_blocks':["
    " {'type':'thinking','thinking':'hm \\u00e9','signature':'S1'},"
    " {'type':'redacted_thinking','data':'R1'}],"
    " 'tool_calls':[{'id':'toolu_1','type':'function','function':{'name':'f','arguments':'{}'}}]},"
    "{'role':'tool','tool_call_id':'toolu_1','content':'1'}]}";

static void test_claude_blocks_first(void **state)
{
    mn_wire_ctx ctx;
    mn_error err;
    json_t *req = jq(CLAUDE_LOOP);
    json_t *body = encode(MN_FORMAT_ANTHROPIC, "claude-x", req, &ctx, &err);
    assert_member(json_object_get(json_array_get(json_object_get(body, "messages"), 1),
                                  "content"), "content",
                  "[{'type':'thinking','thinking':'hm \\u00e9','signature':'S1'},"
                  "{'type':'redacted_thinking','data':'R1'},{'type':'text','text':'ok'},"
                  "{'type':'tool_use','id':'toolu_1','name':'f','input':{}}]");
    assert_member(json_object_get(body, "thinking"), "thinking",
                  "{'type':'enabled','budget_tokens':1024}");
    assert_null(ctx.dropped);
    json_decref(body);
    json_decref(req);
}

static void test_claude_thinking_off_without_blocks(void **state)
{
    mn_wire_ctx ctx;
    mn_error err;
    json_t *req = jq(CLAUDE_LOOP);
    json_t *body;
    json_object_del(json_array_get(json_object_get(req, "messages"), 1), "thinking_blocks");
    body = encode(MN_FORMAT_ANTHROPIC, "claude-x", req, &ctx, &err);
    assert_null(json_object_get(body, "thinking"));
    assert_string_equal(ctx.dropped, "thinking");
    json_decref(body);
    /* a client-supplied thinking is dropped the same way; a disabled one is left */
    json_object_del(req, "reasoning_effort");
    json_object_set_new(req, "thinking", jq("{'type':'enabled','budget_tokens':2000}"));
    body = encode(MN_FORMAT_ANTHROPIC, "claude-x", req, &ctx, &err);
    assert_null(json_object_get(body, "thinking"));
    assert_string_equal(ctx.dropped, "thinking");
    json_decref(body);
    json_object_set_new(req, "thinking", jq("{'type':'disabled'}"));
    body = encode(MN_FORMAT_ANTHROPIC, "claude-x", req, &ctx, &err);
    assert_member(json_object_get(body, "thinking"), "thinking", "{'type':'disabled'}");
    assert_null(ctx.dropped);
    json_decref(body);
    json_decref(req);
}

static void test_claude_bad_blocks(void **state)
{
    mn_wire_ctx ctx;
    mn_error err;
    json_t *req = jq(CLAUDE_LOOP);
    json_object_set_new(json_array_get(json_object_get(req, "messages"), 1), "thinking_blocks",
                        jq("[{'type':'thinking','thinking':'x'}]"));
    assert_null(encode(MN_FORMAT_ANTHROPIC, "claude-x", req, &ctx, &err));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.param, "messages[1].thinking_blocks[0]");
    json_decref(req);
}

static void test_gemini3_fields(void **state)
{
    mn_wire_ctx ctx;
    mn_error err;
    json_t *req = jq("{'model':'p/m','messages':[{'role':'user','content':'go'}],"
                     "'reasoning_effort':'medium','response_format':{'type':'json_schema',"
                     "'json_schema':{'name':'x','strict':true,'schema':{'type':'object',"
                     "'properties':{'a':{'$ref':'#/$defs/A'}},'$defs':{'A':{'type':'string'}},"
                     "'additionalProperties':false}}}}");
    json_t *body = encode(MN_FORMAT_GEMINI, "gemini-3-pro-preview", req, &ctx, &err);
    json_t *gc = json_object_get(body, "generationConfig");
    assert_member(json_object_get(gc, "thinkingConfig"), "thinkingConfig",
                  "{'thinkingLevel':'high'}");
    assert_member(json_object_get(gc, "responseJsonSchema"), "responseJsonSchema",
                  "{'type':'object','properties':{'a':{'$ref':'#/$defs/A'}},"
                  "'$defs':{'A':{'type':'string'}},'additionalProperties':false}");
    assert_null(json_object_get(gc, "responseSchema"));
    json_decref(body);
    /* 2.5: a budget and the reduced schema, as before */
    body = encode(MN_FORMAT_GEMINI, "gemini-2.5-flash", req, &ctx, &err);
    gc = json_object_get(body, "generationConfig");
    assert_member(json_object_get(gc, "thinkingConfig"), "thinkingConfig",
                  "{'thinkingBudget':8192}");
    assert_member(json_object_get(gc, "responseSchema"), "responseSchema",
                  "{'type':'object','properties':{'a':{'type':'string'}}}");
    assert_null(json_object_get(gc, "responseJsonSchema"));
    json_decref(body);
    json_decref(req);
}

/* A Claude stream: thinking (signature in two deltas), redacted thinking,
 * then a tool call: one thinking_blocks delta, before the tool call. */
static void test_claude_stream_blocks(void **state)
{
    static const char sse[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
        "\"model\":\"c\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n"
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\","
        "\"thinking\":\"\",\"signature\":\"\"}}\n\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
        "\"thinking\":\"I will \"}}\n\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
        "\"thinking\":\"call f.\"}}\n\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
        "\"signature\":\"Eq+/\"}}\n\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
        "\"signature\":\"==\"}}\n\n"
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"redacted_thinking\","
        "\"data\":\"RD\"}}\n\n"
        "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
        "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\","
        "\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{}}}\n\n"
        "data: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},"
        "\"usage\":{\"output_tokens\":9}}\n\n"
        "data: {\"type\":\"message_stop\"}\n\n";
    size_t split, n = strlen(sse);
    for (split = 1; split < n; split += mn_t_quick() ? 97 : 7) {
        mn_provider prov;
        mn_wire_ctx ctx;
        mn_buf out;
        json_t *frames, *deltas = json_array();
        size_t i;
        mn_t_ctx(&ctx, pool, &prov, "p", MN_FORMAT_ANTHROPIC, 1, 0);
        mn_buf_init(&out);
        assert_int_equal(mn_t_replay_stream(&mn_wire_anthropic, &ctx, sse, n, split, &out),
                         MN_STREAM_DONE);
        frames = mn_t_data_frames(out.data, out.len);
        for (i = 0; i + 1 < json_array_size(frames); i++) {
            json_t *f = json_loads(json_string_value(json_array_get(frames, i)), 0, NULL);
            json_t *ch = json_array_get(json_object_get(f, "choices"), 0);
            json_t *d = json_object_get(ch, "delta");
            json_object_set(d, "finish", json_object_get(ch, "finish_reason"));
            json_array_append(deltas, d);
            json_decref(f);
        }
        assert_member(deltas, "deltas",
            "[{'role':'assistant','content':'','finish':null},"
            "{'thinking_blocks':[{'type':'thinking','thinking':'I will call f.','signature':'Eq+/=='},"
            "{'type':'redacted_thinking','data':'RD'}],'finish':null},"
            "{'tool_calls':[{'index':0,'id':'toolu_1','type':'function',"
            "'function':{'name':'f','arguments':''}}],'finish':null},"
            "{'tool_calls':[{'index':0,'function':{'arguments':'{}'}}],'finish':null},"
            "{'finish':'tool_calls'}]");
        json_decref(deltas);
        json_decref(frames);
        mn_buf_free(&out);
    }
}

/* Stop reasons newer than the mapping: "stop", and the raw value noted. */
static void test_unknown_finish(void **state)
{
    static const struct { mn_format f; const char *body, *want_fr, *note; } cases[] = {
        { MN_FORMAT_ANTHROPIC, "{'type':'message','id':'m','model':'c','content':[],"
          "'stop_reason':'brand_new_reason','usage':{}}", "stop", "brand_new_reason" },
        { MN_FORMAT_ANTHROPIC, "{'type':'message','id':'m','model':'c','content':[],"
          "'stop_reason':'pause_turn','usage':{}}", "stop", NULL },
        { MN_FORMAT_ANTHROPIC, "{'type':'message','id':'m','model':'c','content':[],"
          "'stop_reason':'model_context_window_exceeded','usage':{}}", "length", NULL },
        { MN_FORMAT_ANTHROPIC, "{'type':'message','id':'m','model':'c','content':[],"
          "'stop_reason':'new reason; with spaces','usage':{}}", "stop", "?" },
        { MN_FORMAT_GEMINI, "{'candidates':[{'content':{'parts':[{'text':'x'}]},"
          "'finishReason':'SOMETHING_NEW'}]}", "stop", "SOMETHING_NEW" },
        { MN_FORMAT_GEMINI, "{'candidates':[{'content':{'parts':[{'text':'x'}]},"
          "'finishReason':'MALFORMED_FUNCTION_CALL'}]}", "stop", NULL },
        { MN_FORMAT_GEMINI, "{'candidates':[{'content':{'parts':[{'text':'x'}]},"
          "'finishReason':'SAFETY'}]}", "content_filter", NULL },
    };
    size_t k;
    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        mn_provider prov;
        mn_wire_ctx ctx;
        mn_error err;
        mn_usage u;
        json_t *out = NULL;
        char *body = apr_pstrdup(pool, cases[k].body), *c;
        for (c = body; *c; c++) {
            if (*c == '\'') {
                *c = '"';
            }
        }
        mn_t_ctx(&ctx, pool, &prov, "p", cases[k].f, 0, 0);
        memset(&u, 0, sizeof(u));
        assert_int_equal(mn_wire_for(cases[k].f)->decode_response(&ctx, body, strlen(body),
                                                                  &out, &u, &err), 0);
        assert_string_equal(json_string_value(json_object_get(json_array_get(
                                json_object_get(out, "choices"), 0), "finish_reason")),
                            cases[k].want_fr);
        if (cases[k].note) {
            assert_non_null(ctx.unknown_finish);
            assert_string_equal(ctx.unknown_finish, cases[k].note);
        }
        else {
            assert_null(ctx.unknown_finish);
        }
        json_decref(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemini_signature_back),
        cmocka_unit_test(test_gemini_placeholder),
        cmocka_unit_test(test_plain_ids_for_openai_and_anthropic),
        cmocka_unit_test(test_claude_blocks_first),
        cmocka_unit_test(test_claude_thinking_off_without_blocks),
        cmocka_unit_test(test_claude_bad_blocks),
        cmocka_unit_test(test_gemini3_fields),
        cmocka_unit_test(test_claude_stream_blocks),
        cmocka_unit_test(test_unknown_finish),
    };
    apr_initialize();
    return cmocka_run_group_tests(tests, setup, teardown);
}
