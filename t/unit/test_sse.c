/* Unit tests for src/core/sse.c: the incremental SSE parser and the frame writers. */
#include "harness.h"
#include <dirent.h>

/* ---- a recorder: every callback appended to a log as text ---------------- */

/* Each callback becomes one record "<E|R>[<event>]<len>:<data>\n"; the
 * length prefix keeps data containing '\n' unambiguous, so two logs are
 * equal exactly when the callback sequences are equal. */
typedef struct {
    mn_buf log;
    int calls;
    int stop_at;      /* return stop_rc from the stop_at-th call (1-based); 0 = never */
    int stop_rc;
} recorder;

static void rec_init(recorder *r)
{
    mn_buf_init(&r->log);
    r->calls = 0;
    r->stop_at = 0;
    r->stop_rc = 0;
}

static void rec_append(mn_buf *log, mn_sse_kind kind, const char *event,
                       const char *data, size_t len)
{
    char head[128];
    int n = snprintf(head, sizeof(head), "%c[%s]%zu:", kind == MN_SSE_EVENT ? 'E' : 'R',
                     event, len);
    mn_buf_append(log, head, (size_t)n);
    mn_buf_append(log, data, len);
    mn_buf_append(log, "\n", 1);
}

static int rec_cb(void *baton, mn_sse_kind kind, const char *event, const char *data,
                  size_t len)
{
    recorder *r = baton;
    r->calls++;
    rec_append(&r->log, kind, event, data, len);
    return (r->stop_at && r->calls == r->stop_at) ? r->stop_rc : 0;
}

static const char *rec_text(recorder *r)
{
    return r->log.data ? r->log.data : "";
}

/* Parses text fed as the given pieces (NULL-terminated), then finish(). */
static void parse_pieces(recorder *r, size_t max_line, const char *const *pieces)
{
    mn_sse_parser p;
    mn_sse_init(&p, max_line, rec_cb, r);
    for (; *pieces; pieces++) {
        assert_int_equal(mn_sse_feed(&p, *pieces, strlen(*pieces)), 0);
    }
    assert_int_equal(mn_sse_finish(&p), 0);
    mn_sse_free(&p);
}

/* The log for text parsed in one piece. */
static void expect_log(const char *text, const char *want)
{
    recorder r;
    const char *pieces[] = { text, NULL };
    rec_init(&r);
    parse_pieces(&r, 1 << 16, pieces);
    assert_string_equal(rec_text(&r), want);
    mn_buf_free(&r.log);
}

/* Parses bytes split as in mn_t_replay_stream (0 whole, -1 bytewise, else
 * two reads) into r. */
static void parse_split(recorder *r, const char *bytes, size_t len, size_t split)
{
    mn_sse_parser p;
    mn_sse_init(&p, 1 << 20, rec_cb, r);
    if (split == (size_t)-1) {
        size_t i;
        for (i = 0; i < len; i++) {
            assert_int_equal(mn_sse_feed(&p, bytes + i, 1), 0);
        }
    }
    else if (split > 0 && split < len) {
        assert_int_equal(mn_sse_feed(&p, bytes, split), 0);
        assert_int_equal(mn_sse_feed(&p, bytes + split, len - split), 0);
    }
    else {
        assert_int_equal(mn_sse_feed(&p, bytes, len), 0);
    }
    assert_int_equal(mn_sse_finish(&p), 0);
    mn_sse_free(&p);
}

/* ---- fixtures ------------------------------------------------------------ */

/* An independent, naive reading of a fixture, valid because every fixture
 * event has exactly one data: line: strip \r, pair each data: line with
 * the event: line before it, report non-blank non-field lines as raw. */
static void reference_log(const char *text, size_t len, mn_buf *log, int *nevents)
{
    char event[64] = "";
    size_t i = 0;
    *nevents = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t llen = end - i;
        const char *line = text + i;
        if (llen && line[llen - 1] == '\r') {
            llen--;
        }
        if (llen >= 6 && !strncmp(line, "data: ", 6)) {
            rec_append(log, MN_SSE_EVENT, event, line + 6, llen - 6);
            event[0] = '\0';
            (*nevents)++;
        }
        else if (llen >= 7 && !strncmp(line, "event: ", 7)) {
            snprintf(event, sizeof(event), "%.*s", (int)(llen - 7), line + 7);
        }
        else if (llen) {
            rec_append(log, MN_SSE_RAW_LINE, "", line, llen);
        }
        i = end + 1;
    }
}

