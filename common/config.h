/*
 * The configuration, as loaded from YAML.  Both processes load the same
 * file on their own: the executor never takes policy from gatewayd.
 * Every key is listed once, with its type, range and default, in the key
 * table of common/config.c; proto/CONFIG.md describes them, and a unit
 * test holds the two together.  Lookups (which tool, which principal, is
 * it an operator) are in common/policy.h.
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

/* How a catalog tool runs: exactly one of catalog.*.exec, .mcp, .http. */
enum tool_backend {
	TB_EXEC,
	TB_MCP,
	TB_HTTP,
};

enum mcp_scope {
	MCP_SHARED = 0,		/* one process for everyone, no credential */
	MCP_TENANT_ENV = 1,	/* one process per tenant and env */
};

/* mcp_servers.NAME: an MCP server the executor keeps running. */
struct mcp_server {
	char		*name;
	char		**argv;		/* command: NULL-terminated, absolute */
	size_t		 argc;
	char		**envp;		/* env: "NAME=VALUE", on top of PATH */
	size_t		 nenv;
	char		*user;		/* run as; NULL: config tool_user */
	enum mcp_scope	 scope;
	/* tenant_env: CREDENTIALS_DIR/TENANT/ENV/NAME goes in this variable */
	char		*credential_env;
	uint32_t	 max_inflight;	/* tools/call requests in flight */
	uint32_t	 init_timeout_ms;	/* initialize and tools/list */
};

/* catalog.*.mcp */
struct tool_mcp {
	char		*server;	/* a key of mcp_servers */
	size_t		 server_idx;	/* its index in config.mcp_servers */
	char		*tool;		/* the server's name for the tool */
};

/* catalog.*.http */
struct tool_http {
	char		*url;		/* http:// or https:// */
	char		*method;	/* GET, POST, PUT, PATCH or DELETE */
	char		**headers;	/* "Name: value", from the config */
	size_t		 nheaders;
	char		*ca_file;	/* NULL: the system store */
	int		 idempotent_upstream;
};

/* rate_limits.per_tool.TOOL: one tenant's calls of one tool. */
struct rate_rule {
	char		*tool;		/* a catalog tool */
	double		 rate;		/* calls per second, refilled */
	uint64_t	 burst;		/* the bucket's size */
};

struct tool {
	char		*name;
	enum tool_mode	 mode;
	enum tool_backend backend;
	char		**argv;		/* exec: NULL-terminated, argv[0] absolute */
	size_t		 argc;
	struct tool_mcp	 mcp;		/* backend TB_MCP */
	struct tool_http http;		/* backend TB_HTTP */
	uint32_t	 timeout_ms;	/* catalog.*.timeout_ms */
	char		*compensate;	/* NULL when none */
	/*
	 * compensate's map form: { tool, args: { NAME: VALUE } }, each
	 * VALUE as written ("$.FIELD" or a string with ${...}, see
	 * executor/compensate.c).  comp_args is NULL for the shorthand
	 * (the same args as the original).
	 */
	char		**comp_names;
	char		**comp_values;
	size_t		 ncomp_args;
	int		 comp_map;	/* the map form was given */
	char		**entity;	/* catalog.*.entity: arg names */
	size_t		 nentity;
	char		*user;		/* run as this user; NULL: config tool_user */
	char		*description;	/* NULL when none */
	/* canonical JSON of catalog.*.input_schema; NULL: {"type":"object"} */
	char		*input_schema;
};

/*
 * Each field holds the key named beside it; its type, range and default
 * are in the key table (common/config.c), not restated here.
 */
struct config {
	char		*file;		/* the path it was loaded from */

	char		*agent_socket;	/* paths.agent_socket */
	char		*control_socket; /* paths.control_socket */
	char		*state_dir;	/* paths.state_dir */
	char		*credentials_dir; /* paths.credentials_dir */

	char		*user;		/* user */
	/* Tools without a user run as this one when the executor is root. */
	char		*tool_user;	/* tool_user */

	struct principal *principals;	/* principals */
	size_t		 nprincipals;

	uid_t		*op_uids;	/* operators.uids */
	size_t		 nop_uids;
	gid_t		*op_gids;	/* operators.gids */
	size_t		 nop_gids;
	/* operators.allow_self_approval: development and tests only */
	int		 allow_self_approval;

