/*
 * Checkpoints (executor/checkpoint.c): the signing key on disk, sign and
 * verify, every single-character change and every cut of a token, tokens
 * from a key we do not hold, rotation, reloading from disk, and the key
 * in the credentials directory taking precedence.
 *
 * The keys are process globals: each test sets them with
 * checkpoint_keys_init() on directories of its own.
 */
#include <sys/stat.h>

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "executor/checkpoint.h"
#include "tests/unit/test.h"

#define TTL		3600
#define B64URL		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
			"0123456789-_"

static char	tmproot[1024];

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A new empty directory under the test's temporary root. */
static void
new_dir(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmproot, name);
	mkdir(out, 0700);
}

static void
fill_cp(struct checkpoint *cp, int with_step)
{
	memset(cp, 0, sizeof(*cp));
	snprintf(cp->approval_id, sizeof(cp->approval_id), "%s",
	    "0123456789abcdef0123456789abcdef");
	cp->tenant = strdup("acme");
	cp->env = strdup("prod");
	cp->run_id = strdup("run-42");
	cp->step_id = with_step ? strdup("step-3") : NULL;
	cp->tool = strdup("ticket.close");
	snprintf(cp->args_sha256, sizeof(cp->args_sha256), "%s",
	    "00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff");
	cp->expires_at = (uint64_t)time(NULL) + 600;
}

static int
str_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
cp_same(const struct checkpoint *a, const struct checkpoint *b)
{
	return strcmp(a->approval_id, b->approval_id) == 0 &&
	    str_same(a->tenant, b->tenant) && str_same(a->env, b->env) &&
	    str_same(a->run_id, b->run_id) &&
	    str_same(a->step_id, b->step_id) &&
	    str_same(a->tool, b->tool) &&
	    strcmp(a->args_sha256, b->args_sha256) == 0 &&
	    a->expires_at == b->expires_at;
}

/* 0 when the token verifies; the fields go to 'out' (freed by the caller). */
static int
verify(const char *tok, size_t len, struct checkpoint *out)
{
	char	err[256];
	int	rc;

	err[0] = '\0';
	rc = checkpoint_verify(tok, len, out, err, sizeof(err));
	if (rc == -1 && err[0] == '\0')
		return -2;	/* refused without saying why */
	return rc;
}

/* Verify and compare with 'want'; 1 when it verifies and matches. */
static int
verifies_as(const char *tok, const struct checkpoint *want)
{
	struct checkpoint	out;
	int			ok;

	if (verify(tok, strlen(tok), &out) != 0)
		return 0;
	ok = cp_same(&out, want);
	checkpoint_free(&out);
	return ok;
}

