/* mn_sse: incremental SSE parser (WHATWG event-stream rules) and writers. */
#include <string.h>
#include "mn_sse.h"

void mn_sse_init(mn_sse_parser *p, size_t max_line, mn_sse_cb *cb, void *baton)
{
    mn_buf_init(&p->line);
    mn_buf_init(&p->data);
    p->event[0] = '\0';
    p->have_data = 0;
    p->skip_lf = 0;
    p->max_line = max_line;
    p->cb = cb;
    p->baton = baton;
}

void mn_sse_free(mn_sse_parser *p)
{
    mn_buf_free(&p->line);
    mn_buf_free(&p->data);
}

static int dispatch(mn_sse_parser *p)
{
    int rc = 0;
    if (p->have_data) {
        rc = p->cb(p->baton, MN_SSE_EVENT, p->event,
                   p->data.data ? p->data.data : "", p->data.len);
    }
    mn_buf_reset(&p->data);
    p->event[0] = '\0';
    p->have_data = 0;
    return rc;
}

static int process_line(mn_sse_parser *p, const char *line, size_t len)
{
    const char *colon;
    size_t nlen;
    const char *value;
    size_t vlen;

    if (len == 0) {
        return dispatch(p);
    }
    if (line[0] == ':') {
        return 0;                       /* comment / keep-alive */
    }
    colon = memchr(line, ':', len);
    nlen = colon ? (size_t)(colon - line) : len;
    value = colon ? colon + 1 : line + len;
    vlen = colon ? len - nlen - 1 : 0;
    if (vlen && *value == ' ') {
        value++;
        vlen--;
    }
    if (nlen == 4 && !memcmp(line, "data", 4)) {
        if (p->data.len + vlen + 1 > p->max_line) {
            return MN_SSE_ERR_TOO_LONG;
        }
        if (p->have_data && mn_buf_append(&p->data, "\n", 1)) {
            return MN_SSE_ERR_TOO_LONG;
        }
        if (mn_buf_append(&p->data, value, vlen)) {
            return MN_SSE_ERR_TOO_LONG;
        }
        p->have_data = 1;
        return 0;
    }
    if (nlen == 5 && !memcmp(line, "event", 5)) {
        if (vlen >= sizeof(p->event)) {
            vlen = sizeof(p->event) - 1;
        }
        memcpy(p->event, value, vlen);
        p->event[vlen] = '\0';
        return 0;
    }
    if ((nlen == 2 && !memcmp(line, "id", 2)) || (nlen == 5 && !memcmp(line, "retry", 5))) {
        return 0;
    }
    /* Not an SSE field: translators may care (Gemini appends raw JSON). */
    return p->cb(p->baton, MN_SSE_RAW_LINE, "", line, len);
}

int mn_sse_feed(mn_sse_parser *p, const char *bytes, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        int rc;
        if (p->skip_lf) {
            p->skip_lf = 0;
            if (bytes[i] == '\n') {
                i++;
                continue;
            }
        }
        if (bytes[i] == '\n' && !p->line.len) {
            /* the blank line that ends an event: no search */
            i++;
            if ((rc = process_line(p, bytes + start, 0))) {
                return rc;
            }
            continue;
        }
        {
            /* memchr is far faster than a byte loop; \r is rare (Gemini) */
            const char *nl = memchr(bytes + i, '\n', len - i);
            const char *cr = memchr(bytes + i, '\r', (nl ? (size_t)(nl - bytes) : len) - i);
            i = cr ? (size_t)(cr - bytes) : nl ? (size_t)(nl - bytes) : len;
        }
        if (i == len) {
            /* partial line: keep it for the next read */
            if (p->line.len + (i - start) > p->max_line) {
                return MN_SSE_ERR_TOO_LONG;
            }
            if (mn_buf_append(&p->line, bytes + start, i - start)) {
                return MN_SSE_ERR_TOO_LONG;
            }
            break;
        }
        if (bytes[i] == '\r') {
            p->skip_lf = 1;
        }
        if (p->line.len) {
            if (p->line.len + (i - start) > p->max_line) {
                return MN_SSE_ERR_TOO_LONG;
            }
            if (mn_buf_append(&p->line, bytes + start, i - start)) {
                return MN_SSE_ERR_TOO_LONG;
            }
            rc = process_line(p, p->line.data, p->line.len);
            mn_buf_reset(&p->line);
        }
        else {
            if (i - start > p->max_line) {
                return MN_SSE_ERR_TOO_LONG;
            }
            rc = process_line(p, bytes + start, i - start);
        }
        i++;
        if (rc) {
            return rc;
        }
    }
    return 0;
}

int mn_sse_finish(mn_sse_parser *p)
{
    int rc = 0;
    if (p->line.len) {
        rc = process_line(p, p->line.data, p->line.len);
        mn_buf_reset(&p->line);
        if (rc) {
            return rc;
        }
    }
    return dispatch(p);
}

static int sink_dump_cb(const char *buffer, size_t size, void *data)
{
    mn_sink *out = data;
    out->write(out->baton, buffer, size);
    return 0;
}

void mn_json_write(mn_sink *out, json_t *obj)
{
    /* one write for the whole chunk: the callback form writes per token */
    char buf[4096];
    size_t n = json_dumpb(obj, buf, sizeof(buf), JSON_COMPACT);
    if (n > 0 && n <= sizeof(buf)) {
        out->write(out->baton, buf, n);
        return;
    }
    json_dump_callback(obj, sink_dump_cb, out, JSON_COMPACT);
}

void mn_sse_write_json(mn_sink *out, json_t *obj)
{
    out->write(out->baton, "data: ", 6);
    mn_json_write(out, obj);
    out->write(out->baton, "\n\n", 2);
    out->frame_end(out->baton);
}

void mn_sse_write_done(mn_sink *out)
{
    out->write(out->baton, "data: [DONE]\n\n", 14);
    out->frame_end(out->baton);
}
