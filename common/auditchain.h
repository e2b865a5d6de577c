/*
 * The audit log's hash chain and signed heads, and the verifier that walks
 * them (gatewayctl audit verify, and the executor at start).  Pure: lines
 * in, a verdict out; no files, no keys kept.
 *
 * A record's "prev" is the SHA-256, in lower-case hex, of the previous
 * record's line without its newline; the first record of a fresh log has
 * AUDIT_GENESIS.  A head is a record of its own (event "head") that signs
 * the seq and hash of the record before it: Ed25519 over
 * AUDIT_HEAD_DOMAIN (with its NUL), be64 head_seq, the 32 hash bytes and
 * be64 ts_ms.
 */
#ifndef TG_AUDITCHAIN_H
#define TG_AUDITCHAIN_H

#include <stddef.h>
#include <stdint.h>

#define AUDIT_GENESIS	"0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_HEAD_DOMAIN "toolgate audit head v1"
#define AUDIT_HEX	65		/* 64 hex digits and a NUL */
#define AUDIT_PKHEX	65		/* a public key in hex */
#define AUDIT_SIGHEX	129		/* a signature in hex */
#define AUDIT_LINE_MAX	(1 << 20)	/* longer lines are not records */

/* One line as the verifier sees it. */
struct auditline {
	uint64_t	seq;
	char		prev[AUDIT_HEX];
	int		is_head;
	/* A head's: what it signs, and who. */
	uint64_t	head_seq;
	char		head_hash[AUDIT_HEX];
	uint64_t	ts_ms;
	unsigned char	pk[32];
	unsigned char	sig[64];
};

/* A signed head on its own, as `gatewayctl audit head` prints it. */
struct audithead {
	uint64_t	seq;
	char		hash[AUDIT_HEX];
	uint64_t	ts_ms;
	unsigned char	pk[32];
	unsigned char	sig[64];
};

/* SHA-256 of len bytes in hex (out: AUDIT_HEX bytes). */
void	auditchain_hash(const char *line, size_t len, char *out);
/*
 * Parse a line (no newline).  0, or -1 and *why when it is not a record of
 * ours: not a JSON object, no seq, no well-formed prev, a head without its
 * fields.
 */
int	auditchain_parse(const char *line, size_t len, struct auditline *,
	    const char **why);
/* A kept head's JSON text (seq, hash, ts_ms, signature, public_key). */
int	auditchain_head_parse(const char *text, size_t len, struct audithead *,
	    const char **why);
/* The head's JSON text, one line, newline included; the caller frees it. */
char	*auditchain_head_json(const struct audithead *);
/* Sign with a 64-byte Ed25519 secret key; pk is set from it. */
void	auditchain_head_sign(struct audithead *, const unsigned char *sk);
/* 0 when the signature holds for the head's own public key. */
int	auditchain_head_check(const struct audithead *);

/*
 * The verifier: lines are fed in order, oldest file first; it keeps what
 * it needs of each (seq and hashes: 72 bytes a line) and judges at the end,
 * so a break can be told apart as an edit, a deletion or a reorder.
 */
struct auditverify;

/*
 * key: the executor's public key (32 bytes) every head must carry, or NULL
 * to take the first head's.  kept: a head kept off the host the log must
 * still reach, or NULL.
 */
struct auditverify *auditverify_new(const unsigned char *key,
	    const struct audithead *kept);
/*
 * A new file begins (name for messages); mid_chain: it may start past the
 * genesis (older files were removed), only for the oldest file.
 */
void	auditverify_file(struct auditverify *, const char *name, int mid_chain);
void	auditverify_line(struct auditverify *, const char *line, size_t len);
/*
 * 0 when every link and head holds, else -1 and msg says where and how.
 * *lines and *heads count what was seen.
 */
int	auditverify_end(struct auditverify *, char *msg, size_t msglen,
	    uint64_t *lines, uint64_t *heads);
void	auditverify_free(struct auditverify *);

/*
 * Verify the log at path and its rotated files (path.N ... path.1, oldest
 * first; the oldest may start past the genesis when there are rotated
 * files).  A torn last line (no newline) is not counted: the executor cuts
 * it at start.  0 ok, -1 broken (msg says where and how), -2 the files
 * cannot be read (msg says why).
 */
int	auditchain_verify_log(const char *path, const unsigned char *key,
	    const struct audithead *kept, char *msg, size_t msglen,
	    uint64_t *lines, uint64_t *heads);
/*
 * Feed fn every whole line of the log at path and its rotated files, oldest
 * first, as verify reads them: 0, or -1 (msg says why) when one cannot be
 * read.
 */
int	auditchain_each_line(const char *path,
	    void (*fn)(void *, const char *, size_t), void *arg, char *msg,
	    size_t msglen);
/* The last head in the log at path (or its rotated files): 0, or -1. */
int	auditchain_last_head(const char *path, struct audithead *);
#endif