static void assert_logs_equal(const char *what, size_t split, recorder *got, const mn_buf *want)
{
    if (got->log.len != want->len || memcmp(got->log.data, want->data, want->len)) {
        fail_msg("%s split=%zu: event list differs\n--- got:\n%s\n--- want:\n%s", what,
                 split, rec_text(got), want->data);
    }
}

/* Whole, every split offset (a sample under valgrind), and one byte at a
 * time must all give the reference event list. */
static int check_fixture(const char *rel)
{
    size_t len, split, step;
    char *text = mn_t_fixture(rel, &len);
    mn_buf want;
    int nevents;
    recorder r;

    mn_buf_init(&want);
    reference_log(text, len, &want, &nevents);
    assert_true(nevents > 0);

    rec_init(&r);
    parse_split(&r, text, len, 0);
    assert_logs_equal(rel, 0, &r, &want);
    mn_buf_free(&r.log);

    rec_init(&r);
    parse_split(&r, text, len, (size_t)-1);
    assert_logs_equal(rel, (size_t)-1, &r, &want);
    mn_buf_free(&r.log);

    step = mn_t_quick() ? 37 : 1;
    for (split = 1; split < len; split += step) {
        rec_init(&r);
        parse_split(&r, text, len, split);
        assert_logs_equal(rel, split, &r, &want);
        mn_buf_free(&r.log);
    }
    mn_buf_free(&want);
    free(text);
    return nevents;
}

static void check_fixture_dir(const char *dir)
{
    char path[1024];
    DIR *d;
    struct dirent *de;
    int files = 0;
    snprintf(path, sizeof(path), "%s/%s", MN_FIXTURES, dir);
    d = opendir(path);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        char rel[512];
        if (n < 4 || strcmp(de->d_name + n - 4, ".sse")) {
            continue;
        }
        snprintf(rel, sizeof(rel), "%s/%s", dir, de->d_name);
        check_fixture(rel);
        files++;
    }
    closedir(d);
    /* an empty or moved fixture directory must not pass silently */
    assert_true(files >= 3);
}

static void test_fixtures_openai(void **state)
{
    check_fixture_dir("openai");
}

static void test_fixtures_anthropic(void **state)
{
    check_fixture_dir("anthropic");
}

static void test_fixtures_gemini(void **state)
{
    check_fixture_dir("gemini");
}

/* The counts pin the reference reading itself to the files. */
static void test_fixture_event_counts(void **state)
{
    assert_int_equal(check_fixture("openai/stream_text.sse"), 21);
    assert_int_equal(check_fixture("anthropic/stream_text.sse"), 9);
    assert_int_equal(check_fixture("gemini/stream_text.sse"), 3);
}

/* Anthropic names each event after its payload's type: the parser must hand
 * back the right name with the right data. */
static int anthropic_cb(void *baton, mn_sse_kind kind, const char *event, const char *data,
                        size_t len)
{
    int *n = baton;
    json_t *j = json_loadb(data, len, 0, NULL);
    assert_int_equal(kind, MN_SSE_EVENT);
    assert_non_null(j);
    assert_string_equal(event, json_string_value(json_object_get(j, "type")));
    json_decref(j);
    (*n)++;
    return 0;
}

static void test_anthropic_event_names(void **state)
{
    size_t len;
    char *text = mn_t_fixture("anthropic/stream_tool_call.sse", &len);
    mn_sse_parser p;
    int n = 0;
    mn_sse_init(&p, 1 << 20, anthropic_cb, &n);
    assert_int_equal(mn_sse_feed(&p, text, len), 0);
    assert_int_equal(mn_sse_finish(&p), 0);
    mn_sse_free(&p);
    assert_int_equal(n, 20);
    free(text);
}

/* Gemini appends a pretty-printed JSON error with no data: prefix; each of
 * its lines must reach the translator as a raw line, after both events. */
