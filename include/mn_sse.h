/* mn_sse: incremental Server-Sent-Events parsing and frame writing.
 *
 * The parser takes upstream bytes as they arrive, split anywhere (inside a
 * UTF-8 sequence, between \r and \n), and calls back once per complete event
 * with its `event:` name and joined `data:` lines.  Lines that are not SSE
 * fields (Gemini appends a raw JSON error object to its stream) are reported
 * as raw lines so a translator can look at them.  Memory is bounded by the
 * longest line allowed: a longer line is an error, never growth. */
#ifndef MN_SSE_H
#define MN_SSE_H

#include <stddef.h>
#include <jansson.h>
#include "mn_buf.h"

typedef enum {
    MN_SSE_EVENT = 1,    /* event complete: name (may be ""), data */
    MN_SSE_RAW_LINE = 2  /* a line that is not an SSE field: data = the line */
} mn_sse_kind;

/* Return 0 to go on, non-zero to stop parsing (mn_sse_feed then returns it). */
typedef int mn_sse_cb(void *baton, mn_sse_kind kind, const char *event,
                      const char *data, size_t len);

typedef struct mn_sse_parser {
    mn_buf line;        /* the line being assembled */
    mn_buf data;        /* data of the event being assembled */
    char event[64];     /* event name of the event being assembled */
    int have_data;      /* at least one data: line seen */
    int skip_lf;        /* last byte was \r: a following \n belongs to it */
    size_t max_line;    /* longest line / event accepted */
    mn_sse_cb *cb;
    void *baton;
} mn_sse_parser;

#define MN_SSE_ERR_TOO_LONG (-1000)

void mn_sse_init(mn_sse_parser *p, size_t max_line, mn_sse_cb *cb, void *baton);
void mn_sse_free(mn_sse_parser *p);

/* Feed bytes.  Returns 0, MN_SSE_ERR_TOO_LONG, or the callback's non-zero. */
int mn_sse_feed(mn_sse_parser *p, const char *bytes, size_t len);

/* Upstream EOF: dispatches a last event that lacked its blank line. */
int mn_sse_finish(mn_sse_parser *p);

/* Writers (OpenAI side): `data: <compact json>\n\n` and `data: [DONE]\n\n`,
 * each followed by a frame end. */
void mn_sse_write_json(mn_sink *out, json_t *obj);
void mn_sse_write_done(mn_sink *out);
/* Compact JSON of obj into the sink, no framing. */
void mn_json_write(mn_sink *out, json_t *obj);

#endif
