/*
 * The audit log's hash chain, signed heads and their verifier
 * (auditchain.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/auditchain.h"
#include "common/xmalloc.h"

void
auditchain_hash(const char *line, size_t len, char *out)
{
	unsigned char	h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)line, len);
	sodium_bin2hex(out, AUDIT_HEX, h, sizeof(h));
}

/* Lower-case hex of exactly n bytes (one spelling for one value). */
static int
hex_get(json_t *o, const char *key, unsigned char *bin, size_t n)
{
	const char	*s;
	size_t		 i, len;

	o = json_object_get(o, key);
	if (!json_is_string(o))
		return -1;
	s = json_string_value(o);
	len = json_string_length(o);
	if (len != 2 * n)
		return -1;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return -1;
	if (bin != NULL && sodium_hex2bin(bin, n, s, len, NULL, NULL,
	    NULL) != 0)
		return -1;
	return 0;
}

static int
hexstr_get(json_t *o, const char *key, char *out)
{
	if (hex_get(o, key, NULL, 32) == -1)
		return -1;
	memcpy(out, json_string_value(json_object_get(o, key)), 64);
	out[64] = '\0';
	return 0;
}

static int
uint_get(json_t *o, const char *key, uint64_t *v)
{
	json_t	*j = json_object_get(o, key);

	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return -1;
	*v = (uint64_t)json_integer_value(j);
	return 0;
}

