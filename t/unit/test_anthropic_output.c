/* Unit tests for src/wire/anthropic_output.c: the model table (which thinking
 * form, effort levels and structured outputs a model name gets), the
 * reasoning_effort mapping for each class and the JSON Schema rewrite for
 * output_config.format. */
#include "anthropic_test.h"
#include "mn_anthropic.h"

/* ------------------------------------------------------------ model table */

/* caps as a string: a(daptive) b(udget) e(ffort) m(ax) x(high) f(ormat) */
static void caps_are(const char *model, int thinking, const char *want)
{
    mn_an_caps c;
    char got[8];
    size_t n = 0;

    mn_an_model_caps(model, thinking, &c);
    if (c.adaptive) {
        got[n++] = 'a';
    }
    if (c.budget) {
        got[n++] = 'b';
    }
    if (c.effort) {
        got[n++] = 'e';
    }
    if (c.effort_max) {
        got[n++] = 'm';
    }
    if (c.effort_xhigh) {
        got[n++] = 'x';
    }
    if (c.format) {
        got[n++] = 'f';
    }
    got[n] = 0;
    if (strcmp(got, want)) {
        fail_msg("%s (thinking=%d): got \"%s\", want \"%s\"", model ? model : "(null)",
                 thinking, got, want);
    }
}

static void test_model_table(void **state)
{
    (void)state;
    /* budget thinking only, no effort, no structured outputs */
    caps_are("claude-3-7-sonnet-20250219", 0, "b");
    caps_are("claude-3-5-haiku-20241022", 0, "b");
    caps_are("claude-opus-4-20250514", 0, "b");
    caps_are("claude-opus-4-1", 0, "b");
    caps_are("claude-sonnet-4-0", 0, "b");
    caps_are("claude-2.1", 0, "b");
    /* 4.5: structured outputs; Opus 4.5 also effort (low..high) */
    caps_are("claude-sonnet-4-5", 0, "bf");
    caps_are("claude-sonnet-4-5-20250929", 0, "bf");
    caps_are("claude-haiku-4-5-20251001", 0, "bf");
    caps_are("claude-opus-4-5-20251101", 0, "bef");
    caps_are("claude-opus-4.5", 0, "bef");
    /* 4.6: adaptive (budget deprecated but taken), effort up to max */
    caps_are("claude-opus-4-6", 0, "abemf");
    caps_are("claude-sonnet-4-6", 0, "abemf");
    caps_are("us.anthropic.claude-opus-4-6-v1:0", 0, "abemf");
    caps_are("claude-mythos-preview", 0, "abemf");   /* both forms, says the thinking page */
    /* 4.7 and later: adaptive only, xhigh */
    caps_are("claude-opus-4-7", 0, "aemxf");
    caps_are("claude-opus-4-8", 0, "aemxf");
    caps_are("claude-sonnet-5", 0, "aemxf");
    caps_are("claude-opus-5-5", 0, "aemxf");
    caps_are("claude-fable-5-1", 0, "aemxf");
    caps_are("claude-haiku-5-5", 0, "aemxf");
    caps_are("claude-sonnet-4-7@20260101", 0, "aemxf");
    /* not Claude names: today's behaviour */
    caps_are("test-model", 0, "b");
    caps_are("deepseek-chat", 0, "b");
    caps_are("claude", 0, "b");
    caps_are("claude-", 0, "b");
    caps_are("claude-opus", 0, "b");
    caps_are(NULL, 0, "b");
    /* thinking= overrides the form, never structured outputs */
    caps_are("my-proxy-model", MN_AN_THINKING_ADAPTIVE, "aemx");
    caps_are("claude-sonnet-4-5", MN_AN_THINKING_ADAPTIVE, "aemxf");
    caps_are("claude-opus-4-7", MN_AN_THINKING_BUDGET, "bf");
    caps_are("claude-opus-4-5", MN_AN_THINKING_BUDGET, "bf");
}

/* ------------------------------------------------------- reasoning_effort */

static void reasoning_is(const char *model, int thinking, const char *effort, int adaptive,
                         long budget, const char *want_effort)
{
    mn_an_caps c;
    mn_an_reasoning_out r;
    mn_error err;
    json_t *e = json_string(effort);

    mn_an_model_caps(model, thinking, &c);
    mn_error_clear(&err);
    assert_int_equal(mn_an_reasoning(&c, e, &r, &err), 0);
    json_decref(e);
    assert_int_equal(r.adaptive, adaptive);
    assert_int_equal(r.budget, budget);
    if (want_effort) {
        assert_non_null(r.effort);
        assert_string_equal(r.effort, want_effort);
    }
    else {
        assert_null(r.effort);
    }
}

