/*
 * libFuzzer target for executor/checkpoint.c.  Every input is used three
 * ways; each property is an abort() when broken:
 *
 *  1. checkpoint_decode_payload() on the bytes.  On success the kid is 16
 *     lowercase hex digits, the approval id 32 and args_sha256 64, tenant,
 *     env, run_id and tool are there; signing what was decoded and
 *     verifying that gives the same fields.  On failure nothing is left
 *     in the checkpoint.
 *
 *  2. checkpoint_verify() on the bytes as a checkpoint string.  On
 *     failure a reason and nothing left in the checkpoint; on success the
 *     same field checks as in 1.  The keys are fixed (see below), so the
 *     seed corpus holds checkpoints that verify and the fuzzer mutates
 *     them past the key lookup into the signature check, for the current
 *     key and for a rotated-out ("old") one.
 *
 *  3. A checkpoint built from the bytes (hex ids, free-form strings
 *     without NUL, any expiry, step_id or not) is signed; verifying the
 *     string succeeds and gives back exactly those fields, as long as
 *     the string fits CHECKPOINT_MAX (a longer one must be refused: see
 *     LONG below).  Then single-byte changes, at positions and with
 *     values taken from the bytes, to the signed string: each must make
 *     verification fail.  (The looser "fail, or give identical fields"
 *     would let the string be respelled; see HIGH.)
 *
 * HIGH: libsodium 1.0.18's sodium_base642bin() (URL-safe variant) decodes
 * every byte from 0x80 to 0xff as if it were '_' (63): its constant-time
 * character classes look at the low bits only.  This target found that a
 * checkpoint with a '_' in it still verified, with identical fields, once
 * that '_' was replaced by any of 128 non-ASCII bytes.  checkpoint_verify
 * now refuses bytes outside [A-Za-z0-9_.-] first; the strict property
 * above keeps it that way.
 *
 * LONG: checkpoint_sign() signs whatever it is given, while
 * checkpoint_verify() refuses strings over CHECKPOINT_MAX (2048) unread.
 * gatewayd bounds run_id and step_id to 256 bytes and config names to 128,
 * which keeps real checkpoints near 1.5 KB, but the executor does not
 * bound them itself: a (compromised) gatewayd sending a 2 KB run_id gets
 * a checkpoint that can never be resumed.  Fails closed, so it is only
 * noted here and checked as "refused".
 *
 *  4. The bytes as other hosts' published keys (checkpoint_peer_keys,
 *     the shared store's tg_hosts.pubkey): never more keys than lines; a
 *     checkpoint of ours still verifies with those loaded; our own
 *     published keys (checkpoint_public_keys) parse back, each one.  The
 *     peers are cleared after.
 *
 * Keys: a temporary STATE_DIR made once per process, holding
 * checkpoint.key and checkpoint.key.old written from fixed seeds (the
 * old keys file holds one expired key and one valid until far in the
 * future), then
 * checkpoint_keys_init(tmpdir, "/nonexistent", 3600).  The directory is
 * removed at exit.  Run with FUZZ_CHECKPOINT_SEEDS=DIR to write signed
 * checkpoints for the seed corpus into DIR.
 *
 * Build: links executor/checkpoint.c and executor/record.c (the payload
 * codec) besides common/ and proto/.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "executor/checkpoint.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define NMUTATE		4

static char	keydir[64];
static char	path_cur[128], path_old[128];

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_checkpoint: %s\n", what);
	abort();
}

static void
cleanup(void)
{
	unlink(path_cur);
	unlink(path_old);
	rmdir(keydir);
}

/*
 * A key file: the 64-byte secret key made from a fixed seed.  With
 * 'until', a file of old keys: records of a secret key and its 8-byte
 * big-endian expiry; here one long expired (seed 0x33, which must be
 * forgotten) and one valid until far in the future (the seed given).
 */
static void
write_key(const char *path, unsigned char seedbyte, int old)
{
	unsigned char	 seed[crypto_sign_SEEDBYTES];
	unsigned char	 pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char	 buf[2 * (crypto_sign_SECRETKEYBYTES + 8)], *p = buf;
	uint64_t	 until;
	size_t		 len;
	FILE		*f;
	int		 i, r;

	for (r = old ? 0 : 1; r < 2; r++) {
		memset(seed, r == 0 ? 0x33 : seedbyte, sizeof(seed));
		crypto_sign_seed_keypair(pk, p, seed);
		p += crypto_sign_SECRETKEYBYTES;
		if (!old)
			break;
		until = r == 0 ? 1 : (uint64_t)1 << 62;
		for (i = 0; i < 8; i++)
			*p++ = (unsigned char)(until >> (56 - 8 * i));
	}
	len = (size_t)(p - buf);
	if ((f = fopen(path, "wb")) == NULL ||
	    fwrite(buf, 1, len, f) != len || fclose(f) != 0)
		fail("cannot write a key file");
}

