/*
 * The YAML config loader.  The file is read whole, loaded into a libyaml
 * document tree and walked once.  Every mapping is checked for keys that
 * are unknown or given twice, every value for its type and range; the
 * first problem ends the load with "FILE:LINE: KEY: message", KEY being
 * the dotted path (catalog.kb.read.exec, principals[1].uid).
 *
 * The loader is strict on purpose: this file decides who may run what, so
 * a typo must stop the daemon rather than quietly fall back to a default.
 * proto/CONFIG.md documents every key and every rule enforced here.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <yaml.h>

#include "common/config.h"
#include "common/log.h"
#include "common/xmalloc.h"

#define MIB			(1024ULL * 1024)
#define CONFIG_MAX_SIZE		(16 * MIB)	/* no sane config is larger */
#define NAME_MAX_LEN		128
#define USER_MAX_LEN		32
#define KEY_PATH_LEN		512
#define DIR_MAX_LEN		1024		/* leaves room for TENANT/ENV/TOOL */
#define EXEC_MAX_LEN		4095		/* PATH_MAX less the NUL */
#define VALUE_SHOWN		48		/* of a bad value, in messages */

#define TIMEOUT_MS_DEFAULT	10000
#define TIMEOUT_MS_MAX		3600000ULL	/* one hour */
#define FRAME_MAX		(64 * MIB)
#define OUTPUT_MAX		(64 * MIB)
#define CONNECTIONS_MAX		1048576ULL
#define INFLIGHT_MAX		65536ULL
#define RETENTION_MAX		315360000ULL	/* ten years */
#define TTL_MAX			2592000ULL	/* thirty days */
#define IDLE_MAX		2592000ULL
#define CONTROL_IDLE_MAX	86400ULL	/* one day */
#define FRAME_TIMEOUT_MAX	3600ULL
#define SUMMARY_MAX		86400ULL
#define STRANGER_UIDS_MAX	65536ULL	/* looked through one by one */
#define RUNS_MAX		100000000ULL
#define TOOLS_MAX		65536ULL
#define MAP_SIZE_MIN		MIB
#define MAP_SIZE_MAX		(1024 * 1024 * MIB)	/* 1 TiB */
#define RESERVE_MIN		(64 * 1024ULL)
#define PENDING_MAX		1000000ULL
#define BUDGET_MAX		((uint64_t)INT64_MAX)
/* (uid_t)-1 means "leave unchanged" to setresuid(2): it is nobody's id. */
#define ID_MAX			((uint64_t)(uid_t)-1 - 1)

struct cfgctx {
	const char		*file;
	char			*dir;		/* its directory, made absolute */
	yaml_document_t		*doc;
	struct config		*conf;
	char			*err;
	size_t			 errlen;

	/* The list or catalog entry whose keys are being read. */
	struct principal	*principal;
	struct tool		*tool;

	/* Nodes that the checks across sections point their errors at. */
	yaml_node_t		*root;
	yaml_node_t		*default_mode;
	yaml_node_t		*map_size;
	yaml_node_t		*max_map_size;
	yaml_node_t		*reserve;
	yaml_node_t		*max_runs_per_tenant;	/* NULL: the default */
	yaml_node_t		*conns_per_uid;	/* NULL: the default */
	yaml_node_t		*stranger_conns;
	yaml_node_t		*max_tools_per_tenant;	/* NULL: the default */
	yaml_node_t		*catalog;	/* NULL: no catalog section */
	yaml_node_t		*allow;		/* tools.allow */
	yaml_node_t		*approval_list;	/* writes.require_approval */
	yaml_node_t		*op_uids;	/* NULL: the default [0] */
	yaml_node_t		*op_gids;
	yaml_node_t		*tool_user;	/* NULL: the default */
	struct idnodes {
		yaml_node_t	*uid;
		yaml_node_t	*gid;
	}			*pnodes;	/* one per principal */
	struct toolnodes {
		yaml_node_t	*compensate;
		yaml_node_t	*user;
	}			*tnodes;	/* one per catalog tool */
};

/* Called for each key of a mapping: 0, or -1 once the error is set. */
typedef int (*key_fn)(struct cfgctx *, const char *, yaml_node_t *,
    yaml_node_t *, const char *);

static int	cfg_error(struct cfgctx *, const yaml_node_t *, const char *,
		    const char *, ...) __attribute__((format(printf, 4, 5)));

