/*
 * msgpack helpers: frames under construction, self-counting maps,
 * key/value packers and readers.
 */
#include <string.h>

#include <msgpack.h>

#include "common/frame.h"
#include "common/mpack.h"
#include "common/xmalloc.h"

void
msgbuf_init(struct msgbuf *mb)
{
	msgpack_sbuffer_init(&mb->sbuf);
	msgpack_packer_init(&mb->pk, &mb->sbuf, msgpack_sbuffer_write);
	msgbuf_reset(mb);
}

void
msgbuf_reset(struct msgbuf *mb)
{
	static const char	room[FRAME_HDR];

	mb->sbuf.size = 0;
	msgpack_sbuffer_write(&mb->sbuf, room, sizeof(room));
}

const char *
msgbuf_finish(struct msgbuf *mb, size_t *len)
{
	frame_put_len((unsigned char *)mb->sbuf.data,
	    (uint32_t)(mb->sbuf.size - FRAME_HDR));
	*len = mb->sbuf.size;
	return mb->sbuf.data;
}

void
msgbuf_free(struct msgbuf *mb)
{
	msgpack_sbuffer_destroy(&mb->sbuf);
}

/*
 * The fields go first and the map header is slipped in front of them at
 * the end, in its shortest form, so the bytes are those of a map packed
 * with its size known.
 */
static void
begin_at(struct mpmap *m, msgpack_packer *pk, msgpack_sbuffer *sb)
{
	m->pk = pk;
	m->sb = sb;
	m->start = sb->size;
	m->n = 0;
}

void
mpmap_begin(struct mpmap *m, struct msgbuf *mb)
{
	begin_at(m, &mb->pk, &mb->sbuf);
}

void
mpmap_begin_sb(struct mpmap *m, msgpack_sbuffer *sb, msgpack_packer *pk)
{
	begin_at(m, pk, sb);
}

void
mpmap_begin_in(struct mpmap *inner, struct mpmap *outer, const char *key)
{
	(void)mpmap_key(outer, key);
	begin_at(inner, outer->pk, outer->sb);
}

msgpack_packer *
mpmap_key(struct mpmap *m, const char *key)
{
	pk_str(m->pk, key);
	m->n++;
	return m->pk;
}

msgpack_packer *
mpmap_key_obj(struct mpmap *m, const msgpack_object *key)
{
	msgpack_pack_object(m->pk, *key);
	m->n++;
	return m->pk;
}

void
mpmap_str(struct mpmap *m, const char *key, const char *val)
{
	pk_str(mpmap_key(m, key), val);
}

void
mpmap_str_opt(struct mpmap *m, const char *key, const char *val)
{
	if (val != NULL)
		mpmap_str(m, key, val);
}

void
mpmap_str_or_nil(struct mpmap *m, const char *key, const char *val)
{
	if (val != NULL)
		mpmap_str(m, key, val);
	else
		mpmap_nil(m, key);
}

void
mpmap_uint(struct mpmap *m, const char *key, uint64_t val)
{
	msgpack_pack_uint64(mpmap_key(m, key), val);
}

void
mpmap_int(struct mpmap *m, const char *key, int64_t val)
{
	msgpack_pack_int64(mpmap_key(m, key), val);
}

void
mpmap_bool(struct mpmap *m, const char *key, int val)
{
	if (val)
		msgpack_pack_true(mpmap_key(m, key));
	else
		msgpack_pack_false(mpmap_key(m, key));
}

void
mpmap_nil(struct mpmap *m, const char *key)
{
	msgpack_pack_nil(mpmap_key(m, key));
}

void
mpmap_obj(struct mpmap *m, const char *key, const msgpack_object *val)
{
	msgpack_pack_object(mpmap_key(m, key), *val);
}

void
mpmap_end(struct mpmap *m)
{
	unsigned char	 hdr[5];
	size_t		 hl, body;

	if (m->n < 16) {
		hdr[0] = 0x80 | (unsigned char)m->n;
		hl = 1;
	} else if (m->n < 65536) {
		hdr[0] = 0xde;
		hdr[1] = (unsigned char)(m->n >> 8);
		hdr[2] = (unsigned char)m->n;
		hl = 3;
	} else {
		hdr[0] = 0xdf;
		hdr[1] = (unsigned char)(m->n >> 24);
		hdr[2] = (unsigned char)(m->n >> 16);
		hdr[3] = (unsigned char)(m->n >> 8);
		hdr[4] = (unsigned char)m->n;
		hl = 5;
	}
	body = m->sb->size - m->start;
	msgpack_sbuffer_write(m->sb, (const char *)hdr, hl);
	memmove(m->sb->data + m->start + hl, m->sb->data + m->start, body);
	memcpy(m->sb->data + m->start, hdr, hl);
	m->pk = NULL;
	m->sb = NULL;
}

void
pk_strn(msgpack_packer *pk, const char *s, size_t len)
{
	msgpack_pack_str(pk, len);
	msgpack_pack_str_body(pk, s, len);
}

void
pk_str(msgpack_packer *pk, const char *s)
{
	pk_strn(pk, s, strlen(s));
}

void
pk_kv_str(msgpack_packer *pk, const char *key, const char *val)
{
	pk_str(pk, key);
	pk_str(pk, val);
}

void
pk_kv_uint(msgpack_packer *pk, const char *key, uint64_t val)
{
	pk_str(pk, key);
	msgpack_pack_uint64(pk, val);
}

void
pk_kv_int(msgpack_packer *pk, const char *key, int64_t val)
{
	pk_str(pk, key);
	msgpack_pack_int64(pk, val);
}

void
pk_kv_bool(msgpack_packer *pk, const char *key, int val)
{
	pk_str(pk, key);
	if (val)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

void
pk_kv_nil(msgpack_packer *pk, const char *key)
{
	pk_str(pk, key);
	msgpack_pack_nil(pk);
}

/*
 * For an empty str msgpack-c may leave ptr NULL (or pointing at the value
 * before): never hand it to memchr.
 */
int
mp_has_nul(const msgpack_object *o)
{
	return o->via.str.size > 0 &&
	    memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL;
}

int
mp_streq(const msgpack_object *o, const char *s)
{
	size_t	n = strlen(s);

	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	    memcmp(o->via.str.ptr, s, n) == 0;
}

const msgpack_object *
mp_get(const msgpack_object *map, const char *key)
{
	uint32_t	i;

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (i = 0; i < map->via.map.size; i++)
		if (mp_streq(&map->via.map.ptr[i].key, key))
			return &map->via.map.ptr[i].val;
	return NULL;
}

char *
mp_strdup(const msgpack_object *o)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_STR || mp_has_nul(o))
		return NULL;
	return xstrndup(o->via.str.ptr, o->via.str.size);
}

int
mp_dup_keys(const msgpack_object *map)
{
	uint32_t	i, j;

	for (i = 1; i < map->via.map.size; i++)
		for (j = 0; j < i; j++)
			if (msgpack_object_equal(map->via.map.ptr[j].key,
			    map->via.map.ptr[i].key))
				return 1;
	return 0;
}