static struct checkpoint seed_cp(const char *step)
{
	struct checkpoint	 cp;

	memset(&cp, 0, sizeof(cp));
	memcpy(cp.approval_id, "0123456789abcdef0123456789abcdef", 33);
	cp.tenant = (char *)"acme";
	cp.env = (char *)"prod";
	cp.run_id = (char *)"run-42";
	cp.step_id = (char *)step;
	cp.tool = (char *)"ticket.close";
	memset(cp.args_sha256, 'a', 64);
	cp.expires_at = 4102444800ULL;	/* 2100-01-01 */
	return cp;
}

static void
write_seed(const char *dir, const char *name, const char *s)
{
	char	 path[4096];
	FILE	*f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL ||
	    fwrite(s, 1, strlen(s), f) != strlen(s) || fclose(f) != 0)
		fail("cannot write a seed");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct checkpoint	 cp;
	const char		*seeds = getenv("FUZZ_CHECKPOINT_SEEDS");
	char			*s;

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		fail("sodium_init");
	snprintf(keydir, sizeof(keydir), "/tmp/fuzz_checkpoint.XXXXXX");
	if (mkdtemp(keydir) == NULL)
		fail("mkdtemp");
	snprintf(path_cur, sizeof(path_cur), "%s/checkpoint.key", keydir);
	snprintf(path_old, sizeof(path_old), "%s/checkpoint.key.old", keydir);
	atexit(cleanup);

	if (seeds != NULL) {
		/* Checkpoints the old key signed, while it was current. */
		write_key(path_cur, 0x5a, 0);
		checkpoint_keys_init(keydir, "/nonexistent", 3600);
		cp = seed_cp("7");
		s = checkpoint_sign(&cp);
		write_seed(seeds, "old_key", s);
		free(s);
	}
	write_key(path_cur, 0xa5, 0);
	write_key(path_old, 0x5a, 1);
	checkpoint_keys_init(keydir, "/nonexistent", 3600);
	if (seeds != NULL) {
		cp = seed_cp("7");
		s = checkpoint_sign(&cp);
		write_seed(seeds, "cur_key", s);
		free(s);
		cp = seed_cp(NULL);
		s = checkpoint_sign(&cp);
		write_seed(seeds, "cur_key_nostep", s);
		free(s);
	}
	return 0;
}

static int
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
same(const struct checkpoint *a, const struct checkpoint *b)
{
	return strcmp(a->approval_id, b->approval_id) == 0 &&
	    str_eq(a->tenant, b->tenant) && str_eq(a->env, b->env) &&
	    str_eq(a->run_id, b->run_id) && str_eq(a->step_id, b->step_id) &&
	    str_eq(a->tool, b->tool) &&
	    strcmp(a->args_sha256, b->args_sha256) == 0 &&
	    a->expires_at == b->expires_at;
}