static int
cfg_error(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    const char *fmt, ...)
{
	char	 msg[512], key[KEY_PATH_LEN];
	va_list	 ap;

	if (ctx->err == NULL || ctx->errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Unknown keys come straight from the file: print them harmlessly. */
	if (path[0] == '\0')
		snprintf(key, sizeof(key), "(top level)");
	else
		log_sanitize(key, sizeof(key), path, strlen(path));
	snprintf(ctx->err, ctx->errlen, "%s:%zu: %s: %s", ctx->file,
	    (size_t)node->start_mark.line + 1, key, msg);
	return -1;
}

/* Errors about the file as a whole, before there is a document. */
static void	file_error(struct cfgctx *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static void
file_error(struct cfgctx *ctx, const char *fmt, ...)
{
	char	 msg[512];
	va_list	 ap;

	if (ctx->err == NULL || ctx->errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(ctx->err, ctx->errlen, "%s: %s", ctx->file, msg);
}

/* A key path too long for 'buf' (a silly unknown key) ends in "...". */
static void
path_truncated(char *buf, size_t len, int n)
{
	if (n < 0 || (size_t)n >= len)
		memcpy(buf + len - 4, "...", 4);
}

static void
key_path(char *buf, size_t len, const char *parent, const char *key)
{
	int	 n;

	if (parent[0] == '\0')
		n = snprintf(buf, len, "%s", key);
	else
		n = snprintf(buf, len, "%s.%s", parent, key);
	path_truncated(buf, len, n);
}

static void
index_path(char *buf, size_t len, const char *parent, size_t i)
{
	path_truncated(buf, len, snprintf(buf, len, "%s[%zu]", parent, i));
}

static const char *
scalar(const yaml_node_t *node)
{
	return (const char *)node->data.scalar.value;
}

/* A plain scalar that YAML reads as null: "key:" with nothing after it. */
static int
is_null(const yaml_node_t *node)
{
	const char	*s;

	if (node->type != YAML_SCALAR_NODE ||
	    node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	s = scalar(node);
	return s[0] == '\0' || strcmp(s, "~") == 0 ||
	    strcasecmp(s, "null") == 0;
}

static int
is_quoted(const yaml_node_t *node)
{
	return node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
}

/* What a node is, for "expected X, got Y". */
static const char *
describe(const yaml_node_t *node, char *buf, size_t len)
{
	char	 safe[VALUE_SHOWN];

	switch (node->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_SCALAR_NODE:
		if (is_null(node))
			return "an empty value";
		log_sanitize(safe, sizeof(safe), node->data.scalar.value,
		    node->data.scalar.length);
		snprintf(buf, len, "\"%s\"", safe);
		return buf;
	default:
		return "nothing";
	}
}

static int
expected(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    const char *what)
{
	char	 buf[VALUE_SHOWN + 8];

	return cfg_error(ctx, node, path, "expected %s, got %s", what,
	    describe(node, buf, sizeof(buf)));
}

/*
 * Every node must carry the tag YAML gives it by default.  An explicit
 * tag (!!int "5", !custom x) would make the text mean something else than
 * what this loader reads, so it is refused rather than ignored.
 */
static int
check_tag(struct cfgctx *ctx, const yaml_node_t *node, const char *path)
{
	const char	*want;

	switch (node->type) {
	case YAML_MAPPING_NODE:
		want = YAML_DEFAULT_MAPPING_TAG;
		break;
	case YAML_SEQUENCE_NODE:
		want = YAML_DEFAULT_SEQUENCE_TAG;
		break;
	default:
		want = YAML_DEFAULT_SCALAR_TAG;
		break;
	}
	if (node->tag == NULL || strcmp((const char *)node->tag, want) == 0)
		return 0;
	return cfg_error(ctx, node, path, "YAML tags are not supported");
}

static int
expect_kind(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    yaml_node_type_t type)
{
	if (check_tag(ctx, node, path) == -1)
		return -1;
	if (node->type == type)
		return 0;
	return expected(ctx, node, path,
	    type == YAML_MAPPING_NODE ? "a mapping" : "a list");
}

/* 'what' names the kind of scalar wanted, for the message. */
static int
expect_scalar(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    const char *what)
{
	if (check_tag(ctx, node, path) == -1)
		return -1;
	if (node->type == YAML_SCALAR_NODE)
		return 0;
	return expected(ctx, node, path, what);
}

/*
 * The text of a non-empty string scalar.  libyaml keeps "\0" escapes in
 * the value, which C would silently cut short: refuse them, and the other
 * control characters (but tab), which no path, name or argument needs.
 */
static int
get_str(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    const char **out)
{
	const unsigned char	*s;
	size_t			 i;

	if (expect_scalar(ctx, node, path, "a string") == -1)
		return -1;
	if (is_null(node))
		return expected(ctx, node, path, "a string");
	s = node->data.scalar.value;
	for (i = 0; i < node->data.scalar.length; i++) {
		if (s[i] == '\0')
			return cfg_error(ctx, node, path,
			    "contains a NUL byte");
		if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return cfg_error(ctx, node, path,
			    "contains a control character");
	}
	if (node->data.scalar.length == 0)
		return cfg_error(ctx, node, path, "must not be empty");
	*out = scalar(node);
	return 0;
}

static int
name_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/*
 * Tool names, tenants and environments become file names
 * (CREDENTIALS_DIR/TENANT/ENV/TOOL): no '/', and no leading '.', '_'
 * or '-' (no "..", no hidden files, nothing that reads as an option).
 */
static int
valid_name(const char *s)
{
	size_t	 i;

	if (!name_char((unsigned char)s[0]) || s[0] == '.' || s[0] == '_' ||
	    s[0] == '-')
		return 0;
	for (i = 1; s[i] != '\0'; i++)
		if (i >= NAME_MAX_LEN || !name_char((unsigned char)s[i]))
			return 0;
	return 1;
}

static int
name_error(struct cfgctx *ctx, const yaml_node_t *node, const char *path)
{
	char	 buf[VALUE_SHOWN + 8];

	return cfg_error(ctx, node, path, "%s is not a valid name (letters, "
	    "digits, '.', '_', '-'; starting with a letter or digit; at most "
	    "%d characters)", describe(node, buf, sizeof(buf)), NAME_MAX_LEN);
}

static int
get_name(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    const char **out)
{
	if (get_str(ctx, node, path, out) == -1)
		return -1;
	if (!valid_name(*out))
		return name_error(ctx, node, path);
	return 0;
}

static int
set_name(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    char **dst)
{
	const char	*s;

	if (get_name(ctx, node, path, &s) == -1)
		return -1;
	free(*dst);
	*dst = xstrdup(s);
	return 0;
}

/* A directory or socket path: absolute, since the daemons chdir("/"). */
static int
set_abspath(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    size_t maxlen, char **dst)
{
	const char	*s;

	if (get_str(ctx, node, path, &s) == -1)
		return -1;
	if (s[0] != '/')
		return cfg_error(ctx, node, path, "must be an absolute path");
	if (strlen(s) > maxlen)
		return cfg_error(ctx, node, path, "longer than %zu bytes",
		    maxlen);
	free(*dst);
	*dst = xstrdup(s);
	return 0;
}

/* YAML 1.1 booleans, but only the six common words. */
static int
get_bool(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    int *out)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	size_t	 i;

	if (expect_scalar(ctx, node, path, "a boolean (true or false)") == -1)
		return -1;
	/* "false" in quotes is a string, and a string would read as true. */
	if (!is_quoted(node)) {
		for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
			if (strcasecmp(scalar(node), yes[i]) == 0) {
				*out = 1;
				return 0;
			}
			if (strcasecmp(scalar(node), no[i]) == 0) {
				*out = 0;
				return 0;
			}
		}
	}
	return expected(ctx, node, path, "a boolean (true or false)");
}

/* Decimal only: YAML 1.1 reads 010 as octal and 0x10 as hex. */
static int
get_u64(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    uint64_t min, uint64_t max, uint64_t *out)
{
	const char	*s;
	uint64_t	 v = 0;
	size_t		 i;

	if (expect_scalar(ctx, node, path, "an integer") == -1)
		return -1;
	s = scalar(node);
	if (is_quoted(node) || is_null(node))
		return expected(ctx, node, path, "an integer");
	if (s[0] == '-' && s[1] >= '0' && s[1] <= '9')
		return cfg_error(ctx, node, path, "must not be negative");
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return expected(ctx, node, path, "a decimal integer");
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return cfg_error(ctx, node, path, "out of range "
			    "(%llu..%llu)", (unsigned long long)min,
			    (unsigned long long)max);
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i != node->data.scalar.length)
		return cfg_error(ctx, node, path, "contains a NUL byte");
	if (i > 1 && s[0] == '0')
		return cfg_error(ctx, node, path, "leading zeros are not "
		    "allowed (YAML 1.1 would read octal)");
	if (v < min || v > max)
		return cfg_error(ctx, node, path, "%llu is out of range "
		    "(%llu..%llu)", (unsigned long long)v,
		    (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

/* A plain decimal number such as 5, 5.0 or 2.5e1; no inf, nan or hex. */
static int
get_double(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    double *out)
{
	const char	*s;
	char		*end;
	double		 v;

	if (expect_scalar(ctx, node, path, "a number") == -1)
		return -1;
	s = scalar(node);
	if (is_quoted(node) || is_null(node) ||
	    s[strspn(s, "0123456789.eE+-")] != '\0' ||
	    strlen(s) != node->data.scalar.length)
		return expected(ctx, node, path, "a number");
	if (s[0] == '-')
		return cfg_error(ctx, node, path, "must not be negative");
	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0')
		return expected(ctx, node, path, "a number");
	if (errno == ERANGE || !isfinite(v))
		return cfg_error(ctx, node, path, "out of range");
	*out = v;
	return 0;
}

static int
get_id(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    uint64_t *out)
{
	return get_u64(ctx, node, path, 0, ID_MAX, out);
}

/*
 * Walk a mapping: its keys must be distinct strings; each goes to 'fn'
 * with its dotted path.
 */
static int
walk_map(struct cfgctx *ctx, yaml_node_t *node, const char *path, key_fn fn)
{
	yaml_node_pair_t	*pair, *prev;
	yaml_node_t		*k, *v, *pk;
	char			 sub[KEY_PATH_LEN];
	const char		*key;

	if (expect_kind(ctx, node, path, YAML_MAPPING_NODE) == -1)
		return -1;
	for (pair = node->data.mapping.pairs.start;
	    pair < node->data.mapping.pairs.top; pair++) {
		k = yaml_document_get_node(ctx->doc, pair->key);
		v = yaml_document_get_node(ctx->doc, pair->value);
		if (k->type != YAML_SCALAR_NODE ||
		    strlen(scalar(k)) != k->data.scalar.length)
			return cfg_error(ctx, k, path, "keys must be strings");
		key = scalar(k);
		key_path(sub, sizeof(sub), path, key);
		if (check_tag(ctx, k, sub) == -1)
			return -1;
		for (prev = node->data.mapping.pairs.start; prev < pair;
		    prev++) {
			pk = yaml_document_get_node(ctx->doc, prev->key);
			if (strcmp(scalar(pk), key) == 0)
				return cfg_error(ctx, k, sub, "duplicate key "
				    "(first given at line %zu)",
				    (size_t)pk->start_mark.line + 1);
		}
		if (fn(ctx, key, k, v, sub) == -1)
			return -1;
	}
	return 0;
}

static int
unknown_key(struct cfgctx *ctx, const yaml_node_t *knode, const char *path)
{
	return cfg_error(ctx, knode, path, "unknown key");
}

static size_t
seq_len(const yaml_node_t *node)
{
	return (size_t)(node->data.sequence.items.top -
	    node->data.sequence.items.start);
}

static yaml_node_t *
seq_item(struct cfgctx *ctx, const yaml_node_t *node, size_t i)
{
	return yaml_document_get_node(ctx->doc,
	    node->data.sequence.items.start[i]);
}

static void
free_strings(char **v, size_t n)
{
	size_t	 i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* A list of names (tools.allow, writes.require_approval). */
static int
set_name_list(struct cfgctx *ctx, yaml_node_t *node, const char *path,
    char ***list, size_t *n)
{
	char		 sub[KEY_PATH_LEN];
	const char	*s;
	size_t		 i, len;

	if (expect_kind(ctx, node, path, YAML_SEQUENCE_NODE) == -1)
		return -1;
	free_strings(*list, *n);
	len = seq_len(node);
	*list = xcalloc(len, sizeof(**list));
	*n = 0;
	for (i = 0; i < len; i++) {
		index_path(sub, sizeof(sub), path, i);
		if (get_name(ctx, seq_item(ctx, node, i), sub, &s) == -1)
			return -1;
		(*list)[(*n)++] = xstrdup(s);
	}
	return 0;
}

/* paths */

static int
paths_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	struct config		*c = ctx->conf;
	struct sockaddr_un	 sun;
	size_t			 sunmax = sizeof(sun.sun_path) - 1;

	if (strcmp(key, "agent_socket") == 0)
		return set_abspath(ctx, val, path, sunmax, &c->agent_socket);
	if (strcmp(key, "control_socket") == 0)
		return set_abspath(ctx, val, path, sunmax, &c->control_socket);
	if (strcmp(key, "state_dir") == 0)
		return set_abspath(ctx, val, path, DIR_MAX_LEN,
		    &c->state_dir);
	if (strcmp(key, "credentials_dir") == 0)
		return set_abspath(ctx, val, path, DIR_MAX_LEN,
		    &c->credentials_dir);
	return unknown_key(ctx, knode, path);
}

/*
 * A user name, looked up with getpwnam(3) when it is used: `user`, the
 * account gatewayd drops to, and a catalog tool's `user`.
 */
static int
set_user(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    char **out)
{
	const char	*s;
	size_t		 i;

	if (get_str(ctx, node, path, &s) == -1)
		return -1;
	/* Unlike other names, _toolgate (the OpenBSD habit) is fine. */
	for (i = 0; s[i] != '\0'; i++)
		if (i >= USER_MAX_LEN || !name_char((unsigned char)s[i]))
			break;
	if (s[i] != '\0' || s[0] == '-')
		return cfg_error(ctx, node, path, "not a valid user name "
		    "(letters, digits, '.', '_', '-'; not starting with '-'; "
		    "at most %d characters)", USER_MAX_LEN);
	free(*out);
	*out = xstrdup(s);
	return 0;
}

/* principals */

static int
principal_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	struct principal	*p = ctx->principal;
	uint64_t		 id;

	if (strcmp(key, "uid") == 0) {
		if (get_id(ctx, val, path, &id) == -1)
			return -1;
		p->uid = (uid_t)id;
		p->has_uid = 1;
		ctx->pnodes[p - ctx->conf->principals].uid = val;
		return 0;
	}
	if (strcmp(key, "gid") == 0) {
		if (get_id(ctx, val, path, &id) == -1)
			return -1;
		/*
		 * Group 0 is root's: root's own processes, and whatever else
		 * runs with gid 0, would act as this agent.
		 */
		if (id == 0)
			return cfg_error(ctx, val, path, "gid 0 is root's "
			    "group and must not be a principal: every process "
			    "of root and of group 0 would act as this agent");
		p->gid = (gid_t)id;
		p->has_gid = 1;
		ctx->pnodes[p - ctx->conf->principals].gid = val;
		return 0;
	}
	if (strcmp(key, "tenant") == 0)
		return set_name(ctx, val, path, &p->tenant);
	if (strcmp(key, "env") == 0)
		return set_name(ctx, val, path, &p->env);
	return unknown_key(ctx, knode, path);
}

/*
 * One id mapped twice would make the second entry dead, and which tenant
 * a peer belongs to must never depend on the order of lines.
 */
static int
principal_unique(struct cfgctx *ctx, const yaml_node_t *node,
    const char *path, size_t i)
{
	const struct config	*c = ctx->conf;
	const struct principal	*p = &c->principals[i], *q;
	char			 sub[KEY_PATH_LEN];
	size_t			 j;

	for (j = 0; j < i; j++) {
		q = &c->principals[j];
		if (p->has_uid && q->has_uid && p->uid == q->uid) {
			key_path(sub, sizeof(sub), path, "uid");
			return cfg_error(ctx, node, sub, "uid %u is already "
			    "mapped by principals[%zu]", (unsigned)p->uid, j);
		}
		if (p->has_gid && q->has_gid && p->gid == q->gid) {
			key_path(sub, sizeof(sub), path, "gid");
			return cfg_error(ctx, node, sub, "gid %u is already "
			    "mapped by principals[%zu]", (unsigned)p->gid, j);
		}
	}
	return 0;
}

static int
parse_principal(struct cfgctx *ctx, yaml_node_t *node, const char *path,
    size_t i)
{
	struct principal	*p = &ctx->conf->principals[i];
	char			 sub[KEY_PATH_LEN];

	ctx->principal = p;
	if (walk_map(ctx, node, path, principal_key) == -1)
		return -1;
	if (p->has_uid && p->has_gid)
		return cfg_error(ctx, node, path, "has both uid and gid; a "
		    "principal is exactly one of them");
	if (!p->has_uid && !p->has_gid)
		return cfg_error(ctx, node, path, "needs a uid or a gid");
	if (p->tenant == NULL) {
		key_path(sub, sizeof(sub), path, "tenant");
		return cfg_error(ctx, node, sub, "missing");
	}
	if (p->env == NULL) {
		key_path(sub, sizeof(sub), path, "env");
		return cfg_error(ctx, node, sub, "missing");
	}
	return principal_unique(ctx, node, path, i);
}

static int
parse_principals(struct cfgctx *ctx, yaml_node_t *node, const char *path)
{
	struct config	*c = ctx->conf;
	char		 sub[KEY_PATH_LEN];
	size_t		 i, len;

	if (expect_kind(ctx, node, path, YAML_SEQUENCE_NODE) == -1)
		return -1;
	len = seq_len(node);
	c->principals = xcalloc(len, sizeof(*c->principals));
	ctx->pnodes = xcalloc(len, sizeof(*ctx->pnodes));
	for (i = 0; i < len; i++) {
		/* Counted first, so config_free() sees a half-read entry. */
		c->nprincipals++;
		index_path(sub, sizeof(sub), path, i);
		if (parse_principal(ctx, seq_item(ctx, node, i), sub, i) == -1)
			return -1;
	}
	return 0;
}

/* operators */

/*
 * A list of uids or gids.  Both are the same integer type on Linux, so one
 * reader serves both (the assert says so at build time).
 */
_Static_assert(sizeof(uid_t) == sizeof(gid_t), "uid_t and gid_t differ");

static int
parse_ids(struct cfgctx *ctx, yaml_node_t *node, const char *path,
    uid_t **ids, size_t *n)
{
	char		 sub[KEY_PATH_LEN];
	uint64_t	 id;
	size_t		 i, len;

	if (expect_kind(ctx, node, path, YAML_SEQUENCE_NODE) == -1)
		return -1;
	len = seq_len(node);
	free(*ids);
	*ids = xcalloc(len, sizeof(**ids));
	*n = 0;
	for (i = 0; i < len; i++) {
		index_path(sub, sizeof(sub), path, i);
		if (get_id(ctx, seq_item(ctx, node, i), sub, &id) == -1)
			return -1;
		(*ids)[(*n)++] = (uid_t)id;
	}
	return 0;
}

static int
operators_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	if (strcmp(key, "uids") == 0) {
		ctx->op_uids = val;
		return parse_ids(ctx, val, path, &ctx->conf->op_uids,
		    &ctx->conf->nop_uids);
	}
	if (strcmp(key, "gids") == 0) {
		ctx->op_gids = val;
		return parse_ids(ctx, val, path, (uid_t **)&ctx->conf->op_gids,
		    &ctx->conf->nop_gids);
	}
	if (strcmp(key, "allow_self_approval") == 0)
		return get_bool(ctx, val, path,
		    &ctx->conf->allow_self_approval);
	return unknown_key(ctx, knode, path);
}

/* catalog */

static int
parse_mode(struct cfgctx *ctx, const yaml_node_t *node, const char *path)
{
	const char	*s;

	if (get_str(ctx, node, path, &s) == -1)
		return -1;
	if (strcmp(s, "read") == 0)
		ctx->tool->mode = TOOL_READ;
	else if (strcmp(s, "write") == 0)
		ctx->tool->mode = TOOL_WRITE;
	else
		return expected(ctx, node, path, "read or write");
	return 0;
}

/*
 * The absolute directory of the config file, for relative exec paths:
 * the same file means the same programs whatever the cwd of the daemon.
 */
static const char *
config_dir(struct cfgctx *ctx)
{
	const char	*slash;
	char		*dir;
	int		 saved;

	if (ctx->dir != NULL)
		return ctx->dir;
	if ((slash = strrchr(ctx->file, '/')) == NULL)
		dir = xstrdup(".");
	else if (slash == ctx->file)
		dir = xstrdup("/");
	else
		dir = xstrndup(ctx->file, (size_t)(slash - ctx->file));
	ctx->dir = realpath(dir, NULL);
	saved = errno;
	free(dir);
	errno = saved;
	return ctx->dir;
}

/*
 * The program of a tool, as run by execve(2): an absolute path as it is,
 * a relative one taken from the directory of the config file, never a
 * search of $PATH.
 */
static int
set_program(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    const char *prog, char **dst)
{
	const char	*dir;

	if (prog[0] == '/')
		*dst = xstrdup(prog);
	else {
		if ((dir = config_dir(ctx)) == NULL)
			return cfg_error(ctx, node, path, "a relative path, "
			    "but the directory of the config cannot be "
			    "found: %s", strerror(errno));
		xasprintf(dst, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir,
		    prog);
	}
	if (strlen(*dst) > EXEC_MAX_LEN)
		return cfg_error(ctx, node, path, "longer than %d bytes",
		    EXEC_MAX_LEN);
	return 0;
}

/* exec: [PATH, ARG...], run without a shell. */
static int
parse_exec(struct cfgctx *ctx, yaml_node_t *node, const char *path)
{
	struct tool	*t = ctx->tool;
	yaml_node_t	*item;
	char		 sub[KEY_PATH_LEN];
	const char	*s;
	size_t		 i, len;

	if (expect_kind(ctx, node, path, YAML_SEQUENCE_NODE) == -1)
		return -1;
	if ((len = seq_len(node)) == 0)
		return cfg_error(ctx, node, path, "must not be empty: it "
		    "names the program to run");
	t->argv = xcalloc(len + 1, sizeof(*t->argv));
	t->argc = len;
	for (i = 0; i < len; i++) {
		item = seq_item(ctx, node, i);
		index_path(sub, sizeof(sub), path, i);
		if (expect_scalar(ctx, item, sub, "a string") == -1)
			return -1;
		/* An argument may be "", the program may not. */
		if (i > 0 && is_quoted(item) && item->data.scalar.length == 0)
			s = "";
		else if (get_str(ctx, item, sub, &s) == -1)
			return -1;
		if (i == 0) {
			if (set_program(ctx, item, sub, s, &t->argv[0]) == -1)
				return -1;
		} else
			t->argv[i] = xstrdup(s);
	}
	return 0;
}

static int
tool_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	struct tool	*t = ctx->tool;
	uint64_t	 v;

	if (strcmp(key, "mode") == 0)
		return parse_mode(ctx, val, path);
	if (strcmp(key, "exec") == 0)
		return parse_exec(ctx, val, path);
	if (strcmp(key, "timeout_ms") == 0) {
		if (get_u64(ctx, val, path, 1, TIMEOUT_MS_MAX, &v) == -1)
			return -1;
		t->timeout_ms = (uint32_t)v;
		return 0;
	}
	if (strcmp(key, "compensate") == 0) {
		ctx->tnodes[t - ctx->conf->catalog].compensate = val;
		return set_name(ctx, val, path, &t->compensate);
	}
	if (strcmp(key, "user") == 0) {
		ctx->tnodes[t - ctx->conf->catalog].user = val;
		return set_user(ctx, val, path, &t->user);
	}
	return unknown_key(ctx, knode, path);
}

static int
catalog_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	struct config	*c = ctx->conf;
	struct tool	*t;
	char		 sub[KEY_PATH_LEN];

	if (!valid_name(key))
		return name_error(ctx, knode, path);
	/* parse_catalog() made room for every key of the mapping. */
	t = &c->catalog[c->ncatalog++];
	t->name = xstrdup(key);
	t->mode = TOOL_WRITE;		/* no mode: a write, fail closed */
	t->timeout_ms = TIMEOUT_MS_DEFAULT;
	ctx->tool = t;
	if (walk_map(ctx, val, path, tool_key) == -1)
		return -1;
	if (t->argv == NULL) {
		key_path(sub, sizeof(sub), path, "exec");
		return cfg_error(ctx, val, sub, "missing: every catalog tool "
		    "needs a program to run");
	}
	return 0;
}

