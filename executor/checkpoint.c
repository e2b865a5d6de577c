/*
 * Checkpoint signing and verification, and the executor's signing keys.
 * See checkpoint.h for the format.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <sodium.h>

#include "common/credpath.h"
#include "common/frame.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/record.h"
#include "executor/checkpoint.h"

#define PREFIX		"tgc1."
#define DOMAIN		"toolgate checkpoint v1"
#define KEY_FILE	"checkpoint.key"
#define OLD_KEY_FILE	"checkpoint.key.old"
/*
 * Rotated out within one ttl and still verifying.  The table grows; at this
 * many, rotation is refused rather than drop a key that must still verify.
 */
#define MAX_OLD_KEYS	1024
#define OLD_REC		(crypto_sign_SECRETKEYBYTES + 8)

struct sigkey {
	int		present;
	unsigned char	pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char	sk[crypto_sign_SECRETKEYBYTES];
	char		kid[17];	/* 16 hex digits of SHA-256(pk) */
	uint64_t	valid_until;	/* old key: 0 = forever */
};

static struct sigkey	cur_key;
static struct sigkey	*old_keys;	/* rotated out, still verifying */
static size_t		 nold, oldcap;
static char		key_path[4096], old_path[4096];
/* Other hosts' public keys (the shared store): they verify, never sign. */
static struct sigkey	*peer_keys;
static size_t		 npeer;
static uint64_t		key_ttl_s;

static void
key_id(struct sigkey *k)
{
	unsigned char	h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, k->pk, sizeof(k->pk));
	sodium_bin2hex(k->kid, sizeof(k->kid), h, 8);
}

/* A key file: the 64-byte Ed25519 secret key. */
static int
key_read(const char *path, struct sigkey *k)
{
	unsigned char	buf[crypto_sign_SECRETKEYBYTES + 1];
	ssize_t		n;
	int		fd;

	memset(k, 0, sizeof(*k));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n != (ssize_t)crypto_sign_SECRETKEYBYTES)
		fatalx("%s: not a checkpoint key", path);
	memcpy(k->sk, buf, crypto_sign_SECRETKEYBYTES);
	crypto_sign_ed25519_sk_to_pk(k->pk, k->sk);
	k->present = 1;
	key_id(k);
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

/* Write a file whole, then rename it into place. */
static int
file_replace(const char *path, const unsigned char *buf, size_t len)
{
	char	tmp[4200];
	int	fd, rc = -1;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd != -1 && write(fd, buf, len) == (ssize_t)len &&
	    fsync(fd) == 0 && rename(tmp, path) == 0)
		rc = 0;
	if (fd != -1)
		close(fd);
	return rc;
}

static int
key_write(const char *path, const struct sigkey *k)
{
	return file_replace(path, k->sk, sizeof(k->sk));
}

/* Room for one more old key. */
static void
old_keys_grow(void)
{
	struct sigkey	*n;

	if (nold < oldcap)
		return;
	oldcap = oldcap == 0 ? 16 : oldcap * 2;
	/* Copied by hand, not realloc'ed: the old table is wiped first. */
	n = xcalloc(oldcap, sizeof(*n));
	if (nold > 0)
		memcpy(n, old_keys, nold * sizeof(*n));
	if (old_keys != NULL) {
		sodium_memzero(old_keys, nold * sizeof(*old_keys));
		free(old_keys);
	}
	old_keys = n;
}

/* The old keys file: records of a secret key and its 8-byte expiry. */
static int
old_keys_write(void)
{
	unsigned char	*buf;
	size_t		 i;
	int		 j, rc;

	buf = xmalloc(nold * OLD_REC + 1);
	for (i = 0; i < nold; i++) {
		memcpy(buf + i * OLD_REC, old_keys[i].sk,
		    crypto_sign_SECRETKEYBYTES);
		for (j = 0; j < 8; j++)
			buf[i * OLD_REC + crypto_sign_SECRETKEYBYTES + j] =
			    (unsigned char)(old_keys[i].valid_until >>
			    (56 - 8 * j));
	}
	rc = file_replace(old_path, buf, nold * OLD_REC);
	sodium_memzero(buf, nold * OLD_REC + 1);
	free(buf);
	return rc;
}

/*
 * Read the old keys file whole: every key in it that has not expired is
 * kept, however many there are.
 */
