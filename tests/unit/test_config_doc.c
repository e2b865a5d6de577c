/*
 * proto/CONFIG.md against the key table of common/config.c: every key of
 * the table has a row in CONFIG.md (or, for a top-level string, a
 * paragraph saying "default `X`"), every row names a key of the table,
 * and both say the same default, range and project-key mark.  A key
 * added to one and not the other, or a default changed in one, fails.
 * The man page toolgate.yaml(5) names every key of the table too.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/config_impl.h"
#include "tests/unit/test.h"

#define DOC		"proto/CONFIG.md"
#define MANPAGE		"man/toolgate.yaml.5"
#define MAXMAN		512
#define MAXROWS		256
#define CELLS		8

struct docrow {
	char	 name[160];
	char	 type[512];	/* the type cell; "" when the table has none */
	char	 def[512];	/* the default cell, or the prose's default */
	int	 has_def;
	int	 project;
	int	 line;
};

static struct docrow	 rows[MAXROWS];
static size_t		 nrows;
static int		 mismatches;

static void	mismatch(const char *, ...) __attribute__((format(printf, 1, 2)));

static void
mismatch(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	fprintf(stderr, DOC ": ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	mismatches++;
}

/* The first `quoted` word of 's' into 'out', or "" if none. */
static void
first_code(const char *s, char *out, size_t len)
{
	const char	*a, *b;

	out[0] = '\0';
	if ((a = strchr(s, '`')) == NULL || (b = strchr(a + 1, '`')) == NULL)
		return;
	snprintf(out, len, "%.*s", (int)(b - a - 1), a + 1);
}

static void
trim(char *s)
{
	size_t	 n;

	while (*s == ' ')
		memmove(s, s + 1, strlen(s));
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n'))
		s[--n] = '\0';
}

/* Split a table line "| a | b | c |" into cells; returns their count. */
static int
split_row(char *line, char **cells)
{
	char	*p = line + 1, *bar;
	int	 n = 0;

	while (n < CELLS && (bar = strchr(p, '|')) != NULL) {
		*bar = '\0';
		trim(p);
		cells[n++] = p;
		p = bar + 1;
	}
	return n;
}

struct docstate {
	char	 prefix[64];	/* "limits", "catalog.*", "principals[]" */
	char	 heading[64];	/* the key the heading names */
	int	 project;	/* the heading says "(project key)" */
	int	 col_type, col_def;	/* -1: no such column */
	int	 in_table;
};

static void
heading(struct docstate *st, const char *line)
{
	char	 name[64];

	first_code(line, name, sizeof(name));
	snprintf(st->heading, sizeof(st->heading), "%s", name);
	st->project = strstr(line, "(project key)") != NULL;
	if (strcmp(name, "principals") == 0)
		snprintf(st->prefix, sizeof(st->prefix), "principals[]");
	else if (strcmp(name, "catalog") == 0)
		snprintf(st->prefix, sizeof(st->prefix), "catalog.*");
	else if (strcmp(name, "mcp_servers") == 0)
		snprintf(st->prefix, sizeof(st->prefix), "mcp_servers.*");
	else
		snprintf(st->prefix, sizeof(st->prefix), "%s", name);
	st->in_table = 0;
}

static void
table_header(struct docstate *st, char *line)
{
	char	*cells[CELLS];
	int	 i, n;

	n = split_row(line, cells);
	st->col_type = st->col_def = -1;
	for (i = 0; i < n; i++) {
		if (strcmp(cells[i], "type") == 0)
			st->col_type = i;
		if (strcmp(cells[i], "default") == 0)
			st->col_def = i;
	}
	st->in_table = 1;
}

static void
table_row(struct docstate *st, char *line, int lineno)
{
	struct docrow	*r;
	char		*cells[CELLS], key[48];
	int		 n;

	if (nrows == MAXROWS || (n = split_row(line, cells)) < 2)
		return;
	r = &rows[nrows++];
	first_code(cells[0], key, sizeof(key));
	snprintf(r->name, sizeof(r->name), "%s.%s", st->prefix, key);
	r->project = st->project || strstr(cells[0], "(project key)") != NULL;
	if (st->col_type >= 0 && st->col_type < n)
		snprintf(r->type, sizeof(r->type), "%s", cells[st->col_type]);
	if (st->col_def >= 0 && st->col_def < n) {
		snprintf(r->def, sizeof(r->def), "%s", cells[st->col_def]);
		r->has_def = 1;
	}
	r->line = lineno;
}

/* "String, default `toolgate`." under "### `user`". */
static void
prose_default(struct docstate *st, const char *line, int lineno)
{
	const struct cfgkey	*k;
	struct docrow		*r;
	const char		*d;

	if (st->prefix[0] == '\0' || (k = config_key(st->heading)) == NULL ||
	    k->type == CT_SECTION || (d = strstr(line, "default `")) == NULL ||
	    nrows == MAXROWS)
		return;
	r = &rows[nrows++];
	snprintf(r->name, sizeof(r->name), "%s", st->heading);
	first_code(d, r->def, sizeof(r->def));
	r->has_def = 2;		/* the word itself, not a cell */
	r->project = st->project;
	r->line = lineno;
	st->prefix[0] = '\0';	/* one default per heading */
}

static int
read_doc(void)
{
	struct docstate	 st;
	FILE		*f;
	char		 line[4096];
	int		 lineno = 0;

	memset(&st, 0, sizeof(st));
	if ((f = fopen(DOC, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strncmp(line, "## ", 3) == 0) {
			memset(&st, 0, sizeof(st));
		} else if (strncmp(line, "### ", 4) == 0)
			heading(&st, line);
		else if (strncmp(line, "| key ", 6) == 0)
			table_header(&st, line);
		else if (strncmp(line, "|---", 4) == 0)
			continue;
		else if (line[0] == '|' && st.in_table)
			table_row(&st, line, lineno);
		else {
			st.in_table = 0;
			prose_default(&st, line, lineno);
		}
	}
	fclose(f);
	return 0;
}

static const struct docrow *
doc_row(const char *name)
{
	size_t	 i;

	for (i = 0; i < nrows; i++)
		if (strcmp(rows[i].name, name) == 0)
			return &rows[i];
	return NULL;
}

static void
check_default(const struct cfgkey *k, const struct docrow *r)
{
	char	 code[512];

	if (!r->has_def)
		return;
	if (r->has_def == 2)
		snprintf(code, sizeof(code), "%s", r->def);
	else if (r->def[0] == '`')
		first_code(r->def, code, sizeof(code));
	else
		code[0] = '\0';
	if (k->def == NULL && code[0] != '\0')
		mismatch("%d: %s: default %s, the table has none", r->line,
		    k->name, code);
	else if (k->def != NULL && strcmp(k->def, code) != 0)
		mismatch("%d: %s: default \"%s\", the table says \"%s\"",
		    r->line, k->name, code, k->def);
}

static void
check_range(const struct cfgkey *k, const struct docrow *r)
{
	const struct cfgchoice	*ch;
	char			 want[128];

	if (r->type[0] == '\0')
		return;
	want[0] = '\0';
	if (k->type == CT_UINT || k->type == CT_U32 ||
	    (k->type == CT_CODE && k->max > 0)) {
		if (k->max == INT64_MAX)
			snprintf(want, sizeof(want), "%" PRIu64 "..2^63-1",
			    k->min);
		else
			snprintf(want, sizeof(want), "%" PRIu64 "..%" PRIu64,
			    k->min, k->max);
	} else if (k->type == CT_PATH)
		snprintf(want, sizeof(want), "≤ %" PRIu64 " bytes", k->max);
	else if (k->type == CT_BOOL)
		snprintf(want, sizeof(want), "boolean");
	else if (k->type == CT_NUMBER)
		snprintf(want, sizeof(want), "number");
	else if (k->type == CT_ENUM) {
		for (ch = k->choices; ch->name != NULL; ch++) {
			snprintf(want, sizeof(want), "`%s`", ch->name);
			if (strstr(r->type, want) == NULL)
				mismatch("%d: %s: type \"%s\" lacks %s",
				    r->line, k->name, r->type, want);
		}
		return;
	}
	if (want[0] != '\0' && strstr(r->type, want) == NULL)
		mismatch("%d: %s: type \"%s\", the table says %s", r->line,
		    k->name, r->type, want);
}

/* Every key of the table is in CONFIG.md, and says the same there. */
static void
test_table_in_doc(void)
{
	const struct cfgkey	*keys, *k;
	const struct docrow	*r;
	size_t			 i, n;

	ASSERT(read_doc() == 0);
	ASSERT(nrows > 50);
	mismatches = 0;
	keys = config_keys(&n);
	for (i = 0; i < n; i++) {
		k = &keys[i];
		if (k->type == CT_SECTION)
			continue;
		if ((r = doc_row(k->name)) == NULL) {
			mismatch("no row for %s", k->name);
			continue;
		}
		if (r->project != k->project)
			mismatch("%d: %s: project key in one, not the other",
			    r->line, k->name);
		check_default(k, r);
		check_range(k, r);
	}
	ASSERT(mismatches == 0);
}

/* Every row of CONFIG.md names a key of the table. */
static void
test_doc_in_table(void)
{
	const struct cfgkey	*k;
	size_t			 i;

	ASSERT(nrows > 0);
	mismatches = 0;
	for (i = 0; i < nrows; i++)
		if ((k = config_key(rows[i].name)) == NULL ||
		    k->type == CT_SECTION)
			mismatch("%d: %s: no such key in the table",
			    rows[i].line, rows[i].name);
	ASSERT(mismatches == 0);
}

/*
 * Defaults come from the table: an empty mapping loads, and every integer
 * key of struct config holds the default the table (and CONFIG.md) says.
 */
static void
test_defaults_apply(void)
{
	const struct cfgkey	*keys, *k;
	struct config		*c;
	const char		*dir;
	char			 path[1024], err[1024];
	size_t			 i, n, checked = 0;
	uint64_t		 v;
	int			 fd;

	if ((dir = getenv("TMPDIR")) == NULL || *dir == '\0')
		dir = "/tmp";
	snprintf(path, sizeof(path), "%s/test_config_doc.XXXXXX", dir);
	ASSERT((fd = mkstemp(path)) != -1);
	ASSERT(write(fd, "{}\n", 3) == 3);
	close(fd);
	c = config_load(path, err, sizeof(err));
	unlink(path);
	if (c == NULL)
		fprintf(stderr, "%s\n", err);
	ASSERT(c != NULL);
	keys = config_keys(&n);
	for (i = 0; i < n; i++) {
		k = &keys[i];
		if (k->base != CB_CONF || k->type != CT_UINT || k->def == NULL)
			continue;
		memcpy(&v, (const char *)c + k->off, sizeof(v));
		if (v != strtoull(k->def, NULL, 10))
			mismatch("%s: loaded %" PRIu64 ", default %s", k->name,
			    v, k->def);
		checked++;
	}
	ASSERT_EQ_STR(c->state_dir, config_key("paths.state_dir")->def);
	ASSERT(c->max_cost_per_run == 5.0);
	config_free(c);
	ASSERT(checked >= 25);
	ASSERT(mismatches == 0);
}

/*
 * What toolgate.yaml(5) documents: "SECTION" for each ".Ss SECTION" and
 * "SECTION KEY" for each ".It Ic KEY" under it.
 */
static char	 man_items[MAXMAN][64 + 1 + 128];
static size_t	 nman;

static int
read_man(void)
{
	FILE	*f;
	char	 line[1024], sect[64] = "", word[128];

	if ((f = fopen(MANPAGE, "r")) == NULL)
		return -1;
	nman = 0;
	while (fgets(line, sizeof(line), f) != NULL && nman < MAXMAN) {
		if (sscanf(line, ".Ss %63s", sect) == 1)
			snprintf(man_items[nman++], sizeof(man_items[0]),
			    "%s", sect);
		else if (sscanf(line, ".It Ic %127s", word) == 1)
			snprintf(man_items[nman++], sizeof(man_items[0]),
			    "%s %s", sect, word);
	}
	fclose(f);
	return 0;
}

static int
man_has(const char *item)
{
	size_t	i;

	for (i = 0; i < nman; i++)
		if (strcmp(man_items[i], item) == 0)
			return 1;
	return 0;
}

/*
 * Every key of the table in toolgate.yaml(5), under its section:
 * "catalog.*.http.url" is ".It Ic http.url" under ".Ss catalog",
 * "principals[].uid" ".It Ic uid" under ".Ss principals", a top-level
 * key or section is an ".Ss".  Sections inside sections (catalog.*.mcp,
 * credentials.scope) are covered by their keys.
 */
static void
test_table_in_man(void)
{
	const struct cfgkey	*keys, *k;
	const char		*dot, *rest;
	char			 want[160];
	size_t			 i, n, sl;

	ASSERT(read_man() == 0);
	mismatches = 0;
	keys = config_keys(&n);
	for (i = 0; i < n; i++) {
		k = &keys[i];
		if ((dot = strchr(k->name, '.')) == NULL) {
			if (!man_has(k->name)) {
				fprintf(stderr, MANPAGE ": no .Ss %s\n",
				    k->name);
				mismatches++;
			}
			continue;
		}
		if (k->type == CT_SECTION)
			continue;
		sl = (size_t)(dot - k->name);
		if (sl > 2 && strncmp(dot - 2, "[]", 2) == 0)
			sl -= 2;
		rest = dot + 1;
		if (strncmp(rest, "*.", 2) == 0)
			rest += 2;
		snprintf(want, sizeof(want), "%.*s %s", (int)sl, k->name, rest);
		if (!man_has(want)) {
			fprintf(stderr, MANPAGE ": %s: no .It Ic %s under"
			    " .Ss %.*s\n", k->name, rest, (int)sl, k->name);
			mismatches++;
		}
	}
	ASSERT(mismatches == 0);
}

int
main(void)
{
	RUN(test_table_in_doc);
	RUN(test_doc_in_table);
	RUN(test_defaults_apply);
	RUN(test_table_in_man);
	return tests_failed ? 1 : 0;
}