static void test_gemini_raw_tail(void **state)
{
    size_t len;
    char *text = mn_t_fixture("gemini/stream_error_midstream.sse", &len);
    recorder r;
    const char *log, *tail;
    rec_init(&r);
    parse_split(&r, text, len, 0);
    log = rec_text(&r);
    tail = strstr(log, "R[]");
    assert_non_null(tail);
    assert_string_equal(tail,
                        "R[]1:{\n"
                        "R[]12:  \"error\": {\n"
                        "R[]16:    \"code\": 503,\n"
                        "R[]66:    \"message\": \"The model is overloaded. Please try again later.\",\n"
                        "R[]27:    \"status\": \"UNAVAILABLE\"\n"
                        "R[]3:  }\n"
                        "R[]1:}\n");
    assert_int_equal(r.calls, 9);
    assert_true(!strncmp(log, "E[]", 3));
    mn_buf_free(&r.log);
    free(text);
}

/* ---- line endings and fields --------------------------------------------- */

static void test_line_endings(void **state)
{
    expect_log("data: a\n\ndata: b\n\n", "E[]1:a\nE[]1:b\n");
    expect_log("data: a\r\n\r\ndata: b\r\n\r\n", "E[]1:a\nE[]1:b\n");
    expect_log("data: a\r\rdata: b\r\r", "E[]1:a\nE[]1:b\n");
    /* mixed in one stream */
    expect_log("data: a\r\n\ndata: b\r\rdata: c\n\r\n", "E[]1:a\nE[]1:b\nE[]1:c\n");
}

/* A \r ending one read and its \n starting the next are one line end, not
 * a line end plus a blank line (which would dispatch early). */
static void test_crlf_straddles_reads(void **state)
{
    recorder r;
    const char *pieces[] = { "data: a\r", "\ndata: b\r", "\n\r", "\n", NULL };
    rec_init(&r);
    parse_pieces(&r, 1 << 16, pieces);
    assert_string_equal(rec_text(&r), "E[]3:a\nb\n");
    mn_buf_free(&r.log);
}

/* \r\r is two line ends: the second one is a blank line. */
static void test_cr_then_cr_across_reads(void **state)
{
    recorder r;
    const char *pieces[] = { "data: a\r", "\r", "data: b\r", "\n", "\r", "\n", NULL };
    rec_init(&r);
    parse_pieces(&r, 1 << 16, pieces);
    assert_string_equal(rec_text(&r), "E[]1:a\nE[]1:b\n");
    mn_buf_free(&r.log);
}

static void test_multiline_data(void **state)
{
    expect_log("data: a\ndata: b\ndata: c\n\n", "E[]5:a\nb\nc\n");
    /* an empty data line still contributes its \n */
    expect_log("data: a\ndata:\ndata: c\n\n", "E[]4:a\n\nc\n");
    expect_log("data\n\n", "E[]0:\n");
}

static void test_data_space(void **state)
{
    expect_log("data:x\n\n", "E[]1:x\n");
    expect_log("data: x\n\n", "E[]1:x\n");
    /* only one leading space belongs to the syntax */
    expect_log("data:  x\n\n", "E[]2: x\n");
    /* colons after the first are data */
    expect_log("data: {\"a\":1}\n\n", "E[]7:{\"a\":1}\n");
}

static void test_comments_ignored(void **state)
{
    expect_log(": keep-alive\n\n:\ndata: a\n: between\ndata: b\n\n", "E[]3:a\nb\n");
    expect_log(": only a comment\n\n", "");
}

static void test_event_names(void **state)
{
    expect_log("event: message_start\ndata: {}\n\n", "E[message_start]2:{}\n");
    expect_log("event:ping\ndata: x\n\n", "E[ping]1:x\n");
    /* the name belongs to one event only */
    expect_log("event: a\ndata: 1\n\ndata: 2\n\n", "E[a]1:1\nE[]1:2\n");
    /* an event without data is not dispatched, and its name does not leak */
    expect_log("event: lonely\n\ndata: x\n\n", "E[]1:x\n");
    /* the last event: line wins */
    expect_log("event: a\nevent: b\ndata: x\n\n", "E[b]1:x\n");
}

/* The name buffer is 64 bytes: longer names are cut, never overflowed. */
static void test_event_name_truncated(void **state)
{
    char text[256], want[256];
    char name[101];
    memset(name, 'n', 100);
    name[100] = '\0';
    snprintf(text, sizeof(text), "event: %s\ndata: x\n\n", name);
    snprintf(want, sizeof(want), "E[%.63s]1:x\n", name);
    expect_log(text, want);
}

