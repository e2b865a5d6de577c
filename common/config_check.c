/*
 * The rules between keys, in one place, run once the whole file is read:
 * limits that are shares of other limits, defaults derived from other
 * keys, tool names that must name catalog tools, and agents that must not
 * be operators.  A rule whose keys had a mistake is skipped, so that one
 * mistake is reported once, not again through every rule it touches.
 */
#include <sys/types.h>

#include <math.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "common/config.h"
#include "common/credpath.h"
#include "common/config_impl.h"
#include "common/xmalloc.h"
#include "common/yamlread.h"

#define SELF_APPROVAL_HINT \
	"operators.allow_self_approval: true allows it, for development " \
	"and tests only"

/* -1 when any of the keys named had a mistake. */
static int
any_bad(const struct cfgctx *ctx, const char *const *names)
{
	for (; *names != NULL; names++)
		if (cfg_given(ctx, *names, NULL) == -1)
			return -1;
	return 0;
}

static const struct tool *
catalog_find(const struct config *c, const char *name)
{
	size_t	 i;

	for (i = 0; i < c->ncatalog; i++)
		if (strcmp(c->catalog[i].name, name) == 0)
			return &c->catalog[i];
	return NULL;
}

/*
 * A tool name that names no catalog tool is a typo: in require_approval
 * it would let the tool meant run unapproved, in compensate it would undo
 * nothing, in allow it would allow nothing or the wrong tool.  'names'
 * holds the items of the YAML list 'list' in order.
 */
static void
check_name_list(struct cfgctx *ctx, const yaml_node_t *list,
    char *const *names, size_t n, const char *path)
{
	char	 sub[KEY_PATH_LEN];
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (catalog_find(ctx->conf, names[i]) != NULL)
			continue;
		cfg_index_path(sub, sizeof(sub), path, i);
		cfg_error(ctx, yseq_item(ctx->yd, list, i), sub, "\"%s\" "
		    "is not a tool of the catalog", names[i]);
	}
}

/*
 * tools.allow is checked only when the config has a catalog: one without
 * (the safe default, a policy template) runs nothing at all, and may name
 * the tools it will allow once they exist.
 */
static void
check_tool_names(struct cfgctx *ctx)
{
	const struct config	*c = ctx->conf;
	const struct tool	*t, *comp;
	yaml_node_t		*allow, *approval;
	char			 sub[KEY_PATH_LEN], key[KEY_PATH_LEN];
	size_t			 i;

	/*
	 * A mistake inside a tool leaves its name in the catalog: only a
	 * catalog that is not a mapping at all leaves nothing to check
	 * against.  A list with a bad name is skipped: its indexes are off.
	 */
	if (c->catalog == NULL && cfg_given(ctx, "catalog", NULL) != 0)
		return;
	if (c->catalog != NULL &&
	    cfg_given(ctx, "tools.allow", &allow) == 1)
		check_name_list(ctx, allow, c->allow, c->nallow,
		    "tools.allow");
	if (cfg_given(ctx, "writes.require_approval", &approval) == 1 &&
	    approval->type == YAML_SEQUENCE_NODE)
		check_name_list(ctx, approval, c->approval_tools,
		    c->napproval_tools, "writes.require_approval");
	/*
	 * A compensation is a write like any other (gatewayctl compensate
	 * sends it down the write path): a read could undo nothing.
	 */
	for (i = 0; i < c->ncatalog; i++) {
		t = &c->catalog[i];
		if (t->compensate == NULL)
			continue;
		comp = catalog_find(c, t->compensate);
		if (comp != NULL && comp->mode == TOOL_WRITE)
			continue;
		cfg_key_path(sub, sizeof(sub), "catalog", t->name);
		cfg_key_path(key, sizeof(key), sub, "compensate");
		cfg_error(ctx, ctx->tnodes[i].compensate, key, "\"%s\" "
		    "is not a %stool of the catalog", t->compensate,
		    comp == NULL ? "" : "write ");
	}
}

/*
 * Each MCP tool names a server of mcp_servers; its index is kept so the
 * executor never looks it up by name.  A config whose mcp_servers had an
 * error of its own is not checked against.
 */