static int
parse_catalog(struct cfgctx *ctx, yaml_node_t *node, const char *path)
{
	struct config	*c = ctx->conf;
	size_t		 len;

	if (expect_kind(ctx, node, path, YAML_MAPPING_NODE) == -1)
		return -1;
	len = (size_t)(node->data.mapping.pairs.top -
	    node->data.mapping.pairs.start);
	c->catalog = xcalloc(len, sizeof(*c->catalog));
	ctx->tnodes = xcalloc(len, sizeof(*ctx->tnodes));
	ctx->catalog = node;
	return walk_map(ctx, node, path, catalog_key);
}

/* tools */

static int
tools_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	struct config	*c = ctx->conf;
	const char	*s;

	if (strcmp(key, "default_mode") == 0) {
		if (get_str(ctx, val, path, &s) == -1)
			return -1;
		if (strcmp(s, "read_only") == 0)
			c->read_write = 0;
		else if (strcmp(s, "read_write") == 0)
			c->read_write = 1;
		else
			return expected(ctx, val, path,
			    "read_only or read_write");
		ctx->default_mode = val;
		return 0;
	}
	if (strcmp(key, "allow") == 0) {
		ctx->allow = val;
		return set_name_list(ctx, val, path, &c->allow, &c->nallow);
	}
	return unknown_key(ctx, knode, path);
}