static void test_id_retry_ignored(void **state)
{
    expect_log("id: 7\nretry: 1000\ndata: x\n\n", "E[]1:x\n");
}

static void test_raw_lines(void **state)
{
    expect_log("{\n  \"error\": 1\n}\n", "R[]1:{\nR[]12:  \"error\": 1\nR[]1:}\n");
    /* raw lines do not disturb an event being assembled */
    expect_log("data: a\nnonsense\ndata: b\n\n", "R[]8:nonsense\nE[]3:a\nb\n");
    expect_log("DATA: x\n\n", "R[]7:DATA: x\n");
}

/* ---- finish -------------------------------------------------------------- */

static void test_finish_dispatches_last_event(void **state)
{
    recorder r;
    mn_sse_parser p;

    /* line without its newline */
    rec_init(&r);
    mn_sse_init(&p, 1024, rec_cb, &r);
    assert_int_equal(mn_sse_feed(&p, "data: a\n\ndata: last", 19), 0);
    assert_string_equal(rec_text(&r), "E[]1:a\n");
    assert_int_equal(mn_sse_finish(&p), 0);
    assert_string_equal(rec_text(&r), "E[]1:a\nE[]4:last\n");
    mn_sse_free(&p);
    mn_buf_free(&r.log);

    /* complete line, no blank line */
    rec_init(&r);
    mn_sse_init(&p, 1024, rec_cb, &r);
    assert_int_equal(mn_sse_feed(&p, "event: e\ndata: last\n", 20), 0);
    assert_int_equal(r.calls, 0);
    assert_int_equal(mn_sse_finish(&p), 0);
    assert_string_equal(rec_text(&r), "E[e]4:last\n");
    /* a second finish has nothing left to dispatch */
    assert_int_equal(mn_sse_finish(&p), 0);
    assert_int_equal(r.calls, 1);
    mn_sse_free(&p);
    mn_buf_free(&r.log);

    /* an unterminated raw line at EOF is still reported */
    rec_init(&r);
    mn_sse_init(&p, 1024, rec_cb, &r);
    assert_int_equal(mn_sse_feed(&p, "}", 1), 0);
    assert_int_equal(mn_sse_finish(&p), 0);
    assert_string_equal(rec_text(&r), "R[]1:}\n");
    mn_sse_free(&p);
    mn_buf_free(&r.log);
}

static void test_finish_nothing_pending(void **state)
{
    recorder r;
    mn_sse_parser p;
    rec_init(&r);
    mn_sse_init(&p, 1024, rec_cb, &r);
    assert_int_equal(mn_sse_finish(&p), 0);
    assert_int_equal(mn_sse_feed(&p, "data: a\n\n", 9), 0);
    assert_int_equal(mn_sse_finish(&p), 0);
    assert_int_equal(r.calls, 1);
    mn_sse_free(&p);
    mn_buf_free(&r.log);
}

/* ---- limits -------------------------------------------------------------- */

static void test_too_long_single_read(void **state)
{
    recorder r;
    mn_sse_parser p;
    char line[64];
    rec_init(&r);
    mn_sse_init(&p, 16, rec_cb, &r);
    memset(line, 'x', sizeof(line));
    /* a complete line over the limit */
    memcpy(line + 40, "\n\n", 2);
    assert_int_equal(mn_sse_feed(&p, line, 42), MN_SSE_ERR_TOO_LONG);
    assert_true(p.line.len <= 16);
    assert_int_equal(r.calls, 0);
    mn_sse_free(&p);

    /* an incomplete line over the limit is refused, not kept */
    mn_sse_init(&p, 16, rec_cb, &r);
    assert_int_equal(mn_sse_feed(&p, line, 17), MN_SSE_ERR_TOO_LONG);
    assert_true(p.line.len <= 16);
    mn_sse_free(&p);
    mn_buf_free(&r.log);
}

