/*
 * JSON text written directly, byte for byte as jansson's json_dumps()
 * with JSON_COMPACT | JSON_ENSURE_ASCII writes it, for the few lines made
 * on every call (the audit log's) where building a jansson tree only to
 * print it costs more than the rest of the line's work.
 */
#ifndef TG_JSONOUT_H
#define TG_JSONOUT_H

#include <stddef.h>

/* A growing text; kept between uses, emptied by setting len to 0. */
struct jsonout {
	char	*buf;
	size_t	 len, cap;
};

void	jsonout_raw(struct jsonout *, const char *, size_t);
void	jsonout_int(struct jsonout *, long long);
/*
 * s as a JSON string, escaped as jansson escapes it (non-ASCII as \uXXXX,
 * upper-case hex, surrogate pairs past the BMP).  -1 and nothing appended
 * when s is not well-formed UTF-8: json_string() refuses such a string.
 */
int	jsonout_str(struct jsonout *, const char *s);

#endif