/* writes */

static int
parse_require_approval(struct cfgctx *ctx, yaml_node_t *node,
    const char *path)
{
	struct config	*c = ctx->conf;

	if (node->type == YAML_SEQUENCE_NODE) {
		/* [] would read as "no write needs approval": say false. */
		if (seq_len(node) == 0)
			return cfg_error(ctx, node, path, "an empty list; "
			    "write false if no write needs approval");
		c->approval_all = 0;
		ctx->approval_list = node;
		return set_name_list(ctx, node, path, &c->approval_tools,
		    &c->napproval_tools);
	}
	if (node->type != YAML_SCALAR_NODE)
		return expected(ctx, node, path,
		    "a boolean or a list of tool names");
	return get_bool(ctx, node, path, &c->approval_all);
}

static int
writes_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	struct config	*c = ctx->conf;
	const char	*s;

	if (strcmp(key, "enabled") == 0)
		return get_bool(ctx, val, path, &c->writes_enabled);
	if (strcmp(key, "require_approval") == 0)
		return parse_require_approval(ctx, val, path);
	if (strcmp(key, "idempotency") == 0) {
		/* The key is always computed by the executor (CONTRACT). */
		if (get_str(ctx, val, path, &s) == -1)
			return -1;
		if (strcmp(s, "gateway_inject") != 0)
			return expected(ctx, val, path, "gateway_inject");
		return 0;
	}
	if (strcmp(key, "retention_s") == 0)
		return get_u64(ctx, val, path, 1, RETENTION_MAX,
		    &c->retention_s);
	return unknown_key(ctx, knode, path);
}

