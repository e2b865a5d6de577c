/*
 * The config sections that a table row cannot read alone: lists of
 * principals and ids, the catalog (keyed by tool names), name lists,
 * writes.require_approval (a boolean or a list), metrics.listen and
 * credentials.scope.  Each is a key of the table in config.c, which
 * calls these; their entries' own keys go back to the table walk.
 */
#include <sys/types.h>
#include <sys/un.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/config.h"
#include "common/config_impl.h"
#include "common/xmalloc.h"
#include "common/yamlread.h"

#define EXEC_MAX_LEN		4095		/* PATH_MAX less the NUL */

/* A list of names (tools.allow, writes.require_approval). */
static int
set_name_list(struct cfgctx *ctx, yaml_node_t *node, const char *path,
    char ***list, size_t *n)
{
	char		 sub[KEY_PATH_LEN];
	const char	*s;
	size_t		 i, len, before = cfg_nerrs(ctx);

	if (cfg_expect_kind(ctx, node, path, YAML_SEQUENCE_NODE) == -1)
		return -1;
	cfg_free_strings(*list, *n);
	len = yseq_len(node);
	*list = xcalloc(len, sizeof(**list));
	*n = 0;
	for (i = 0; i < len; i++) {
		cfg_index_path(sub, sizeof(sub), path, i);
		if (cfg_get_name(ctx, yseq_item(ctx->yd, node, i), sub,
		    &s) == 0)
			(*list)[(*n)++] = xstrdup(s);
	}
	return cfg_nerrs(ctx) == before ? 0 : -1;
}

/* principals */

int
sect_principal_id(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *val, const char *path)
{
	struct principal	*p = ctx->principal;
	struct idnodes		*nodes;
	uint64_t		 id;

	nodes = &ctx->pnodes[p - ctx->conf->principals];
	if (cfg_get_u64(ctx, val, path, 0, k->max, &id) == -1)
		return -1;
	if (strcmp(k->name, "principals[].uid") == 0) {
		p->uid = (uid_t)id;
		p->has_uid = 1;
		nodes->uid = val;
		return 0;
	}
	/*
	 * Group 0 is root's: root's own processes, and whatever else runs
	 * with gid 0, would act as this agent.
	 */
	if (id < k->min)
		return cfg_error(ctx, val, path, "gid 0 is root's group and "
		    "must not be a principal: every process of root and of "
		    "group 0 would act as this agent");
	p->gid = (gid_t)id;
	p->has_gid = 1;
	nodes->gid = val;
	return 0;
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
			cfg_key_path(sub, sizeof(sub), path, "uid");
			return cfg_error(ctx, node, sub, "uid %u is already "
			    "mapped by principals[%zu]", (unsigned)p->uid, j);
		}
		if (p->has_gid && q->has_gid && p->gid == q->gid) {
			cfg_key_path(sub, sizeof(sub), path, "gid");
			return cfg_error(ctx, node, sub, "gid %u is already "
			    "mapped by principals[%zu]", (unsigned)p->gid, j);
		}
	}
	return 0;
}

/* An entry with a mistake in a key is not checked as a whole. */
static int
parse_principal(struct cfgctx *ctx, yaml_node_t *node, const char *path,
    size_t i)
{
	struct principal	*p = &ctx->conf->principals[i];
	char			 sub[KEY_PATH_LEN];

	ctx->principal = p;
	if (cfg_walk(ctx, node, path, "principals[]") == -1)
		return -1;
	if (p->has_uid && p->has_gid)
		return cfg_error(ctx, node, path, "has both uid and gid; a "
		    "principal is exactly one of them");
	if (!p->has_uid && !p->has_gid)
		return cfg_error(ctx, node, path, "needs a uid or a gid");
	if (p->tenant == NULL) {
		cfg_key_path(sub, sizeof(sub), path, "tenant");
		return cfg_error(ctx, node, sub, "missing");
	}
	if (p->env == NULL) {
		cfg_key_path(sub, sizeof(sub), path, "env");
		return cfg_error(ctx, node, sub, "missing");
	}
	return principal_unique(ctx, node, path, i);
}