static void
check_mcp_tools(struct cfgctx *ctx)
{
	struct config	*c = ctx->conf;
	struct tool	*t;
	char		 sub[KEY_PATH_LEN], key[KEY_PATH_LEN];
	size_t		 i, j;

	if (cfg_given(ctx, "mcp_servers", NULL) == -1)
		return;
	for (i = 0; i < c->ncatalog; i++) {
		t = &c->catalog[i];
		if (t->backend != TB_MCP || t->mcp.server == NULL)
			continue;
		for (j = 0; j < c->nmcp_servers; j++)
			if (strcmp(c->mcp_servers[j].name, t->mcp.server) == 0)
				break;
		if (j < c->nmcp_servers) {
			t->mcp.server_idx = j;
			continue;
		}
		cfg_key_path(sub, sizeof(sub), "catalog", t->name);
		cfg_key_path(key, sizeof(key), sub, "mcp.server");
		cfg_error(ctx, ctx->tnodes[i].mcp_server, key, "\"%s\" is "
		    "not a server of mcp_servers", t->mcp.server);
	}
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
op_where(const struct cfgctx *ctx, char *buf, size_t len, const char *which,
    ssize_t i)
{
	if (strcmp(which, "uids") == 0 &&
	    cfg_given(ctx, "operators.uids", NULL) == 0)
		return "operators.uids, by default [0]";
	snprintf(buf, len, "operators.%s[%zd]", which, i);
	return buf;
}

static void
check_principal_uid(struct cfgctx *ctx, size_t i, const char *key)
{
	const struct config	*c = ctx->conf;
	const struct principal	*p = &c->principals[i];
	struct passwd		*pw;
	char			 w[64];
	ssize_t			 j;

	if ((j = id_index(c->op_uids, c->nop_uids, p->uid)) != -1)
		cfg_error(ctx, ctx->pnodes[i].uid, key, "uid %u is also an "
		    "operator (%s): the agent could approve its own writes; "
		    SELF_APPROVAL_HINT, (unsigned)p->uid,
		    op_where(ctx, w, sizeof(w), "uids", j));
	else if ((pw = getpwuid(p->uid)) != NULL && (j = id_index(
	    c->op_gids, c->nop_gids, pw->pw_gid)) != -1)
		cfg_error(ctx, ctx->pnodes[i].uid, key, "uid %u has the "
		    "primary gid %u, an operator gid (%s): the agent could "
		    "approve its own writes; " SELF_APPROVAL_HINT,
		    (unsigned)p->uid, (unsigned)pw->pw_gid,
		    op_where(ctx, w, sizeof(w), "gids", j));
}

static void
check_principal_gid(struct cfgctx *ctx, size_t i, const char *key)
{
	const struct config	*c = ctx->conf;
	const struct principal	*p = &c->principals[i];
	struct passwd		*pw;
	char			 w[64];
	ssize_t			 j;
	size_t			 k;

	if ((j = id_index(c->op_gids, c->nop_gids, p->gid)) != -1) {
		cfg_error(ctx, ctx->pnodes[i].gid, key, "gid %u is also an "
		    "operator gid (%s): the agent could approve its own "
		    "writes; " SELF_APPROVAL_HINT, (unsigned)p->gid,
		    op_where(ctx, w, sizeof(w), "gids", j));
		return;
	}
	for (k = 0; k < c->nop_uids; k++) {
		if ((pw = getpwuid(c->op_uids[k])) == NULL ||
		    pw->pw_gid != p->gid)
			continue;
		cfg_error(ctx, ctx->pnodes[i].gid, key, "gid %u is the "
		    "primary gid of operator uid %u (%s): the operator's "
		    "processes would act as this agent; " SELF_APPROVAL_HINT,
		    (unsigned)p->gid, (unsigned)c->op_uids[k],
		    op_where(ctx, w, sizeof(w), "uids", (ssize_t)k));
		return;
	}
}

/*
 * A principal that is also an operator could approve its own writes with
 * gatewayctl: by the same uid or gid, or through a primary group that the
 * passwd database tells.
 */
static void
check_principal_ops(struct cfgctx *ctx, size_t i)
{
	const struct principal	*p = &ctx->conf->principals[i];
	char			 sub[KEY_PATH_LEN], key[KEY_PATH_LEN];

	cfg_index_path(sub, sizeof(sub), "principals", i);
	if (p->has_uid && ctx->pnodes[i].uid != NULL) {
		cfg_key_path(key, sizeof(key), sub, "uid");
		check_principal_uid(ctx, i, key);
	} else if (p->has_gid && ctx->pnodes[i].gid != NULL) {
		cfg_key_path(key, sizeof(key), sub, "gid");
		check_principal_gid(ctx, i, key);
	}
}

/*
 * A tool running as root or as an operator could approve its own write
 * with gatewayctl.  A user unknown now is not checked: the call fails when
 * the tool runs, as it always did.
 */
static void
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
		return;
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (node == NULL)		/* the default tool_user */
		node = ctx->root;
	if (uid == 0)
		cfg_error(ctx, node, path, "user %s is root: tools must not "
		    "run as root; " SELF_APPROVAL_HINT, user);
	else if ((j = id_index(c->op_uids, c->nop_uids, uid)) != -1)
		cfg_error(ctx, node, path, "user %s (uid %u) is an operator "
		    "(%s): a tool running as it could approve its own "
		    "writes; " SELF_APPROVAL_HINT, user, (unsigned)uid,
		    op_where(ctx, w, sizeof(w), "uids", j));
	else if ((j = id_index(c->op_gids, c->nop_gids, gid)) != -1)
		cfg_error(ctx, node, path, "user %s has the primary gid %u, "
		    "an operator gid (%s): a tool running as it could "
		    "approve its own writes; " SELF_APPROVAL_HINT, user,
		    (unsigned)gid, op_where(ctx, w, sizeof(w), "gids", j));
}