/* budgets, approvals, limits, runs, store: numbers with their ranges */

static int
budgets_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	struct config	*c = ctx->conf;

	if (strcmp(key, "max_steps_per_run") == 0)
		return get_u64(ctx, val, path, 0, BUDGET_MAX,
		    &c->max_steps_per_run);
	if (strcmp(key, "max_writes_per_run") == 0)
		return get_u64(ctx, val, path, 0, BUDGET_MAX,
		    &c->max_writes_per_run);
	if (strcmp(key, "max_tokens_per_run") == 0)
		return get_u64(ctx, val, path, 0, BUDGET_MAX,
		    &c->max_tokens_per_run);
	if (strcmp(key, "max_cost_per_run") == 0)
		return get_double(ctx, val, path, &c->max_cost_per_run);
	if (strcmp(key, "repeat_limit") == 0)
		return get_u64(ctx, val, path, 0, BUDGET_MAX,
		    &c->repeat_limit);
	return unknown_key(ctx, knode, path);
}

static int
approvals_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	if (strcmp(key, "ttl_s") == 0)
		return get_u64(ctx, val, path, 1, TTL_MAX,
		    &ctx->conf->approvals_ttl_s);
	if (strcmp(key, "max_pending_per_tenant") == 0)
		return get_u64(ctx, val, path, 1, PENDING_MAX,
		    &ctx->conf->max_pending_per_tenant);
	if (strcmp(key, "max_pending_bytes_per_tenant") == 0)
		return get_u64(ctx, val, path, 1, MAP_SIZE_MAX,
		    &ctx->conf->max_pending_bytes_per_tenant);
	return unknown_key(ctx, knode, path);
}

/* The keys that keep one uid, or the peers with no principal, in bounds. */
static int
limits_conn_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	struct config	*c = ctx->conf;

	if (strcmp(key, "max_connections_per_uid") == 0) {
		ctx->conns_per_uid = val;
		return get_u64(ctx, val, path, 1, CONNECTIONS_MAX,
		    &c->max_conns_per_uid);
	}
	if (strcmp(key, "max_stranger_connections") == 0) {
		ctx->stranger_conns = val;
		return get_u64(ctx, val, path, 1, CONNECTIONS_MAX,
		    &c->max_stranger_conns);
	}
	if (strcmp(key, "frame_timeout_s") == 0)
		return get_u64(ctx, val, path, 1, FRAME_TIMEOUT_MAX,
		    &c->frame_timeout_s);
	if (strcmp(key, "stranger_summary_s") == 0)
		return get_u64(ctx, val, path, 1, SUMMARY_MAX,
		    &c->stranger_summary_s);
	if (strcmp(key, "stranger_uids") == 0)
		return get_u64(ctx, val, path, 1, STRANGER_UIDS_MAX,
		    &c->stranger_uids);
	return unknown_key(ctx, knode, path);
}

static int
limits_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	struct config	*c = ctx->conf;

	if (strcmp(key, "max_frame") == 0)
		return get_u64(ctx, val, path, 1, FRAME_MAX, &c->max_frame);
	if (strcmp(key, "max_output") == 0)
		return get_u64(ctx, val, path, 1, OUTPUT_MAX, &c->max_output);
	if (strcmp(key, "max_connections") == 0)
		return get_u64(ctx, val, path, 1, CONNECTIONS_MAX,
		    &c->max_connections);
	if (strcmp(key, "max_inflight") == 0)
		return get_u64(ctx, val, path, 1, INFLIGHT_MAX,
		    &c->max_inflight);
	if (strcmp(key, "control_idle_s") == 0)
		return get_u64(ctx, val, path, 1, CONTROL_IDLE_MAX,
		    &c->control_idle_s);
	if (strcmp(key, "max_tools") == 0)
		return get_u64(ctx, val, path, 1, TOOLS_MAX, &c->max_tools);
	if (strcmp(key, "max_tools_per_tenant") == 0) {
		ctx->max_tools_per_tenant = val;
		return get_u64(ctx, val, path, 1, TOOLS_MAX,
		    &c->max_tools_per_tenant);
	}
	return limits_conn_key(ctx, key, knode, val, path);
}

static int
runs_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	struct config	*c = ctx->conf;

	if (strcmp(key, "idle_s") == 0)
		return get_u64(ctx, val, path, 1, IDLE_MAX, &c->run_idle_s);
	if (strcmp(key, "max_runs") == 0)
		return get_u64(ctx, val, path, 1, RUNS_MAX, &c->max_runs);
	if (strcmp(key, "max_runs_per_tenant") == 0) {
		ctx->max_runs_per_tenant = val;
		return get_u64(ctx, val, path, 1, RUNS_MAX,
		    &c->max_runs_per_tenant);
	}
	return unknown_key(ctx, knode, path);
}

static int
store_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	struct config	*c = ctx->conf;

	if (strcmp(key, "map_size") == 0) {
		ctx->map_size = val;
		return get_u64(ctx, val, path, MAP_SIZE_MIN, MAP_SIZE_MAX,
		    &c->map_size);
	}
	if (strcmp(key, "max_map_size") == 0) {
		ctx->max_map_size = val;
		return get_u64(ctx, val, path, MAP_SIZE_MIN, MAP_SIZE_MAX,
		    &c->max_map_size);
	}
	if (strcmp(key, "reserve") == 0) {
		ctx->reserve = val;
		return get_u64(ctx, val, path, RESERVE_MIN, MAP_SIZE_MAX,
		    &c->store_reserve);
	}
	return unknown_key(ctx, knode, path);
}

/* metrics: "HOST:PORT" or "unix:PATH". */
static int
metrics_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	struct sockaddr_un	 sun;
	const char		*s, *port;
	uint64_t		 v = 0;

	if (strcmp(key, "listen") != 0)
		return unknown_key(ctx, knode, path);
	if (get_str(ctx, val, path, &s) == -1)
		return -1;
	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] != '/')
			return cfg_error(ctx, val, path, "unix: needs an "
			    "absolute path");
		if (strlen(s + 5) >= sizeof(sun.sun_path))
			return cfg_error(ctx, val, path, "socket path longer "
			    "than %zu bytes", sizeof(sun.sun_path) - 1);
	} else {
		if ((port = strrchr(s, ':')) == NULL || port == s)
			return expected(ctx, val, path,
			    "HOST:PORT or unix:PATH");
		for (port++; *port >= '0' && *port <= '9' && v <= 65535;
		    port++)
			v = v * 10 + (uint64_t)(*port - '0');
		if (*port != '\0' || v == 0 || v > 65535)
			return cfg_error(ctx, val, path, "needs a port "
			    "between 1 and 65535 after the last ':'");
	}
	free(ctx->conf->metrics_listen);
	ctx->conf->metrics_listen = xstrdup(s);
	return 0;
}

/* credentials and kill_switch: only the one safe setting exists. */

static int
scope_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	int	 on;

	if (strcmp(key, "tenant") != 0 && strcmp(key, "environment") != 0)
		return unknown_key(ctx, knode, path);
	if (get_bool(ctx, val, path, &on) == -1)
		return -1;
	if (!on)
		return cfg_error(ctx, val, path, "must be true: only "
		    "credentials scoped by tenant and environment are "
		    "supported");
	return 0;
}

static int
credentials_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	if (strcmp(key, "scope") == 0)
		return walk_map(ctx, val, path, scope_key);
	return unknown_key(ctx, knode, path);
}

static int
kill_switch_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	const char	*s;

	if (strcmp(key, "mode_when_enabled") != 0)
		return unknown_key(ctx, knode, path);
	if (get_str(ctx, val, path, &s) == -1)
		return -1;
	if (strcmp(s, "disable_writes") != 0)
		return expected(ctx, val, path, "disable_writes (the only "
		    "kill switch mode)");
	return 0;
}

/* the top level */