int
sect_principals(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *node, const char *path)
{
	struct config	*c = ctx->conf;
	char		 sub[KEY_PATH_LEN];
	size_t		 i, len, before = cfg_nerrs(ctx);

	(void)k;
	if (cfg_expect_kind(ctx, node, path, YAML_SEQUENCE_NODE) == -1)
		return -1;
	len = yseq_len(node);
	c->principals = xcalloc(len, sizeof(*c->principals));
	ctx->pnodes = xcalloc(len, sizeof(*ctx->pnodes));
	for (i = 0; i < len; i++) {
		/* Counted first, so config_free() sees a half-read entry. */
		c->nprincipals++;
		cfg_index_path(sub, sizeof(sub), path, i);
		parse_principal(ctx, yseq_item(ctx->yd, node, i), sub, i);
	}
	return cfg_nerrs(ctx) == before ? 0 : -1;
}

/* operators */

/*
 * A list of uids or gids.  Both are the same integer type on Linux, so one
 * reader serves both (the assert says so at build time).
 */
_Static_assert(sizeof(uid_t) == sizeof(gid_t), "uid_t and gid_t differ");

int
sect_op_ids(struct cfgctx *ctx, const struct cfgkey *k, yaml_node_t *node,
    const char *path)
{
	struct config	*c = ctx->conf;
	char		 sub[KEY_PATH_LEN];
	uid_t		**ids;
	uint64_t	 id;
	size_t		 i, len, *n, before = cfg_nerrs(ctx);

	if (strcmp(k->name, "operators.uids") == 0) {
		ids = &c->op_uids;
		n = &c->nop_uids;
	} else {
		ids = (uid_t **)&c->op_gids;
		n = &c->nop_gids;
	}
	if (cfg_expect_kind(ctx, node, path, YAML_SEQUENCE_NODE) == -1)
		return -1;
	len = yseq_len(node);
	free(*ids);
	*ids = xcalloc(len, sizeof(**ids));
	*n = 0;
	for (i = 0; i < len; i++) {
		cfg_index_path(sub, sizeof(sub), path, i);
		if (cfg_get_u64(ctx, yseq_item(ctx->yd, node, i), sub, k->min,
		    k->max, &id) == 0)
			(*ids)[(*n)++] = (uid_t)id;
	}
	return cfg_nerrs(ctx) == before ? 0 : -1;
}

/* catalog */

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

/* [PATH, ARG...], run without a shell. */
int
cfg_read_command(struct cfgctx *ctx, yaml_node_t *node, const char *path,
    char ***argvp, size_t *argcp)
{
	yaml_node_t	*item;
	char		 sub[KEY_PATH_LEN];
	char		**argv;
	const char	*s;
	size_t		 i, len;

	if (cfg_expect_kind(ctx, node, path, YAML_SEQUENCE_NODE) == -1)
		return -1;
	if ((len = yseq_len(node)) == 0)
		return cfg_error(ctx, node, path, "must not be empty: it "
		    "names the program to run");
	argv = *argvp = xcalloc(len + 1, sizeof(*argv));
	*argcp = len;
	for (i = 0; i < len; i++) {
		item = yseq_item(ctx->yd, node, i);
		cfg_index_path(sub, sizeof(sub), path, i);
		if (cfg_expect_scalar(ctx, item, sub, "a string") == -1)
			return -1;
		/* An argument may be "", the program may not. */
		if (i > 0 && ynode_is_quoted(item) &&
		    item->data.scalar.length == 0)
			s = "";
		else if (cfg_get_str(ctx, item, sub, &s) == -1)
			return -1;
		if (i == 0) {
			if (set_program(ctx, item, sub, s, &argv[0]) == -1)
				return -1;
		} else
			argv[i] = xstrdup(s);
	}
	return 0;
}

int
sect_exec(struct cfgctx *ctx, const struct cfgkey *k, yaml_node_t *node,
    const char *path)
{
	struct tool	*t = ctx->tool;

	(void)k;
	ctx->tnodes[t - ctx->conf->catalog].exec = node;
	return cfg_read_command(ctx, node, path, &t->argv, &t->argc);
}

/*
 * A value of compensate.args: "$.FIELD" (the original's top-level arg
 * FIELD, a name), or a string in which "${NAME}" stands for one of the
 * original's run_id, tool, args_hash or idempotency_key.  Anything else
 * after a '$' is refused here, so the executor never meets a value it
 * cannot expand (executor/compensate.c expands them).
 */