static void
old_keys_read(void)
{
	unsigned char	*buf;
	uint64_t	 now = (uint64_t)time(NULL);
	struct stat	 st;
	ssize_t		 n;
	size_t		 i, len, off;
	int		 fd, j;

	nold = 0;
	if ((fd = open(old_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size % OLD_REC != 0)
		fatalx("%s: not a file of checkpoint keys", old_path);
	len = (size_t)st.st_size;
	buf = xmalloc(len + 1);
	for (off = 0; off < len; off += (size_t)n) {
		n = read(fd, buf + off, len - off);
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0)
			fatalx("%s: cannot read the checkpoint keys", old_path);
	}
	close(fd);
	for (i = 0; i < len / OLD_REC; i++) {
		struct sigkey	*k;

		old_keys_grow();
		k = &old_keys[nold];
		memset(k, 0, sizeof(*k));
		memcpy(k->sk, buf + i * OLD_REC, crypto_sign_SECRETKEYBYTES);
		for (j = 0; j < 8; j++)
			k->valid_until = k->valid_until << 8 |
			    buf[i * OLD_REC + crypto_sign_SECRETKEYBYTES + j];
		if (k->valid_until <= now)
			continue;	/* expired: forget it */
		crypto_sign_ed25519_sk_to_pk(k->pk, k->sk);
		k->present = 1;
		key_id(k);
		nold++;
	}
	sodium_memzero(buf, len + 1);
	free(buf);
}

void
checkpoint_keys_init(const char *state_dir, const char *creds_dir,
    uint64_t ttl_s)
{
	char		 cred_key[4096];
	const char	*comp[1] = { KEY_FILE }, *why = NULL;

	key_ttl_s = ttl_s;
	/* In systemd's flat credentials directory: ID_checkpoint.key. */
	if (credpath(cred_key, sizeof(cred_key), creds_dir, comp, 1,
	    &why) == -1)
		fatalx("%s/%s: %s", creds_dir, KEY_FILE, why);
	snprintf(key_path, sizeof(key_path), "%s/%s", state_dir, KEY_FILE);
	snprintf(old_path, sizeof(old_path), "%s/%s", state_dir, OLD_KEY_FILE);
	if (key_read(cred_key, &cur_key) == 0) {
		log_info("checkpoint key %s from %s", cur_key.kid, cred_key);
		snprintf(key_path, sizeof(key_path), "%s", cred_key);
	} else if (key_read(key_path, &cur_key) == -1) {
		if (errno != ENOENT)
			fatal("%s", key_path);
		crypto_sign_keypair(cur_key.pk, cur_key.sk);
		cur_key.present = 1;
		key_id(&cur_key);
		if (key_write(key_path, &cur_key) == -1)
			fatal("%s", key_path);
		log_info("checkpoint key %s created in %s", cur_key.kid,
		    key_path);
	}
	old_keys_read();
}

/* Seconds until the first old key expires. */
static uint64_t
old_keys_first_expiry(void)
{
	uint64_t	now = (uint64_t)time(NULL), first = UINT64_MAX;
	size_t		i;

	for (i = 0; i < nold; i++)
		if (old_keys[i].valid_until < first)
			first = old_keys[i].valid_until;
	return first > now && first != UINT64_MAX ? first - now : 0;
}

int
checkpoint_keys_rotate(char *err, size_t errlen)
{
	struct sigkey	next;

	memset(&next, 0, sizeof(next));
	crypto_sign_keypair(next.pk, next.sk);
	next.present = 1;
	key_id(&next);
	/* Forget expired old keys; never one that must still verify. */
	old_keys_read();
	if (nold >= MAX_OLD_KEYS) {
		sodium_memzero(&next, sizeof(next));
		snprintf(err, errlen, "%zu rotated-out keys must still verify"
		    " checkpoints (the most kept is %d): rotate again once"
		    " the first of them expires, in %llu s", nold,
		    MAX_OLD_KEYS, (unsigned long long)old_keys_first_expiry());
		return -1;
	}
	old_keys_grow();
	/* The old key keeps verifying checkpoints already handed out. */
	cur_key.valid_until = (uint64_t)time(NULL) + key_ttl_s;
	old_keys[nold++] = cur_key;
	/* Old keys first: a crash between the two loses no checkpoint. */
	if (old_keys_write() == -1 || key_write(key_path, &next) == -1) {
		snprintf(err, errlen, "cannot store the keys: %s",
		    strerror(errno));
		nold--;
		return -1;
	}
	log_info("checkpoint key rotated: %s replaces %s (which verifies"
	    " until %llu)", next.kid, cur_key.kid,
	    (unsigned long long)cur_key.valid_until);
	cur_key = next;
	sodium_memzero(&next, sizeof(next));
	return 0;
}

/* One public key a line: "HEX(pk) VALID_UNTIL" (0: the current key). */
char *
checkpoint_public_keys(void)
{
	char	*s, *t, hex[crypto_sign_PUBLICKEYBYTES * 2 + 1];
	size_t	 i;

	sodium_bin2hex(hex, sizeof(hex), cur_key.pk, sizeof(cur_key.pk));
	xasprintf(&s, "%s 0\n", hex);
	for (i = 0; i < nold; i++) {
		if (old_keys[i].valid_until <= (uint64_t)time(NULL))
			continue;
		sodium_bin2hex(hex, sizeof(hex), old_keys[i].pk,
		    sizeof(old_keys[i].pk));
		xasprintf(&t, "%s%s %llu\n", s, hex,
		    (unsigned long long)old_keys[i].valid_until);
		free(s);
		s = t;
	}
	return s;
}

size_t
checkpoint_peer_keys(const char *text)
{
	struct sigkey	 k;
	const char	*p = text, *nl;
	char		 line[256], *sp, *end;
	size_t		 len, got;

	free(peer_keys);
	peer_keys = NULL;
	npeer = 0;
	for (; *p != '\0'; p = *nl ? nl + 1 : nl) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p);
		len = (size_t)(nl - p);
		if (len == 0 || len >= sizeof(line))
			continue;
		memcpy(line, p, len);
		line[len] = '\0';
		memset(&k, 0, sizeof(k));
		if ((sp = strchr(line, ' ')) == NULL ||
		    sodium_hex2bin(k.pk, sizeof(k.pk), line,
		    (size_t)(sp - line), NULL, &got, NULL) != 0 ||
		    got != sizeof(k.pk) || sp[1] < '0' || sp[1] > '9')
			continue;
		k.valid_until = strtoull(sp + 1, &end, 10);
		if (*end != '\0')
			continue;
		k.present = 1;
		key_id(&k);
		peer_keys = xreallocarray(peer_keys, npeer + 1,
		    sizeof(*peer_keys));
		peer_keys[npeer++] = k;
	}
	return npeer;
}

