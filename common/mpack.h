/*
 * msgpack helpers every part uses: a frame under construction, a map
 * builder that counts its own fields, key/value packers and readers.
 * Nothing here knows a message of ours: that is proto/.
 */
#ifndef TG_MPACK_H
#define TG_MPACK_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

/*
 * A frame under construction: room for the length is kept at the front
 * and filled in by msgbuf_finish().
 */
struct msgbuf {
	msgpack_sbuffer	 sbuf;
	msgpack_packer	 pk;
};

void	msgbuf_init(struct msgbuf *);
/* Fill in the length; returns the whole frame. */
const char *msgbuf_finish(struct msgbuf *, size_t *len);
void	msgbuf_reset(struct msgbuf *);
void	msgbuf_free(struct msgbuf *);

/*
 * A map whose size is the number of fields packed into it: no count is
 * stated by hand.  It is packed into a msgbuf; the header goes in front
 * of the fields at mpmap_end().  Maps nest (mpmap_begin_in): end the
 * inner one before the outer one.
 *
 *	mpmap_begin(&m, &mb);
 *	mpmap_str(&m, "status", ST_OK);
 *	mpmap_str_opt(&m, "run_id", run_id);	(skipped when NULL)
 *	mpmap_end(&m);
 */
struct mpmap {
	msgpack_packer	*pk;
	msgpack_sbuffer	*sb;
	size_t		 start;
	uint32_t	 n;
};

void	mpmap_begin(struct mpmap *, struct msgbuf *);
/* Into a bare sbuffer, which pk must write to. */
void	mpmap_begin_sb(struct mpmap *, msgpack_sbuffer *, msgpack_packer *);
/* A map as the value of 'key' in 'outer'. */
void	mpmap_begin_in(struct mpmap *inner, struct mpmap *outer,
	    const char *key);
/* Packs the key and counts the field; the caller packs the value on pk. */
msgpack_packer *mpmap_key(struct mpmap *, const char *key);
/* The same, for a key copied from another map. */
msgpack_packer *mpmap_key_obj(struct mpmap *, const msgpack_object *key);
void	mpmap_str(struct mpmap *, const char *key, const char *val);
void	mpmap_str_opt(struct mpmap *, const char *key, const char *val);
/* val, or nil when NULL (the key is always there). */
void	mpmap_str_or_nil(struct mpmap *, const char *key, const char *val);
void	mpmap_uint(struct mpmap *, const char *key, uint64_t val);
void	mpmap_int(struct mpmap *, const char *key, int64_t val);
void	mpmap_bool(struct mpmap *, const char *key, int val);
void	mpmap_nil(struct mpmap *, const char *key);
void	mpmap_obj(struct mpmap *, const char *key, const msgpack_object *val);
void	mpmap_end(struct mpmap *);

/* Body helpers: each packs one key and its value. */
void	pk_str(msgpack_packer *, const char *s);
void	pk_strn(msgpack_packer *, const char *s, size_t len);
void	pk_kv_str(msgpack_packer *, const char *key, const char *val);
void	pk_kv_uint(msgpack_packer *, const char *key, uint64_t val);
void	pk_kv_int(msgpack_packer *, const char *key, int64_t val);
void	pk_kv_bool(msgpack_packer *, const char *key, int val);
void	pk_kv_nil(msgpack_packer *, const char *key);

/* Reading: a map's value by key, or NULL. */
const msgpack_object *mp_get(const msgpack_object *map, const char *key);
/* A str object as a NUL-terminated copy; NULL when not a string or it holds NUL. */
char	*mp_strdup(const msgpack_object *o);
int	 mp_streq(const msgpack_object *o, const char *s);
/* Does a str object hold a NUL byte? */
int	 mp_has_nul(const msgpack_object *o);
/* Does a map hold some key twice?  Decoders refuse such maps. */
int	 mp_dup_keys(const msgpack_object *map);

#endif
