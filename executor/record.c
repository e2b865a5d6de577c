/*
 * The table-driven codec of stored records.  See record.h.
 */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/frame.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/record.h"

#define FIELD(rec, f)	((char *)(rec) + (f)->off)

const char *
rec_enum_name(const struct rec_field *f, int v)
{
	if (v < 0 || v >= f->nnames || f->names[v] == NULL)
		return "unknown";
	return f->names[v];
}

static int
get_int(const void *rec, const struct rec_field *f)
{
	int	v;

	memcpy(&v, (const char *)rec + f->off, sizeof(v));
	return v;
}

/*
 * Is the field left out?  Only optional pointers that are NULL are, and
 * numbers marked RF_OMIT_ZERO that are 0.
 */
static int
omitted(const struct rec_field *f, const void *rec)
{
	char		*p;
	uint64_t	 u;

	if (f->type == RF_UINT && (f->flags & RF_OMIT_ZERO)) {
		memcpy(&u, (const char *)rec + f->off, sizeof(u));
		return u == 0;
	}
	if ((f->flags & RF_REQUIRED) ||
	    (f->type != RF_STR && f->type != RF_BIN))
		return 0;
	memcpy(&p, (const char *)rec + f->off, sizeof(p));
	return p == NULL;
}

static void
pack_field(msgpack_packer *pk, const struct rec_schema *s,
    const struct rec_field *f, const void *rec)
{
	const char	*p = (const char *)rec + f->off;
	const char	*ptr;
	uint64_t	 u;
	size_t		 len;

	pk_str(pk, f->key);
	switch (f->type) {
	case RF_VERSION:
		msgpack_pack_uint64(pk, s->version);
		break;
	case RF_UINT:
		memcpy(&u, p, sizeof(u));
		msgpack_pack_uint64(pk, u);
		break;
	case RF_STR:
		memcpy(&ptr, p, sizeof(ptr));
		pk_str(pk, ptr);
		break;
	case RF_FIXED:
	case RF_HEX:
		pk_str(pk, p);
		break;
	case RF_BIN:
		memcpy(&ptr, p, sizeof(ptr));
		memcpy(&len, (const char *)rec + f->lenoff, sizeof(len));
		msgpack_pack_bin(pk, len);
		msgpack_pack_bin_body(pk, ptr, len);
		break;
	case RF_ENUM:
		pk_str(pk, rec_enum_name(f, get_int(rec, f)));
		break;
	}
}

void
rec_pack(msgpack_packer *pk, const struct rec_schema *s, const void *rec)
{
	size_t		i;
	uint32_t	n = 0;

	for (i = 0; i < s->nfields; i++)
		if (!omitted(&s->fields[i], rec))
			n++;
	msgpack_pack_map(pk, n);
	for (i = 0; i < s->nfields; i++)
		if (!omitted(&s->fields[i], rec))
			pack_field(pk, s, &s->fields[i], rec);
}

char *
rec_encode(const struct rec_schema *s, const void *rec, size_t *len)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	rec_pack(&pk, s, rec);
	*len = sb.size;
	return msgpack_sbuffer_release(&sb);
}

/* A string of exactly n bytes: no NUL, or (hex) lowercase hex digits. */
static int
dec_fixed(const msgpack_object *o, char *out, size_t n, int hex)
{
	size_t	i;
	char	ch;

	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size != n)
		return -1;
	for (i = 0; i < n; i++) {
		ch = o->via.str.ptr[i];
		if (ch == '\0' || (hex && !((ch >= '0' && ch <= '9') ||
		    (ch >= 'a' && ch <= 'f'))))
			return -1;
	}
	memcpy(out, o->via.str.ptr, n);
	out[n] = '\0';
	return 0;
}

static int
dec_enum(const msgpack_object *o, const struct rec_field *f, char *p)
{
	int	v;

	for (v = f->lo; v <= f->hi; v++) {
		if (mp_streq(o, f->names[v])) {
			memcpy(p, &v, sizeof(v));
			return 0;
		}
	}
	return -1;
}

/* One value into its field; -1 for a wrong type or length. */
static int
dec_field(const struct rec_schema *s, const struct rec_field *f,
    const msgpack_object *o, void *rec)
{
	char		*p = FIELD(rec, f), *str;
	size_t		 len;

	switch (f->type) {
	case RF_VERSION:
		return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    o->via.u64 == s->version ? 0 : -1;
	case RF_UINT:
		if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			return -1;
		memcpy(p, &o->via.u64, sizeof(uint64_t));
		return 0;
	case RF_STR:
		if ((str = mp_strdup(o)) == NULL)
			return -1;
		memcpy(p, &str, sizeof(str));
		return 0;
	case RF_FIXED:
	case RF_HEX:
		return dec_fixed(o, p, f->n, f->type == RF_HEX);
	case RF_BIN:
		if (o->type != MSGPACK_OBJECT_BIN)
			return -1;
		/* Never NULL, even when empty: NULL means "absent". */
		len = o->via.bin.size;
		str = xmalloc(len + 1);
		memcpy(str, o->via.bin.ptr, len);
		memcpy(p, &str, sizeof(str));
		memcpy((char *)rec + f->lenoff, &len, sizeof(len));
		return 0;
	case RF_ENUM:
		return dec_enum(o, f, p);
	}
	return -1;
}

static const struct rec_field *
find_field(const struct rec_schema *s, const msgpack_object *k, size_t *idx)
{
	size_t	i;

	for (i = 0; i < s->nfields; i++) {
		if (mp_streq(k, s->fields[i].key)) {
			*idx = i;
			return &s->fields[i];
		}
	}
	return NULL;
}

int
rec_decode(const struct rec_schema *s, const char *buf, size_t len,
    void *rec)
{
	msgpack_unpacked	 u;
	const msgpack_object_kv	*kv;
	const struct rec_field	*f;
	const char		*why;
	uint32_t		 i, seen = 0;
	size_t			 idx;
	int			 rc = -1;

	/* One bit of 'seen' per field. */
	if (s->nfields > 32)
		fatalx("record %s: %zu fields, at most 32", s->name,
		    s->nfields);
	memset(rec, 0, s->size);
	if (frame_unpack_map(buf, len, &u, &why) == -1)
		return -1;
	for (i = 0; i < u.data.via.map.size; i++) {
		kv = &u.data.via.map.ptr[i];
		/* Unknown keys are refused; a second "state" overrides none. */
		if ((f = find_field(s, &kv->key, &idx)) == NULL ||
		    (seen & (1U << idx)) != 0 ||
		    dec_field(s, f, &kv->val, rec) == -1)
			goto out;
		seen |= 1U << idx;
	}
	for (idx = 0; idx < s->nfields; idx++)
		if ((s->fields[idx].flags & RF_REQUIRED) &&
		    (seen & (1U << idx)) == 0)
			goto out;
	if (s->check != NULL && s->check(rec) != 0)
		goto out;
	rc = 0;
out:
	msgpack_unpacked_destroy(&u);
	if (rc == -1)
		rec_free(s, rec);
	return rc;
}

void
rec_free(const struct rec_schema *s, void *rec)
{
	const struct rec_field	*f;
	char			*p;
	size_t			 i;

	for (i = 0; i < s->nfields; i++) {
		f = &s->fields[i];
		if (f->type != RF_STR && f->type != RF_BIN)
			continue;
		memcpy(&p, FIELD(rec, f), sizeof(p));
		free(p);
	}
	memset(rec, 0, s->size);
}