static const char *
comp_value_bad(const char *v)
{
	static const char	*names[] = { "run_id", "tool", "args_hash",
				    "idempotency_key" };
	const char		*p, *end;
	size_t			 i, n;

	if (strncmp(v, "$.", 2) == 0)
		return cfg_valid_name(v + 2) ? NULL : "\"$.FIELD\" must name"
		    " one top-level arg (letters, digits, '.', '_', '-')";
	for (p = v; (p = strchr(p, '$')) != NULL; p = end + 1) {
		if (p[1] != '{' || (end = strchr(p, '}')) == NULL)
			return "a '$' must begin \"$.FIELD\" (the whole value)"
			    " or \"${run_id}\", \"${tool}\", \"${args_hash}\""
			    " or \"${idempotency_key}\"";
		n = (size_t)(end - p - 2);
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i]) == n &&
			    strncmp(p + 2, names[i], n) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0]))
			return "unknown \"${...}\": the names are run_id,"
			    " tool, args_hash and idempotency_key";
	}
	return NULL;
}

/* compensate.args: { NAME: VALUE }, at most COMP_ARGS_MAX of them. */
static int
comp_args(struct cfgctx *ctx, struct tool *t, yaml_node_t *node,
    const char *path)
{
	yaml_node_pair_t	*pair;
	yaml_node_t		*kn, *vn;
	char			 sub[KEY_PATH_LEN];
	const char		*name, *val, *why;
	size_t			 before = cfg_nerrs(ctx), len;

	if (cfg_expect_kind(ctx, node, path, YAML_MAPPING_NODE) == -1)
		return -1;
	if ((len = ymap_len(node)) > COMP_ARGS_MAX)
		return cfg_error(ctx, node, path, "more than %d args",
		    COMP_ARGS_MAX);
	t->comp_names = xcalloc(len + 1, sizeof(char *));
	t->comp_values = xcalloc(len + 1, sizeof(char *));
	for (pair = node->data.mapping.pairs.start;
	    pair < node->data.mapping.pairs.top; pair++) {
		kn = yaml_document_get_node(&ctx->yd->doc, pair->key);
		vn = yaml_document_get_node(&ctx->yd->doc, pair->value);
		if (cfg_get_name(ctx, kn, path, &name) == -1)
			continue;
		cfg_key_path(sub, sizeof(sub), path, name);
		if (cfg_get_value(ctx, vn, sub, COMP_VALUE_MAX_LEN, &val) ==
		    -1)
			continue;
		if ((why = comp_value_bad(val)) != NULL) {
			cfg_error(ctx, vn, sub, "%s", why);
			continue;
		}
		t->comp_names[t->ncomp_args] = xstrdup(name);
		t->comp_values[t->ncomp_args++] = xstrdup(val);
	}
	return cfg_nerrs(ctx) == before ? 0 : -1;
}

/*
 * compensate: TOOL (CONTRACT.md: the same args as the original), or
 * { tool: TOOL, args: { NAME: VALUE } } (args built from the original's).
 */
int
sect_compensate(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *val, const char *path)
{
	struct tool		*t = ctx->tool;
	yaml_node_pair_t	*pair;
	yaml_node_t		*kn, *vn, *tool = NULL, *args = NULL;
	char			 sub[KEY_PATH_LEN];
	const char		*key;
	size_t			 before = cfg_nerrs(ctx);

	(void)k;
	ctx->tnodes[t - ctx->conf->catalog].compensate = val;
	if (val->type != YAML_MAPPING_NODE)
		return cfg_set_name(ctx, val, path, &t->compensate);
	for (pair = val->data.mapping.pairs.start;
	    pair < val->data.mapping.pairs.top; pair++) {
		kn = yaml_document_get_node(&ctx->yd->doc, pair->key);
		vn = yaml_document_get_node(&ctx->yd->doc, pair->value);
		if (cfg_get_str(ctx, kn, path, &key) == -1)
			continue;
		cfg_key_path(sub, sizeof(sub), path, key);
		if (strcmp(key, "tool") == 0 && tool == NULL)
			tool = vn;
		else if (strcmp(key, "args") == 0 && args == NULL)
			args = vn;
		else
			cfg_error(ctx, kn, sub, "not a key of compensate (tool,"
			    " args), or given twice");
	}
	if (tool == NULL)
		return cfg_error(ctx, val, path, "the map form names its"
		    " tool: { tool: TOOL, args: { ... } }");
	cfg_key_path(sub, sizeof(sub), path, "tool");
	if (cfg_set_name(ctx, tool, sub, &t->compensate) == -1)
		return -1;
	t->comp_map = 1;
	if (args != NULL) {
		cfg_key_path(sub, sizeof(sub), path, "args");
		(void)comp_args(ctx, t, args, sub);
	}
	return cfg_nerrs(ctx) == before ? 0 : -1;
}