static void test_reasoning_mapping(void **state)
{
    mn_an_caps c;
    mn_an_reasoning_out r;
    mn_error err;
    json_t *v;

    (void)state;
    reasoning_is("claude-opus-4-7", 0, "none", 0, 0, NULL);
    reasoning_is("claude-opus-4-7", 0, "minimal", 1, 0, "low");
    reasoning_is("claude-opus-4-7", 0, "xhigh", 1, 0, "xhigh");
    reasoning_is("claude-opus-4-6", 0, "xhigh", 1, 0, "high");
    reasoning_is("claude-opus-4-6", 0, "max", 1, 0, "max");
    reasoning_is("claude-opus-4-5", 0, "max", 0, 16384, "high");
    reasoning_is("claude-opus-4-5", 0, "medium", 0, 2048, "medium");
    reasoning_is("claude-sonnet-4-5", 0, "high", 0, 4096, NULL);
    reasoning_is("claude-opus-4-7", MN_AN_THINKING_BUDGET, "high", 0, 4096, NULL);
    reasoning_is("proxy-model", MN_AN_THINKING_ADAPTIVE, "max", 1, 0, "max");

    mn_an_model_caps("claude-opus-4-7", 0, &c);
    mn_error_clear(&err);
    assert_int_equal(mn_an_reasoning(&c, NULL, &r, &err), 0);
    assert_int_equal(r.adaptive, 0);
    v = json_null();
    assert_int_equal(mn_an_reasoning(&c, v, &r, &err), 0);
    assert_null(r.effort);
    v = json_integer(3);
    assert_int_equal(mn_an_reasoning(&c, v, &r, &err), -1);
    json_decref(v);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.param, "reasoning_effort");
    assert_non_null(strstr(err.message, "must be a string"));
    v = json_string("ultra");
    mn_error_clear(&err);
    assert_int_equal(mn_an_reasoning(&c, v, &r, &err), -1);
    json_decref(v);
    assert_non_null(strstr(err.message, "none, minimal, low, medium, high, xhigh or max"));
}

/* ----------------------------------------------------------------- schema */

static void schema_becomes(const char *in_sq, const char *want_sq)
{
    json_t *in = jq(in_sq), *before = json_deep_copy(in);
    json_t *got = mn_an_strict_schema(in);

    if (!want_sq) {
        if (got) {
            char *g = json_dumps(got, JSON_COMPACT);
            fail_msg("%s: expected no schema, got %s", in_sq, g);
        }
    }
    else {
        if (!got) {
            fail_msg("%s: no schema", in_sq);
        }
        assert_json(got, want_sq);
    }
    /* the client's request is not edited */
    assert_true(json_equal(in, before));
    json_decref(got);
    json_decref(before);
    json_decref(in);
}

static void test_strict_schema(void **state)
{
    (void)state;
    /* objects: additionalProperties false, required kept, nested too */
    schema_becomes("{'type':'object','properties':{'n':{'type':'integer'},"
                   "'o':{'type':'object','properties':{},'additionalProperties':true}},"
                   "'required':['n']}",
                   "{'type':'object','properties':{'n':{'type':'integer'},"
                   "'o':{'type':'object','properties':{},'additionalProperties':false}},"
                   "'additionalProperties':false,'required':['n']}");
    schema_becomes("{'type':'object'}",
                   "{'type':'object','properties':{},'additionalProperties':false}");
    /* what the subset lacks goes into the description */
    schema_becomes("{'type':'integer','description':'Age','minimum':0,'maximum':150}",
                   "{'type':'integer','description':'Age\\n\\n{minimum: 0, maximum: 150}'}");
    schema_becomes("{'type':'string','format':'email','minLength':3}",
                   "{'type':'string','format':'email','description':'{minLength: 3}'}");
    schema_becomes("{'type':'string','format':'zip'}",
                   "{'type':'string','description':'{format: \\\"zip\\\"}'}");
    schema_becomes("{'type':'array','items':{'type':'string'},'minItems':1,'maxItems':3}",
                   "{'type':'array','items':{'type':'string'},'minItems':1,"
                   "'description':'{maxItems: 3}'}");
    schema_becomes("{'type':'array','minItems':2}",
                   "{'type':'array','description':'{minItems: 2}'}");
    /* enum / const need no type; oneOf becomes anyOf; $defs and $ref */
    schema_becomes("{'type':'string','enum':['a','b']}", "{'enum':['a','b']}");
    schema_becomes("{'const':7,'title':'T'}", "{'const':7,'title':'T'}");
    schema_becomes("{'oneOf':[{'type':'string'},{'type':'null'}]}",
                   "{'anyOf':[{'type':'string'},{'type':'null'}]}");
    schema_becomes("{'$schema':'x','$defs':{'p':{'type':'object','properties':"
                   "{'q':{'$ref':'#/$defs/p'}}}},'$ref':'#/$defs/p'}",
                   "{'$defs':{'p':{'type':'object','properties':{'q':{'$ref':'#/$defs/p'}},"
                   "'additionalProperties':false}},'$ref':'#/$defs/p'}");
    schema_becomes("{'allOf':[{'type':'object','properties':{}}]}",
                   "{'allOf':[{'type':'object','properties':{},'additionalProperties':false}]}");
    /* not expressible: the prompt form is used instead */
    schema_becomes("{'properties':{'a':{'type':'string'}}}", NULL);
    schema_becomes("{'type':['string','null']}", NULL);
    schema_becomes("{'type':'object','properties':{'a':{'description':'no type'}}}", NULL);
    schema_becomes("{'type':'object','properties':[]}", NULL);
    schema_becomes("{'anyOf':{}}", NULL);
    schema_becomes("[1]", NULL);
    schema_becomes("'x'", NULL);
}

static void test_strict_schema_depth(void **state)
{
    char buf[4096];
    size_t n = 0;
    int i;

    (void)state;
    /* 40 nested arrays: past the depth limit, no recursion without end */
    for (i = 0; i < 40; i++) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{'type':'array','items':");
    }
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{'type':'string'}");
    for (i = 0; i < 40; i++) {
        buf[n++] = '}';
    }
    buf[n] = 0;
    schema_becomes(buf, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_model_table),
        T(test_reasoning_mapping),
        T(test_strict_schema),
        T(test_strict_schema_depth),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests_name("anthropic_output", tests, NULL, NULL);
    apr_terminate();
    return rc;
}