static int
top_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	if (strcmp(key, "paths") == 0)
		return walk_map(ctx, val, path, paths_key);
	if (strcmp(key, "user") == 0)
		return set_user(ctx, val, path, &ctx->conf->user);
	if (strcmp(key, "tool_user") == 0) {
		ctx->tool_user = val;
		return set_user(ctx, val, path, &ctx->conf->tool_user);
	}
	if (strcmp(key, "principals") == 0)
		return parse_principals(ctx, val, path);
	if (strcmp(key, "operators") == 0)
		return walk_map(ctx, val, path, operators_key);
	if (strcmp(key, "catalog") == 0)
		return parse_catalog(ctx, val, path);
	if (strcmp(key, "tools") == 0)
		return walk_map(ctx, val, path, tools_key);
	if (strcmp(key, "writes") == 0)
		return walk_map(ctx, val, path, writes_key);
	if (strcmp(key, "budgets") == 0)
		return walk_map(ctx, val, path, budgets_key);
	if (strcmp(key, "approvals") == 0)
		return walk_map(ctx, val, path, approvals_key);
	if (strcmp(key, "limits") == 0)
		return walk_map(ctx, val, path, limits_key);
	if (strcmp(key, "runs") == 0)
		return walk_map(ctx, val, path, runs_key);
	if (strcmp(key, "store") == 0)
		return walk_map(ctx, val, path, store_key);
	if (strcmp(key, "metrics") == 0)
		return walk_map(ctx, val, path, metrics_key);
	if (strcmp(key, "credentials") == 0)
		return walk_map(ctx, val, path, credentials_key);
	if (strcmp(key, "kill_switch") == 0)
		return walk_map(ctx, val, path, kill_switch_key);
	return unknown_key(ctx, knode, path);
}

/* cross-section rules */

/*
 * A tool name that names no catalog tool is a typo: in require_approval
 * it would let the tool meant run unapproved, in compensate it would undo
 * nothing, in allow it would allow nothing or the wrong tool.  'names'
 * holds the items of the YAML list 'list' in order.
 */
static int
check_name_list(struct cfgctx *ctx, const yaml_node_t *list,
    char *const *names, size_t n, const char *path)
{
	char	 sub[KEY_PATH_LEN];
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (config_tool(ctx->conf, names[i]) != NULL)
			continue;
		index_path(sub, sizeof(sub), path, i);
		return cfg_error(ctx, seq_item(ctx, list, i), sub, "\"%s\" "
		    "is not a tool of the catalog", names[i]);
	}
	return 0;
}

/*
 * store.reserve: room in the store that ordinary writes leave free, so the
 * sweeper, outcomes and operators' actions always fit.  Default: 1/32 of
 * store.max_map_size, at least 64 KiB and at most 64 MiB; at most half of
 * store.max_map_size, or nothing ordinary could ever be written.
 */
static int
check_reserve(struct cfgctx *ctx)
{
	struct config	*c = ctx->conf;

	if (ctx->reserve == NULL) {
		c->store_reserve = c->max_map_size / 32;
		if (c->store_reserve < RESERVE_MIN)
			c->store_reserve = RESERVE_MIN;
		if (c->store_reserve > 64 * MIB)
			c->store_reserve = 64 * MIB;
		return 0;
	}
	if (c->store_reserve > c->max_map_size / 2)
		return cfg_error(ctx, ctx->reserve, "store.reserve",
		    "%llu is more than half of store.max_map_size (%llu)",
		    (unsigned long long)c->store_reserve,
		    (unsigned long long)c->max_map_size);
	return 0;
}

/*
 * tools.allow is checked only when the config has a catalog: one without
 * (the safe default, a policy template) runs nothing at all, and may name
 * the tools it will allow once they exist.
 */
static int
check_tool_names(struct cfgctx *ctx)
{
	const struct config	*c = ctx->conf;
	const struct tool	*t;
	char			 sub[KEY_PATH_LEN], key[KEY_PATH_LEN];
	size_t			 i;

	if (ctx->catalog != NULL && ctx->allow != NULL &&
	    check_name_list(ctx, ctx->allow, c->allow, c->nallow,
	    "tools.allow") == -1)
		return -1;
	if (ctx->approval_list != NULL &&
	    check_name_list(ctx, ctx->approval_list, c->approval_tools,
	    c->napproval_tools, "writes.require_approval") == -1)
		return -1;
	for (i = 0; i < c->ncatalog; i++) {
		t = &c->catalog[i];
		if (t->compensate == NULL || config_tool(c, t->compensate) != NULL)
			continue;
		key_path(sub, sizeof(sub), "catalog", t->name);
		key_path(key, sizeof(key), sub, "compensate");
		return cfg_error(ctx, ctx->tnodes[i].compensate, key, "\"%s\" "
		    "is not a tool of the catalog", t->compensate);
	}
	return 0;
}

/* The index of 'id' in 'ids', or -1.  (uid_t and gid_t are one type.) */
static ssize_t
id_index(const uid_t *ids, size_t n, uid_t id)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (ids[i] == id)
			return (ssize_t)i;
	return -1;
}

/* Where an operator id came from, for messages. */
static const char *
op_where(struct cfgctx *ctx, char *buf, size_t len, const char *which,
    ssize_t i)
{
	if (strcmp(which, "uids") == 0 && ctx->op_uids == NULL)
		return "operators.uids, by default [0]";
	snprintf(buf, len, "operators.%s[%zd]", which, i);
	return buf;
}

#define SELF_APPROVAL_HINT \
	"operators.allow_self_approval: true allows it, for development " \
	"and tests only"

/*
 * A principal that is also an operator could approve its own writes with
 * gatewayctl: by the same uid or gid, or through a primary group that the
 * passwd database tells.
 */
static int
check_principal_ops(struct cfgctx *ctx, size_t i)
{
	const struct config	*c = ctx->conf;
	const struct principal	*p = &c->principals[i];
	struct passwd		*pw;
	char			 sub[KEY_PATH_LEN], key[KEY_PATH_LEN], w[64];
	ssize_t			 j;
	size_t			 k;

	index_path(sub, sizeof(sub), "principals", i);
	if (p->has_uid) {
		key_path(key, sizeof(key), sub, "uid");
		if ((j = id_index(c->op_uids, c->nop_uids, p->uid)) != -1)
			return cfg_error(ctx, ctx->pnodes[i].uid, key, "uid %u "
			    "is also an operator (%s): the agent could approve "
			    "its own writes; " SELF_APPROVAL_HINT,
			    (unsigned)p->uid, op_where(ctx, w, sizeof(w),
			    "uids", j));
		if ((pw = getpwuid(p->uid)) != NULL && (j = id_index(
		    c->op_gids, c->nop_gids, pw->pw_gid)) != -1)
			return cfg_error(ctx, ctx->pnodes[i].uid, key, "uid %u "
			    "has the primary gid %u, an operator gid (%s): the "
			    "agent could approve its own writes; "
			    SELF_APPROVAL_HINT, (unsigned)p->uid,
			    (unsigned)pw->pw_gid, op_where(ctx, w, sizeof(w),
			    "gids", j));
		return 0;
	}
	key_path(key, sizeof(key), sub, "gid");
	if ((j = id_index(c->op_gids, c->nop_gids, p->gid)) != -1)
		return cfg_error(ctx, ctx->pnodes[i].gid, key, "gid %u is also "
		    "an operator gid (%s): the agent could approve its own "
		    "writes; " SELF_APPROVAL_HINT, (unsigned)p->gid,
		    op_where(ctx, w, sizeof(w), "gids", j));
	for (k = 0; k < c->nop_uids; k++) {
		if ((pw = getpwuid(c->op_uids[k])) == NULL ||
		    pw->pw_gid != p->gid)
			continue;
		return cfg_error(ctx, ctx->pnodes[i].gid, key, "gid %u is the "
		    "primary gid of operator uid %u (%s): the operator's "
		    "processes would act as this agent; " SELF_APPROVAL_HINT,
		    (unsigned)p->gid, (unsigned)c->op_uids[k],
		    op_where(ctx, w, sizeof(w), "uids", (ssize_t)k));
	}
	return 0;
}