/* The signed payload: a checkpoint and the id of the key signing it. */
struct payload {
	struct checkpoint	 cp;
	char			 kid[17];
};

#define STR(k, m, fl)	{ k, RF_STR, fl, offsetof(struct payload, cp.m), \
			  0, 0, NULL, 0, 0, 0 }
#define HEX(k, m, n)	{ k, RF_HEX, RF_REQUIRED, offsetof(struct payload, m), \
			  0, n, NULL, 0, 0, 0 }
/* In the order they are packed: checkpoints out there stay valid. */
static const struct rec_field payload_fields[] = {
	HEX("kid", kid, 16),
	HEX("aid", cp.approval_id, APPROVAL_ID_LEN),
	STR("tenant", tenant, RF_REQUIRED),
	STR("env", env, RF_REQUIRED),
	STR("run_id", run_id, RF_REQUIRED),
	STR("step_id", step_id, 0),
	STR("tool", tool, RF_REQUIRED),
	HEX("args_sha256", cp.args_sha256, 64),
	{ "exp", RF_UINT, RF_REQUIRED, offsetof(struct payload, cp.expires_at),
	  0, 0, NULL, 0, 0, 0 },
};
#undef STR
#undef HEX

static const struct rec_schema payload_schema = {
	"checkpoint", 0, payload_fields,
	sizeof(payload_fields) / sizeof(payload_fields[0]),
	sizeof(struct payload), NULL
};

void
checkpoint_free(struct checkpoint *cp)
{
	struct payload	p;

	memset(&p, 0, sizeof(p));
	p.cp = *cp;
	rec_free(&payload_schema, &p);
	memset(cp, 0, sizeof(*cp));
}

static void
pack_payload(msgpack_packer *pk, const struct checkpoint *cp,
    const char *kid)
{
	struct payload	p;

	memset(&p, 0, sizeof(p));
	p.cp = *cp;
	snprintf(p.kid, sizeof(p.kid), "%s", kid);
	rec_pack(pk, &payload_schema, &p);
}

static void
signed_message(msgpack_sbuffer *m, const void *payload, size_t len)
{
	msgpack_sbuffer_init(m);
	msgpack_sbuffer_write(m, DOMAIN, sizeof(DOMAIN));	/* with its NUL */
	msgpack_sbuffer_write(m, payload, len);
}

