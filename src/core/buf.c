/* mn_buf: growable byte buffer and the sink that collects into it. */
#include <stdlib.h>
#include <string.h>
#include "mn_buf.h"

void mn_buf_init(mn_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void mn_buf_free(mn_buf *b)
{
    free(b->data);
    mn_buf_init(b);
}

void mn_buf_reset(mn_buf *b)
{
    b->len = 0;
}

int mn_buf_append(mn_buf *b, const char *data, size_t len)
{
    /* one spare byte so callers may NUL-terminate in place */
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *n;
        while (cap < b->len + len + 1) {
            cap *= 2;
        }
        n = realloc(b->data, cap);
        if (!n) {
            return -1;
        }
        b->data = n;
        b->cap = cap;
    }
    if (len) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

static void buf_sink_write(void *baton, const char *data, size_t len)
{
    mn_buf_append(baton, data, len);
}

static void buf_sink_frame_end(void *baton)
{
    (void)baton;
}

mn_sink mn_buf_sink(mn_buf *b)
{
    mn_sink s;
    s.write = buf_sink_write;
    s.frame_end = buf_sink_frame_end;
    s.baton = b;
    return s;
}
