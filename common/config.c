/*
 * The YAML config loader.  common/yamlread.c turns the file into a
 * document tree; this file walks it against one table of keys (name,
 * type, range, default, one line of doc), from which the defaults and the
 * checks of every plain key come.  The sections that need code are in
 * config_sect.c, the rules between keys in config_check.c.
 *
 * The loader is strict on purpose: this file decides who may run what, so
 * a typo must stop the daemon rather than quietly fall back to a default.
 * It does not stop at the first mistake: every key is read, and each
 * problem is reported as "FILE:LINE: KEY: message", KEY being the dotted
 * path (catalog.kb.read.exec, principals[1].uid).  proto/CONFIG.md
 * documents every key and every rule; a unit test holds it to the table.
 */
#include <sys/types.h>
#include <sys/un.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "common/config.h"
#include "common/credpath.h"
#include "common/config_impl.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "common/yamlread.h"

#define VALUE_SHOWN		48	/* of a bad value, in messages */
#define ERRORS_KEPT		64	/* more are counted, not kept */

_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) - 1 == 107,
    "paths.agent_socket's limit in the key table is sun_path's");

/* errors */

int
cfg_error(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    const char *fmt, ...)
{
	char	 msg[512], key[KEY_PATH_LEN];
	va_list	 ap;

	if (ctx->nerrs >= ERRORS_KEPT) {
		ctx->nlost++;
		return -1;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Unknown keys come straight from the file: print them harmlessly. */
	if (path[0] == '\0')
		snprintf(key, sizeof(key), "(top level)");
	else
		log_sanitize(key, sizeof(key), path, strlen(path));
	ctx->errs = xreallocarray(ctx->errs, ctx->nerrs + 1,
	    sizeof(*ctx->errs));
	xasprintf(&ctx->errs[ctx->nerrs++], "%s:%zu: %s: %s", ctx->file,
	    ynode_line(node), key, msg);
	return -1;
}

size_t
cfg_nerrs(const struct cfgctx *ctx)
{
	return ctx->nerrs + ctx->nlost;
}

/*
 * Every error, one a line, into 'err'.  Lines that do not fit are
 * counted in a last line, so the operator knows there are more.
 */
static void
errors_out(struct cfgctx *ctx, char *err, size_t errlen)
{
	char	 more[KEY_PATH_LEN + 64];
	size_t	 i, need, room, used = 0, total = cfg_nerrs(ctx);

	if (err == NULL || errlen == 0)
		return;
	err[0] = '\0';
	for (i = 0; i < ctx->nerrs; i++) {
		need = strlen(ctx->errs[i]) + (i > 0);
		/* While lines are left over, keep room to count them. */
		room = i + 1 < total ? strlen(ctx->file) + 32 : 0;
		if (i > 0 && used + need + room >= errlen)
			break;
		snprintf(err + used, errlen - used, "%s%s", i > 0 ? "\n" : "",
		    ctx->errs[i]);
		used += need;
		if (used >= errlen)
			return;		/* the first line, cut short */
	}
	/* Only whole: a line cut short could name no file. */
	if (i < total && (size_t)snprintf(more, sizeof(more), "\n%s: %zu more "
	    "errors", ctx->file, total - i) < sizeof(more) &&
	    used + strlen(more) < errlen)
		memcpy(err + used, more, strlen(more) + 1);
}

void
config_fatal(const char *err)
{
	const char	*nl;

	while ((nl = strchr(err, '\n')) != NULL) {
		log_warnx("%.*s", (int)(nl - err), err);
		err = nl + 1;
	}
	fatalx("%s", err);
}

/* key paths: a path too long (a silly unknown key) ends in "..." */

static void
path_truncated(char *buf, size_t len, int n)
{
	if (n < 0 || (size_t)n >= len)
		memcpy(buf + len - 4, "...", 4);
}

void
cfg_key_path(char *buf, size_t len, const char *parent, const char *key)
{
	int	 n;

	if (parent[0] == '\0')
		n = snprintf(buf, len, "%s", key);
	else
		n = snprintf(buf, len, "%s.%s", parent, key);
	path_truncated(buf, len, n);
}

void
cfg_index_path(char *buf, size_t len, const char *parent, size_t i)
{
	path_truncated(buf, len, snprintf(buf, len, "%s[%zu]", parent, i));
}

/* typed readers */

int
cfg_expected(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    const char *what)
{
	char	 buf[VALUE_SHOWN + 8];

	return cfg_error(ctx, node, path, "expected %s, got %s", what,
	    ynode_describe(node, buf, sizeof(buf)));
}

static int
check_tag(struct cfgctx *ctx, const yaml_node_t *node, const char *path)
{
	if (!ynode_has_tag(node))
		return 0;
	return cfg_error(ctx, node, path, "YAML tags are not supported");
}

int
cfg_expect_kind(struct cfgctx *ctx, const yaml_node_t *node,
    const char *path, yaml_node_type_t type)
{
	if (check_tag(ctx, node, path) == -1)
		return -1;
	if (node->type == type)
		return 0;
	return cfg_expected(ctx, node, path,
	    type == YAML_MAPPING_NODE ? "a mapping" : "a list");
}

/* 'what' names the kind of scalar wanted, for the message. */
int
cfg_expect_scalar(struct cfgctx *ctx, const yaml_node_t *node,
    const char *path, const char *what)
{
	if (check_tag(ctx, node, path) == -1)
		return -1;
	if (node->type == YAML_SCALAR_NODE)
		return 0;
	return cfg_expected(ctx, node, path, what);
}

/*
 * The text of a non-empty string scalar.  libyaml keeps "\0" escapes in
 * the value, which C would silently cut short: refuse them, and the other
 * control characters (but tab), which no path, name or argument needs.
 */
int
cfg_get_str(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    const char **out)
{
	const unsigned char	*s;
	size_t			 i;

	if (cfg_expect_scalar(ctx, node, path, "a string") == -1)
		return -1;
	if (ynode_is_null(node))
		return cfg_expected(ctx, node, path, "a string");
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
	*out = ynode_str(node);
	return 0;
}

/*
 * A value of a mapping of names to strings (an environment, headers,
 * compensate.args): cfg_get_str's string, or "" when quoted so, at most
 * max bytes.
 */
int
cfg_get_value(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    size_t max, const char **out)
{
	if (node->type == YAML_SCALAR_NODE && ynode_is_quoted(node) &&
	    node->data.scalar.length == 0) {
		*out = "";
		return 0;
	}
	if (cfg_get_str(ctx, node, path, out) == -1)
		return -1;
	if (strlen(*out) > max)
		return cfg_error(ctx, node, path, "longer than %zu bytes", max);
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
int
cfg_valid_name(const char *s)
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

int
cfg_name_error(struct cfgctx *ctx, const yaml_node_t *node, const char *path)
{
	char	 buf[VALUE_SHOWN + 8];

	return cfg_error(ctx, node, path, "%s is not a valid name (letters, "
	    "digits, '.', '_', '-'; starting with a letter or digit; at most "
	    "%d characters)", ynode_describe(node, buf, sizeof(buf)),
	    NAME_MAX_LEN);
}

int
cfg_get_name(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    const char **out)
{
	if (cfg_get_str(ctx, node, path, out) == -1)
		return -1;
	if (!cfg_valid_name(*out))
		return cfg_name_error(ctx, node, path);
	return 0;
}

int
cfg_set_name(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    char **dst)
{
	const char	*s;

	if (cfg_get_name(ctx, node, path, &s) == -1)
		return -1;
	free(*dst);
	*dst = xstrdup(s);
	return 0;
}

/*
 * A directory or socket path: absolute, since the daemons chdir("/").
 * A leading $CREDENTIALS_DIRECTORY is the directory systemd made for the
 * service's LoadCredential= (common/credpath.h); it must be set then.
 */
static int
set_abspath(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    size_t maxlen, char **dst)
{
	const char	*s, *why = NULL;
	char		*x;

	if (cfg_get_str(ctx, node, path, &s) == -1)
		return -1;
	if ((x = credpath_expand(s, &why)) == NULL)
		return cfg_error(ctx, node, path, "%s", why);
	if (x[0] != '/') {
		free(x);
		return cfg_error(ctx, node, path, "must be an absolute path");
	}
	if (strlen(x) > maxlen) {
		free(x);
		return cfg_error(ctx, node, path, "longer than %zu bytes",
		    maxlen);
	}
	free(*dst);
	*dst = x;
	return 0;
}

/*
 * A user name, looked up with getpwnam(3) when it is used: `user`, the
 * account gatewayd drops to, `tool_user` and a catalog tool's `user`.
 */
int
cfg_set_user(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    char **out)
{
	const char	*s;
	size_t		 i;

	if (cfg_get_str(ctx, node, path, &s) == -1)
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

/* YAML 1.1 booleans, but only the six common words. */
static int
bool_word(const char *s, int *out)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	size_t	 i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

int
cfg_get_bool(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    int *out)
{
	if (cfg_expect_scalar(ctx, node, path, "a boolean (true or false)") ==
	    -1)
		return -1;
	/* "false" in quotes is a string, and a string would read as true. */
	if (!ynode_is_quoted(node) && bool_word(ynode_str(node), out) == 0)
		return 0;
	return cfg_expected(ctx, node, path, "a boolean (true or false)");
}

/* Decimal only: YAML 1.1 reads 010 as octal and 0x10 as hex. */
int
cfg_get_u64(struct cfgctx *ctx, const yaml_node_t *node, const char *path,
    uint64_t min, uint64_t max, uint64_t *out)
{
	const char	*s;
	uint64_t	 v = 0;
	size_t		 i;

	if (cfg_expect_scalar(ctx, node, path, "an integer") == -1)
		return -1;
	s = ynode_str(node);
	if (ynode_is_quoted(node) || ynode_is_null(node))
		return cfg_expected(ctx, node, path, "an integer");
	if (s[0] == '-' && s[1] >= '0' && s[1] <= '9')
		return cfg_error(ctx, node, path, "must not be negative");
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return cfg_expected(ctx, node, path,
			    "a decimal integer");
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

	if (cfg_expect_scalar(ctx, node, path, "a number") == -1)
		return -1;
	s = ynode_str(node);
	if (ynode_is_quoted(node) || ynode_is_null(node) ||
	    s[strspn(s, "0123456789.eE+-")] != '\0' ||
	    strlen(s) != node->data.scalar.length)
		return cfg_expected(ctx, node, path, "a number");
	if (s[0] == '-')
		return cfg_error(ctx, node, path, "must not be negative");
	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0')
		return cfg_expected(ctx, node, path, "a number");
	if (errno == ERANGE || !isfinite(v))
		return cfg_error(ctx, node, path, "out of range");
	*out = v;
	return 0;
}

static int
get_enum(struct cfgctx *ctx, const struct cfgkey *k, const yaml_node_t *node,
    const char *path, int *out)
{
	const struct cfgchoice	*ch;
	const char		*s;

	if (cfg_get_str(ctx, node, path, &s) == -1)
		return -1;
	for (ch = k->choices; ch->name != NULL; ch++)
		if (strcmp(s, ch->name) == 0) {
			*out = ch->value;
			return 0;
		}
	return cfg_expected(ctx, node, path, k->what);
}

void
cfg_free_strings(char **v, size_t n)
{
	size_t	 i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* the key table */

static const struct cfgchoice default_modes[] = {
	{ "read_only", 0 }, { "read_write", 1 }, { NULL, 0 }
};
static const struct cfgchoice store_backends[] = {
	{ "lmdb", STORE_LMDB }, { "postgresql", STORE_PG }, { NULL, 0 }
};
static const struct cfgchoice tool_modes[] = {
	{ "read", TOOL_READ }, { "write", TOOL_WRITE }, { NULL, 0 }
};
static const struct cfgchoice idempotency[] = {
	{ "gateway_inject", 0 }, { NULL, 0 }
};
static const struct cfgchoice mcp_scopes[] = {
	{ "shared", MCP_SHARED }, { "tenant_env", MCP_TENANT_ENV },
	{ NULL, 0 }
};
static const struct cfgchoice kill_modes[] = {
	{ "disable_writes", 0 }, { NULL, 0 }
};

#define CONF(f)		.base = CB_CONF, .off = offsetof(struct config, f)
#define TOOL(f)		.base = CB_TOOL, .off = offsetof(struct tool, f)
#define MCP(f)		.base = CB_MCP, .off = offsetof(struct mcp_server, f)
#define RATE(f)		.base = CB_RATE, .off = offsetof(struct rate_rule, f)
#define PRINCIPAL(f)	.base = CB_PRINCIPAL, \
			    .off = offsetof(struct principal, f)

/*
 * Every key, once, in the order of proto/CONFIG.md.  A section's keys
 * follow it.  'def' is the default as the reference shows it and as the
 * loader applies it; NULL is "none" or a default derived from other keys
 * (config_check.c derives those).
 */
static const struct cfgkey cfgkeys[] = {
	{ .name = "paths", .type = CT_SECTION,
	  .doc = "where the daemons listen and keep state" },
	{ .name = "paths.agent_socket", .type = CT_PATH,
	  CONF(agent_socket), .max = 107, .def = "/run/toolgate/agent.sock",
	  .doc = "the agents' Unix socket" },
	{ .name = "paths.control_socket", .type = CT_PATH,
	  CONF(control_socket), .max = 107,
	  .def = "/run/toolgate/control.sock",
	  .doc = "the operators' socket (gatewayctl -s)" },
	{ .name = "paths.state_dir", .type = CT_PATH, CONF(state_dir),
	  .max = 1024, .def = "/var/lib/toolgate",
	  .doc = "the LMDB store, the audit log, the signing key" },
	{ .name = "paths.credentials_dir", .type = CT_PATH,
	  CONF(credentials_dir), .max = 1024,
	  .def = "/etc/toolgate/credentials",
	  .doc = "scoped credentials: CREDENTIALS_DIR/TENANT/ENV/TOOL" },
	{ .name = "user", .type = CT_USER, CONF(user), .def = "toolgate",
	  .doc = "the account gatewayd drops to when started as root" },
	{ .name = "tool_user", .type = CT_USER, CONF(tool_user),
	  .def = "nobody",
	  .doc = "the account a tool without its own user runs as" },

	{ .name = "principals", .type = CT_SECTION, .fn = sect_principals,
	  .doc = "peer uid or gid to tenant and environment" },
	{ .name = "principals[].uid", .type = CT_CODE, .base = CB_PRINCIPAL,
	  .min = 0, .max = ID_MAX, .fn = sect_principal_id,
	  .doc = "the peer's uid" },
	{ .name = "principals[].gid", .type = CT_CODE, .base = CB_PRINCIPAL,
	  .min = 1, .max = ID_MAX, .fn = sect_principal_id,
	  .doc = "the peer's primary gid" },
	{ .name = "principals[].tenant", .type = CT_NAME,
	  PRINCIPAL(tenant), .doc = "the tenant the peer acts for" },
	{ .name = "principals[].env", .type = CT_NAME, PRINCIPAL(env),
	  .doc = "its environment" },

	{ .name = "operators", .type = CT_SECTION,
	  .doc = "who may use the control socket" },
	{ .name = "operators.uids", .type = CT_CODE, .min = 0, .max = ID_MAX,
	  .def = "[0]", .fn = sect_op_ids, .doc = "operator uids" },
	{ .name = "operators.gids", .type = CT_CODE, .min = 0, .max = ID_MAX,
	  .def = "[]", .fn = sect_op_ids, .doc = "operator gids" },
	{ .name = "operators.allow_self_approval", .type = CT_BOOL,
	  CONF(allow_self_approval), .def = "false",
	  .doc = "agents may be operators: development and tests only" },

	{ .name = "catalog", .type = CT_SECTION, .fn = sect_catalog,
	  .doc = "tool name to what the tool is and how it runs" },
	{ .name = "catalog.*.mode", .type = CT_ENUM, TOOL(mode),
	  .choices = tool_modes, .what = "read or write", .def = "write",
	  .doc = "a tool without a mode is a write (fail closed)" },
	{ .name = "catalog.*.exec", .type = CT_CODE, .base = CB_TOOL,
	  .fn = sect_exec,
	  .doc = "[PROGRAM, ARG...], run without a shell" },
	{ .name = "catalog.*.timeout_ms", .type = CT_U32, TOOL(timeout_ms),
	  .min = 1, .max = 3600000, .def = "10000",
	  .doc = "the tool is killed after this long" },
	{ .name = "catalog.*.compensate", .type = CT_CODE, .base = CB_TOOL,
	  .fn = sect_compensate, .doc = "the tool that undoes this one" },
	{ .name = "catalog.*.entity", .type = CT_CODE, .base = CB_TOOL,
	  .def = "[]", .fn = sect_entity,
	  .doc = "the args naming what a write touches (forensics)" },
	{ .name = "catalog.*.user", .type = CT_CODE, .base = CB_TOOL,
	  .def = "tool_user",
	  .fn = sect_tool_user, .doc = "run the program as this user" },
	{ .name = "catalog.*.description", .type = CT_CODE, .base = CB_TOOL,
	  .fn = sect_tool_description, .project = 1,
	  .doc = "what the tool does, for agents (tools op)" },
	{ .name = "catalog.*.input_schema", .type = CT_CODE, .base = CB_TOOL,
	  .fn = sect_tool_input_schema, .project = 1,
	  .def = "{\"type\": \"object\"}",
	  .doc = "the JSON Schema of its args, for agents (tools op)" },
	{ .name = "catalog.*.mcp", .type = CT_SECTION, .base = CB_TOOL,
	  .fn = sect_tool_mcp, .doc = "a tool of an MCP server" },
	{ .name = "catalog.*.mcp.server", .type = CT_CODE, .base = CB_TOOL,
	  .fn = sect_tool_mcp_server, .doc = "a key of mcp_servers" },
	{ .name = "catalog.*.mcp.tool", .type = CT_CODE, .base = CB_TOOL,
	  .fn = sect_tool_mcp_tool, .doc = "the server's name for the tool" },
	{ .name = "catalog.*.http", .type = CT_SECTION, .base = CB_TOOL,
	  .fn = sect_tool_http, .doc = "a tool that is an HTTP API" },
	{ .name = "catalog.*.http.url", .type = CT_CODE, .base = CB_TOOL,
	  .fn = sect_http_url, .doc = "https:// or http:// URL it calls" },
	{ .name = "catalog.*.http.method", .type = CT_CODE, .base = CB_TOOL,
	  .def = "POST", .fn = sect_http_method, .doc = "the HTTP method" },
	{ .name = "catalog.*.http.headers", .type = CT_CODE, .base = CB_TOOL,
	  .def = "{}", .fn = sect_http_headers,
	  .doc = "further request headers" },
	{ .name = "catalog.*.http.ca_file", .type = CT_PATH,
	  TOOL(http.ca_file), .max = 1024,
	  .doc = "CA certificates to verify the server with" },
	{ .name = "catalog.*.http.idempotent_upstream", .type = CT_BOOL,
	  TOOL(http.idempotent_upstream), .def = "false",
	  .doc = "the API honours Idempotency-Key: resend a lost write" },

	{ .name = "mcp_servers", .type = CT_SECTION, .fn = sect_mcp_servers,
	  .doc = "MCP servers the executor keeps running" },
	{ .name = "mcp_servers.*.command", .type = CT_CODE, .base = CB_MCP,
	  .fn = sect_mcp_command, .doc = "[PROGRAM, ARG...], no shell" },
	{ .name = "mcp_servers.*.env", .type = CT_CODE, .base = CB_MCP,
	  .def = "{}", .fn = sect_mcp_env,
	  .doc = "variables on top of PATH" },
	{ .name = "mcp_servers.*.user", .type = CT_CODE, .base = CB_MCP,
	  .def = "tool_user", .fn = sect_mcp_user,
	  .doc = "run the server as this user" },
	{ .name = "mcp_servers.*.scope", .type = CT_ENUM, MCP(scope),
	  .choices = mcp_scopes, .what = "shared or tenant_env",
	  .def = "shared",
	  .doc = "one process, or one per tenant and env" },
	{ .name = "mcp_servers.*.credential_env", .type = CT_CODE,
	  .base = CB_MCP, .fn = sect_mcp_credential_env,
	  .doc = "tenant_env: the variable holding the credential" },
	{ .name = "mcp_servers.*.max_inflight", .type = CT_U32,
	  MCP(max_inflight), .min = 1, .max = 4096, .def = "64",
	  .project = 1, .doc = "tools/call requests in flight per process" },
	{ .name = "mcp_servers.*.init_timeout_ms", .type = CT_U32,
	  MCP(init_timeout_ms), .min = 100, .max = 600000, .def = "10000",
	  .project = 1, .doc = "initialize and tools/list must answer within" },

	{ .name = "tools", .type = CT_SECTION,
	  .doc = "the allowlist and the default mode" },
	{ .name = "tools.default_mode", .type = CT_ENUM, CONF(read_write),
	  .choices = default_modes, .what = "read_only or read_write",
	  .def = "read_only",
	  .doc = "read_only: no writes unless writes.enabled is true" },
	{ .name = "tools.allow", .type = CT_CODE, .def = "[]",
	  .fn = sect_allow, .doc = "the allowlist" },

	{ .name = "writes", .type = CT_SECTION, .doc = "the write path" },
	{ .name = "writes.enabled", .type = CT_BOOL, CONF(writes_enabled),
	  .def = "false", .doc = "writes run at all" },
	{ .name = "writes.require_approval", .type = CT_CODE, .def = "true",
	  .fn = sect_require_approval,
	  .doc = "which writes wait for an operator's approval" },
	{ .name = "writes.idempotency", .type = CT_ENUM, .base = CB_NONE,
	  .choices = idempotency, .what = "gateway_inject",
	  .def = "gateway_inject",
	  .doc = "the executor computes each write's idempotency key" },
	{ .name = "writes.retention_s", .type = CT_UINT, CONF(retention_s),
	  .min = 1, .max = 315360000, .def = "86400",
	  .doc = "how long an executed write's result is kept for replay" },

	{ .name = "budgets", .type = CT_SECTION,
	  .doc = "caps per run; 0 means no cap" },
	{ .name = "budgets.max_steps_per_run", .type = CT_UINT,
	  CONF(max_steps_per_run), .max = INT64_MAX, .def = "50",
	  .doc = "calls in the run" },
	{ .name = "budgets.max_writes_per_run", .type = CT_UINT,
	  CONF(max_writes_per_run), .max = INT64_MAX, .def = "10",
	  .doc = "writes in the run" },
	{ .name = "budgets.max_tokens_per_run", .type = CT_UINT,
	  CONF(max_tokens_per_run), .max = INT64_MAX, .def = "200000",
	  .doc = "tokens reported with usage" },
	{ .name = "budgets.max_cost_per_run", .type = CT_NUMBER,
	  CONF(max_cost_per_run), .def = "5.0",
	  .doc = "cost reported with usage" },
	{ .name = "budgets.repeat_limit", .type = CT_UINT,
	  CONF(repeat_limit), .max = INT64_MAX, .def = "3",
	  .doc = "calls of one tool with the same args hash in the run" },

	{ .name = "audit", .type = CT_SECTION,
	  .doc = "the audit log's signed heads" },
	{ .name = "audit.head_every", .type = CT_UINT,
	  CONF(audit_head_every), .min = 1, .max = 100000000,
	  .def = "1000",
	  .doc = "a signed head after this many records" },
	{ .name = "audit.head_s", .type = CT_UINT, CONF(audit_head_s),
	  .min = 1, .max = 86400, .def = "60",
	  .doc = "a signed head after this long, when records were written" },
	{ .name = "audit.max_bytes", .type = CT_UINT, CONF(audit_max_bytes),
	  .max = INT64_MAX, .def = "0",
	  .doc = "rotate the log when it reaches this size; 0: never" },
	{ .name = "audit.keep", .type = CT_UINT, CONF(audit_keep),
	  .min = 1, .max = 1000, .def = "10",
	  .doc = "rotated files kept: audit.log.1 (newest) to audit.log.N" },
	{ .name = "audit.args", .type = CT_BOOL, CONF(audit_args),
	  .def = "false",
	  .doc = "records of calls carry their args (canonical JSON)" },
	{ .name = "audit.redact", .type = CT_CODE, .def = "[]",
	  .fn = sect_audit_redact,
	  .doc = "top-level args written as their keyed hash" },

	{ .name = "approvals", .type = CT_SECTION,
	  .doc = "pending approvals" },
	{ .name = "approvals.ttl_s", .type = CT_UINT, CONF(approvals_ttl_s),
	  .min = 1, .max = 2592000, .def = "3600",
	  .doc = "a pending approval expires after this long" },
	{ .name = "approvals.max_pending_per_tenant", .type = CT_UINT,
	  CONF(max_pending_per_tenant), .min = 1, .max = 1000000,
	  .def = "100", .project = 1,
	  .doc = "pending approvals one tenant may have" },
	{ .name = "approvals.max_pending_bytes_per_tenant", .type = CT_UINT,
	  CONF(max_pending_bytes_per_tenant), .min = 1,
	  .max = 1024 * 1024 * MIB, .def = "16777216", .project = 1,
	  .doc = "bytes of args one tenant's pending approvals may hold" },

	{ .name = "limits", .type = CT_SECTION,
	  .doc = "sizes and counts that bound every peer" },
	{ .name = "limits.max_frame", .type = CT_UINT, CONF(max_frame),
	  .min = 1, .max = 64 * MIB, .def = "1048576",
	  .doc = "largest request frame on the agent socket" },
	{ .name = "limits.max_output", .type = CT_UINT, CONF(max_output),
	  .min = 1, .max = 64 * MIB, .def = "1048576",
	  .doc = "largest stdout of a tool" },
	{ .name = "limits.max_connections", .type = CT_UINT,
	  CONF(max_connections), .min = 1, .max = 1048576, .def = "1024",
	  .doc = "agent connections at once" },
	{ .name = "limits.max_inflight", .type = CT_UINT, CONF(max_inflight),
	  .min = 1, .max = 65536, .def = "64",
	  .doc = "requests in progress per connection" },
	{ .name = "limits.control_idle_s", .type = CT_UINT,
	  CONF(control_idle_s), .min = 1, .max = 86400, .def = "30",
	  .project = 1,
	  .doc = "a control connection idle this long is closed" },
	{ .name = "limits.max_connections_per_uid", .type = CT_UINT,
	  CONF(max_conns_per_uid), .min = 1, .max = 1048576, .def = "256",
	  .project = 1, .doc = "agent connections of one uid at once" },
	{ .name = "limits.max_stranger_connections", .type = CT_UINT,
	  CONF(max_stranger_conns), .min = 1, .max = 1048576, .def = "16",
	  .project = 1,
	  .doc = "agent connections of peers with no principal, together" },
	{ .name = "limits.frame_timeout_s", .type = CT_UINT,
	  CONF(frame_timeout_s), .min = 1, .max = 3600, .def = "30",
	  .project = 1, .doc = "a frame begun must be complete this soon" },
	{ .name = "limits.stranger_summary_s", .type = CT_UINT,
	  CONF(stranger_summary_s), .min = 1, .max = 86400, .def = "60",
	  .project = 1,
	  .doc = "refusals of strangers are summed over this interval" },
	{ .name = "limits.stranger_uids", .type = CT_UINT,
	  CONF(stranger_uids), .min = 1, .max = 65536, .def = "1024",
	  .project = 1, .doc = "stranger uids told apart in one interval" },
	{ .name = "limits.max_tools", .type = CT_UINT, CONF(max_tools),
	  .min = 1, .max = 65536, .def = "256", .project = 1,
	  .doc = "tool processes running at once" },
	{ .name = "limits.max_tools_per_tenant", .type = CT_UINT,
	  CONF(max_tools_per_tenant), .min = 1, .max = 65536, .def = "128",
	  .project = 1, .doc = "tool processes of one tenant at once" },
	{ .name = "limits.shutdown_s", .type = CT_UINT, CONF(shutdown_s),
	  .min = 1, .max = 3600, .def = "30", .project = 1,
	  .doc = "running tools are killed this long after shutdown began" },

	{ .name = "runs", .type = CT_SECTION, .project = 1,
	  .doc = "the table of live runs" },
	{ .name = "runs.idle_s", .type = CT_UINT, CONF(run_idle_s),
	  .min = 1, .max = 2592000, .def = "3600", .project = 1,
	  .doc = "a run unused this long is forgotten" },
	{ .name = "runs.max_runs", .type = CT_UINT, CONF(max_runs),
	  .min = 1, .max = 100000000, .def = "10000", .project = 1,
	  .doc = "live runs at once" },
	{ .name = "runs.max_runs_per_tenant", .type = CT_UINT,
	  CONF(max_runs_per_tenant), .min = 1, .max = 100000000,
	  .def = "1000", .project = 1,
	  .doc = "live runs of one tenant at once" },

	{ .name = "store", .type = CT_SECTION,
	  .doc = "the executor's store: LMDB, or PostgreSQL shared by hosts" },
	{ .name = "store.backend", .type = CT_ENUM, CONF(store_backend),
	  .choices = store_backends, .what = "lmdb or postgresql",
	  .def = "lmdb",
	  .doc = "lmdb (in the state dir) or postgresql (shared)" },
	{ .name = "store.dsn", .type = CT_CODE, .fn = sect_store_dsn,
	  .doc = "postgresql: the libpq connection string" },
	{ .name = "store.host_id", .type = CT_NAME, CONF(store_host_id),
	  .doc = "this host's name in shared records; default: the host name" },
	{ .name = "store.map_size", .type = CT_UINT, CONF(map_size),
	  .min = MIB, .max = 1024 * 1024 * MIB, .def = "67108864",
	  .project = 1, .doc = "initial map size" },
	{ .name = "store.max_map_size", .type = CT_UINT, CONF(max_map_size),
	  .min = MIB, .max = 1024 * 1024 * MIB, .def = "1073741824",
	  .project = 1, .doc = "the map grows up to this when full" },
	{ .name = "store.reserve", .type = CT_UINT, CONF(store_reserve),
	  .min = RESERVE_MIN, .max = 1024 * 1024 * MIB, .project = 1,
	  .doc = "room ordinary writes leave free" },

	{ .name = "metrics", .type = CT_SECTION, .doc = "Prometheus text" },
	{ .name = "metrics.listen", .type = CT_CODE,
	  .fn = sect_metrics_listen,
	  .doc = "HOST:PORT or unix:/absolute/path" },

	{ .name = "rate_limits", .type = CT_SECTION,
	  .doc = "token buckets, refilled continuously; none by default" },
	{ .name = "rate_limits.per_tenant", .type = CT_SECTION,
	  .doc = "one tenant's calls, all tools together" },
	{ .name = "rate_limits.per_tenant.rate", .type = CT_NUMBER,
	  CONF(rate_tenant), .def = "0",
	  .doc = "calls per second; 0: no bucket" },
	{ .name = "rate_limits.per_tenant.burst", .type = CT_UINT,
	  CONF(burst_tenant), .min = 1, .max = 1000000000,
	  .doc = "the bucket's size; default: the rate, at least 1" },
	{ .name = "rate_limits.per_tool", .type = CT_SECTION,
	  .fn = sect_rate_tools, .doc = "one tenant's calls of one tool" },
	{ .name = "rate_limits.per_tool.*.rate", .type = CT_NUMBER,
	  RATE(rate), .doc = "calls per second, more than 0" },
	{ .name = "rate_limits.per_tool.*.burst", .type = CT_UINT,
	  RATE(burst), .min = 1, .max = 1000000000,
	  .doc = "the bucket's size; default: the rate, at least 1" },

	{ .name = "breaker", .type = CT_SECTION,
	  .doc = "a circuit breaker per tenant and tool; off when absent" },
	{ .name = "breaker.window_s", .type = CT_UINT, CONF(breaker_window_s),
	  .min = 1, .max = 86400, .def = "30",
	  .doc = "the calls that ended this recently are counted" },
	{ .name = "breaker.min_calls", .type = CT_UINT,
	  CONF(breaker_min_calls), .min = 1, .max = 1000000, .def = "10",
	  .doc = "fewer ended calls never open it" },
	{ .name = "breaker.failure_ratio", .type = CT_NUMBER,
	  CONF(breaker_failure_ratio), .def = "0.5",
	  .doc = "share of retryable failures and timeouts that opens it" },
	{ .name = "breaker.open_s", .type = CT_UINT, CONF(breaker_open_s),
	  .min = 1, .max = 86400, .def = "30",
	  .doc = "open this long, then one call probes" },

	{ .name = "credentials", .type = CT_SECTION,
	  .doc = "accepted for compatibility with the safe default" },
	{ .name = "credentials.scope", .type = CT_SECTION,
	  .doc = "credentials are always scoped" },
	{ .name = "credentials.scope.tenant", .type = CT_CODE, .def = "true",
	  .fn = sect_scope, .doc = "must be true" },
	{ .name = "credentials.scope.environment", .type = CT_CODE,
	  .def = "true", .fn = sect_scope, .doc = "must be true" },

	{ .name = "kill_switch", .type = CT_SECTION,
	  .doc = "accepted for compatibility with the safe default" },
	{ .name = "kill_switch.mode_when_enabled", .type = CT_ENUM,
	  .base = CB_NONE, .choices = kill_modes,
	  .what = "disable_writes (the only kill switch mode)",
	  .def = "disable_writes", .doc = "the only mode" },
};

#undef CONF
#undef TOOL
#undef PRINCIPAL
#undef RATE

#define NKEYS	(sizeof(cfgkeys) / sizeof(cfgkeys[0]))

const struct cfgkey *
config_keys(size_t *n)
{
	*n = NKEYS;
	return cfgkeys;
}

const struct cfgkey *
config_key(const char *name)
{
	size_t	 i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(cfgkeys[i].name, name) == 0)
			return &cfgkeys[i];
	return NULL;
}

/* the walk */

static size_t
key_index(const struct cfgkey *k)
{
	return (size_t)(k - cfgkeys);
}

int
cfg_given(const struct cfgctx *ctx, const char *name, yaml_node_t **node)
{
	const struct cfgkey	*k;

	if ((k = config_key(name)) == NULL)
		fatalx("%s: no such config key", name);
	if (ctx->bad[key_index(k)])
		return -1;
	if (node != NULL)
		*node = ctx->nodes[key_index(k)];
	return ctx->nodes[key_index(k)] != NULL;
}

static void *
key_base(struct cfgctx *ctx, const struct cfgkey *k)
{
	switch (k->base) {
	case CB_CONF:
		return ctx->conf;
	case CB_PRINCIPAL:
		return ctx->principal;
	case CB_TOOL:
		return ctx->tool;
	case CB_MCP:
		return ctx->server;
	case CB_RATE:
		return ctx->rate;
	default:
		return NULL;
	}
}

/* Read 'val' as the value of table key 'k'. */
static int
read_value(struct cfgctx *ctx, const struct cfgkey *k, yaml_node_t *val,
    const char *path)
{
	char		*base = key_base(ctx, k);
	void		*dst = base != NULL ? base + k->off : NULL;
	uint64_t	 v;
	int		 e;

	switch (k->type) {
	case CT_SECTION:
		if (k->fn != NULL)
			return k->fn(ctx, k, val, path);
		return cfg_walk(ctx, val, path, k->name);
	case CT_BOOL:
		return cfg_get_bool(ctx, val, path, dst);
	case CT_UINT:
		return cfg_get_u64(ctx, val, path, k->min, k->max, dst);
	case CT_U32:
		if (cfg_get_u64(ctx, val, path, k->min, k->max, &v) == -1)
			return -1;
		*(uint32_t *)dst = (uint32_t)v;
		return 0;
	case CT_NUMBER:
		return get_double(ctx, val, path, dst);
	case CT_PATH:
		return set_abspath(ctx, val, path, k->max, dst);
	case CT_USER:
		return cfg_set_user(ctx, val, path, dst);
	case CT_NAME:
		return cfg_set_name(ctx, val, path, dst);
	case CT_ENUM:
		return get_enum(ctx, k, val, path, dst != NULL ? dst : &e);
	case CT_CODE:
		return k->fn(ctx, k, val, path);
	}
	return -1;
}

static int
read_key(struct cfgctx *ctx, const struct cfgkey *k, yaml_node_t *val,
    const char *path)
{
	size_t	 before = cfg_nerrs(ctx);
	int	 rv;

	rv = read_value(ctx, k, val, path);
	if (k->base == CB_CONF || k->base == CB_NONE) {
		ctx->nodes[key_index(k)] = val;
		if (rv == -1 || cfg_nerrs(ctx) != before)
			ctx->bad[key_index(k)] = 1;
	}
	return rv;
}

/*
 * A key of a mapping must be a string, without a tag, given once.  The
 * message for a duplicate gives the line of the first one.
 */
static int
check_key(struct cfgctx *ctx, const yaml_node_t *map,
    const yaml_node_pair_t *pair, const char *sub)
{
	const yaml_node_pair_t	*prev;
	yaml_node_t		*k, *pk;

	k = yaml_document_get_node(&ctx->yd->doc, pair->key);
	if (check_tag(ctx, k, sub) == -1)
		return -1;
	for (prev = map->data.mapping.pairs.start; prev < pair; prev++) {
		pk = yaml_document_get_node(&ctx->yd->doc, prev->key);
		if (pk->type == YAML_SCALAR_NODE &&
		    strcmp(ynode_str(pk), ynode_str(k)) == 0)
			return cfg_error(ctx, k, sub, "duplicate key (first "
			    "given at line %zu)", ynode_line(pk));
	}
	return 0;
}

static int
key_is_string(const yaml_node_t *k)
{
	return k->type == YAML_SCALAR_NODE &&
	    strlen(ynode_str(k)) == k->data.scalar.length;
}

/*
 * Walk a mapping: its keys must be distinct strings.  With 'fn', each
 * goes to it; else each must be the table key "TPATH.KEY".  A bad key is
 * reported and the walk goes on, so that one load finds every mistake.
 */
static int
walk_pairs(struct cfgctx *ctx, yaml_node_t *map, const char *path,
    const char *tpath, int (*fn)(struct cfgctx *, const char *,
    yaml_node_t *, yaml_node_t *, const char *))
{
	yaml_node_pair_t	*pair;
	yaml_node_t		*k, *v;
	const struct cfgkey	*key;
	char			 sub[KEY_PATH_LEN], tsub[KEY_PATH_LEN];
	size_t			 before = cfg_nerrs(ctx);

	if (cfg_expect_kind(ctx, map, path, YAML_MAPPING_NODE) == -1)
		return -1;
	for (pair = map->data.mapping.pairs.start;
	    pair < map->data.mapping.pairs.top; pair++) {
		k = yaml_document_get_node(&ctx->yd->doc, pair->key);
		v = yaml_document_get_node(&ctx->yd->doc, pair->value);
		if (!key_is_string(k)) {
			cfg_error(ctx, k, path, "keys must be strings");
			continue;
		}
		cfg_key_path(sub, sizeof(sub), path, ynode_str(k));
		if (check_key(ctx, map, pair, sub) == -1)
			continue;
		if (fn != NULL) {
			fn(ctx, ynode_str(k), k, v, sub);
			continue;
		}
		/* "limits.max_frame:" at the top is no key of ours. */
		cfg_key_path(tsub, sizeof(tsub), tpath, ynode_str(k));
		if (strpbrk(ynode_str(k), ".[*") != NULL ||
		    (key = config_key(tsub)) == NULL)
			cfg_error(ctx, k, sub, "unknown key");
		else
			read_key(ctx, key, v, sub);
	}
	return cfg_nerrs(ctx) == before ? 0 : -1;
}

int
cfg_walk(struct cfgctx *ctx, yaml_node_t *map, const char *path,
    const char *tpath)
{
	return walk_pairs(ctx, map, path, tpath, NULL);
}

int
cfg_walk_fn(struct cfgctx *ctx, yaml_node_t *map, const char *path,
    int (*fn)(struct cfgctx *, const char *, yaml_node_t *, yaml_node_t *,
    const char *))
{
	return walk_pairs(ctx, map, path, "", fn);
}

/* defaults */

_Static_assert(sizeof(enum tool_mode) == sizeof(int),
    "catalog.*.mode is read as an int");
_Static_assert(sizeof(enum mcp_scope) == sizeof(int),
    "mcp_servers.*.scope is read as an int");

static void
set_enum_default(const struct cfgkey *k, int *dst)
{
	const struct cfgchoice	*ch;

	for (ch = k->choices; ch->name != NULL; ch++)
		if (strcmp(ch->name, k->def) == 0) {
			*dst = ch->value;
			return;
		}
	fatalx("%s: bad default %s", k->name, k->def);
}

static void
set_default(const struct cfgkey *k, void *base)
{
	char	*dst = (char *)base + k->off;
	int	 b;

	if (k->def == NULL || k->base == CB_NONE)
		return;
	switch (k->type) {
	case CT_BOOL:
		if (bool_word(k->def, &b) == -1)
			fatalx("%s: bad default %s", k->name, k->def);
		*(int *)(void *)dst = b;
		break;
	case CT_UINT:
		*(uint64_t *)(void *)dst = strtoull(k->def, NULL, 10);
		break;
	case CT_U32:
		*(uint32_t *)(void *)dst =
		    (uint32_t)strtoul(k->def, NULL, 10);
		break;
	case CT_NUMBER:
		*(double *)(void *)dst = strtod(k->def, NULL);
		break;
	case CT_PATH:
	case CT_USER:
	case CT_NAME:
		*(char **)(void *)dst = xstrdup(k->def);
		break;
	case CT_ENUM:
		set_enum_default(k, (int *)(void *)dst);
		break;
	default:
		break;
	}
}

static void
apply_defaults(enum cfgbase base, void *p)
{
	size_t	 i;

	for (i = 0; i < NKEYS; i++)
		if (cfgkeys[i].base == base)
			set_default(&cfgkeys[i], p);
}

void
cfg_tool_defaults(struct tool *t)
{
	apply_defaults(CB_TOOL, t);
}

void
cfg_server_defaults(struct mcp_server *s)
{
	apply_defaults(CB_MCP, s);
}

static struct config *
config_defaults(const char *path)
{
	struct config	*c;

	c = xcalloc(1, sizeof(*c));
	c->file = xstrdup(path);
	apply_defaults(CB_CONF, c);
	/* The defaults of the keys read by code (see the table). */
	c->op_uids = xcalloc(1, sizeof(*c->op_uids));
	c->op_uids[0] = 0;
	c->nop_uids = 1;
	c->approval_all = 1;
	return c;
}

/* loading */

static void
load_doc(struct cfgctx *ctx)
{
	/* An empty file is more likely a mistake than a wish for defaults. */
	if ((ctx->root = ctx->yd->root) == NULL) {
		ctx->errs = xcalloc(1, sizeof(*ctx->errs));
		xasprintf(&ctx->errs[ctx->nerrs++], "%s:1: (top level): the "
		    "file is empty; expected a mapping", ctx->file);
		return;
	}
	/*
	 * Every key is read even after a mistake; the rules between keys
	 * then skip the keys that had one, so that no error follows from
	 * another.
	 */
	if (cfg_walk(ctx, ctx->root, "", "") == 0 ||
	    ctx->root->type == YAML_MAPPING_NODE)
		check_config(ctx);
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct cfgctx	 ctx;
	struct ydoc	 yd;
	char		 yerr[1024];

	memset(&ctx, 0, sizeof(ctx));
	ctx.file = path;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (yread_load(&yd, path, yerr, sizeof(yerr)) == -1) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s", yerr);
		return NULL;
	}
	ctx.yd = &yd;
	ctx.conf = config_defaults(path);
	ctx.nodes = xcalloc(NKEYS, sizeof(*ctx.nodes));
	ctx.bad = xcalloc(NKEYS, sizeof(*ctx.bad));
	load_doc(&ctx);
	yread_free(&yd);
	if (cfg_nerrs(&ctx) > 0) {
		errors_out(&ctx, err, errlen);
		config_free(ctx.conf);
		ctx.conf = NULL;
	}
	cfg_free_strings(ctx.errs, ctx.nerrs);
	free(ctx.nodes);
	free(ctx.bad);
	free(ctx.dir);
	free(ctx.pnodes);
	free(ctx.tnodes);
	free(ctx.snodes);
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
		cfg_free_strings(c->catalog[i].argv, c->catalog[i].argc);
		free(c->catalog[i].compensate);
		cfg_free_strings(c->catalog[i].comp_names,
		    c->catalog[i].ncomp_args);
		cfg_free_strings(c->catalog[i].comp_values,
		    c->catalog[i].ncomp_args);
		cfg_free_strings(c->catalog[i].entity, c->catalog[i].nentity);
		free(c->catalog[i].user);
		free(c->catalog[i].mcp.server);
		free(c->catalog[i].mcp.tool);
		free(c->catalog[i].http.url);
		free(c->catalog[i].http.method);
		cfg_free_strings(c->catalog[i].http.headers,
		    c->catalog[i].http.nheaders);
		free(c->catalog[i].http.ca_file);
		free(c->catalog[i].description);
		free(c->catalog[i].input_schema);
	}
	free(c->catalog);
	for (i = 0; i < c->nmcp_servers; i++) {
		free(c->mcp_servers[i].name);
		cfg_free_strings(c->mcp_servers[i].argv,
		    c->mcp_servers[i].argc);
		cfg_free_strings(c->mcp_servers[i].envp,
		    c->mcp_servers[i].nenv);
		free(c->mcp_servers[i].user);
		free(c->mcp_servers[i].credential_env);
	}
	free(c->mcp_servers);
	cfg_free_strings(c->allow, c->nallow);
	cfg_free_strings(c->audit_redact, c->naudit_redact);
	cfg_free_strings(c->approval_tools, c->napproval_tools);
	free(c->metrics_listen);
	free(c->store_dsn);
	free(c->store_host_id);
	for (i = 0; i < c->nrate_tools; i++)
		free(c->rate_tools[i].tool);
	free(c->rate_tools);
	free(c);
}