char *
checkpoint_sign(const struct checkpoint *cp)
{
	msgpack_sbuffer	 sb, m;
	msgpack_packer	 pk;
	unsigned char	 sig[crypto_sign_BYTES];
	size_t		 l1, l2;
	char		*out;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	pack_payload(&pk, cp, cur_key.kid);
	signed_message(&m, sb.data, sb.size);
	crypto_sign_detached(sig, NULL, (unsigned char *)m.data, m.size,
	    cur_key.sk);
	msgpack_sbuffer_destroy(&m);
	l1 = sodium_base64_ENCODED_LEN(sb.size,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	l2 = sodium_base64_ENCODED_LEN(sizeof(sig),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	out = xmalloc(strlen(PREFIX) + l1 + 1 + l2);
	strcpy(out, PREFIX);
	sodium_bin2base64(out + strlen(PREFIX), l1,
	    (unsigned char *)sb.data, sb.size,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	strcat(out, ".");
	sodium_bin2base64(out + strlen(out), l2, sig, sizeof(sig),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	msgpack_sbuffer_destroy(&sb);
	return out;
}

int
checkpoint_decode_payload(const unsigned char *buf, size_t len,
    struct checkpoint *cp, char kid[17])
{
	struct payload	p;

	if (rec_decode(&payload_schema, (const char *)buf, len, &p) == -1) {
		memset(cp, 0, sizeof(*cp));
		return -1;
	}
	*cp = p.cp;
	memcpy(kid, p.kid, sizeof(p.kid));
	return 0;
}

int
checkpoint_verify(const char *s, size_t len, struct checkpoint *cp,
    char *err, size_t errlen)
{
	unsigned char	 payload[CHECKPOINT_MAX], sig[crypto_sign_BYTES];
	const char	*dot, *b64;
	size_t		 plen, slen;
	char		 kid[17];
	struct sigkey	*k = NULL;
	msgpack_sbuffer	 m;
	size_t		 i;
	int		 ok;

	memset(cp, 0, sizeof(*cp));
	if (len > CHECKPOINT_MAX || len <= strlen(PREFIX) ||
	    memcmp(s, PREFIX, strlen(PREFIX)) != 0 ||
	    memchr(s, '\0', len) != NULL) {
		snprintf(err, errlen, "not a checkpoint");
		return -1;
	}
	b64 = s + strlen(PREFIX);
	len -= strlen(PREFIX);
	/*
	 * Only the URL-safe alphabet and one dot: libsodium 1.0.18 reads
	 * bytes over 0x7f as '_', and one checkpoint must have one spelling.
	 */
	for (i = 0; i < len; i++) {
		unsigned char	ch = (unsigned char)b64[i];

		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		    ch == '.')) {
			snprintf(err, errlen, "the checkpoint is not well formed");
			return -1;
		}
	}
	if ((dot = memchr(b64, '.', len)) == NULL ||
	    sodium_base642bin(payload, sizeof(payload), b64,
	    (size_t)(dot - b64), NULL, &plen, NULL,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    sodium_base642bin(sig, sizeof(sig), dot + 1,
	    len - (size_t)(dot - b64) - 1, NULL, &slen, NULL,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    slen != sizeof(sig)) {
		snprintf(err, errlen, "the checkpoint is not well formed");
		return -1;
	}
	if (checkpoint_decode_payload(payload, plen, cp, kid) == -1) {
		snprintf(err, errlen, "the checkpoint is not well formed");
		return -1;
	}
	if (cur_key.present && strcmp(kid, cur_key.kid) == 0)
		k = &cur_key;
	for (i = 0; k == NULL && i < nold; i++)
		if (strcmp(kid, old_keys[i].kid) == 0 &&
		    old_keys[i].valid_until > (uint64_t)time(NULL))
			k = &old_keys[i];
	for (i = 0; k == NULL && i < npeer; i++)
		if (strcmp(kid, peer_keys[i].kid) == 0 &&
		    (peer_keys[i].valid_until == 0 ||
		    peer_keys[i].valid_until > (uint64_t)time(NULL)))
			k = &peer_keys[i];
	if (k == NULL) {
		checkpoint_free(cp);
		snprintf(err, errlen, CHECKPOINT_UNKNOWN_KEY);
		return -1;
	}
	signed_message(&m, payload, plen);
	ok = crypto_sign_verify_detached(sig, (unsigned char *)m.data, m.size,
	    k->pk) == 0;
	msgpack_sbuffer_destroy(&m);
	if (!ok) {
		checkpoint_free(cp);
		snprintf(err, errlen, "the checkpoint's signature is not valid");
		return -1;
	}
	return 0;
}