static void
check_self_approval(struct cfgctx *ctx)
{
	static const char *const keys[] = { "operators.uids",
	    "operators.gids", "operators.allow_self_approval", NULL };
	const struct config	*c = ctx->conf;
	yaml_node_t		*node = NULL;
	char			 sub[KEY_PATH_LEN], key[KEY_PATH_LEN];
	size_t			 i;

	if (c->allow_self_approval || any_bad(ctx, keys) == -1)
		return;
	for (i = 0; i < c->nprincipals; i++)
		check_principal_ops(ctx, i);
	if (cfg_given(ctx, "tool_user", &node) != -1)
		check_tool_user(ctx, c->tool_user, node, "tool_user");
	for (i = 0; i < c->ncatalog; i++) {
		if (c->catalog[i].user == NULL)
			continue;
		cfg_key_path(sub, sizeof(sub), "catalog", c->catalog[i].name);
		cfg_key_path(key, sizeof(key), sub, "user");
		check_tool_user(ctx, c->catalog[i].user, ctx->tnodes[i].user,
		    key);
	}
	for (i = 0; i < c->nmcp_servers; i++) {
		if (c->mcp_servers[i].user == NULL)
			continue;
		cfg_key_path(sub, sizeof(sub), "mcp_servers",
		    c->mcp_servers[i].name);
		cfg_key_path(key, sizeof(key), sub, "user");
		check_tool_user(ctx, c->mcp_servers[i].user,
		    ctx->snodes[i].user, key);
	}
}

/*
 * A share of a limit ('part' of 'whole'): left out, its default is cut to
 * fit (to 'cut'); set above the whole, it is an error (it would never
 * apply).
 */
static void
check_share(struct cfgctx *ctx, const char *part, uint64_t *pv,
    const char *whole, uint64_t wv, uint64_t cut)
{
	const char *const	 keys[] = { part, whole, NULL };
	yaml_node_t		*node;
	int			 given;

	if (any_bad(ctx, keys) == -1 || *pv <= wv)
		return;
	if ((given = cfg_given(ctx, part, &node)) == 0)
		*pv = cut;
	else if (given == 1)
		cfg_error(ctx, node, part, "%llu is more than %s (%llu)",
		    (unsigned long long)*pv, whole, (unsigned long long)wv);
}