/*
 * A tool running as root or as an operator could approve its own write
 * with gatewayctl.  A user unknown now is not checked: the call fails when
 * the tool runs, as it always did.
 */
static int
check_tool_user(struct cfgctx *ctx, const char *user, const yaml_node_t *node,
    const char *path)
{
	const struct config	*c = ctx->conf;
	struct passwd		*pw;
	char			 w[64];
	uid_t			 uid;
	gid_t			 gid;
	ssize_t			 j;

	if ((pw = getpwnam(user)) == NULL)
		return 0;
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (node == NULL)		/* the default tool_user */
		node = ctx->root;
	if (uid == 0)
		return cfg_error(ctx, node, path, "user %s is root: tools must "
		    "not run as root; " SELF_APPROVAL_HINT, user);
	if ((j = id_index(c->op_uids, c->nop_uids, uid)) != -1)
		return cfg_error(ctx, node, path, "user %s (uid %u) is an "
		    "operator (%s): a tool running as it could approve its "
		    "own writes; " SELF_APPROVAL_HINT, user, (unsigned)uid,
		    op_where(ctx, w, sizeof(w), "uids", j));
	if ((j = id_index(c->op_gids, c->nop_gids, gid)) != -1)
		return cfg_error(ctx, node, path, "user %s has the primary gid "
		    "%u, an operator gid (%s): a tool running as it could "
		    "approve its own writes; " SELF_APPROVAL_HINT, user,
		    (unsigned)gid, op_where(ctx, w, sizeof(w), "gids", j));
	return 0;
}

static int
check_self_approval(struct cfgctx *ctx)
{
	const struct config	*c = ctx->conf;
	char			 sub[KEY_PATH_LEN], key[KEY_PATH_LEN];
	size_t			 i;

	if (c->allow_self_approval)
		return 0;
	for (i = 0; i < c->nprincipals; i++)
		if (check_principal_ops(ctx, i) == -1)
			return -1;
	if (check_tool_user(ctx, c->tool_user, ctx->tool_user,
	    "tool_user") == -1)
		return -1;
	for (i = 0; i < c->ncatalog; i++) {
		if (c->catalog[i].user == NULL)
			continue;
		key_path(sub, sizeof(sub), "catalog", c->catalog[i].name);
		key_path(key, sizeof(key), sub, "user");
		if (check_tool_user(ctx, c->catalog[i].user,
		    ctx->tnodes[i].user, key) == -1)
			return -1;
	}
	return 0;
}

/*
 * One tenant's share of the run table: the default is cut to max_runs, a
 * value set above it is an error (it would never apply).
 */
static int
check_runs(struct cfgctx *ctx)
{
	struct config	*c = ctx->conf;

	if (c->max_runs_per_tenant <= c->max_runs)
		return 0;
	if (ctx->max_runs_per_tenant == NULL) {
		c->max_runs_per_tenant = c->max_runs;
		return 0;
	}
	return cfg_error(ctx, ctx->max_runs_per_tenant,
	    "runs.max_runs_per_tenant", "%llu is more than runs.max_runs"
	    " (%llu)", (unsigned long long)c->max_runs_per_tenant,
	    (unsigned long long)c->max_runs);
}

/*
 * The connection caps are shares of limits.max_connections: set, they
 * must fit in it; left out, they are cut down to fit.  Peers with no
 * principal get a quarter at most, so they never fill the table.
 */
static int
check_conn_caps(struct cfgctx *ctx)
{
	struct config	*c = ctx->conf;
	uint64_t	 quarter = c->max_connections / 4;

	if (ctx->conns_per_uid == NULL) {
		if (c->max_conns_per_uid > c->max_connections)
			c->max_conns_per_uid = c->max_connections;
	} else if (c->max_conns_per_uid > c->max_connections)
		return cfg_error(ctx, ctx->conns_per_uid,
		    "limits.max_connections_per_uid", "%llu is more than"
		    " limits.max_connections (%llu)",
		    (unsigned long long)c->max_conns_per_uid,
		    (unsigned long long)c->max_connections);
	if (ctx->stranger_conns == NULL) {
		if (c->max_stranger_conns > quarter)
			c->max_stranger_conns = quarter > 0 ? quarter : 1;
	} else if (c->max_stranger_conns > c->max_connections)
		return cfg_error(ctx, ctx->stranger_conns,
		    "limits.max_stranger_connections", "%llu is more than"
		    " limits.max_connections (%llu)",
		    (unsigned long long)c->max_stranger_conns,
		    (unsigned long long)c->max_connections);
	return 0;
}

/*
 * limits.max_tools_per_tenant: its default follows a smaller max_tools; a
 * value set above max_tools is an error (it would never apply).
 */
static int
check_tools(struct cfgctx *ctx)
{
	struct config	*c = ctx->conf;

	if (c->max_tools_per_tenant <= c->max_tools)
		return 0;
	if (ctx->max_tools_per_tenant == NULL) {
		c->max_tools_per_tenant = c->max_tools;
		return 0;
	}
	return cfg_error(ctx, ctx->max_tools_per_tenant,
	    "limits.max_tools_per_tenant", "%llu is more than"
	    " limits.max_tools (%llu)",
	    (unsigned long long)c->max_tools_per_tenant,
	    (unsigned long long)c->max_tools);
}

/* Rules that tie keys of different sections together. */
static int
check_config(struct cfgctx *ctx)
{
	const struct config	*c = ctx->conf;

	/* CONTRACT: read_write without writes.enabled is a contradiction. */
	if (c->read_write && !c->writes_enabled)
		return cfg_error(ctx, ctx->default_mode, "tools.default_mode",
		    "read_write needs writes.enabled: true (read_only means "
		    "no writes unless they are enabled)");
	if (c->max_map_size < c->map_size) {
		if (ctx->max_map_size != NULL)
			return cfg_error(ctx, ctx->max_map_size,
			    "store.max_map_size", "%llu is less than "
			    "store.map_size (%llu)",
			    (unsigned long long)c->max_map_size,
			    (unsigned long long)c->map_size);
		return cfg_error(ctx, ctx->map_size, "store.map_size",
		    "%llu is more than store.max_map_size (%llu)",
		    (unsigned long long)c->map_size,
		    (unsigned long long)c->max_map_size);
	}
	if (check_reserve(ctx) == -1 || check_runs(ctx) == -1 ||
	    check_conn_caps(ctx) == -1 || check_tools(ctx) == -1 ||
	    check_tool_names(ctx) == -1)
		return -1;
	return check_self_approval(ctx);
}

/* loading */

static struct config *
config_defaults(const char *path)
{
	struct config	*c;

	c = xcalloc(1, sizeof(*c));
	c->file = xstrdup(path);
	c->agent_socket = xstrdup("/run/toolgate/agent.sock");
	c->control_socket = xstrdup("/run/toolgate/control.sock");
	c->state_dir = xstrdup("/var/lib/toolgate");
	c->credentials_dir = xstrdup("/etc/toolgate/credentials");
	c->user = xstrdup("toolgate");
	c->tool_user = xstrdup("nobody");
	c->op_uids = xcalloc(1, sizeof(*c->op_uids));
	c->op_uids[0] = 0;
	c->nop_uids = 1;
	c->read_write = 0;
	c->writes_enabled = 0;
	c->approval_all = 1;
	c->retention_s = 86400;
	c->max_steps_per_run = 50;
	c->max_writes_per_run = 10;
	c->max_tokens_per_run = 200000;
	c->max_cost_per_run = 5.0;
	c->repeat_limit = 3;
	c->approvals_ttl_s = 3600;
	c->max_frame = MIB;
	c->max_output = MIB;
	c->max_connections = 1024;
	c->max_inflight = 64;
	c->control_idle_s = 30;
	c->max_conns_per_uid = 256;
	c->max_stranger_conns = 16;
	c->frame_timeout_s = 30;
	c->stranger_summary_s = 60;
	c->stranger_uids = 1024;
	c->max_tools = 64;
	c->max_tools_per_tenant = 16;
	c->run_idle_s = 3600;
	c->max_runs = 10000;
	c->max_runs_per_tenant = 1000;
	c->map_size = 64 * MIB;
	c->max_map_size = 1024 * MIB;
	c->max_pending_per_tenant = 100;
	c->max_pending_bytes_per_tenant = 16 * MIB;
	return c;
}

