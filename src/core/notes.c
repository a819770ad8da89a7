/* mn_notes: request notes for mod_log_config (see include/mn_notes.h). */
#include <string.h>
#include <apr_strings.h>
#include "mn_notes.h"

const char *mn_notes_join_tags(apr_pool_t *p, json_t *tags)
{
    size_t i, n = json_array_size(tags);
    apr_array_header_t *parts;
    json_t *t;
    if (!n) {
        return NULL;
    }
    parts = apr_array_make(p, (int)n, sizeof(const char *));
    json_array_foreach(tags, i, t) {
        if (json_is_string(t)) {
            *(const char **)apr_array_push(parts) = json_string_value(t);
        }
    }
    return parts->nelts ? apr_array_pstrcat(p, parts, ',') : NULL;
}

static void set_trace_note(apr_pool_t *p, apr_table_t *notes, json_t *trace,
                           const char *member, const char *note)
{
    json_t *v = json_object_get(trace, member);
    if (json_is_string(v) && json_string_length(v)) {
        apr_table_setn(notes, note, apr_pstrdup(p, json_string_value(v)));
    }
    else if (json_is_integer(v)) {
        apr_table_setn(notes, note, apr_psprintf(p, "%" APR_INT64_T_FMT,
                                                 (apr_int64_t)json_integer_value(v)));
    }
}

void mn_notes_request(apr_pool_t *p, apr_table_t *notes, const mn_policy_result *pol,
                      const char *provider, const char *model)
{
    const char *tags;
    if (provider) {
        apr_table_setn(notes, "maniac-provider", apr_pstrdup(p, provider));
    }
    if (model) {
        apr_table_setn(notes, "maniac-model", apr_pstrdup(p, model));
    }
    apr_table_setn(notes, "maniac-stream", pol->stream ? "1" : "0");
    if ((tags = mn_notes_join_tags(p, pol->tags)) != NULL) {
        apr_table_setn(notes, "maniac-tags", tags);
    }
    if (pol->metadata) {
        char *s = json_dumps(pol->metadata, JSON_COMPACT);
        if (s) {
            apr_table_setn(notes, "maniac-metadata", apr_pstrdup(p, s));
            free(s);
        }
    }
    if (pol->trace) {
        set_trace_note(p, notes, pol->trace, "id", "maniac-trace-id");
        set_trace_note(p, notes, pol->trace, "span_id", "maniac-span-id");
        set_trace_note(p, notes, pol->trace, "parent_span_id", "maniac-parent-span-id");
    }
    if (pol->ndropped) {
        int i;
        const char *joined = pol->dropped[0];
        for (i = 1; i < pol->ndropped; i++) {
            joined = apr_pstrcat(p, joined, ",", pol->dropped[i], NULL);
        }
        apr_table_setn(notes, "maniac-dropped", joined);
    }
}

void mn_notes_outcome(apr_pool_t *p, apr_table_t *notes, int upstream_status,
                      const mn_usage *usage, const char *error_type, const char *error_code)
{
    /* the last call describes the answer the client got: what an earlier
     * attempt recorded must not survive it */
    if (upstream_status > 0) {
        apr_table_setn(notes, "maniac-upstream-status", apr_itoa(p, upstream_status));
    }
    else {
        apr_table_unset(notes, "maniac-upstream-status");
    }
    if (usage && usage->have) {
        apr_table_setn(notes, "maniac-prompt-tokens", apr_ltoa(p, usage->prompt_tokens));
        apr_table_setn(notes, "maniac-completion-tokens", apr_ltoa(p, usage->completion_tokens));
        apr_table_setn(notes, "maniac-total-tokens", apr_ltoa(p, usage->total_tokens));
        apr_table_setn(notes, "maniac-cached-tokens", apr_ltoa(p, usage->cached_tokens));
        apr_table_setn(notes, "maniac-reasoning-tokens", apr_ltoa(p, usage->reasoning_tokens));
    }
    if (error_type && *error_type) {
        apr_table_setn(notes, "maniac-error", apr_pstrdup(p, error_type));
    }
    else {
        apr_table_unset(notes, "maniac-error");
    }
    if (error_type && *error_type && error_code && *error_code) {
        apr_table_setn(notes, "maniac-error-code", apr_pstrdup(p, error_code));
    }
    else {
        apr_table_unset(notes, "maniac-error-code");
    }
}
