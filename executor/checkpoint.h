/*
 * Checkpoints: what an agent holds while its write waits for an operator.
 *
 *   "tgc1." BASE64URL(payload) "." BASE64URL(signature)
 *
 * The payload is a msgpack map binding the approval id, tenant, env, run,
 * step, tool, the full SHA-256 of the canonical args, the expiry and the
 * signing key's id.  The signature is Ed25519 over a domain string and the
 * payload, by a key only the executor holds.  gatewayd cannot sign.
 */
#ifndef TG_CHECKPOINT_H
#define TG_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#define CHECKPOINT_MAX		2048	/* longer strings are refused unread */
#define APPROVAL_ID_LEN		32	/* hex digits */

struct checkpoint {
	char		 approval_id[APPROVAL_ID_LEN + 1];
	char		*tenant;
	char		*env;
	char		*run_id;
	char		*step_id;	/* may be NULL */
	char		*tool;
	char		 args_sha256[65];
	uint64_t	 expires_at;	/* seconds since the epoch */
};

void	checkpoint_free(struct checkpoint *);

/*
 * Load the signing key: CREDENTIALS_DIR/checkpoint.key if it exists, else
 * STATE_DIR/checkpoint.key, created (mode 0600) on first start.  A key
 * rotated out less than ttl_s ago still verifies.
 */
void	checkpoint_keys_init(const char *state_dir, const char *creds_dir,
	    uint64_t ttl_s);
int	checkpoint_keys_rotate(char *err, size_t errlen);

/* Sign: a malloc'ed checkpoint string. */
char	*checkpoint_sign(const struct checkpoint *);

/*
 * Parse and verify.  Returns 0 and fills cp, or -1 with a reason (bad
 * form, unknown key, bad signature) in err.
 */
int	checkpoint_verify(const char *s, size_t len, struct checkpoint *cp,
	    char *err, size_t errlen);

/* checkpoint_verify's reason for a key neither we nor our peers hold. */
#define CHECKPOINT_UNKNOWN_KEY	"the checkpoint was signed by a key we do not hold"

/*
 * The shared store: this executor's public keys, the current and those
 * rotated out that still verify, as text for other hosts (malloc'ed; one
 * a line, "HEX VALID_UNTIL", 0 for the current one); and other hosts'
 * keys, in that text (several hosts' lines together), which then verify
 * as ours do.  Lines that do not parse are skipped.  Returns how many.
 */
char	*checkpoint_public_keys(void);
size_t	 checkpoint_peer_keys(const char *text);

/* Decode a payload without verifying (for the fuzz target). */
int	checkpoint_decode_payload(const unsigned char *buf, size_t len,
	    struct checkpoint *cp, char kid[17]);

#endif
