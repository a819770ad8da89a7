/* mn_jdump: Jansson's own output, without Jansson's per-call overhead.
 *
 * json_dumps() in Jansson 2.14 pays, on every call, a hashtable for its
 * loop check: a malloc'd bucket array, and for each object and array an
 * snprintf("%p") of its address plus a hashtable insert and delete; then a
 * strbuffer grown by realloc and a strdup of the result.  Measured with
 * callgrind on the echo answer (about 330 bytes): 38,800 instructions.
 * These functions walk the same Jansson tree with the public iterators and
 * write the same bytes, byte for byte, into the caller's buffer: the tree is
 * still built and edited with Jansson only; this is its serialiser.
 *
 * Equal to Jansson 2.14 for the flags the gateway uses (JSON_COMPACT,
 * JSON_ENCODE_ANY): key order as json_object_iter gives it, "%lld"
 * integers, reals as jsonp_dtostr writes them ("%.17g", a ".0" when there
 * is neither '.' nor 'e', no '+' or leading zeros in the exponent), strings
 * escaped as dump_string does (\" \\ \b \f \n \r \t, other controls as
 * \u00XX, '/' and non-ASCII as they are).  Whenever Jansson could answer
 * otherwise (other flags, invalid UTF-8 in a string made with a _nocheck
 * constructor, a non-container without JSON_ENCODE_ANY, nesting deeper
 * than MN_JDUMP_MAX_DEPTH where a loop could hide) these functions hand the
 * call to Jansson, so the result is always Jansson's.
 * t/unit/test_jdump.c compares both on fixtures and generated trees. */
#ifndef MN_JDUMP_H
#define MN_JDUMP_H

#include <stddef.h>
#include <jansson.h>

#define MN_JDUMP_MAX_DEPTH 4096

/* json_dumpb(): the length of the text (written to buf when it fits in
 * size bytes, not NUL-terminated), 0 on failure. */
size_t mn_json_dumpb(const json_t *json, char *buf, size_t size, size_t flags);

/* json_dumps(): a malloc'd NUL-terminated text (free() it), or NULL; *len
 * (when not NULL) gets its length. */
char *mn_json_dumps(const json_t *json, size_t flags, size_t *len);

#endif