int
auditchain_parse(const char *line, size_t len, struct auditline *l,
    const char **why)
{
	json_t		*o;
	const char	*ev;
	int		 rc = -1;

	memset(l, 0, sizeof(*l));
	*why = "not a JSON object";
	if (len > AUDIT_LINE_MAX ||
	    (o = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return -1;
	if (!json_is_object(o))
		goto out;
	*why = "no seq";
	if (uint_get(o, "seq", &l->seq) == -1)
		goto out;
	*why = "no well-formed prev";
	if (hexstr_get(o, "prev", l->prev) == -1)
		goto out;
	ev = json_string_value(json_object_get(o, "event"));
	if (ev != NULL && strcmp(ev, "head") == 0) {
		*why = "a head without its seq, hash, time, key or signature";
		l->is_head = 1;
		if (uint_get(o, "head_seq", &l->head_seq) == -1 ||
		    hexstr_get(o, "head_hash", l->head_hash) == -1 ||
		    uint_get(o, "ts_ms", &l->ts_ms) == -1 ||
		    hex_get(o, "public_key", l->pk, sizeof(l->pk)) == -1 ||
		    hex_get(o, "signature", l->sig, sizeof(l->sig)) == -1)
			goto out;
	}
	rc = 0;
 out:
	json_decref(o);
	return rc;
}

int
auditchain_head_parse(const char *text, size_t len, struct audithead *h,
    const char **why)
{
	json_t	*o;
	int	 rc = -1;

	memset(h, 0, sizeof(*h));
	*why = "not a JSON object";
	if (len > AUDIT_LINE_MAX ||
	    (o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return -1;
	*why = "a head needs seq, hash, ts_ms, public_key and signature";
	if (json_is_object(o) &&
	    uint_get(o, "seq", &h->seq) == 0 &&
	    hexstr_get(o, "hash", h->hash) == 0 &&
	    uint_get(o, "ts_ms", &h->ts_ms) == 0 &&
	    hex_get(o, "public_key", h->pk, sizeof(h->pk)) == 0 &&
	    hex_get(o, "signature", h->sig, sizeof(h->sig)) == 0)
		rc = 0;
	json_decref(o);
	return rc;
}

char *
auditchain_head_json(const struct audithead *h)
{
	char	pk[AUDIT_PKHEX], sig[AUDIT_SIGHEX], *out;

	sodium_bin2hex(pk, sizeof(pk), h->pk, sizeof(h->pk));
	sodium_bin2hex(sig, sizeof(sig), h->sig, sizeof(h->sig));
	if (asprintf(&out, "{\"seq\":%llu,\"hash\":\"%s\",\"ts_ms\":%llu,"
	    "\"public_key\":\"%s\",\"signature\":\"%s\"}\n",
	    (unsigned long long)h->seq, h->hash,
	    (unsigned long long)h->ts_ms, pk, sig) == -1)
		return NULL;
	return out;
}

/* What a head signs: see auditchain.h. */
static size_t
head_msg(const struct audithead *h, unsigned char *m)
{
	size_t	n = sizeof(AUDIT_HEAD_DOMAIN);
	int	i;

	memcpy(m, AUDIT_HEAD_DOMAIN, n);
	for (i = 0; i < 8; i++)
		m[n++] = (unsigned char)(h->seq >> (56 - 8 * i));
	if (sodium_hex2bin(m + n, 32, h->hash, 64, NULL, NULL, NULL) != 0)
		memset(m + n, 0, 32);
	n += 32;
	for (i = 0; i < 8; i++)
		m[n++] = (unsigned char)(h->ts_ms >> (56 - 8 * i));
	return n;
}

#define HEAD_MSG_MAX	(sizeof(AUDIT_HEAD_DOMAIN) + 48)

void
auditchain_head_sign(struct audithead *h, const unsigned char *sk)
{
	unsigned char	m[HEAD_MSG_MAX];
	size_t		n = head_msg(h, m);

	crypto_sign_ed25519_sk_to_pk(h->pk, sk);
	crypto_sign_detached(h->sig, NULL, m, n, sk);
}

int
auditchain_head_check(const struct audithead *h)
{
	unsigned char	m[HEAD_MSG_MAX];
	size_t		n = head_msg(h, m);

	return crypto_sign_verify_detached(h->sig, m, n, h->pk) == 0 ? 0 : -1;
}

/* The verifier. */
enum { E_OK, E_PARSE, E_BADSIG, E_OTHERKEY };

struct vent {
	uint64_t	 seq;
	uint64_t	 head_seq;
	uint64_t	 lineno;
	unsigned char	 hash[32];
	unsigned char	 prev[32];
	unsigned char	 head_hash[32];
	unsigned int	 file;
	unsigned char	 bad;		/* E_* */
	unsigned char	 is_head;
	const char	*why;		/* E_PARSE: static text */
};

struct auditverify {
	struct vent	*ents;
	size_t		 n, cap;
	char		**files;
	int		*mid;		/* the file may start mid-chain */
	unsigned int	 nfiles;
	uint64_t	 lineno;
	unsigned char	 key[32];
	int		 have_key;
	struct audithead kept;
	int		 have_kept;
	int		 kept_bad;	/* E_BADSIG, E_OTHERKEY */
};

struct auditverify *
auditverify_new(const unsigned char *key, const struct audithead *kept)
{
	struct auditverify	*v = xcalloc(1, sizeof(*v));

	if (key != NULL) {
		memcpy(v->key, key, sizeof(v->key));
		v->have_key = 1;
	}
	if (kept != NULL) {
		v->kept = *kept;
		v->have_kept = 1;
		if (auditchain_head_check(kept) == -1)
			v->kept_bad = E_BADSIG;
		else if (v->have_key && memcmp(kept->pk, v->key, 32) != 0)
			v->kept_bad = E_OTHERKEY;
		if (!v->have_key) {
			/* The operator kept it off the host: its key is ours. */
			memcpy(v->key, kept->pk, sizeof(v->key));
			v->have_key = 1;
		}
	}
	return v;
}

void
auditverify_file(struct auditverify *v, const char *name, int mid_chain)
{
	v->files = xreallocarray(v->files, v->nfiles + 1, sizeof(*v->files));
	v->mid = xreallocarray(v->mid, v->nfiles + 1, sizeof(*v->mid));
	v->files[v->nfiles] = xstrdup(name);
	v->mid[v->nfiles] = mid_chain;
	v->nfiles++;
	v->lineno = 0;
}

void
auditverify_line(struct auditverify *v, const char *line, size_t len)
{
	struct auditline	 l;
	struct audithead	 h;
	struct vent		*e;
	char			 hex[AUDIT_HEX];
	const char		*why;

	if (v->nfiles == 0)
		auditverify_file(v, "(log)", 0);
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 64;
		v->ents = xreallocarray(v->ents, v->cap, sizeof(*v->ents));
	}
	e = &v->ents[v->n++];
	memset(e, 0, sizeof(*e));
	e->file = v->nfiles - 1;
	e->lineno = ++v->lineno;
	auditchain_hash(line, len, hex);
	(void)sodium_hex2bin(e->hash, 32, hex, 64, NULL, NULL, NULL);
	if (auditchain_parse(line, len, &l, &why) == -1) {
		e->bad = E_PARSE;
		e->why = why;
		return;
	}
	e->seq = l.seq;
	(void)sodium_hex2bin(e->prev, 32, l.prev, 64, NULL, NULL, NULL);
	if (!l.is_head)
		return;
	e->is_head = 1;
	e->head_seq = l.head_seq;
	(void)sodium_hex2bin(e->head_hash, 32, l.head_hash, 64, NULL, NULL,
	    NULL);
	memset(&h, 0, sizeof(h));
	h.seq = l.head_seq;
	memcpy(h.hash, l.head_hash, sizeof(h.hash));
	h.ts_ms = l.ts_ms;
	memcpy(h.pk, l.pk, sizeof(h.pk));
	memcpy(h.sig, l.sig, sizeof(h.sig));
	if (auditchain_head_check(&h) == -1)
		e->bad = E_BADSIG;
	else if (v->have_key && memcmp(h.pk, v->key, 32) != 0)
		e->bad = E_OTHERKEY;
	else if (!v->have_key) {
		/* No key given: every head must carry the first one's. */
		memcpy(v->key, h.pk, sizeof(v->key));
		v->have_key = 1;
	}
}

#define AT(e)	v->files[(e)->file], (unsigned long long)(e)->lineno

/* Why ents[i] does not chain to ents[i - 1]. */
static void
classify(struct auditverify *v, size_t i, char *msg, size_t len)
{
	struct vent	*e = &v->ents[i], *p;
	size_t		 j;

	if (i == 0 || v->ents[i - 1].bad == E_PARSE) {
		snprintf(msg, len, "%s:%llu: deleted: the first record (seq"
		    " %llu) does not chain from the genesis: records before"
		    " it were removed", AT(e), (unsigned long long)e->seq);
		return;
	}
	p = &v->ents[i - 1];
	for (j = i + 1; j < v->n; j++)
		if (memcmp(v->ents[j].hash, e->prev, 32) == 0) {
			snprintf(msg, len, "%s:%llu: reordered: the record (seq"
			    " %llu) follows the one at %s:%llu", AT(e),
			    (unsigned long long)e->seq, AT(&v->ents[j]));
			return;
		}
	for (j = 0; j < v->n; j++)
		if (v->ents[j].bad != E_PARSE && j != i &&
		    v->ents[j].seq > p->seq && v->ents[j].seq <= e->seq &&
		    (e->seq <= p->seq || v->ents[j].seq < e->seq))
			break;
	if (e->seq <= p->seq || j < v->n) {
		snprintf(msg, len, "%s:%llu: reordered: seq %llu comes after"
		    " seq %llu", AT(e), (unsigned long long)e->seq,
		    (unsigned long long)p->seq);
		return;
	}
	if (e->seq == p->seq + 1) {
		snprintf(msg, len, "%s:%llu: edited: the record (seq %llu) is"
		    " not the one the next line, %s:%llu, chains to", AT(p),
		    (unsigned long long)p->seq, AT(e));
		return;
	}
	snprintf(msg, len, "%s:%llu: deleted: the records between seq %llu"
	    " and seq %llu (at %s:%llu) are missing", AT(e),
	    (unsigned long long)p->seq, (unsigned long long)e->seq, AT(p));
}

/* Entry i, a head: 1 with msg when it is forged, else 0. */
static int
head_forged(const struct auditverify *v, size_t i, char *msg, size_t len)
{
	const struct vent	*e = &v->ents[i];

	if (e->bad == E_BADSIG) {
		snprintf(msg, len, "%s:%llu: forged head: its signature is not"
		    " valid", AT(e));
		return 1;
	}
	if (e->bad == E_OTHERKEY) {
		snprintf(msg, len, "%s:%llu: forged head: signed by a key other"
		    " than the executor's", AT(e));
		return 1;
	}
	if (memcmp(e->head_hash, e->prev, 32) != 0 ||
	    (i > 0 && e->head_seq != v->ents[i - 1].seq)) {
		snprintf(msg, len, "%s:%llu: forged head: it does not sign the"
		    " record before it", AT(e));
		return 1;
	}
	return 0;
}

/* The log never reached the kept head's record: how, into msg. */
static void
kept_missing(const struct auditverify *v, const struct vent *last, char *msg,
    size_t len)
{
	if (last == NULL)
		snprintf(msg, len, "tail cut: the log is empty but the kept"
		    " head signs seq %llu", (unsigned long long)v->kept.seq);
	else if (last->seq < v->kept.seq)
		snprintf(msg, len, "%s:%llu: tail cut: the log ends at seq %llu"
		    " but the kept head signs seq %llu: records were cut from"
		    " its end, or the log and the store were rolled back"
		    " together", AT(last), (unsigned long long)last->seq,
		    (unsigned long long)v->kept.seq);
	else
		snprintf(msg, len, "deleted: the record the kept head signs"
		    " (seq %llu) is not in the log",
		    (unsigned long long)v->kept.seq);
}

int
auditverify_end(struct auditverify *v, char *msg, size_t len,
    uint64_t *lines, uint64_t *heads)
{
	unsigned char	 kept_hash[32], genesis[32];
	struct vent	*e, *last = NULL;
	size_t		 i;
	int		 reached = 0;

	*lines = v->n;
	*heads = 0;
	memset(genesis, 0, sizeof(genesis));
	if (v->have_kept) {
		if (v->kept_bad == E_BADSIG) {
			snprintf(msg, len, "forged head: the kept head's"
			    " signature is not valid");
			return -1;
		}
		if (v->kept_bad == E_OTHERKEY) {
			snprintf(msg, len, "forged head: the kept head is"
			    " signed by a key other than the executor's");
			return -1;
		}
		(void)sodium_hex2bin(kept_hash, 32, v->kept.hash, 64, NULL,
		    NULL, NULL);
	}
	for (i = 0; i < v->n; i++) {
		e = &v->ents[i];
		if (e->bad == E_PARSE) {
			snprintf(msg, len, "%s:%llu: edited: not a record of the"
			    " log (%s)", AT(e), e->why);
			return -1;
		}
		if (i == 0 ? (!v->mid[e->file] &&
		    memcmp(e->prev, genesis, 32) != 0) :
		    memcmp(e->prev, v->ents[i - 1].hash, 32) != 0) {
			classify(v, i, msg, len);
			return -1;
		}
		if (e->is_head) {
			(*heads)++;
			if (head_forged(v, i, msg, len))
				return -1;
		}
		if (v->have_kept && e->seq == v->kept.seq && !reached) {
			if (memcmp(e->hash, kept_hash, 32) != 0) {
				snprintf(msg, len, "%s:%llu: rolled back: the"
				    " record of seq %llu is not the one the"
				    " kept head signs (the log was rolled back"
				    " or this line edited)", AT(e),
				    (unsigned long long)e->seq);
				return -1;
			}
			reached = 1;
		}
		last = e;
	}
	if (v->have_kept && !reached) {
		kept_missing(v, last, msg, len);
		return -1;
	}
	snprintf(msg, len, "ok: %zu records, %llu heads", v->n,
	    (unsigned long long)*heads);
	return 0;
}

void
auditverify_free(struct auditverify *v)
{
	unsigned int	i;

	if (v == NULL)
		return;
	for (i = 0; i < v->nfiles; i++)
		free(v->files[i]);
	free(v->files);
	free(v->mid);
	free(v->ents);
	free(v);
}

/* How many rotated files path has: path.1 ... path.N, consecutive. */
static int
rotated_count(const char *path)
{
	char	name[4200];
	int	n;

	for (n = 0; n < 10000; n++) {
		snprintf(name, sizeof(name), "%s.%d", path, n + 1);
		if (access(name, F_OK) == -1)
			break;
	}
	return n;
}

/* Feed each whole line of one file to fn; -1 when it cannot be read. */
static int
each_line(const char *name, void (*fn)(void *, const char *, size_t),
    void *arg)
{
	FILE	*f;
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;

	if ((f = fopen(name, "re")) == NULL)
		return -1;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] != '\n')
			break;		/* torn: cut at start */
		fn(arg, line, (size_t)n - 1);
	}
	free(line);
	fclose(f);
	return 0;
}

