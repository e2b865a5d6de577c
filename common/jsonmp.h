/*
 * JSON text (a tool's stdout) to msgpack, and msgpack to JSON text (for
 * gatewayctl --json).  Uses jansson.
 */
#ifndef TG_JSONMP_H
#define TG_JSONMP_H

#include <stddef.h>
#include <jansson.h>
#include <msgpack.h>

/*
 * Parse 'len' bytes as exactly one JSON value (surrounding white space
 * allowed, nothing else) and pack it into 'pk'.  Returns 0, or -1 with a
 * message in err.
 */
int	json_to_msgpack(const char *text, size_t len, msgpack_packer *pk,
	    char *err, size_t errlen);

/*
 * Pack a jansson tree into 'pk' exactly as json_to_msgpack() packs its
 * json_dumps(j, JSON_COMPACT) text, without making the text: the same
 * bytes, and a tree deeper than jansson's parser takes is refused as that
 * text would be.  Returns 0, or -1 with a message in err.
 */
int	json_value_to_msgpack(json_t *j, msgpack_packer *pk, char *err,
	    size_t errlen);

/*
 * At least the length of json_dumps(j, JSON_COMPACT), found without
 * making it: when it is within a limit, the text is too.
 */
size_t	json_compact_bound(json_t *j);

/*
 * Render a msgpack object as JSON text (malloc'ed, NUL-terminated; pretty
 * when 'indent' > 0).  bin and ext become strings of hex.  NULL on error.
 */
char	*msgpack_to_json(const msgpack_object *o, int indent);

/*
 * The same conversions as msgpack_to_json(), as a jansson tree (a new
 * reference), for a caller that puts the value into JSON of its own.
 */
json_t	*msgpack_to_jansson(const msgpack_object *o);

#endif
