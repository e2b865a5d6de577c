/*
 * Checkpoint signing and verification, and the executor's signing keys.
 * See checkpoint.h for the format.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <sodium.h>

#include "common/frame.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "executor/checkpoint.h"
#include "proto/proto.h"

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
static uint64_t		key_ttl_s;

void
checkpoint_free(struct checkpoint *cp)
{
	free(cp->tenant);
	free(cp->env);
	free(cp->run_id);
	free(cp->step_id);
	free(cp->tool);
	memset(cp, 0, sizeof(*cp));
}

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
	char	cred_key[4096];

	key_ttl_s = ttl_s;
	snprintf(cred_key, sizeof(cred_key), "%s/%s", creds_dir, KEY_FILE);
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

static void
pack_payload(msgpack_packer *pk, const struct checkpoint *cp,
    const char *kid)
{
	msgpack_pack_map(pk, cp->step_id != NULL ? 9 : 8);
	pk_kv_str(pk, "kid", kid);
	pk_kv_str(pk, "aid", cp->approval_id);
	pk_kv_str(pk, "tenant", cp->tenant);
	pk_kv_str(pk, "env", cp->env);
	pk_kv_str(pk, "run_id", cp->run_id);
	if (cp->step_id != NULL)
		pk_kv_str(pk, "step_id", cp->step_id);
	pk_kv_str(pk, "tool", cp->tool);
	pk_kv_str(pk, "args_sha256", cp->args_sha256);
	pk_kv_uint(pk, "exp", cp->expires_at);
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

static int
copy_hex(const msgpack_object *o, char *out, size_t n)
{
	size_t	i;

	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size != n)
		return -1;
	for (i = 0; i < n; i++) {
		char	ch = o->via.str.ptr[i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return -1;
		out[i] = ch;
	}
	out[n] = '\0';
	return 0;
}

static int
take_str(const msgpack_object *o, char **out)
{
	if (*out != NULL || (*out = mp_strdup(o)) == NULL)
		return -1;
	return 0;
}

int
checkpoint_decode_payload(const unsigned char *buf, size_t len,
    struct checkpoint *cp, char kid[17])
{
	msgpack_unpacked	 u;
	const msgpack_object_kv	*kv;
	const char		*why;
	uint32_t		 i, seen = 0, bit;
	int			 rc = -1;

	memset(cp, 0, sizeof(*cp));
	if (frame_unpack_map((const char *)buf, len, &u, &why) == -1)
		return -1;
	for (i = 0; i < u.data.via.map.size; i++) {
		kv = &u.data.via.map.ptr[i];
		if (mp_streq(&kv->key, "kid")) {
			bit = 1;
			if (copy_hex(&kv->val, kid, 16) == -1)
				goto out;
		} else if (mp_streq(&kv->key, "aid")) {
			bit = 2;
			if (copy_hex(&kv->val, cp->approval_id,
			    APPROVAL_ID_LEN) == -1)
				goto out;
		} else if (mp_streq(&kv->key, "tenant")) {
			bit = 4;
			if (take_str(&kv->val, &cp->tenant) == -1)
				goto out;
		} else if (mp_streq(&kv->key, "env")) {
			bit = 8;
			if (take_str(&kv->val, &cp->env) == -1)
				goto out;
		} else if (mp_streq(&kv->key, "run_id")) {
			bit = 16;
			if (take_str(&kv->val, &cp->run_id) == -1)
				goto out;
		} else if (mp_streq(&kv->key, "step_id")) {
			bit = 32;
			if (take_str(&kv->val, &cp->step_id) == -1)
				goto out;
		} else if (mp_streq(&kv->key, "tool")) {
			bit = 64;
			if (take_str(&kv->val, &cp->tool) == -1)
				goto out;
		} else if (mp_streq(&kv->key, "args_sha256")) {
			bit = 128;
			if (copy_hex(&kv->val, cp->args_sha256, 64) == -1)
				goto out;
		} else if (mp_streq(&kv->key, "exp")) {
			bit = 256;
			if (kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER)
				goto out;
			cp->expires_at = kv->val.via.u64;
		} else
			goto out;
		if (seen & bit)
			goto out;
		seen |= bit;
	}
	/* Everything but step_id is required. */
	if ((seen | 32) != 511)
		goto out;
	rc = 0;
out:
	msgpack_unpacked_destroy(&u);
	if (rc == -1)
		checkpoint_free(cp);
	return rc;
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
	if (k == NULL) {
		checkpoint_free(cp);
		snprintf(err, errlen, "the checkpoint was signed by a key we"
		    " do not hold");
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
