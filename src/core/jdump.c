/* mn_jdump: Jansson's output, written directly (see include/mn_jdump.h). */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mn_jdump.h"

typedef struct {
    char *buf;
    size_t size;
    size_t len;          /* the whole text's, even past size */
} jw;

static void put(jw *w, const char *s, size_t n)
{
    if (w->len < w->size) {
        size_t room = w->size - w->len;
        memcpy(w->buf + w->len, s, n < room ? n : room);
    }
    w->len += n;
}

static void put_c(jw *w, char c)
{
    if (w->len < w->size) {
        w->buf[w->len] = c;
    }
    w->len++;
}

/* The length of the valid UTF-8 sequence at s (lead byte >= 0x80), 0 when
 * Jansson's utf8_iterate would refuse it. */
static size_t utf8_len(const unsigned char *s, const unsigned char *end)
{
    unsigned u = s[0];
    size_t n, i;
    unsigned long v;
    if (u >= 0xC2 && u <= 0xDF) {
        n = 2, v = u & 0x1F;
    }
    else if (u >= 0xE0 && u <= 0xEF) {
        n = 3, v = u & 0x0F;
    }
    else if (u >= 0xF0 && u <= 0xF4) {
        n = 4, v = u & 0x07;
    }
    else {
        return 0;
    }
    if ((size_t)(end - s) < n) {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) {
            return 0;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800)
        || (n == 4 && v < 0x10000)) {
        return 0;
    }
    return n;
}

static int put_string(jw *w, const char *str, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str, *end = s + len, *run = s;
    put_c(w, '"');
    while (s < end) {
        unsigned c = *s;
        char esc[6];
        size_t n;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            s++;
            continue;
        }
        if (c >= 0x80) {
            if (!(n = utf8_len(s, end))) {
                return -1;
            }
            s += n;
            continue;
        }
        put(w, (const char *)run, (size_t)(s - run));
        esc[0] = '\\';
        n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u', esc[2] = '0', esc[3] = '0';
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            n = 6;
        }
        put(w, esc, n);
        run = ++s;
    }
    put(w, (const char *)run, (size_t)(s - run));
    put_c(w, '"');
    return 0;
}

static void put_integer(jw *w, json_int_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) {
        *--p = '-';
    }
    put(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* jsonp_dtostr() of Jansson 2.14 at its default precision: "%.17g", the
 * locale's decimal point made '.', ".0" added when there is neither '.' nor
 * 'e', and the exponent without '+' or leading zeros. */
static int put_real(jw *w, double v)
{
    char tmp[128], *e;
    const char *point = localeconv()->decimal_point;
    int n = snprintf(tmp, sizeof(tmp), "%.17g", v);
    size_t len;
    if (n < 0 || (size_t)n >= 100) {
        return -1;
    }
    len = (size_t)n;
    if (*point != '.' && (e = strchr(tmp, *point))) {
        *e = '.';
    }
    if (!strchr(tmp, '.') && !strchr(tmp, 'e')) {
        memcpy(tmp + len, ".0", 3);
        len += 2;
    }
    if ((e = strchr(tmp, 'e'))) {
        char *start = e + 1, *end = e + 2;
        if (*start == '-') {
            start++;
        }
        while (*end == '0') {
            end++;
        }
        if (end != start) {
            memmove(start, end, len - (size_t)(end - tmp) + 1);
            len -= (size_t)(end - start);
        }
    }
    put(w, tmp, len);
    return 0;
}

static int dump(jw *w, const json_t *json, int depth);

static int put_array(jw *w, const json_t *json, int depth)
{
    size_t i, n = json_array_size(json);
    put_c(w, '[');
    for (i = 0; i < n; i++) {
        if (i) {
            put_c(w, ',');
        }
        if (dump(w, json_array_get(json, i), depth + 1)) {
            return -1;
        }
    }
    put_c(w, ']');
    return 0;
}

static int put_object(jw *w, const json_t *json, int depth)
{
    void *iter = json_object_iter((json_t *)json);
    int first = 1;
    put_c(w, '{');
    for (; iter; iter = json_object_iter_next((json_t *)json, iter)) {
        if (!first) {
            put_c(w, ',');
        }
        first = 0;
        if (put_string(w, json_object_iter_key(iter), json_object_iter_key_len(iter))) {
            return -1;
        }
        put_c(w, ':');
        if (dump(w, json_object_iter_value(iter), depth + 1)) {
            return -1;
        }
    }
    put_c(w, '}');
    return 0;
}

static int dump(jw *w, const json_t *json, int depth)
{
    if (!json || depth > MN_JDUMP_MAX_DEPTH) {
        return -1;
    }
    switch (json_typeof(json)) {
    case JSON_NULL:
        put(w, "null", 4);
        return 0;
    case JSON_TRUE:
        put(w, "true", 4);
        return 0;
    case JSON_FALSE:
        put(w, "false", 5);
        return 0;
    case JSON_INTEGER:
        put_integer(w, json_integer_value(json));
        return 0;
    case JSON_REAL:
        return put_real(w, json_real_value(json));
    case JSON_STRING:
        return put_string(w, json_string_value(json), json_string_length(json));
    case JSON_ARRAY:
        return put_array(w, json, depth);
    case JSON_OBJECT:
        return put_object(w, json, depth);
    }
    return -1;
}

/* 0 with w filled, -1 when Jansson must answer. */
static int dump_top(jw *w, const json_t *json, size_t flags)
{
    if ((flags & ~(size_t)JSON_ENCODE_ANY) != JSON_COMPACT || !json
        || (!(flags & JSON_ENCODE_ANY) && !json_is_object(json) && !json_is_array(json))) {
        return -1;
    }
    return dump(w, json, 0);
}

size_t mn_json_dumpb(const json_t *json, char *buf, size_t size, size_t flags)
{
    jw w = { buf, size, 0 };
    if (dump_top(&w, json, flags)) {
        return json_dumpb(json, buf, size, flags);
    }
    return w.len;
}

char *mn_json_dumps(const json_t *json, size_t flags, size_t *len)
{
    char stack[2048], *out;
    jw w = { stack, sizeof(stack), 0 };

    if (dump_top(&w, json, flags)) {
        out = json_dumps(json, flags);
        if (out && len) {
            *len = strlen(out);
        }
        return out;
    }
    out = malloc(w.len + 1);
    if (!out) {
        return NULL;
    }
    if (w.len <= sizeof(stack)) {
        memcpy(out, stack, w.len);
    }
    else {
        /* longer than the stack buffer: a second pass straight into out */
        size_t need = w.len;
        w.buf = out;
        w.size = need;
        w.len = 0;
        dump(&w, json, 0);
    }
    out[w.len] = '\0';
    if (len) {
        *len = w.len;
    }
    return out;
}
