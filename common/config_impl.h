/*
 * Inside the config loader, shared by its three files:
 *   config.c        the key table, the typed readers, the table walk,
 *                   defaults, errors, config_load()
 *   config_sect.c   the sections that need code (principals, operators'
 *                   ids, catalog, tools.allow, writes.require_approval,
 *                   metrics.listen, credentials.scope)
 *   config_check.c  the rules between keys, run once all is read
 * Nothing outside common/config*.c and its tests includes this header.
 */
#ifndef TG_CONFIG_IMPL_H
#define TG_CONFIG_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "common/config.h"
#include "common/yamlread.h"

#define KEY_PATH_LEN		512
#define COMP_ARGS_MAX		64	/* compensate.args, entity */
#define COMP_VALUE_MAX_LEN	4096	/* a value of compensate.args */
#define NAME_MAX_LEN		128
#define USER_MAX_LEN		32
/* (uid_t)-1 means "leave unchanged" to setresuid(2): it is nobody's id. */
#define ID_MAX			((uint64_t)(uid_t)-1 - 1)
#define MIB			(1024ULL * 1024)
#define RESERVE_MIN		(64 * 1024ULL)
#define RESERVE_DEFAULT_MAX	(64 * MIB)

struct cfgctx;
struct cfgkey;

/* A key read by code: 0, or -1 once its error is recorded. */
typedef int (*cfg_fn)(struct cfgctx *, const struct cfgkey *, yaml_node_t *,
    const char *);

enum cfgtype {
	CT_SECTION,	/* a mapping: its keys are "NAME.KEY" in the table,
			   or 'fn' reads it (principals, catalog) */
	CT_BOOL,	/* int */
	CT_UINT,	/* uint64_t in min..max */
	CT_U32,		/* uint32_t in min..max */
	CT_NUMBER,	/* double, not negative */
	CT_PATH,	/* char *: an absolute path of at most max bytes */
	CT_USER,	/* char *: a user name */
	CT_NAME,	/* char *: a name (tool, tenant, env) */
	CT_ENUM,	/* int: one of 'choices' */
	CT_CODE,	/* 'fn' reads it */
};

/* Where the value of a key goes. */
enum cfgbase {
	CB_NONE,	/* checked, nothing stored (one value exists) */
	CB_CONF,	/* struct config */
	CB_PRINCIPAL,	/* the principal being read */
	CB_TOOL,	/* the catalog tool being read */
	CB_MCP,		/* the MCP server being read */
	CB_RATE,	/* the rate_limits.per_tool entry being read */
};

struct cfgchoice {
	const char	*name;
	int		 value;
};

/*
 * One key of the config.  The table in config.c lists every key once;
 * defaults and range checks come from it, and tests/unit/test_config_doc.c
 * holds proto/CONFIG.md to it.
 */
struct cfgkey {
	const char		*name;	/* dotted; "catalog.*.x", "principals[].x" */
	enum cfgtype		 type;
	enum cfgbase		 base;
	size_t			 off;	/* of the value in its base */
	uint64_t		 min;	/* CT_UINT, CT_U32 */
	uint64_t		 max;	/* ... and CT_PATH: the longest */
	const char		*def;	/* as CONFIG.md shows it; NULL: none
					   or derived from other keys */
	int			 project;	/* a key of this project, not of
						   the contract */
	const struct cfgchoice	*choices;	/* CT_ENUM, ends in NULL */
	const char		*what;	/* CT_ENUM: "read or write" */
	cfg_fn			 fn;	/* CT_CODE, a CT_SECTION read by code */
	const char		*doc;	/* one line */
};

const struct cfgkey	*config_keys(size_t *);
const struct cfgkey	*config_key(const char *name);

struct cfgctx {
	const char		*file;
	char			*dir;		/* its directory, made absolute */
	struct ydoc		*yd;
	struct config		*conf;
	char			**errs;		/* "FILE:LINE: KEY: message" */
	size_t			 nerrs;		/* kept */
	size_t			 nlost;		/* past the cap, counted only */

	/* The list or catalog entry whose keys are being read. */
	struct principal	*principal;
	struct tool		*tool;
	struct mcp_server	*server;
	struct rate_rule	*rate;

	/* Per key of the table (CB_CONF, CB_NONE): its node, its errors. */
	yaml_node_t		**nodes;
	char			*bad;

	yaml_node_t		*root;
	struct idnodes {
		yaml_node_t	*uid;
		yaml_node_t	*gid;
	}			*pnodes;	/* one per principal */
	struct toolnodes {
		yaml_node_t	*compensate;
		yaml_node_t	*user;
		yaml_node_t	*exec;
		yaml_node_t	*mcp;
		yaml_node_t	*mcp_server;
		yaml_node_t	*http;
	}			*tnodes;	/* one per catalog tool */
	struct servernodes {
		yaml_node_t	*user;
	}			*snodes;	/* one per MCP server */
};

