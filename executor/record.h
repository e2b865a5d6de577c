/*
 * The codec of the records the executor stores or signs: ledger records,
 * approvals and checkpoint payloads.  Each is a msgpack map described by
 * one field table (key, type, where the field lives in its C struct,
 * required or not); the same table packs and decodes it, so the three
 * records share one set of checks:
 *
 *  - the input is exactly one msgpack map (frame_unpack_map);
 *  - every key is a string the table knows, each at most once;
 *  - every value has the field's type (and length, for fixed strings);
 *  - every required field is there, "v" (when the record has one) holds
 *    the record's version, and the record's own rule (if any) holds.
 *
 * A record refused is left all zero.  Packing writes the fields in table
 * order and leaves out only the optional strings and byte strings that
 * are NULL (and numbers marked RF_OMIT_ZERO that are 0), so the bytes
 * stay those the stores already hold.
 */
#ifndef TG_RECORD_H
#define TG_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

enum rec_type {
	RF_VERSION,	/* "v": the schema's version, not in the struct */
	RF_UINT,	/* uint64_t */
	RF_STR,		/* char *, malloc'ed, no NUL inside */
	RF_FIXED,	/* char[n + 1]: exactly n bytes, no NUL inside */
	RF_HEX,		/* char[n + 1]: exactly n lowercase hex digits */
	RF_BIN,		/* char *, malloc'ed, its size_t length at lenoff */
	RF_ENUM,	/* an enum, stored as its name in names[] */
};

#define RF_REQUIRED	0x1	/* a record without it is refused */
/* An RF_UINT left out when 0: a field added later keeps old bytes. */
#define RF_OMIT_ZERO	0x2

struct rec_field {
	const char		 *key;
	enum rec_type		  type;
	int			  flags;
	size_t			  off;		/* offsetof the field */
	size_t			  lenoff;	/* RF_BIN: offsetof its length */
	size_t			  n;		/* RF_FIXED, RF_HEX: the length */
	const char *const	 *names;	/* RF_ENUM: by value */
	int			  nnames;
	int			  lo, hi;	/* RF_ENUM: values decoded */
};

struct rec_schema {
	const char		 *name;
	uint64_t		  version;	/* RF_VERSION's value */
	const struct rec_field	 *fields;
	size_t			  nfields;	/* at most 32 */
	size_t			  size;		/* sizeof the struct */
	/* A rule over the whole record (NULL: none); 0 when it holds. */
	int			(*check)(const void *);
};

void	 rec_pack(msgpack_packer *, const struct rec_schema *, const void *);
/* rec_pack into a malloc'ed buffer. */
char	*rec_encode(const struct rec_schema *, const void *, size_t *len);
/* 0 and the record filled in, or -1 and the record all zero. */
int	 rec_decode(const struct rec_schema *, const char *buf, size_t len,
	    void *rec);
/* Free the strings and byte strings; the record ends all zero. */
void	 rec_free(const struct rec_schema *, void *rec);
/* An enum field's name for a value, "unknown" when it has none. */
const char *rec_enum_name(const struct rec_field *, int value);

#endif