/*
 * Read the whole file, so that an unreadable or oversized one gets its
 * own message rather than a YAML "input error".
 */
static unsigned char *
read_config(struct cfgctx *ctx, size_t *lenp)
{
	struct stat	 st;
	unsigned char	*buf;
	size_t		 len = 0, cap;
	ssize_t		 n;
	int		 fd;

	/* O_NONBLOCK: a FIFO must not hang us before the S_ISREG check. */
	if ((fd = open(ctx->file, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		file_error(ctx, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		file_error(ctx, "cannot open: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		file_error(ctx, "cannot open: %s", S_ISDIR(st.st_mode) ?
		    strerror(EISDIR) : "not a regular file");
		close(fd);
		return NULL;
	}
	cap = (size_t)st.st_size + 1;
	if (cap > CONFIG_MAX_SIZE)
		cap = CONFIG_MAX_SIZE + 1;
	buf = xmalloc(cap);
	/* Read to EOF: the size may have changed since fstat(). */
	while ((n = read(fd, buf + len, cap - len)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			file_error(ctx, "cannot read: %s", strerror(errno));
			close(fd);
			free(buf);
			return NULL;
		}
		len += (size_t)n;
		if (len > CONFIG_MAX_SIZE) {
			file_error(ctx, "larger than %llu bytes",
			    (unsigned long long)CONFIG_MAX_SIZE);
			close(fd);
			free(buf);
			return NULL;
		}
		if (len == cap) {
			cap = cap * 2 > CONFIG_MAX_SIZE + 1 ?
			    CONFIG_MAX_SIZE + 1 : cap * 2;
			buf = xreallocarray(buf, cap, 1);
		}
	}
	close(fd);
	*lenp = len;
	return buf;
}

static void
syntax_error(struct cfgctx *ctx, const yaml_parser_t *parser,
    const unsigned char *buf, size_t len)
{
	size_t		 line, i;
	const char	*problem;

	if (parser->error == YAML_MEMORY_ERROR)
		fatalx("%s: yaml: out of memory", ctx->file);
	problem = parser->problem != NULL ? parser->problem : "cannot parse";
	if (parser->error == YAML_READER_ERROR) {
		/* The reader knows a byte offset, not a line. */
		line = 1;
		for (i = 0; i < parser->problem_offset && i < len; i++)
			if (buf[i] == '\n')
				line++;
	} else
		line = parser->problem_mark.line + 1;
	if (ctx->err == NULL || ctx->errlen == 0)
		return;
	if (parser->context != NULL)
		snprintf(ctx->err, ctx->errlen, "%s:%zu: syntax error: %s "
		    "(%s at line %zu)", ctx->file, line, problem,
		    parser->context, (size_t)parser->context_mark.line + 1);
	else
		snprintf(ctx->err, ctx->errlen, "%s:%zu: syntax error: %s",
		    ctx->file, line, problem);
}

/*
 * Parse 'buf' into 'doc'.  A second document in the file is refused: it
 * would be ignored, and nothing the operator wrote may be ignored.
 */
static int
parse_yaml(struct cfgctx *ctx, const unsigned char *buf, size_t len,
    yaml_document_t *doc)
{
	yaml_parser_t	 parser;
	yaml_document_t	 extra;
	yaml_node_t	*root;
	int		 rv = -1;

	if (!yaml_parser_initialize(&parser))
		fatalx("%s: yaml: out of memory", ctx->file);
	yaml_parser_set_input_string(&parser, buf, len);
	if (!yaml_parser_load(&parser, doc)) {
		syntax_error(ctx, &parser, buf, len);
		yaml_parser_delete(&parser);
		return -1;
	}
	if (!yaml_parser_load(&parser, &extra)) {
		syntax_error(ctx, &parser, buf, len);
		goto out;
	}
	if ((root = yaml_document_get_root_node(&extra)) != NULL)
		cfg_error(ctx, root, "(top level)", "a second YAML document; "
		    "a config is one document");
	else
		rv = 0;
	yaml_document_delete(&extra);
 out:
	yaml_parser_delete(&parser);
	if (rv == -1)
		yaml_document_delete(doc);
	return rv;
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct cfgctx	 ctx;
	yaml_document_t	 doc;
	yaml_node_t	*root;
	unsigned char	*buf;
	size_t		 len;
	int		 rv;

	memset(&ctx, 0, sizeof(ctx));
	ctx.file = path;
	ctx.err = err;
	ctx.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	if ((buf = read_config(&ctx, &len)) == NULL)
		return NULL;
	rv = parse_yaml(&ctx, buf, len, &doc);
	free(buf);
	if (rv == -1)
		return NULL;

	ctx.doc = &doc;
	ctx.conf = config_defaults(path);
	/* An empty file is more likely a mistake than a wish for defaults. */
	if ((root = yaml_document_get_root_node(&doc)) == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s:1: (top level): the file is "
			    "empty; expected a mapping", path);
		rv = -1;
	} else {
		ctx.root = root;
		if ((rv = walk_map(&ctx, root, "", top_key)) == 0)
			rv = check_config(&ctx);
	}
	yaml_document_delete(&doc);
	free(ctx.dir);
	free(ctx.pnodes);
	free(ctx.tnodes);
	if (rv == -1) {
		config_free(ctx.conf);
		return NULL;
	}
	return ctx.conf;
}

void
config_free(struct config *c)
{
	size_t	 i;

	if (c == NULL)
		return;
	free(c->file);
	free(c->agent_socket);
	free(c->control_socket);
	free(c->state_dir);
	free(c->credentials_dir);
	free(c->user);
	free(c->tool_user);
	for (i = 0; i < c->nprincipals; i++) {
		free(c->principals[i].tenant);
		free(c->principals[i].env);
	}
	free(c->principals);
	free(c->op_uids);
	free(c->op_gids);
	for (i = 0; i < c->ncatalog; i++) {
		free(c->catalog[i].name);
		free_strings(c->catalog[i].argv, c->catalog[i].argc);
		free(c->catalog[i].compensate);
		free(c->catalog[i].user);
	}
	free(c->catalog);
	free_strings(c->allow, c->nallow);
	free_strings(c->approval_tools, c->napproval_tools);
	free(c->metrics_listen);
	free(c);
}

/* lookups */

const struct tool *
config_tool(const struct config *c, const char *name)
{
	size_t	 i;

	for (i = 0; i < c->ncatalog; i++)
		if (strcmp(c->catalog[i].name, name) == 0)
			return &c->catalog[i];
	return NULL;
}

static int
in_list(char *const *list, size_t n, const char *name)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return 1;
	return 0;
}

int
config_allowed(const struct config *c, const char *name)
{
	return in_list(c->allow, c->nallow, name);
}

enum tool_mode
config_tool_mode(const struct config *c, const char *name)
{
	const struct tool	*t;

	if ((t = config_tool(c, name)) == NULL)
		return TOOL_WRITE;
	return t->mode;
}

int
config_needs_approval(const struct config *c, const char *name)
{
	return c->approval_all ||
	    in_list(c->approval_tools, c->napproval_tools, name);
}

const struct principal *
config_principal(const struct config *c, uid_t uid, gid_t gid)
{
	size_t	 i;

	for (i = 0; i < c->nprincipals; i++)
		if (c->principals[i].has_uid && c->principals[i].uid == uid)
			return &c->principals[i];
	for (i = 0; i < c->nprincipals; i++)
		if (c->principals[i].has_gid && c->principals[i].gid == gid)
			return &c->principals[i];
	return NULL;
}

int
config_is_operator(const struct config *c, uid_t uid, gid_t gid)
{
	size_t	 i;

	for (i = 0; i < c->nop_uids; i++)
		if (c->op_uids[i] == uid)
			return 1;
	for (i = 0; i < c->nop_gids; i++)
		if (c->op_gids[i] == gid)
			return 1;
	return 0;
}
