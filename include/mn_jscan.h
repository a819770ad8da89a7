/* mn_jscan: a validating JSON scanner for the stream hot path.
 *
 * One pass over a JSON text, no allocation: it says whether the text is one
 * the gateway's Jansson path accepts, and hands back the byte spans of the
 * members a translator asked for.  It is a reader only: every document the
 * gateway builds or edits is still built with Jansson; a span of a JSON
 * string (quotes included) can be copied into an output JSON text as it is.
 * Strings, most of a stream chunk's bytes, are read eight bytes at a time;
 * nothing is read outside buf[0..len) and the text needs no terminator.
 *
 * Strictness: exactly json_loadb(buf, len, 0, NULL) of Jansson 2.14, the
 * flags every json_loadb in the gateway uses (t/unit/test_jscan.c and
 * t/fuzz/fuzz_jscan.c check this against the library).  Where Jansson and
 * RFC 8259 differ, or where RFC 8259 leaves a choice, the scanner does what
 * Jansson does:
 *  - the top-level value must be an object or an array (no JSON_DECODE_ANY);
 *  - nothing but whitespace (space, tab, CR, LF) after it (no
 *    JSON_DISABLE_EOF_CHECK);
 *  - an integer (no fraction, no exponent) must fit int64: beyond it is
 *    rejected ("too big integer"), not turned into a real;
 *  - a real that strtod rounds to infinity is rejected ("real number
 *    overflow"); one that underflows is accepted;
 *  - `\u0000` is rejected in any string or key (no JSON_ALLOW_NUL); a raw
 *    byte below 0x20 inside a string is rejected;
 *  - lone or reversed UTF-16 surrogates in `\u` escapes are rejected;
 *  - the whole text must be valid UTF-8 (no overlong forms, no encoded
 *    surrogates, nothing above U+10FFFF);
 *  - nesting: a value deeper than 2048 levels (JSON_PARSER_MAX_DEPTH; the
 *    top-level value is level 1, scalars count) is rejected;
 *  - a raw NUL byte is rejected, except ONE NUL directly after a number or
 *    true/false/null, which Jansson's lexer swallows when it puts its
 *    look-ahead byte back (`[1\0]` is accepted, `[1\0\0]` and `[1 \0]` not);
 *  - duplicate keys are accepted (no JSON_REJECT_DUPLICATES) and the last
 *    one wins, as in the tree Jansson builds: spans below a key that occurs
 *    again are those of the last occurrence.
 */
#ifndef MN_JSCAN_H
#define MN_JSCAN_H

#include <stddef.h>

#define MN_JSON_MAX_DEPTH 2048
#define MN_JPATH_MAX_SEGS 8
#define MN_JSCAN_MAX_PATHS 32

typedef enum {
    MN_JT_NONE = 0,          /* the path is not in the document */
    MN_JT_OBJECT,
    MN_JT_ARRAY,
    MN_JT_STRING,
    MN_JT_NUMBER,
    MN_JT_TRUE,
    MN_JT_FALSE,
    MN_JT_NULL
} mn_jtype;

/* A member found: its bytes (a string's include the quotes). */
typedef struct mn_jspan {
    const char *p;
    size_t len;
    const char *key;         /* an object member's: the opening quote of its key */
    mn_jtype type;
    /* how often the path matched in the winning container: above 1 for a
     * duplicate key; for a path ending in `*` / `[*]` the number of members
     * or elements (span: the last one) */
    unsigned count;
} mn_jspan;

/* A compiled path, e.g. `choices[0].delta.content`, `usage`, `delta.*`,
 * `candidates[0].content.parts[*]`.  Keys are plain bytes (no `.`, `[`,
 * escapes); a wildcard may only be the last segment. */
typedef struct mn_jseg {
    const char *key;         /* NULL: an array index */
    size_t klen;
    long index;              /* -1: any (`*` or `[*]`) */
} mn_jseg;

typedef struct mn_jpath {
    int nseg;
    mn_jseg seg[MN_JPATH_MAX_SEGS];
} mn_jpath;

/* 0, or -1 when text is not a path this scanner can follow.  The keys point
 * into text, which must outlive the path. */
int mn_jpath_compile(mn_jpath *path, const char *text);

/* The same paths as constant initialisers, for the translators' fixed path
 * sets: built by the compiler, shared read-only by every thread, nothing
 * compiled per request or per stream.  `choices[0].finish_reason` is
 * MN_JPATH(MN_JK("choices"), MN_JI(0), MN_JK("finish_reason")); `delta.*` is
 * MN_JPATH(MN_JK("delta"), MN_JALL); `parts[*]` ends in MN_JEACH.  More than
 * MN_JPATH_MAX_SEGS segments do not compile (excess initialisers);
 * t/unit/test_jscan.c checks each form against mn_jpath_compile. */
#define MN_JK(name) { (name), sizeof(name) - 1, 0 }
#define MN_JI(n) { NULL, 0, (n) }
#define MN_JALL { "*", 1, -1 }
#define MN_JEACH { NULL, 0, -1 }
#define MN_JPATH(...) \
    { (int)(sizeof((mn_jseg[]){ __VA_ARGS__ }) / sizeof(mn_jseg)), { __VA_ARGS__ } }

/* Validates buf[0..len) and fills out[i] for paths[i] (npaths at most
 * MN_JSCAN_MAX_PATHS).  Returns 0 when Jansson would accept the text, -1
 * when it would not (out is then meaningless). */
int mn_jscan(const char *buf, size_t len, const mn_jpath *paths, unsigned npaths,
             mn_jspan *out);

/* A stream's frames often start alike: OpenAI's chunks repeat id, object,
 * created, model and system_fingerprint, Anthropic's text deltas their type
 * and index.  A memo keeps such a head, the top-level object's run of scalar
 * members up to the comma before its first object or array member, once a
 * frame with it was accepted, and the spans its members gave; a frame that
 * starts with the same bytes is walked from there.  The result (accept or
 * reject, every span) is the one mn_jscan gives; t/unit/test_jscan.c and
 * t/fuzz/fuzz_jscan.c check this.  Zero it before the first use (per
 * stream: it is no thread's to share); it knows the path set it was filled
 * for and starts again for another. */
#define MN_JMEMO_HEAD 256

typedef struct mn_jmemo {
    size_t len;              /* bytes of head, 0: none */
    size_t brace;            /* where in them the object opens */
    const mn_jpath *paths;
    unsigned npaths;
    unsigned long hits, misses;   /* heads found again / heads kept */
    char head[MN_JMEMO_HEAD];
    mn_jspan out[MN_JSCAN_MAX_PATHS];   /* into head */
} mn_jmemo;

int mn_jscan_memo(const char *buf, size_t len, const mn_jpath *paths, unsigned npaths,
                  mn_jspan *out, mn_jmemo *memo);

/* Does the key between quotes at raw (len bytes, escapes undecoded) equal
 * name (plain bytes)?  `\u0070rovider` equals `provider`. */
int mn_jkey_eq(const char *raw, size_t len, const char *name, size_t nlen);

#endif
