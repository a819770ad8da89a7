/* mn_wire: format registry and helpers shared by the translators. */
#include "mn_wire.h"

const mn_wire *mn_wire_for(mn_format f)
{
    switch (f) {
    case MN_FORMAT_OPENAI:
        return &mn_wire_openai;
    case MN_FORMAT_ANTHROPIC:
        return &mn_wire_anthropic;
    case MN_FORMAT_GEMINI:
        return &mn_wire_gemini;
    default:
        return NULL;
    }
}

static long int_member(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

void mn_usage_from_openai(mn_usage *u, json_t *usage)
{
    if (!json_is_object(usage)) {
        return;
    }
    u->have = 1;
    u->prompt_tokens = int_member(usage, "prompt_tokens");
    u->completion_tokens = int_member(usage, "completion_tokens");
    u->total_tokens = int_member(usage, "total_tokens");
}

json_t *mn_usage_to_openai(const mn_usage *u)
{
    return json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)u->prompt_tokens,
                     "completion_tokens", (json_int_t)u->completion_tokens,
                     "total_tokens", (json_int_t)u->total_tokens);
}