static int
is_hex(const char *s, size_t n)
{
	size_t	 i;

	if (strlen(s) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int
is_zero(const struct checkpoint *cp)
{
	static const struct checkpoint	 zero;

	return memcmp(cp, &zero, sizeof(zero)) == 0;
}

static void
check_fields(const struct checkpoint *cp)
{
	if (!is_hex(cp->approval_id, APPROVAL_ID_LEN) ||
	    !is_hex(cp->args_sha256, 64))
		fail("accepted an approval id or args_sha256 not in hex");
	if (cp->tenant == NULL || cp->env == NULL || cp->run_id == NULL ||
	    cp->tool == NULL)
		fail("accepted a checkpoint without a required field");
}

/* Sign cp, verify the string: the same fields, or refused when LONG. */
static char *
sign_verify(const struct checkpoint *cp, size_t *len)
{
	struct checkpoint	 got;
	char			 err[256], *s;

	s = checkpoint_sign(cp);
	*len = strlen(s);
	if (checkpoint_verify(s, *len, &got, err, sizeof(err)) == -1) {
		if (*len <= CHECKPOINT_MAX) {
			fprintf(stderr, "verify: %s\n", err);
			fail("a freshly signed checkpoint does not verify");
		}
		if (!is_zero(&got))
			fail("refused but left the checkpoint filled in");
		free(s);
		return NULL;
	}
	if (*len > CHECKPOINT_MAX)
		fail("verified a checkpoint longer than CHECKPOINT_MAX");
	if (!same(cp, &got))
		fail("a signed checkpoint verifies with other fields");
	checkpoint_free(&got);
	return s;
}

/* Input bytes, as many as asked, zero once they run out. */
struct rd {
	const uint8_t	*p;
	size_t		 n;
};

static uint8_t
rd_byte(struct rd *r)
{
	uint8_t	 b;

	if (r->n == 0)
		return 0;
	b = *r->p++;
	r->n--;
	return b;
}

static void
rd_hex(struct rd *r, char *out, size_t n)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i;

	for (i = 0; i < n; i++)
		out[i] = hex[rd_byte(r) & 15];
	out[n] = '\0';
}

/*
 * A string without NUL (NUL cannot be signed): a length byte, 0..254, or
 * 255 and two more for up to 4350 bytes (LONG needs some over 255).
 */
static char *
rd_str(struct rd *r)
{
	size_t	 n = rd_byte(r), i;
	char	*s;

	if (n == 255) {
		n = (size_t)rd_byte(r) << 8;
		n = 255 + (n | rd_byte(r)) % 4096;
	}
	if ((s = malloc(n + 1)) == NULL)
		abort();
	for (i = 0; i < n; i++)
		if ((s[i] = (char)rd_byte(r)) == '\0')
			s[i] = '\x01';
	s[n] = '\0';
	return s;
}

static void
check_structured(const uint8_t *data, size_t size)
{
	struct rd		 r = { data, size };
	struct checkpoint	 cp, got;
	char			 err[256], *s;
	size_t			 len, pos;
	uint8_t			 x;
	int			 i, j;

	memset(&cp, 0, sizeof(cp));
	rd_hex(&r, cp.approval_id, APPROVAL_ID_LEN);
	rd_hex(&r, cp.args_sha256, 64);
	for (i = 0; i < 8; i++)
		cp.expires_at = cp.expires_at << 8 | rd_byte(&r);
	cp.tenant = rd_str(&r);
	cp.env = rd_str(&r);
	cp.run_id = rd_str(&r);
	cp.tool = rd_str(&r);
	if (rd_byte(&r) & 1)
		cp.step_id = rd_str(&r);

	if ((s = sign_verify(&cp, &len)) != NULL) {
		for (i = 0; i < NMUTATE; i++) {
			pos = ((size_t)rd_byte(&r) << 8 | rd_byte(&r)) % len;
			if ((x = rd_byte(&r)) == 0)
				x = (uint8_t)(0x11 << (i & 1)) | 1;
			s[pos] ^= x;
			j = checkpoint_verify(s, len, &got, err, sizeof(err));
			if (j == 0) {
				fprintf(stderr, "byte %zu ^= 0x%02x%s\n", pos, x,
				    same(&cp, &got) ? " (same fields)" : "");
				fail("a changed checkpoint verifies");
			} else if (!is_zero(&got) || err[0] == '\0')
				fail("refused without a reason, or left "
				    "the checkpoint filled in");
			s[pos] ^= x;
		}
		free(s);
	}
	checkpoint_free(&cp);
}

/* 4: other hosts' keys, as text. */
static size_t
count_lines(const char *s)
{
	size_t	n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static void
check_peer_keys(const uint8_t *data, size_t size)
{
	struct checkpoint	 cp;
	char			*text, *ours, *s;
	size_t			 n, len;

	text = malloc(size + 1);
	if (text == NULL)
		fail("out of memory");
	memcpy(text, data, size);
	text[size] = '\0';
	n = checkpoint_peer_keys(text);
	if (n > count_lines(text) + 1)
		fail("more peer keys than lines");
	free(text);
	memset(&cp, 0, sizeof(cp));
	memset(cp.approval_id, 'a', APPROVAL_ID_LEN);
	memset(cp.args_sha256, 'b', 64);
	cp.expires_at = 4102444800ULL;
	cp.tenant = "acme";
	cp.env = "prod";
	cp.run_id = "r";
	cp.tool = "t";
	if ((s = sign_verify(&cp, &len)) == NULL)
		fail("our checkpoint does not verify with peer keys loaded");
	free(s);
	ours = checkpoint_public_keys();
	if (checkpoint_peer_keys(ours) != count_lines(ours))
		fail("our own published keys do not parse back");
	free(ours);
	(void)checkpoint_peer_keys("");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct checkpoint	 cp;
	char			 kid[17], err[256], *s;
	size_t			 len;

	/* 1. The payload decoder. */
	memset(kid, 0, sizeof(kid));
	if (checkpoint_decode_payload(data, size, &cp, kid) == 0) {
		if (!is_hex(kid, 16))
			fail("accepted a kid that is not 16 hex digits");
		check_fields(&cp);
		free(sign_verify(&cp, &len));
		checkpoint_free(&cp);
	} else if (!is_zero(&cp))
		fail("refused but left the checkpoint filled in");

	/* 2. The whole verifier. */
	err[0] = '\0';
	if (checkpoint_verify((const char *)data, size, &cp, err,
	    sizeof(err)) == 0) {
		check_fields(&cp);
		if ((s = sign_verify(&cp, &len)) == NULL)
			fail("a verified checkpoint cannot be signed again");
		free(s);
		checkpoint_free(&cp);
	} else if (err[0] == '\0' || !is_zero(&cp))
		fail("refused without a reason, or left the checkpoint"
		    " filled in");

	/* 3. Sign what the bytes describe; change a byte; verify. */
	check_structured(data, size);

	/* 4. Other hosts' keys. */
	check_peer_keys(data, size);
	return 0;
}