/* A line growing across reads stops being buffered at the limit. */
static void test_too_long_across_reads(void **state)
{
    recorder r;
    mn_sse_parser p;
    int i, rc = 0;
    rec_init(&r);
    mn_sse_init(&p, 16, rec_cb, &r);
    assert_int_equal(mn_sse_feed(&p, "data: 0123", 10), 0);
    for (i = 0; i < 100 && rc == 0; i++) {
        rc = mn_sse_feed(&p, "abc", 3);
        assert_true(p.line.len <= 16);
    }
    assert_int_equal(rc, MN_SSE_ERR_TOO_LONG);
    /* 10 + 3 = 13 fits, 16 fits, 19 does not: the third read fails */
    assert_int_equal(i, 3);
    assert_int_equal(r.calls, 0);
    mn_sse_free(&p);

    /* the rest of a too-long line arriving with its newline is refused too */
    mn_sse_init(&p, 16, rec_cb, &r);
    assert_int_equal(mn_sse_feed(&p, "data: 0123456789", 16), 0);
    assert_int_equal(mn_sse_feed(&p, "X\n\n", 3), MN_SSE_ERR_TOO_LONG);
    assert_int_equal(r.calls, 0);
    mn_sse_free(&p);
    mn_buf_free(&r.log);
}

static void test_line_at_limit_ok(void **state)
{
    recorder r;
    mn_sse_parser p;
    rec_init(&r);
    mn_sse_init(&p, 16, rec_cb, &r);
    /* exactly 16 bytes, whole and split */
    assert_int_equal(mn_sse_feed(&p, "data: 0123456789\n\n", 18), 0);
    assert_int_equal(mn_sse_feed(&p, "data: 01234", 11), 0);
    assert_int_equal(mn_sse_feed(&p, "56789\n\n", 7), 0);
    assert_string_equal(rec_text(&r), "E[]10:0123456789\nE[]10:0123456789\n");
    mn_sse_free(&p);
    mn_buf_free(&r.log);
}

/* The limit covers the event too: many short data lines cannot add up to
 * an unbounded event. */
static void test_event_too_long(void **state)
{
    recorder r;
    mn_sse_parser p;
    int i, rc = 0;
    rec_init(&r);
    mn_sse_init(&p, 32, rec_cb, &r);
    for (i = 0; i < 100 && rc == 0; i++) {
        rc = mn_sse_feed(&p, "data: 0123456789\n", 17);
        assert_true(p.data.len <= 32);
    }
    assert_int_equal(rc, MN_SSE_ERR_TOO_LONG);
    assert_int_equal(r.calls, 0);
    mn_sse_free(&p);
    mn_buf_free(&r.log);
}

/* ---- callback stop -------------------------------------------------------- */

static void test_callback_stops_feed(void **state)
{
    recorder r;
    mn_sse_parser p;
    const char *text = "data: a\n\ndata: b\n\ndata: c\n\n";
    rec_init(&r);
    r.stop_at = 2;
    r.stop_rc = 7;
    mn_sse_init(&p, 1024, rec_cb, &r);
    assert_int_equal(mn_sse_feed(&p, text, strlen(text)), 7);
    assert_int_equal(r.calls, 2);
    assert_string_equal(rec_text(&r), "E[]1:a\nE[]1:b\n");
    mn_sse_free(&p);
    mn_buf_free(&r.log);

    /* a raw line's callback can stop the feed as well */
    rec_init(&r);
    r.stop_at = 1;
    r.stop_rc = -5;
    mn_sse_init(&p, 1024, rec_cb, &r);
    assert_int_equal(mn_sse_feed(&p, "junk\ndata: x\n\n", 14), -5);
    assert_int_equal(r.calls, 1);
    mn_sse_free(&p);
    mn_buf_free(&r.log);

    /* and finish passes the callback's value on */
    rec_init(&r);
    r.stop_at = 1;
    r.stop_rc = 3;
    mn_sse_init(&p, 1024, rec_cb, &r);
    assert_int_equal(mn_sse_feed(&p, "data: x", 7), 0);
    assert_int_equal(mn_sse_finish(&p), 3);
    assert_int_equal(r.calls, 1);
    mn_sse_free(&p);
    mn_buf_free(&r.log);
}

/* ---- writers --------------------------------------------------------------- */

/* A sink that logs frame ends inline as '|' so their position is checked. */
typedef struct {
    mn_buf bytes;
    int frame_ends;
} frame_sink;