/* entity: [ARG, ...], the args that name what a write touches. */
int
sect_entity(struct cfgctx *ctx, const struct cfgkey *k, yaml_node_t *val,
    const char *path)
{
	struct tool	*t = ctx->tool;

	(void)k;
	if (val->type == YAML_SEQUENCE_NODE && yseq_len(val) > COMP_ARGS_MAX)
		return cfg_error(ctx, val, path, "more than %d args",
		    COMP_ARGS_MAX);
	return set_name_list(ctx, val, path, &t->entity, &t->nentity);
}

int
sect_tool_user(struct cfgctx *ctx, const struct cfgkey *k, yaml_node_t *val,
    const char *path)
{
	struct tool	*t = ctx->tool;

	(void)k;
	ctx->tnodes[t - ctx->conf->catalog].user = val;
	return cfg_set_user(ctx, val, path, &t->user);
}

/* CONTRACT: a catalog tool names exactly one backend. */
static void
tool_backend(struct cfgctx *ctx, struct tool *t, yaml_node_t *val,
    const char *path)
{
	const struct toolnodes	*tn = &ctx->tnodes[t - ctx->conf->catalog];
	const yaml_node_t	*second = NULL;
	char			 sub[KEY_PATH_LEN];

	if (tn->exec != NULL)
		t->backend = TB_EXEC;
	if (tn->mcp != NULL) {
		if (tn->exec != NULL)
			second = tn->mcp;
		t->backend = TB_MCP;
	}
	if (tn->http != NULL) {
		if (tn->exec != NULL || tn->mcp != NULL)
			second = tn->http;
		t->backend = TB_HTTP;
	}
	if (tn->exec == NULL && tn->mcp == NULL && tn->http == NULL) {
		cfg_key_path(sub, sizeof(sub), path, "exec");
		cfg_error(ctx, val, sub, "missing: every catalog tool names "
		    "how it runs: exec, mcp or http");
	} else if (second != NULL)
		cfg_error(ctx, second, path, "names two backends: a catalog "
		    "tool has exactly one of exec, mcp and http");
}

static int
catalog_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	struct config	*c = ctx->conf;
	struct tool	*t;
	size_t		 before = cfg_nerrs(ctx);

	if (!cfg_valid_name(key))
		return cfg_name_error(ctx, knode, path);
	/* sect_catalog() made room for every key of the mapping. */
	t = &c->catalog[c->ncatalog++];
	t->name = xstrdup(key);
	cfg_tool_defaults(t);		/* no mode: a write, fail closed */
	ctx->tool = t;
	cfg_walk(ctx, val, path, "catalog.*");
	if (val->type == YAML_MAPPING_NODE && cfg_nerrs(ctx) == before)
		tool_backend(ctx, t, val, path);
	return cfg_nerrs(ctx) == before ? 0 : -1;
}

int
sect_catalog(struct cfgctx *ctx, const struct cfgkey *k, yaml_node_t *node,
    const char *path)
{
	struct config	*c = ctx->conf;
	size_t		 len;

	(void)k;
	if (cfg_expect_kind(ctx, node, path, YAML_MAPPING_NODE) == -1)
		return -1;
	len = ymap_len(node);
	c->catalog = xcalloc(len, sizeof(*c->catalog));
	ctx->tnodes = xcalloc(len, sizeof(*ctx->tnodes));
	return cfg_walk_fn(ctx, node, path, catalog_key);
}

/* audit */

int
sect_audit_redact(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *val, const char *path)
{
	(void)k;
	return set_name_list(ctx, val, path, &ctx->conf->audit_redact,
	    &ctx->conf->naudit_redact);
}

/* tools, writes */

int
sect_allow(struct cfgctx *ctx, const struct cfgkey *k, yaml_node_t *val,
    const char *path)
{
	(void)k;
	return set_name_list(ctx, val, path, &ctx->conf->allow,
	    &ctx->conf->nallow);
}

int
sect_require_approval(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *node, const char *path)
{
	struct config	*c = ctx->conf;

	(void)k;
	if (node->type == YAML_SEQUENCE_NODE) {
		/* [] would read as "no write needs approval": say false. */
		if (yseq_len(node) == 0)
			return cfg_error(ctx, node, path, "an empty list; "
			    "write false if no write needs approval");
		c->approval_all = 0;
		return set_name_list(ctx, node, path, &c->approval_tools,
		    &c->napproval_tools);
	}
	if (node->type != YAML_SCALAR_NODE)
		return cfg_expected(ctx, node, path,
		    "a boolean or a list of tool names");
	return cfg_get_bool(ctx, node, path, &c->approval_all);
}

