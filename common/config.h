/*
 * The configuration, as loaded from YAML.  Both processes load the same
 * file on their own: the executor never takes policy from gatewayd.
 * The keys are described in proto/CONFIG.md.
 */
#ifndef TG_CONFIG_H
#define TG_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum tool_mode {
	TOOL_WRITE = 0,		/* the default: a tool without a mode is a write */
	TOOL_READ = 1,
};

struct principal {
	int		 has_uid;	/* exactly one of has_uid/has_gid */
	uid_t		 uid;
	int		 has_gid;
	gid_t		 gid;
	char		*tenant;
	char		*env;
};

struct tool {
	char		*name;
	enum tool_mode	 mode;
	char		**argv;		/* exec: NULL-terminated, argv[0] absolute */
	size_t		 argc;
	uint32_t	 timeout_ms;	/* default 10000 */
	char		*compensate;	/* NULL when none */
	char		*user;		/* run as this user; NULL: config tool_user */
};

struct config {
	char		*file;		/* the path it was loaded from */

	/* paths */
	char		*agent_socket;	/* default /run/toolgate/agent.sock */
	char		*control_socket; /* default /run/toolgate/control.sock */
	char		*state_dir;	/* default /var/lib/toolgate */
	char		*credentials_dir; /* default /etc/toolgate/credentials */

	char		*user;		/* default "toolgate" */
	/* Tools without a user run as this one when the executor is root. */
	char		*tool_user;	/* default "nobody" */

	struct principal *principals;
	size_t		 nprincipals;

	uid_t		*op_uids;	/* default: [0] */
	size_t		 nop_uids;
	gid_t		*op_gids;
	size_t		 nop_gids;
	/* operators.allow_self_approval: development and tests only */
	int		 allow_self_approval;

	struct tool	*catalog;
	size_t		 ncatalog;

	int		 read_write;	/* tools.default_mode: read_only (0) or read_write (1) */
	char		**allow;	/* tools.allow */
	size_t		 nallow;

	int		 writes_enabled;	/* writes.enabled, default 0 */
	int		 approval_all;	/* writes.require_approval: true */
	char		**approval_tools;	/* ... or a list of tool names */
	size_t		 napproval_tools;
	uint64_t	 retention_s;	/* writes.retention_s, default 86400 */

	uint64_t	 max_steps_per_run;	/* budgets.*; 0 = no cap */
	uint64_t	 max_writes_per_run;
	uint64_t	 max_tokens_per_run;
	double		 max_cost_per_run;	/* 0 = no cap */
	uint64_t	 repeat_limit;

	uint64_t	 approvals_ttl_s;	/* default 3600 */
	uint64_t	 max_pending_per_tenant;	/* default 100 */
	uint64_t	 max_pending_bytes_per_tenant;	/* default 16 MiB */

	uint64_t	 max_frame;	/* limits.*: default 1 MiB */
	uint64_t	 max_output;	/* default 1 MiB */
	uint64_t	 max_connections; /* default 1024 */
	uint64_t	 max_inflight;	/* limits.max_inflight: per connection, default 64 */
	uint64_t	 control_idle_s; /* limits.control_idle_s: default 30 */
	/* limits.max_connections_per_uid: default 256 (at most max_connections) */
	uint64_t	 max_conns_per_uid;
	/* limits.max_stranger_connections: peers with no principal, together */
	uint64_t	 max_stranger_conns;
	uint64_t	 frame_timeout_s; /* limits.frame_timeout_s: default 30 */
	/* limits.stranger_summary_s: refusals of strangers summed this long */
	uint64_t	 stranger_summary_s;
	uint64_t	 stranger_uids;	/* limits.stranger_uids: uids summed apart */
	uint64_t	 max_tools;	/* limits.max_tools: running at once, default 64 */
	uint64_t	 max_tools_per_tenant; /* default 16, <= max_tools */

	uint64_t	 run_idle_s;	/* runs.idle_s: default 3600 */
	uint64_t	 max_runs;	/* runs.max_runs: default 10000 */
	/* runs.max_runs_per_tenant: default 1000 (no more than max_runs) */
	uint64_t	 max_runs_per_tenant;

	uint64_t	 map_size;	/* store.map_size: default 64 MiB */
	uint64_t	 max_map_size;	/* store.max_map_size: default 1 GiB */
	uint64_t	 store_reserve;	/* store.reserve: 0 = derived */

	char		*metrics_listen;	/* NULL when not set */
};

/*
 * Load and validate 'path'.  On error return NULL and put a message of the
 * form "FILE:LINE: KEY: what is wrong" into err.
 */
struct config	*config_load(const char *path, char *err, size_t errlen);
void		 config_free(struct config *);

/* NULL when the tool has no catalog entry. */
const struct tool *config_tool(const struct config *, const char *name);
int		 config_allowed(const struct config *, const char *name);
/* A tool without a catalog entry is a write: fail closed. */
enum tool_mode	 config_tool_mode(const struct config *, const char *name);
int		 config_needs_approval(const struct config *, const char *name);
/* First principal whose uid matches, else first whose gid matches. */
const struct principal *config_principal(const struct config *, uid_t, gid_t);
int		 config_is_operator(const struct config *, uid_t, gid_t);

#endif
