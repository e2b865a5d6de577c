/*
 * What the audit log keeps of a call's args (audit.args, audit.redact):
 * the canonical JSON of the args, with the values of the named top-level
 * fields replaced by a keyed hash of their canonical JSON, so that an
 * operator who knows a value can find its records (gatewayctl audit hash)
 * and one who reads the log cannot learn it.
 */
#ifndef TG_AUDITREDACT_H
#define TG_AUDITREDACT_H

#include <stddef.h>

#include "common/canon.h"

#define AUDITREDACT_KEYLEN	32
#define AUDITREDACT_PREFIX	"hmac-sha256:"
/* "hmac-sha256:" and 64 hex digits, and the NUL. */
#define AUDITREDACT_LEN		(sizeof(AUDITREDACT_PREFIX) - 1 + 64 + 1)

/*
 * The keyed hash of the len bytes at value (the canonical JSON of a
 * value): "hmac-sha256:" and the HMAC-SHA-256 of them under key, in
 * lowercase hex.
 */
void	auditredact_mac(const unsigned char key[AUDITREDACT_KEYLEN],
	    const char *value, size_t len, char out[AUDITREDACT_LEN]);

/*
 * The canonical JSON of args (json, len bytes: a JSON object as
 * canon_json() writes it) into out, with the value of every top-level
 * member whose name is one of fields[0..nfields-1] replaced by the JSON
 * string of its keyed hash.  Nested members are not looked at.  Returns
 * 0, or -1 when json is not one compact JSON object (out is then
 * undefined).
 */
int	auditredact_args(const char *json, size_t len,
	    char *const *fields, size_t nfields,
	    const unsigned char key[AUDITREDACT_KEYLEN], struct canon_buf *out);

#endif