/*
 * store.reserve: room in the store that ordinary writes leave free, so the
 * sweeper, outcomes and operators' actions always fit.  Default: 1/32 of
 * store.max_map_size, at least 64 KiB and at most 64 MiB; at most half of
 * store.max_map_size, or nothing ordinary could ever be written.
 */
static void
check_store(struct cfgctx *ctx)
{
	static const char *const keys[] = { "store.map_size",
	    "store.max_map_size", "store.reserve", NULL };
	struct config	*c = ctx->conf;
	yaml_node_t	*node;

	if (any_bad(ctx, keys) == -1)
		return;
	if (c->max_map_size < c->map_size) {
		if (cfg_given(ctx, "store.max_map_size", &node) == 1)
			cfg_error(ctx, node, "store.max_map_size", "%llu is "
			    "less than store.map_size (%llu)",
			    (unsigned long long)c->max_map_size,
			    (unsigned long long)c->map_size);
		else if (cfg_given(ctx, "store.map_size", &node) == 1)
			cfg_error(ctx, node, "store.map_size", "%llu is more "
			    "than store.max_map_size (%llu)",
			    (unsigned long long)c->map_size,
			    (unsigned long long)c->max_map_size);
		return;
	}
	if (cfg_given(ctx, "store.reserve", &node) == 0) {
		c->store_reserve = c->max_map_size / 32;
		if (c->store_reserve < RESERVE_MIN)
			c->store_reserve = RESERVE_MIN;
		if (c->store_reserve > RESERVE_DEFAULT_MAX)
			c->store_reserve = RESERVE_DEFAULT_MAX;
	} else if (c->store_reserve > c->max_map_size / 2)
		cfg_error(ctx, node, "store.reserve", "%llu is more than half "
		    "of store.max_map_size (%llu)",
		    (unsigned long long)c->store_reserve,
		    (unsigned long long)c->max_map_size);
}

/*
 * store.backend postgresql needs store.dsn; store.host_id defaults to the
 * host name, whole (CONTRACT.md: "the host name"; cut at a dot, web-3.a
 * and web-3.b would be one host), which must then be a valid name, as
 * host_id names this host in the shared records.
 */
static void
check_store_backend(struct cfgctx *ctx)
{
	static const char *const keys[] = { "store.backend", "store.dsn",
	    "store.host_id", NULL };
	struct config	*c = ctx->conf;
	yaml_node_t	*node;
	char		 host[256];

	if (any_bad(ctx, keys) == -1 || c->store_backend != STORE_PG)
		return;
	if (c->store_dsn == NULL) {
		(void)cfg_given(ctx, "store.backend", &node);
		cfg_error(ctx, node, "store.backend", "postgresql needs "
		    "store.dsn");
	}
	if (c->store_host_id != NULL)
		return;
	if (gethostname(host, sizeof(host)) == -1)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	if (!cfg_valid_name(host)) {
		(void)cfg_given(ctx, "store.backend", &node);
		cfg_error(ctx, node, "store.host_id", "the host name '%s' is"
		    " not a valid name: set store.host_id", host);
		return;
	}
	c->store_host_id = xstrdup(host);
}

/*
 * The connection caps are shares of limits.max_connections.  Peers with no
 * principal get a quarter at most by default, so they never fill the
 * table.
 */
static void
check_limits(struct cfgctx *ctx)
{
	struct config	*c = ctx->conf;
	uint64_t	 quarter = c->max_connections / 4;

	check_share(ctx, "runs.max_runs_per_tenant", &c->max_runs_per_tenant,
	    "runs.max_runs", c->max_runs, c->max_runs);
	check_share(ctx, "limits.max_connections_per_uid",
	    &c->max_conns_per_uid, "limits.max_connections",
	    c->max_connections, c->max_connections);
	if (cfg_given(ctx, "limits.max_stranger_connections", NULL) == 0 &&
	    c->max_stranger_conns > quarter)
		c->max_stranger_conns = quarter > 0 ? quarter : 1;
	check_share(ctx, "limits.max_stranger_connections",
	    &c->max_stranger_conns, "limits.max_connections",
	    c->max_connections, c->max_connections);
	check_share(ctx, "limits.max_tools_per_tenant",
	    &c->max_tools_per_tenant, "limits.max_tools", c->max_tools,
	    c->max_tools);
}