/* rate_limits.per_tool: TOOL -> { rate, burst }. */

static int
rate_tool_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	struct config		*c = ctx->conf;
	struct rate_rule	*r;
	char			 sub[KEY_PATH_LEN];
	size_t			 before = cfg_nerrs(ctx);

	if (!cfg_valid_name(key))
		return cfg_name_error(ctx, knode, path);
	/* sect_rate_tools() made room for every key of the mapping. */
	r = &c->rate_tools[c->nrate_tools++];
	r->tool = xstrdup(key);
	ctx->rate = r;
	cfg_walk(ctx, val, path, "rate_limits.per_tool.*");
	ctx->rate = NULL;
	if (cfg_nerrs(ctx) != before || val->type != YAML_MAPPING_NODE)
		return -1;
	/* A bucket that never refills would refuse the tool for good. */
	if (!(r->rate > 0)) {
		cfg_key_path(sub, sizeof(sub), path, "rate");
		return cfg_error(ctx, val, sub, "missing or 0: a bucket needs "
		    "a rate above 0 (leave the tool out for no limit)");
	}
	return 0;
}

int
sect_rate_tools(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *node, const char *path)
{
	struct config	*c = ctx->conf;

	(void)k;
	if (cfg_expect_kind(ctx, node, path, YAML_MAPPING_NODE) == -1)
		return -1;
	c->rate_tools = xcalloc(ymap_len(node), sizeof(*c->rate_tools));
	return cfg_walk_fn(ctx, node, path, rate_tool_key);
}

/* metrics: "127.0.0.1:PORT", "[::1]:PORT" or "unix:PATH". */
int
sect_metrics_listen(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *val, const char *path)
{
	struct sockaddr_un	 sun;
	const char		*s, *port;
	uint64_t		 v = 0;

	(void)k;
	if (cfg_get_str(ctx, val, path, &s) == -1)
		return -1;
	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] != '/')
			return cfg_error(ctx, val, path, "unix: needs an "
			    "absolute path");
		if (strlen(s + 5) >= sizeof(sun.sun_path))
			return cfg_error(ctx, val, path, "socket path longer "
			    "than %zu bytes", sizeof(sun.sun_path) - 1);
	} else {
		/* Loopback only: the metrics are for this host's scraper. */
		if ((port = strrchr(s, ':')) == NULL || port == s)
			return cfg_expected(ctx, val, path,
			    "127.0.0.1:PORT, [::1]:PORT or unix:PATH");
		if (!(port - s == 9 && strncmp(s, "127.0.0.1", 9) == 0) &&
		    !(port - s == 5 && strncmp(s, "[::1]", 5) == 0))
			return cfg_error(ctx, val, path, "only 127.0.0.1:PORT"
			    " or [::1]:PORT (loopback), or unix:PATH");
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

/*
 * store.dsn: a libpq connection string, given to PQconnectStart as it is;
 * libpq alone knows its syntax, so only its size and its characters are
 * checked here (a control character would hide in the logs).
 */
int
sect_store_dsn(struct cfgctx *ctx, const struct cfgkey *k, yaml_node_t *val,
    const char *path)
{
	const char	*s;
	size_t		 i;

	(void)k;
	if (cfg_get_str(ctx, val, path, &s) == -1)
		return -1;
	if (s[0] == '\0' || strlen(s) > 4096)
		return cfg_error(ctx, val, path, "a libpq connection string"
		    " of 1 to 4096 bytes");
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return cfg_error(ctx, val, path, "a control character"
			    " at byte %zu", i);
	free(ctx->conf->store_dsn);
	ctx->conf->store_dsn = xstrdup(s);
	return 0;
}

/* credentials.scope: only the one safe setting exists. */
int
sect_scope(struct cfgctx *ctx, const struct cfgkey *k, yaml_node_t *val,
    const char *path)
{
	int	 on;

	(void)k;
	if (cfg_get_bool(ctx, val, path, &on) == -1)
		return -1;
	if (!on)
		return cfg_error(ctx, val, path, "must be true: only "
		    "credentials scoped by tenant and environment are "
		    "supported");
	return 0;
}
