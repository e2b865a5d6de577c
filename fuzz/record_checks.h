/*
 * What the fuzz targets of the stored-record decoders (ledger, approval)
 * check alike.  Written apart from the decoders on purpose: an oracle
 * that called mp_dup_keys() would agree with any bug in it.
 */
#ifndef TG_FUZZ_RECORD_CHECKS_H
#define TG_FUZZ_RECORD_CHECKS_H

#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "common/frame.h"

static int
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * For an input a decoder accepted: NULL, or what it should not have
 * accepted (not exactly one msgpack map, or a map holding a key twice).
 */
static const char *
accepted_record_shape(const uint8_t *data, size_t size)
{
	msgpack_unpacked	 u;
	const char		*why, *bad = NULL;
	long			 span;
	uint32_t		 i, j;

	span = mp_check((const char *)data, size);
	if (span < 0 || (size_t)span != size || size == 0 ||
	    !((data[0] & 0xf0) == 0x80 || data[0] == 0xde || data[0] == 0xdf))
		return "accepted something other than one msgpack map";
	if (frame_unpack_map((const char *)data, size, &u, &why) == -1)
		return "accepted what frame_unpack_map refuses";
	for (i = 1; i < u.data.via.map.size && bad == NULL; i++)
		for (j = 0; j < i && bad == NULL; j++)
			if (msgpack_object_equal(u.data.via.map.ptr[i].key,
			    u.data.via.map.ptr[j].key))
				bad = "accepted a record with a key twice";
	msgpack_unpacked_destroy(&u);
	return bad;
}

#endif