/* A bucket holds at least one call, and by default a second's worth. */
static uint64_t
burst_default(double rate)
{
	double	b = ceil(rate);

	return b < 1 ? 1 : b > 1e9 ? 1000000000 : (uint64_t)b;
}

/*
 * Rate limits name catalog tools; a burst not given follows the rate.
 * The breaker runs only when its section is there: its defaults are
 * the contract's example.
 */
static void
check_rates(struct cfgctx *ctx)
{
	struct config		*c = ctx->conf;
	struct rate_rule	*r;
	yaml_node_t		*node;
	char			 sub[KEY_PATH_LEN];
	size_t			 i;

	if (c->rate_tenant > 0 && c->burst_tenant == 0)
		c->burst_tenant = burst_default(c->rate_tenant);
	for (i = 0; i < c->nrate_tools; i++) {
		r = &c->rate_tools[i];
		if (r->burst == 0)
			r->burst = burst_default(r->rate);
		if (c->catalog != NULL && catalog_find(c, r->tool) == NULL &&
		    cfg_given(ctx, "rate_limits.per_tool", &node) == 1) {
			cfg_key_path(sub, sizeof(sub), "rate_limits.per_tool",
			    r->tool);
			cfg_error(ctx, node, sub, "\"%s\" is not a tool of the "
			    "catalog", r->tool);
		}
	}
	c->breaker_on = cfg_given(ctx, "breaker", NULL) == 1;
	if (cfg_given(ctx, "breaker.failure_ratio", &node) == 1 &&
	    (!(c->breaker_failure_ratio > 0) ||
	    c->breaker_failure_ratio > 1))
		cfg_error(ctx, node, "breaker.failure_ratio", "must be above 0 "
		    "and at most 1");
}

/*
 * In systemd's flat credentials directory TENANT/ENV/TOOL is the file
 * TENANT_ENV_TOOL: a tenant or env with '_' could name another's
 * (credpath.h), so none may have one there.
 */
static void
check_flat_credentials(struct cfgctx *ctx)
{
	static const char *const keys[] = { "paths.credentials_dir", NULL };
	const struct config	*c = ctx->conf;
	const struct principal	*p;
	char			 key[KEY_PATH_LEN];
	size_t			 i;

	if (any_bad(ctx, keys) || c->credentials_dir == NULL ||
	    !credpath_flat(c->credentials_dir))
		return;
	for (i = 0; i < c->nprincipals; i++) {
		p = &c->principals[i];
		if (p->tenant == NULL || p->env == NULL ||
		    (strchr(p->tenant, '_') == NULL &&
		    strchr(p->env, '_') == NULL))
			continue;
		cfg_index_path(key, sizeof(key), "principals", i);
		cfg_error(ctx, p->has_uid ? ctx->pnodes[i].uid :
		    ctx->pnodes[i].gid, key, "tenant \"%s\" env \"%s\": a "
		    "'_' cannot be told apart in systemd's flat credentials "
		    "directory (paths.credentials_dir is in "
		    "$CREDENTIALS_DIRECTORY, where TENANT/ENV/TOOL is "
		    "TENANT_ENV_TOOL): rename it", p->tenant, p->env);
	}
}

void
check_config(struct cfgctx *ctx)
{
	static const char *const mode_keys[] = { "tools.default_mode",
	    "writes.enabled", NULL };
	const struct config	*c = ctx->conf;
	yaml_node_t		*node;

	/* CONTRACT: read_write without writes.enabled is a contradiction. */
	if (any_bad(ctx, mode_keys) == 0 && c->read_write &&
	    !c->writes_enabled &&
	    cfg_given(ctx, "tools.default_mode", &node) == 1)
		cfg_error(ctx, node, "tools.default_mode", "read_write needs "
		    "writes.enabled: true (read_only means no writes unless "
		    "they are enabled)");
	check_store(ctx);
	check_store_backend(ctx);
	check_limits(ctx);
	check_tool_names(ctx);
	check_mcp_tools(ctx);
	check_rates(ctx);
	check_self_approval(ctx);
	check_flat_credentials(ctx);
}