static void
verify_fn(void *arg, const char *line, size_t len)
{
	auditverify_line(arg, line, len);
}

int
auditchain_verify_log(const char *path, const unsigned char *key,
    const struct audithead *kept, char *msg, size_t msglen,
    uint64_t *lines, uint64_t *heads)
{
	struct auditverify	*v;
	char			 name[4200];
	int			 k, nrot = rotated_count(path), rc;

	*lines = *heads = 0;
	v = auditverify_new(key, kept);
	for (k = nrot; k >= 0; k--) {
		if (k > 0)
			snprintf(name, sizeof(name), "%s.%d", path, k);
		else
			snprintf(name, sizeof(name), "%s", path);
		auditverify_file(v, name, k == nrot && nrot > 0);
		if (each_line(name, verify_fn, v) == -1) {
			snprintf(msg, msglen, "%s: %s", name, strerror(errno));
			auditverify_free(v);
			return -2;
		}
	}
	rc = auditverify_end(v, msg, msglen, lines, heads);
	auditverify_free(v);
	return rc;
}

int
auditchain_each_line(const char *path,
    void (*fn)(void *, const char *, size_t), void *arg, char *msg,
    size_t msglen)
{
	char	name[4200];
	int	k;

	for (k = rotated_count(path); k >= 0; k--) {
		if (k > 0)
			snprintf(name, sizeof(name), "%s.%d", path, k);
		else
			snprintf(name, sizeof(name), "%s", path);
		if (each_line(name, fn, arg) == -1) {
			snprintf(msg, msglen, "%s: %s", name, strerror(errno));
			return -1;
		}
	}
	return 0;
}