/* Errors: each returns -1 after recording one line. */
int	cfg_error(struct cfgctx *, const yaml_node_t *, const char *,
	    const char *, ...) __attribute__((format(printf, 4, 5)));
int	cfg_expected(struct cfgctx *, const yaml_node_t *, const char *,
	    const char *);
size_t	cfg_nerrs(const struct cfgctx *);

void	cfg_key_path(char *, size_t, const char *, const char *);
void	cfg_index_path(char *, size_t, const char *, size_t);

/* Typed readers of one node; 'path' names it in errors. */
int	cfg_expect_kind(struct cfgctx *, const yaml_node_t *, const char *,
	    yaml_node_type_t);
int	cfg_expect_scalar(struct cfgctx *, const yaml_node_t *, const char *,
	    const char *);
int	cfg_get_str(struct cfgctx *, const yaml_node_t *, const char *,
	    const char **);
int	cfg_get_name(struct cfgctx *, const yaml_node_t *, const char *,
	    const char **);
int	cfg_get_value(struct cfgctx *, const yaml_node_t *, const char *,
	    size_t max, const char **);
int	cfg_name_error(struct cfgctx *, const yaml_node_t *, const char *);
int	cfg_get_bool(struct cfgctx *, const yaml_node_t *, const char *,
	    int *);
int	cfg_get_u64(struct cfgctx *, const yaml_node_t *, const char *,
	    uint64_t, uint64_t, uint64_t *);
int	cfg_set_user(struct cfgctx *, const yaml_node_t *, const char *,
	    char **);
int	cfg_set_name(struct cfgctx *, const yaml_node_t *, const char *,
	    char **);

/* Walk a mapping whose keys are table keys "TPATH.KEY". */
int	cfg_walk(struct cfgctx *, yaml_node_t *, const char *path,
	    const char *tpath);
/* Walk a mapping whose keys are read by 'fn' (catalog: tool names). */
int	cfg_walk_fn(struct cfgctx *, yaml_node_t *, const char *,
	    int (*)(struct cfgctx *, const char *, yaml_node_t *,
	    yaml_node_t *, const char *));
void	cfg_tool_defaults(struct tool *);
void	cfg_server_defaults(struct mcp_server *);

/*
 * A table key as the cross-key checks see it: -1 if it had an error,
 * 0 if the file leaves it out, 1 if given (its node in *node).
 */
int	cfg_given(const struct cfgctx *, const char *name, yaml_node_t **);

void	cfg_free_strings(char **, size_t);

/* config_sect.c */
int	sect_principals(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);
int	sect_principal_id(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);
int	sect_op_ids(struct cfgctx *, const struct cfgkey *, yaml_node_t *,
	    const char *);
int	sect_catalog(struct cfgctx *, const struct cfgkey *, yaml_node_t *,
	    const char *);
int	sect_exec(struct cfgctx *, const struct cfgkey *, yaml_node_t *,
	    const char *);
/* [PROGRAM, ARG...] as execve(2) takes it (exec, mcp_servers.*.command). */
int	cfg_read_command(struct cfgctx *, yaml_node_t *, const char *,
	    char ***argv, size_t *argc);
int	sect_compensate(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);
int	sect_entity(struct cfgctx *, const struct cfgkey *, yaml_node_t *,
	    const char *);
int	sect_tool_user(struct cfgctx *, const struct cfgkey *, yaml_node_t *,
	    const char *);
int	sect_audit_redact(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);
int	sect_allow(struct cfgctx *, const struct cfgkey *, yaml_node_t *,
	    const char *);
int	sect_require_approval(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);
int	sect_rate_tools(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);
int	sect_metrics_listen(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);
int	sect_store_dsn(struct cfgctx *, const struct cfgkey *, yaml_node_t *,
	    const char *);
int	sect_scope(struct cfgctx *, const struct cfgkey *, yaml_node_t *,
	    const char *);

/* config_backend.c */
int	sect_mcp_servers(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);
int	sect_mcp_command(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);
int	sect_mcp_env(struct cfgctx *, const struct cfgkey *, yaml_node_t *,
	    const char *);
int	sect_mcp_user(struct cfgctx *, const struct cfgkey *, yaml_node_t *,
	    const char *);
int	sect_mcp_credential_env(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);
int	sect_tool_mcp(struct cfgctx *, const struct cfgkey *, yaml_node_t *,
	    const char *);
int	sect_tool_mcp_server(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);
int	sect_tool_mcp_tool(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);
int	sect_tool_http(struct cfgctx *, const struct cfgkey *, yaml_node_t *,
	    const char *);
int	sect_http_url(struct cfgctx *, const struct cfgkey *, yaml_node_t *,
	    const char *);
int	sect_http_method(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);
int	sect_http_headers(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);
int	sect_tool_input_schema(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);
int	sect_tool_description(struct cfgctx *, const struct cfgkey *,
	    yaml_node_t *, const char *);

/* config_check.c */
void	check_config(struct cfgctx *);

#endif