static void fs_write(void *baton, const char *data, size_t len)
{
    frame_sink *f = baton;
    mn_buf_append(&f->bytes, data, len);
}

static void fs_frame_end(void *baton)
{
    frame_sink *f = baton;
    f->frame_ends++;
    mn_buf_append(&f->bytes, "|", 1);
}

static mn_sink fs_sink(frame_sink *f)
{
    mn_sink s;
    mn_buf_init(&f->bytes);
    f->frame_ends = 0;
    s.write = fs_write;
    s.frame_end = fs_frame_end;
    s.baton = f;
    return s;
}

static void test_write_json(void **state)
{
    frame_sink f;
    mn_sink s = fs_sink(&f);
    json_t *obj = json_pack("{s:i,s:s,s:[]}", "a", 1, "b", "x y\n\xe2\x80\x94", "c");
    mn_sse_write_json(&s, obj);
    assert_string_equal(f.bytes.data, "data: {\"a\":1,\"b\":\"x y\\n\xe2\x80\x94\",\"c\":[]}\n\n|");
    assert_int_equal(f.frame_ends, 1);
    json_decref(obj);
    mn_buf_free(&f.bytes);
}

static void test_write_done(void **state)
{
    frame_sink f;
    mn_sink s = fs_sink(&f);
    mn_sse_write_done(&s);
    assert_string_equal(f.bytes.data, "data: [DONE]\n\n|");
    assert_int_equal(f.frame_ends, 1);
    mn_buf_free(&f.bytes);
}

static void test_json_write_unframed(void **state)
{
    frame_sink f;
    mn_sink s = fs_sink(&f);
    json_t *obj = json_pack("{s:n,s:b}", "k", "t", 1);
    mn_json_write(&s, obj);
    assert_string_equal(f.bytes.data, "{\"k\":null,\"t\":true}");
    assert_int_equal(f.frame_ends, 0);
    json_decref(obj);
    mn_buf_free(&f.bytes);
}

/* What the writers emit, the parser reads back unchanged. */
static void test_write_parse_roundtrip(void **state)
{
    mn_buf out;
    mn_sink s;
    recorder r;
    mn_sse_parser p;
    json_t *obj = json_pack("{s:s}", "text", "line1\nline2");
    mn_buf_init(&out);
    s = mn_buf_sink(&out);
    mn_sse_write_json(&s, obj);
    mn_sse_write_done(&s);
    rec_init(&r);
    mn_sse_init(&p, 1024, rec_cb, &r);
    assert_int_equal(mn_sse_feed(&p, out.data, out.len), 0);
    assert_string_equal(rec_text(&r), "E[]23:{\"text\":\"line1\\nline2\"}\nE[]6:[DONE]\n");
    mn_sse_free(&p);
    mn_buf_free(&r.log);
    mn_buf_free(&out);
    json_decref(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_openai),
        cmocka_unit_test(test_fixtures_anthropic),
        cmocka_unit_test(test_fixtures_gemini),
        cmocka_unit_test(test_fixture_event_counts),
        cmocka_unit_test(test_anthropic_event_names),
        cmocka_unit_test(test_gemini_raw_tail),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_crlf_straddles_reads),
        cmocka_unit_test(test_cr_then_cr_across_reads),
        cmocka_unit_test(test_multiline_data),
        cmocka_unit_test(test_data_space),
        cmocka_unit_test(test_comments_ignored),
        cmocka_unit_test(test_event_names),
        cmocka_unit_test(test_event_name_truncated),
        cmocka_unit_test(test_id_retry_ignored),
        cmocka_unit_test(test_raw_lines),
        cmocka_unit_test(test_finish_dispatches_last_event),
        cmocka_unit_test(test_finish_nothing_pending),
        cmocka_unit_test(test_too_long_single_read),
        cmocka_unit_test(test_too_long_across_reads),
        cmocka_unit_test(test_line_at_limit_ok),
        cmocka_unit_test(test_event_too_long),
        cmocka_unit_test(test_callback_stops_feed),
        cmocka_unit_test(test_write_json),
        cmocka_unit_test(test_write_done),
        cmocka_unit_test(test_json_write_unframed),
        cmocka_unit_test(test_write_parse_roundtrip),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