struct last_arg {
	struct audithead	*h;
	int			 found;
};

static void
last_fn(void *arg, const char *line, size_t len)
{
	struct last_arg		*la = arg;
	struct auditline	 l;
	const char		*why;

	/* Cheap test first: most lines are not heads. */
	if (memmem(line, len, "\"event\":\"head\"", 14) == NULL ||
	    auditchain_parse(line, len, &l, &why) == -1 || !l.is_head)
		return;
	la->h->seq = l.head_seq;
	memcpy(la->h->hash, l.head_hash, sizeof(la->h->hash));
	la->h->ts_ms = l.ts_ms;
	memcpy(la->h->pk, l.pk, sizeof(l.pk));
	memcpy(la->h->sig, l.sig, sizeof(l.sig));
	la->found = 1;
}

int
auditchain_last_head(const char *path, struct audithead *h)
{
	struct last_arg	la = { h, 0 };
	char		name[4200];
	int		k;

	memset(h, 0, sizeof(*h));
	/* Newest file first; the last head of the first file with one. */
	for (k = 0; k <= rotated_count(path) && !la.found; k++) {
		if (k > 0)
			snprintf(name, sizeof(name), "%s.%d", path, k);
		else
			snprintf(name, sizeof(name), "%s", path);
		(void)each_line(name, last_fn, &la);
	}
	return la.found ? 0 : -1;
}