	struct tool	*catalog;	/* catalog */
	size_t		 ncatalog;
	struct mcp_server *mcp_servers;	/* mcp_servers */
	size_t		 nmcp_servers;

	int		 read_write;	/* tools.default_mode: read_write is 1 */
	char		**allow;	/* tools.allow */
	size_t		 nallow;

	int		 writes_enabled;	/* writes.enabled */
	int		 approval_all;	/* writes.require_approval: true */
	char		**approval_tools;	/* ... or a list of tool names */
	size_t		 napproval_tools;
	uint64_t	 retention_s;	/* writes.retention_s */

	uint64_t	 max_steps_per_run;	/* budgets.*; 0 = no cap */
	uint64_t	 max_writes_per_run;
	uint64_t	 max_tokens_per_run;
	double		 max_cost_per_run;
	uint64_t	 repeat_limit;

	uint64_t	 audit_head_every;	/* audit.head_every */
	uint64_t	 audit_head_s;		/* audit.head_s */
	uint64_t	 audit_max_bytes;	/* audit.max_bytes */
	uint64_t	 audit_keep;		/* audit.keep */
	int		 audit_args;		/* audit.args */
	char		**audit_redact;		/* audit.redact */
	size_t		 naudit_redact;

	uint64_t	 approvals_ttl_s;	/* approvals.ttl_s */
	uint64_t	 max_pending_per_tenant;	/* approvals.* */
	uint64_t	 max_pending_bytes_per_tenant;

	uint64_t	 max_frame;	/* limits.* */
	uint64_t	 max_output;
	uint64_t	 max_connections;
	uint64_t	 max_inflight;	/* per connection */
	uint64_t	 control_idle_s;
	uint64_t	 max_conns_per_uid; /* limits.max_connections_per_uid */
	/* limits.max_stranger_connections: peers with no principal, together */
	uint64_t	 max_stranger_conns;
	uint64_t	 frame_timeout_s;
	uint64_t	 stranger_summary_s;
	uint64_t	 stranger_uids;
	uint64_t	 max_tools;
	uint64_t	 max_tools_per_tenant;	/* at most max_tools */
	uint64_t	 shutdown_s;

	uint64_t	 run_idle_s;	/* runs.idle_s */
	uint64_t	 max_runs;	/* runs.max_runs */
	uint64_t	 max_runs_per_tenant;	/* at most max_runs */

	uint64_t	 map_size;	/* store.map_size */
	uint64_t	 max_map_size;	/* store.max_map_size */
	uint64_t	 store_reserve;	/* store.reserve, or derived */
	int		 store_backend;	/* store.backend: STORE_LMDB, STORE_PG */
	char		*store_dsn;	/* store.dsn: a libpq connection string */
	char		*store_host_id;	/* store.host_id, or the host name */

	char		*metrics_listen;	/* metrics.listen; NULL: none */

	/* rate_limits.per_tenant.*; rate 0: no bucket */
	double		 rate_tenant;
	uint64_t	 burst_tenant;	/* 0 until derived from the rate */
	struct rate_rule *rate_tools;	/* rate_limits.per_tool */
	size_t		 nrate_tools;

	int		 breaker_on;	/* a breaker section was given */
	uint64_t	 breaker_window_s;	/* breaker.* */
	uint64_t	 breaker_min_calls;
	double		 breaker_failure_ratio;
	uint64_t	 breaker_open_s;
};

/*
 * Load and validate 'path'.  On error return NULL and put every problem
 * found into err, one a line, each "FILE:LINE: KEY: what is wrong" (or
 * "FILE: what is wrong" for the file as a whole).  Lines that do not fit
 * are counted in a last line "FILE: N more errors".
 */
/* store.backend */
#define STORE_LMDB	0
#define STORE_PG	1

struct config	*config_load(const char *path, char *err, size_t errlen);
void		 config_free(struct config *);
/*
 * A name as the config takes it (tools, servers, tenants): letters,
 * digits, '.', '_', '-', starting with a letter or digit, at most 128.
 */
int		 cfg_valid_name(const char *);
/* Log each line of config_load()'s err and exit(1). */
void		 config_fatal(const char *err) __attribute__((noreturn));

#endif