/* The kid a token names, from its payload (not verified). */
static int
token_kid(const char *tok, char kid[17])
{
	struct checkpoint	 cp;
	unsigned char		 payload[CHECKPOINT_MAX];
	const char		*b64 = tok + 5, *dot;
	size_t			 plen;

	if (strncmp(tok, "tgc1.", 5) != 0 || (dot = strchr(b64, '.')) == NULL)
		return -1;
	if (sodium_base642bin(payload, sizeof(payload), b64,
	    (size_t)(dot - b64), NULL, &plen, NULL,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return -1;
	if (checkpoint_decode_payload(payload, plen, &cp, kid) != 0)
		return -1;
	checkpoint_free(&cp);
	return 0;
}

/* The kid of a secret key, as checkpoint.c computes it. */
static void
sk_kid(const unsigned char sk[crypto_sign_SECRETKEYBYTES], char kid[17])
{
	unsigned char	pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char	h[crypto_hash_sha256_BYTES];

	crypto_sign_ed25519_sk_to_pk(pk, sk);
	crypto_hash_sha256(h, pk, sizeof(pk));
	sodium_bin2hex(kid, 17, h, 8);
}

/* The whole of a small file; its length, or 0. */
static size_t
slurp(const char *path, unsigned char *buf, size_t len)
{
	FILE	*f;
	size_t	 n;

	if ((f = fopen(path, "rb")) == NULL)
		return 0;
	n = fread(buf, 1, len, f);
	fclose(f);
	return n;
}

static void
test_key_file(void)
{
	char		 state[1100], path[1200], creds[1100];
	struct stat	 sb;
	unsigned char	 k1[crypto_sign_SECRETKEYBYTES + 1];
	unsigned char	 k2[crypto_sign_SECRETKEYBYTES + 1];

	new_dir(state, sizeof(state), "keyfile");
	snprintf(creds, sizeof(creds), "%s/no-such-creds", tmproot);
	checkpoint_keys_init(state, creds, TTL);
	snprintf(path, sizeof(path), "%s/checkpoint.key", state);
	ASSERT_EQ_INT(stat(path, &sb), 0);
	ASSERT(S_ISREG(sb.st_mode));
	ASSERT_EQ_INT((sb.st_mode & 07777), 0600);
	ASSERT_EQ_INT(slurp(path, k1, sizeof(k1)), crypto_sign_SECRETKEYBYTES);
	/* A second init reads the same key, it does not make another. */
	checkpoint_keys_init(state, creds, TTL);
	ASSERT_EQ_INT(slurp(path, k2, sizeof(k2)), crypto_sign_SECRETKEYBYTES);
	ASSERT_EQ_MEM(k1, k2, crypto_sign_SECRETKEYBYTES);
	/* No temporary file left behind. */
	snprintf(path, sizeof(path), "%s/checkpoint.key.tmp", state);
	ASSERT_EQ_INT(stat(path, &sb), -1);
	/* The credentials directory is only read, never created. */
	ASSERT_EQ_INT(stat(creds, &sb), -1);
}

static void
test_roundtrip(void)
{
	struct checkpoint	 cp;
	char			 state[1100], creds[1100], *tok, kid[17];
	int			 step, ok;

	new_dir(state, sizeof(state), "roundtrip");
	snprintf(creds, sizeof(creds), "%s/no-such-creds", tmproot);
	checkpoint_keys_init(state, creds, TTL);
	for (step = 0; step <= 1; step++) {
		fill_cp(&cp, step);
		tok = checkpoint_sign(&cp);
		ok = tok != NULL && strncmp(tok, "tgc1.", 5) == 0 &&
		    strlen(tok) <= CHECKPOINT_MAX && verifies_as(tok, &cp) &&
		    token_kid(tok, kid) == 0 && strlen(kid) == 16;
		free(tok);
		checkpoint_free(&cp);
		ASSERT(ok);
	}
	/* Signing is deterministic: the same fields, the same token. */
	fill_cp(&cp, 1);
	tok = checkpoint_sign(&cp);
	{
		char	*again = checkpoint_sign(&cp);

		ok = strcmp(tok, again) == 0;
		free(again);
	}
	free(tok);
	checkpoint_free(&cp);
	ASSERT(ok);
}

/*
 * Every character of a token replaced by every other character of the
 * base64url alphabet and a few more: each change fails, or (should some
 * change be equivalent in base64) gives the very same fields.
 */
static void
test_every_change(void)
{
	static const char	 chars[] = B64URL ".=+/ \t\n\x01\x7f\xff";
	struct checkpoint	 cp, out;
	char			 state[1100], creds[1100], *tok, *mut;
	size_t			 len, i, j;
	int			 rc, different = 0, unexplained = 0;
	int			 same = 0, tried = 0;

	new_dir(state, sizeof(state), "changes");
	snprintf(creds, sizeof(creds), "%s/no-such-creds", tmproot);
	checkpoint_keys_init(state, creds, TTL);
	fill_cp(&cp, 1);
	tok = checkpoint_sign(&cp);
	len = strlen(tok);
	mut = malloc(len + 1);
	for (i = 0; i < len; i++) {
		for (j = 0; j < sizeof(chars) - 1; j++) {
			if (chars[j] == tok[i])
				continue;
			memcpy(mut, tok, len + 1);
			mut[i] = chars[j];
			tried++;
			rc = verify(mut, len, &out);
			if (rc == -2)
				unexplained++;
			if (rc != 0)
				continue;
			if (cp_same(&out, &cp)) {
				/* Bytes outside: see test_non_alphabet. */
				if (strchr(B64URL, chars[j]) != NULL)
					same++;
			}
			else {
				fprintf(stderr, "change at %zu to 0x%02x "
				    "verifies as other fields\n", i,
				    (unsigned char)chars[j]);
				different++;
			}
			checkpoint_free(&out);
		}
	}
	/* And a NUL anywhere. */
	for (i = 0; i < len; i++) {
		memcpy(mut, tok, len + 1);
		mut[i] = '\0';
		rc = verify(mut, len, &out);
		if (rc == 0) {
			checkpoint_free(&out);
			different++;
		}
	}
	free(mut);
	free(tok);
	checkpoint_free(&cp);
	ASSERT(tried > 1000);
	ASSERT_EQ_INT(different, 0);
	ASSERT_EQ_INT(unexplained, 0);
	/*
	 * libsodium refuses non-zero padding bits: within the alphabet no
	 * change is equivalent.
	 */
	ASSERT_EQ_INT(same, 0);
}

/*
 * A token is base64url and dots: any other byte in it must be refused.
 * libsodium 1.0.18's sodium_base642bin() decodes every byte from 0x80 to
 * 0xff as '_' (63), so unless checkpoint_verify() checks the alphabet
 * itself, a token has many spellings that all verify.
 */
static void
test_non_alphabet(void)
{
	struct checkpoint	 cp, out;
	char			 state[1100], creds[1100], *tok, *mut;
	size_t			 len, i;
	int			 c, accepted = 0, first = -1, firstc = 0;

	new_dir(state, sizeof(state), "alphabet");
	snprintf(creds, sizeof(creds), "%s/no-such-creds", tmproot);
	checkpoint_keys_init(state, creds, TTL);
	fill_cp(&cp, 1);
	tok = checkpoint_sign(&cp);
	/* A token holding a '_', where libsodium 1.0.18 is lax. */
	for (i = 0; i < 1000 && strchr(tok, '_') == NULL; i++) {
		free(tok);
		cp.expires_at++;
		tok = checkpoint_sign(&cp);
	}
	ASSERT(strchr(tok, '_') != NULL);
	len = strlen(tok);
	mut = malloc(len + 1);
	for (i = strlen("tgc1."); i < len; i++) {
		for (c = 1; c < 256; c++) {
			if (strchr(B64URL ".", c) != NULL)
				continue;
			memcpy(mut, tok, len + 1);
			mut[i] = (char)c;
			if (verify(mut, len, &out) == 0) {
				checkpoint_free(&out);
				if (accepted++ == 0) {
					first = (int)i;
					firstc = c;
				}
			}
		}
	}
	if (accepted > 0)
		fprintf(stderr, "%d tokens with a byte outside base64url "
		    "verify, the first with 0x%02x at %d (was '%c')\n",
		    accepted, firstc, first, tok[first]);
	free(mut);
	free(tok);
	checkpoint_free(&cp);
	ASSERT_EQ_INT(accepted, 0);
}

static void
test_cuts(void)
{
	struct checkpoint	 cp, out;
	char			 state[1100], creds[1100], *tok, *longer;
	size_t			 len, cut;
	int			 bad = 0;

	new_dir(state, sizeof(state), "cuts");
	snprintf(creds, sizeof(creds), "%s/no-such-creds", tmproot);
	checkpoint_keys_init(state, creds, TTL);
	fill_cp(&cp, 0);
	tok = checkpoint_sign(&cp);
	len = strlen(tok);
	for (cut = 0; cut < len; cut++) {
		if (verify(tok, cut, &out) == 0) {
			fprintf(stderr, "cut at %zu of %zu verifies\n", cut,
			    len);
			checkpoint_free(&out);
			bad++;
		}
	}
	/* Appended characters: refused too. */
	longer = malloc(len + 3);
	memcpy(longer, tok, len);
	memcpy(longer + len, "AA", 3);
	if (verify(longer, len + 1, &out) == 0) {
		checkpoint_free(&out);
		bad++;
	}
	if (verify(longer, len + 2, &out) == 0) {
		checkpoint_free(&out);
		bad++;
	}
	memcpy(longer + len, ".A", 3);
	if (verify(longer, len + 2, &out) == 0) {
		checkpoint_free(&out);
		bad++;
	}
	free(longer);
	/* Not tokens at all. */
	ASSERT_EQ_INT(verify("", 0, &out), -1);
	ASSERT_EQ_INT(verify("tgc1.", 5, &out), -1);
	ASSERT_EQ_INT(verify("tgc1..", 6, &out), -1);
	ASSERT_EQ_INT(verify("tgc2.", 5, &out), -1);
	free(tok);
	checkpoint_free(&cp);
	ASSERT_EQ_INT(bad, 0);
}

static void
test_other_key(void)
{
	struct checkpoint	 cp;
	char			 a[1100], b[1100], creds[1100], *tok;
	int			 ok_a, ok_b, ok_again;

	new_dir(a, sizeof(a), "key-a");
	new_dir(b, sizeof(b), "key-b");
	snprintf(creds, sizeof(creds), "%s/no-such-creds", tmproot);
	checkpoint_keys_init(a, creds, TTL);
	fill_cp(&cp, 1);
	tok = checkpoint_sign(&cp);
	ok_a = verifies_as(tok, &cp);
	/* A different key: the token names a kid we do not hold. */
	checkpoint_keys_init(b, creds, TTL);
	ok_b = verifies_as(tok, &cp);
	/* Key A reloaded from its file verifies it again. */
	checkpoint_keys_init(a, creds, TTL);
	ok_again = verifies_as(tok, &cp);
	free(tok);
	checkpoint_free(&cp);
	ASSERT(ok_a);
	ASSERT(!ok_b);
	ASSERT(ok_again);
}

/*
 * A token whose kid names the current key but whose signature is another
 * key's: it must fail on the signature.
 */
static void
test_forged_kid(void)
{
	struct checkpoint	 cp;
	char			 a[1100], b[1100], creds[1100];
	char			*ta, *tb, *forged, kid[17];
	const char		*dot_a, *dot_b;
	int			 ok;

	new_dir(a, sizeof(a), "forge-a");
	new_dir(b, sizeof(b), "forge-b");
	snprintf(creds, sizeof(creds), "%s/no-such-creds", tmproot);
	fill_cp(&cp, 0);
	checkpoint_keys_init(b, creds, TTL);
	tb = checkpoint_sign(&cp);
	checkpoint_keys_init(a, creds, TTL);
	ta = checkpoint_sign(&cp);
	ASSERT_EQ_INT(token_kid(ta, kid), 0);
	/* A's payload with B's signature. */
	dot_a = strrchr(ta, '.');
	dot_b = strrchr(tb, '.');
	forged = malloc(strlen(ta) + strlen(tb));
	memcpy(forged, ta, (size_t)(dot_a - ta));
	strcpy(forged + (dot_a - ta), dot_b);
	ok = !verifies_as(forged, &cp) && verifies_as(ta, &cp);
	free(forged);
	free(ta);
	free(tb);
	checkpoint_free(&cp);
	ASSERT(ok);
}

/* The size of a file, or -1. */
static long
file_size(const char *path)
{
	struct stat	sb;

	if (stat(path, &sb) == -1)
		return -1;
	return (long)sb.st_size;
}

/*
 * Rotation: new tokens carry a new kid, and every key rotated out less
 * than ttl_s ago still verifies, also after a reload from disk.
 */
static void
test_rotate(void)
{
	struct checkpoint	 cp;
	char			 state[1100], creds[1100], old[1200], err[256];
	char			*t1, *t2, *t3, k1[17], k2[17], k3[17];
	struct stat		 sb;
	int			 ok = 1;

	new_dir(state, sizeof(state), "rotate");
	snprintf(creds, sizeof(creds), "%s/no-such-creds", tmproot);
	snprintf(old, sizeof(old), "%s/checkpoint.key.old", state);
	checkpoint_keys_init(state, creds, TTL);
	fill_cp(&cp, 1);
	t1 = checkpoint_sign(&cp);
	ASSERT_EQ_INT(checkpoint_keys_rotate(err, sizeof(err)), 0);
	t2 = checkpoint_sign(&cp);
	ok &= token_kid(t1, k1) == 0 && token_kid(t2, k2) == 0;
	ok &= strcmp(k1, k2) != 0;
	ok &= verifies_as(t1, &cp);
	ok &= verifies_as(t2, &cp);
	/* The old key is on disk, private. */
	ok &= stat(old, &sb) == 0 && (sb.st_mode & 07777) == 0600;
	ok &= file_size(old) > 0 &&
	    file_size(old) % (crypto_sign_SECRETKEYBYTES + 8) == 0;
	if (!ok)
		fprintf(stderr, "after the rotation\n");
	ASSERT(ok);

	/* Reloaded from disk, both keys still verify; signing uses k2. */
	checkpoint_keys_init(state, creds, TTL);
	ok &= verifies_as(t1, &cp);
	ok &= verifies_as(t2, &cp);
	t3 = checkpoint_sign(&cp);
	ok &= token_kid(t3, k3) == 0 && strcmp(k3, k2) == 0;
	free(t3);
	if (!ok)
		fprintf(stderr, "after the reload\n");
	ASSERT(ok);

	/*
	 * A second rotation: k1 was rotated out less than ttl_s ago, so it
	 * still verifies, as does k2; new tokens use a third kid.
	 */
	ASSERT_EQ_INT(checkpoint_keys_rotate(err, sizeof(err)), 0);
	t3 = checkpoint_sign(&cp);
	ok &= token_kid(t3, k3) == 0 && strcmp(k3, k2) != 0 &&
	    strcmp(k3, k1) != 0;
	ok &= verifies_as(t3, &cp);
	ok &= verifies_as(t2, &cp);
	if (!ok)
		fprintf(stderr, "after the second rotation\n");
	ok &= verifies_as(t1, &cp);
	if (!ok)
		fprintf(stderr, "the first key, rotated out less than ttl_s "
		    "ago, no longer verifies after a second rotation\n");
	/* And all of that again from disk. */
	checkpoint_keys_init(state, creds, TTL);
	ok &= verifies_as(t1, &cp) && verifies_as(t2, &cp) &&
	    verifies_as(t3, &cp);
	if (!ok)
		fprintf(stderr, "after the second reload\n");
	free(t1);
	free(t2);
	free(t3);
	checkpoint_free(&cp);
	ASSERT(ok);
}

/* With a ttl of 0 the old key stops verifying at once. */
static void
test_rotate_ttl0(void)
{
	struct checkpoint	 cp;
	char			 state[1100], creds[1100], err[256], *t1;
	int			 ok;

	new_dir(state, sizeof(state), "rotate0");
	snprintf(creds, sizeof(creds), "%s/no-such-creds", tmproot);
	checkpoint_keys_init(state, creds, 0);
	fill_cp(&cp, 0);
	t1 = checkpoint_sign(&cp);
	ok = verifies_as(t1, &cp);
	ok &= checkpoint_keys_rotate(err, sizeof(err)) == 0;
	ok &= !verifies_as(t1, &cp);
	/* Nor after a reload. */
	checkpoint_keys_init(state, creds, 0);
	ok &= !verifies_as(t1, &cp);
	free(t1);
	checkpoint_free(&cp);
	ASSERT(ok);
}

static void
test_credentials_key(void)
{
	struct checkpoint	 cp;
	unsigned char		 pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char		 sk[crypto_sign_SECRETKEYBYTES];
	char			 state[1100], creds[1100], nocreds[1100];
	char			 path[1200], want[17], kid[17], *ts, *tc;
	FILE			*f;
	int			 ok = 1;

	new_dir(state, sizeof(state), "cred-state");
	new_dir(creds, sizeof(creds), "creds");
	snprintf(nocreds, sizeof(nocreds), "%s/no-such-creds", tmproot);
	/* A state key first, and a token from it. */
	checkpoint_keys_init(state, nocreds, TTL);
	fill_cp(&cp, 1);
	ts = checkpoint_sign(&cp);

	/* The operator provides a key in the credentials directory. */
	crypto_sign_keypair(pk, sk);
	sk_kid(sk, want);
	snprintf(path, sizeof(path), "%s/checkpoint.key", creds);
	ASSERT((f = fopen(path, "wb")) != NULL);
	ASSERT_EQ_INT(fwrite(sk, 1, sizeof(sk), f), sizeof(sk));
	fclose(f);
	chmod(path, 0600);

	checkpoint_keys_init(state, creds, TTL);
	tc = checkpoint_sign(&cp);
	ok &= token_kid(tc, kid) == 0 && strcmp(kid, want) == 0;
	ok &= verifies_as(tc, &cp);
	/* The state key is not used, not even to verify. */
	ok &= !verifies_as(ts, &cp);
	if (!ok)
		fprintf(stderr, "with the credentials key\n");
	/* Without the credentials key, the state key is back. */
	checkpoint_keys_init(state, nocreds, TTL);
	ok &= verifies_as(ts, &cp);
	ok &= !verifies_as(tc, &cp);
	free(ts);
	free(tc);
	checkpoint_free(&cp);
	sodium_memzero(sk, sizeof(sk));
	ASSERT(ok);
}

/* Tokens longer than CHECKPOINT_MAX are refused unread. */
static void
test_too_long(void)
{
	struct checkpoint	 cp;
	char			*tok;

	fill_cp(&cp, 0);
	free(cp.tool);
	cp.tool = malloc(CHECKPOINT_MAX);
	memset(cp.tool, 't', CHECKPOINT_MAX - 1);
	cp.tool[CHECKPOINT_MAX - 1] = '\0';
	tok = checkpoint_sign(&cp);
	ASSERT(strlen(tok) > CHECKPOINT_MAX);
	ASSERT(!verifies_as(tok, &cp));
	free(tok);
	checkpoint_free(&cp);
}

int
main(void)
{
	const char	*dir;

	if (sodium_init() < 0) {
		fprintf(stderr, "sodium_init failed\n");
		return 1;
	}
	if ((dir = getenv("TMPDIR")) == NULL || *dir == '\0')
		dir = "/tmp";
	snprintf(tmproot, sizeof(tmproot), "%s/test_checkpoint.XXXXXX", dir);
	if (mkdtemp(tmproot) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_key_file);
	RUN(test_roundtrip);
	RUN(test_every_change);
	RUN(test_non_alphabet);
	RUN(test_cuts);
	RUN(test_other_key);
	RUN(test_forged_kid);
	RUN(test_rotate);
	RUN(test_rotate_ttl0);
	RUN(test_credentials_key);
	RUN(test_too_long);
	nftw(tmproot, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return tests_failed != 0;
}
