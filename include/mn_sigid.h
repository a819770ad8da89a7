/* mn_sigid: Gemini thought signatures carried in OpenAI tool-call ids.
 *
 * Gemini 3 signs functionCall parts (`thoughtSignature`) and refuses the next
 * turn when the signature of a current-turn call does not come back.  OpenAI
 * clients keep nothing of a tool call but its id, which every client echoes
 * verbatim, so the gateway hides the signature in the id: stateless, and any
 * client works.
 *
 * Version 1 of the encoding (the only one):
 *
 *     gsig1_<base64url without padding of PAYLOAD>
 *     PAYLOAD = varint(len(call_id)) call_id signature check
 *
 * varint is unsigned LEB128 (7 bits a byte, low first, at most 4 bytes);
 * call_id and signature are the bytes as they came (any bytes); check is
 * 4 bytes, big-endian FNV-1a 32 of everything before it.  The alphabet
 * [A-Za-z0-9_-] is what every provider allows in a tool-call id.  The check
 * exists only to notice a client that cut or edited the id: such an id
 * decodes as BROKEN and the request uses Google's placeholder signature, it
 * is never an error.  A version 2 would take the prefix gsig2_.
 *
 * Pure: APR only. */
#ifndef MN_SIGID_H
#define MN_SIGID_H

#include <stddef.h>
#include <apr_pools.h>

#define MN_SIGID_PREFIX "gsig1_"
#define MN_SIGID_PREFIX_LEN 6

/* The signature Google documents for function calls that Gemini did not
 * produce (another model's history, a client's own, an id a client broke). */
#define MN_SIGID_PLACEHOLDER "skip_thought_signature_validator"

typedef enum {
    MN_SIGID_PLAIN = 0,      /* not ours: the id is the call id, no signature */
    MN_SIGID_OK = 1,         /* call id and signature decoded */
    MN_SIGID_BROKEN = 2      /* has our prefix but does not decode or check */
} mn_sigid_rc;

/* The id for a call: gsig1_… when sig_len > 0, else a copy of call_id.
 * NUL-terminated, from p. */
char *mn_sigid_encode(apr_pool_t *p, const char *call_id, size_t call_len,
                      const char *sig, size_t sig_len);

/* Splits an id.  OK: *call_id, *call_len, *sig and *sig_len (both from p,
 * NUL-terminated).  PLAIN and BROKEN: *call_id is id itself and *sig NULL. */
mn_sigid_rc mn_sigid_decode(apr_pool_t *p, const char *id, size_t id_len,
                            const char **call_id, size_t *call_len,
                            const char **sig, size_t *sig_len);

/* The id a non-Gemini upstream gets: the call id of an OK id, id itself when
 * PLAIN, and for a BROKEN one `call_` + 24 hex digits of a hash of it (the
 * same for the same bytes, so a tool message still matches its call, and
 * short enough for OpenAI's id limit). */
const char *mn_sigid_plain(apr_pool_t *p, const char *id, size_t id_len, size_t *out_len);

#endif
