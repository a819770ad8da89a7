/* mn_notes: the request notes mod_log_config reads as %{maniac-...}n.
 *
 * The values are formatted here (tags joined by ',', metadata as compact
 * JSON, trace ids, token counts, dropped fields); the glue only copies them
 * into r->notes.  Secrets and message content never become notes. */
#ifndef MN_NOTES_H
#define MN_NOTES_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <jansson.h>
#include "mn_policy.h"
#include "mn_wire.h"

/* Notes known once the request is parsed and routed. */
void mn_notes_request(apr_pool_t *p, apr_table_t *notes,
                      const mn_policy_result *pol, const char *provider,
                      const char *model);

/* Notes known at the end, for the answer the client got: upstream status of
 * the attempt that produced it (0: none), usage, error type and code (NULL
 * or "": none).  Replaces status, error and code an earlier call set. */
void mn_notes_outcome(apr_pool_t *p, apr_table_t *notes, int upstream_status,
                      const mn_usage *usage, const char *error_type, const char *error_code);

/* One note to set (val not NULL) or take out (val NULL). */
typedef struct mn_note {
    const char *key;         /* begins "maniac-" */
    const char *val;
} mn_note;

/* Applies n notes (distinct keys, n <= 32) to the table exactly as
 * apr_table_setn / apr_table_unset one after another would, with one pass
 * over the table instead of one per key. */
void mn_notes_put(apr_table_t *notes, const mn_note *put, int n);

/* Tags joined by ',' (strings only); NULL when tags is NULL or empty. */
const char *mn_notes_join_tags(apr_pool_t *p, json_t *tags);

#endif
