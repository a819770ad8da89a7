/* mn_buf: the output side of every pure unit.
 *
 * Translators never allocate response buffers themselves: they write bytes into
 * a sink that the caller owns.  In httpd the sink appends to the client brigade
 * and turns every frame end into a FLUSH bucket; in unit tests it collects
 * into a growable string.  This keeps the pure code free of httpd headers and
 * keeps memory per stream constant (nothing is retained between frames). */
#ifndef MN_BUF_H
#define MN_BUF_H

#include <stddef.h>

typedef struct mn_sink {
    /* append bytes to the current frame */
    void (*write)(void *baton, const char *data, size_t len);
    /* a frame is complete: the glue flushes it towards the client */
    void (*frame_end)(void *baton);
    void *baton;
} mn_sink;

/* A growable byte buffer (malloc based, for scratch work and tests). */
typedef struct mn_buf {
    char *data;
    size_t len;
    size_t cap;
} mn_buf;

void mn_buf_init(mn_buf *b);
void mn_buf_free(mn_buf *b);
void mn_buf_reset(mn_buf *b);
/* returns 0 on success, -1 when memory is exhausted */
int mn_buf_append(mn_buf *b, const char *data, size_t len);
/* a sink that appends everything into *b (frame ends are ignored) */
mn_sink mn_buf_sink(mn_buf *b);

#endif
