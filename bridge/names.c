/*
 * The names tools/list shows (CONTRACT.md, "Agents that speak MCP"):
 * model APIs that agent frameworks hand MCP tools to accept only
 * ^[a-zA-Z0-9_-]{1,64}$, so every other character of a gate name shows
 * as '_' (ticket.close is ticket_close); --raw-names shows them as they
 * are.  Two tools that would show the same name, or a name over 64
 * characters, are refused by name: a call must reach exactly the tool
 * the model picked.  No I/O here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/xmalloc.h"
#include "bridge/bridge.h"

static int
name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/*
 * One '_' per character, not per byte: "ü" is one character the model
 * API refuses, and shows as one '_'.
 */
char *
name_show(const char *gate, int raw)
{
	const unsigned char	*p = (const unsigned char *)gate;
	char			*s;
	size_t			 o = 0;

	if (raw)
		return xstrdup(gate);
	s = xmalloc(strlen(gate) + 1);
	for (; *p != '\0'; p++) {
		if ((*p & 0xc0) == 0x80)	/* continuation byte */
			continue;
		s[o++] = name_char(*p) ? (char)*p : '_';
	}
	s[o] = '\0';
	return s;
}

/* Append to err, as far as it has room. */
static void __attribute__((format(printf, 3, 4)))
add_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;
	size_t	used = strlen(err);

	if (used + 1 >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + used, errlen - used, fmt, ap);
	va_end(ap);
}

int
names_assign(struct toolset *ts, int raw, char *err, size_t errlen)
{
	size_t	i, j;
	int	bad = 0;

	err[0] = '\0';
	for (i = 0; i < ts->n; i++) {
		free(ts->v[i].shown);
		ts->v[i].shown = name_show(ts->v[i].gate, raw);
	}
	for (i = 0; i < ts->n; i++) {
		if (strlen(ts->v[i].shown) > SHOWN_NAME_MAX ||
		    ts->v[i].shown[0] == '\0') {
			add_err(err, errlen, "%stool %s: its name is not 1 to"
			    " 64 characters", bad ? "; " : "", ts->v[i].gate);
			bad = 1;
		}
		for (j = 0; j < i; j++)
			if (strcmp(ts->v[i].shown, ts->v[j].shown) == 0) {
				add_err(err, errlen, "%stools %s and %s would"
				    " both show as %s", bad ? "; " : "",
				    ts->v[j].gate, ts->v[i].gate,
				    ts->v[i].shown);
				bad = 1;
			}
	}
	return bad ? -1 : 0;
}

const struct tool *
names_find(const struct toolset *ts, const char *shown)
{
	size_t	i;

	for (i = 0; i < ts->n; i++)
		if (strcmp(ts->v[i].shown, shown) == 0)
			return &ts->v[i];
	return NULL;
}

void
toolset_free(struct toolset *ts)
{
	size_t	i;

	for (i = 0; i < ts->n; i++) {
		free(ts->v[i].gate);
		free(ts->v[i].shown);
		json_decref(ts->v[i].description);
		json_decref(ts->v[i].schema);
	}
	free(ts->v);
	ts->v = NULL;
	ts->n = 0;
}
