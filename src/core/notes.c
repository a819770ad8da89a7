/* mn_notes: request notes for mod_log_config (see include/mn_notes.h). */
#include <string.h>
#include <strings.h>
#include <apr_lib.h>
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

/* Every key here begins "maniac-", the four bytes apr_table_setn and
 * apr_table_unset take as a key's checksum: each of them compared the key
 * with every note of ours by strcasecmp.  One pass finds which are there;
 * a missing one is appended (what setn does with it), a present one set or
 * unset as before, so the table ends up the same. */
#define PREFIX_LEN 7   /* "maniac-" */

void mn_notes_put(apr_table_t *notes, const mn_note *put, int n)
{
    const apr_array_header_t *a = apr_table_elts(notes);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    unsigned present = 0;
    int i, k;

    for (i = 0; i < a->nelts; i++) {
        const char *key = e[i].key;
        if (strncasecmp(key, "maniac-", PREFIX_LEN)) {
            continue;
        }
        for (k = 0; k < n; k++) {
            const char *want = put[k].key + PREFIX_LEN;
            if (apr_tolower(key[PREFIX_LEN]) == want[0] && !strcasecmp(key + PREFIX_LEN, want)) {
                present |= 1u << k;
            }
        }
    }
    for (k = 0; k < n; k++) {
        if (put[k].val) {
            if (present & (1u << k)) {
                apr_table_setn(notes, put[k].key, put[k].val);
            }
            else {
                apr_table_addn(notes, put[k].key, put[k].val);
            }
        }
        else if (present & (1u << k)) {
            apr_table_unset(notes, put[k].key);
        }
    }
}

void mn_notes_outcome(apr_pool_t *p, apr_table_t *notes, int upstream_status,
                      const mn_usage *usage, const char *error_type, const char *error_code)
{
    mn_note put[8];
    int n = 0;
    int has_error = error_type && *error_type;

    /* the last call describes the answer the client got: what an earlier
     * attempt recorded must not survive it (a NULL value takes it out) */
    put[n].key = "maniac-upstream-status";
    put[n++].val = upstream_status > 0 ? apr_itoa(p, upstream_status) : NULL;
    if (usage && usage->have) {
        put[n].key = "maniac-prompt-tokens";
        put[n++].val = apr_ltoa(p, usage->prompt_tokens);
        put[n].key = "maniac-completion-tokens";
        put[n++].val = apr_ltoa(p, usage->completion_tokens);
        put[n].key = "maniac-total-tokens";
        put[n++].val = apr_ltoa(p, usage->total_tokens);
        put[n].key = "maniac-cached-tokens";
        put[n++].val = apr_ltoa(p, usage->cached_tokens);
        put[n].key = "maniac-reasoning-tokens";
        put[n++].val = apr_ltoa(p, usage->reasoning_tokens);
    }
    put[n].key = "maniac-error";
    put[n++].val = has_error ? apr_pstrdup(p, error_type) : NULL;
    put[n].key = "maniac-error-code";
    put[n++].val = has_error && error_code && *error_code ? apr_pstrdup(p, error_code) : NULL;
    mn_notes_put(notes, put, n);
}
