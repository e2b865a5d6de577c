/*
 * The config of the tool backends that are not programs: the mcp_servers
 * section (MCP servers the executor keeps running) and a catalog tool's
 * mcp and http entries.  Like config_sect.c, each function here is a key
 * of the table in config.c; the cross-checks (a server that exists, one
 * backend per tool) are in config_check.c.
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <yaml.h>

#include "common/config.h"
#include "common/config_impl.h"
#include "common/xmalloc.h"
#include "common/yamlread.h"

#define URL_MAX_LEN		2048
#define VALUE_MAX_LEN		4096	/* a variable's or a header's */
#define MCP_TOOL_MAX_LEN	128	/* the MCP spec's limit on tool names */
#define DESCRIPTION_MAX_LEN	4096
#define ENV_MAX			64	/* variables of a server, headers of a tool */
#define SCHEMA_MAX_DEPTH	32	/* input_schema: nesting */
#define SCHEMA_MAX_NODES	4096	/* ... values, aliases counted again */
#define SCHEMA_MAX_LEN		65536	/* ... its canonical JSON */

/* mcp_servers */

/* An environment variable's name: what a shell would accept. */
static int
env_name_ok(const char *s)
{
	size_t	 i;

	if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	for (i = 1; s[i] != '\0'; i++)
		if (i >= 128 || !(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return 0;
	return 1;
}

static int
server_key(struct cfgctx *ctx, const char *key, yaml_node_t *knode,
    yaml_node_t *val, const char *path)
{
	struct config		*c = ctx->conf;
	struct mcp_server	*s;
	char			 sub[KEY_PATH_LEN];
	size_t			 before = cfg_nerrs(ctx);

	if (!cfg_valid_name(key))
		return cfg_name_error(ctx, knode, path);
	/* sect_mcp_servers() made room for every key of the mapping. */
	s = &c->mcp_servers[c->nmcp_servers++];
	s->name = xstrdup(key);
	cfg_server_defaults(s);
	ctx->server = s;
	cfg_walk(ctx, val, path, "mcp_servers.*");
	if (s->argv == NULL && val->type == YAML_MAPPING_NODE &&
	    cfg_nerrs(ctx) == before) {
		cfg_key_path(sub, sizeof(sub), path, "command");
		return cfg_error(ctx, val, sub, "missing: every MCP server "
		    "needs a program to run");
	}
	if (s->credential_env != NULL && s->scope != MCP_TENANT_ENV &&
	    cfg_nerrs(ctx) == before) {
		cfg_key_path(sub, sizeof(sub), path, "credential_env");
		return cfg_error(ctx, val, sub, "needs scope: tenant_env (a "
		    "shared server holds no tenant's credential)");
	}
	ctx->server = NULL;
	return cfg_nerrs(ctx) == before ? 0 : -1;
}

int
sect_mcp_servers(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *node, const char *path)
{
	struct config	*c = ctx->conf;

	(void)k;
	if (cfg_expect_kind(ctx, node, path, YAML_MAPPING_NODE) == -1)
		return -1;
	c->mcp_servers = xcalloc(ymap_len(node), sizeof(*c->mcp_servers));
	ctx->snodes = xcalloc(ymap_len(node), sizeof(*ctx->snodes));
	return cfg_walk_fn(ctx, node, path, server_key);
}

/* command: [PATH, ARG...], as a tool's exec. */
int
sect_mcp_command(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *node, const char *path)
{
	struct mcp_server	*s = ctx->server;

	(void)k;
	return cfg_read_command(ctx, node, path, &s->argv, &s->argc);
}

/*
 * A mapping of names to strings (an environment, headers), each as
 * "NAME" sep "VALUE" into *out: every name passes name_bad (which says
 * what is wrong with it, or NULL), at most ENV_MAX of them, a value may
 * be "" when quoted.
 */
static int
read_pairs(struct cfgctx *ctx, yaml_node_t *node, const char *path,
    const char *(*name_bad)(const char *), const char *sep, char ***out,
    size_t *n)
{
	yaml_node_pair_t	*pair;
	yaml_node_t		*kn, *vn;
	char			 sub[KEY_PATH_LEN];
	const char		*name, *val, *why;
	size_t			 before = cfg_nerrs(ctx), len;

	if (cfg_expect_kind(ctx, node, path, YAML_MAPPING_NODE) == -1)
		return -1;
	if ((len = ymap_len(node)) > ENV_MAX)
		return cfg_error(ctx, node, path, "more than %d entries",
		    ENV_MAX);
	*out = xcalloc(len + 1, sizeof(**out));
	for (pair = node->data.mapping.pairs.start;
	    pair < node->data.mapping.pairs.top; pair++) {
		kn = yaml_document_get_node(&ctx->yd->doc, pair->key);
		vn = yaml_document_get_node(&ctx->yd->doc, pair->value);
		if (cfg_get_str(ctx, kn, path, &name) == -1)
			continue;
		cfg_key_path(sub, sizeof(sub), path, name);
		if ((why = name_bad(name)) != NULL) {
			cfg_error(ctx, kn, sub, "%s", why);
			continue;
		}
		if (cfg_get_value(ctx, vn, sub, VALUE_MAX_LEN, &val) == -1)
			continue;
		xasprintf(&(*out)[(*n)++], "%s%s%s", name, sep, val);
	}
	return cfg_nerrs(ctx) == before ? 0 : -1;
}

static const char *
env_name_bad(const char *name)
{
	if (!env_name_ok(name) || strcmp(name, "PATH") == 0)
		return "not a variable name of ours (letters, digits, '_'; "
		    "not PATH, which the executor sets)";
	return NULL;
}

/* env: { NAME: VALUE }, on top of PATH. */
int
sect_mcp_env(struct cfgctx *ctx, const struct cfgkey *k, yaml_node_t *node,
    const char *path)
{
	struct mcp_server	*s = ctx->server;

	(void)k;
	return read_pairs(ctx, node, path, env_name_bad, "=", &s->envp,
	    &s->nenv);
}

int
sect_mcp_user(struct cfgctx *ctx, const struct cfgkey *k, yaml_node_t *val,
    const char *path)
{
	struct mcp_server	*s = ctx->server;

	(void)k;
	ctx->snodes[s - ctx->conf->mcp_servers].user = val;
	return cfg_set_user(ctx, val, path, &s->user);
}

int
sect_mcp_credential_env(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *val, const char *path)
{
	struct mcp_server	*s = ctx->server;
	const char		*name;

	(void)k;
	if (cfg_get_str(ctx, val, path, &name) == -1)
		return -1;
	if (!env_name_ok(name) || strcmp(name, "PATH") == 0)
		return cfg_error(ctx, val, path, "not a variable name of ours "
		    "(letters, digits, '_'; not PATH)");
	free(s->credential_env);
	s->credential_env = xstrdup(name);
	return 0;
}

/* catalog.*.mcp */

int
sect_tool_mcp(struct cfgctx *ctx, const struct cfgkey *k, yaml_node_t *val,
    const char *path)
{
	struct tool	*t = ctx->tool;
	char		 sub[KEY_PATH_LEN];
	size_t		 before = cfg_nerrs(ctx);

	ctx->tnodes[t - ctx->conf->catalog].mcp = val;
	if (cfg_walk(ctx, val, path, k->name) == -1)
		return -1;
	if (t->mcp.server == NULL || t->mcp.tool == NULL) {
		cfg_key_path(sub, sizeof(sub), path, t->mcp.server == NULL ?
		    "server" : "tool");
		return cfg_error(ctx, val, sub, "missing: an MCP tool names "
		    "its server and the server's name for it");
	}
	return cfg_nerrs(ctx) == before ? 0 : -1;
}

int
sect_tool_mcp_server(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *val, const char *path)
{
	(void)k;
	ctx->tnodes[ctx->tool - ctx->conf->catalog].mcp_server = val;
	return cfg_set_name(ctx, val, path, &ctx->tool->mcp.server);
}

/* MCP tool names: 1..128 of A-Z a-z 0-9 _ - . (the MCP spec's advice). */
int
sect_tool_mcp_tool(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *val, const char *path)
{
	const char	*s;
	size_t		 len;

	(void)k;
	if (cfg_get_str(ctx, val, path, &s) == -1)
		return -1;
	len = strlen(s);
	if (len == 0 || len > MCP_TOOL_MAX_LEN ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_-.") != len)
		return cfg_error(ctx, val, path, "not an MCP tool name (1 to "
		    "%d of letters, digits, '_', '-', '.')", MCP_TOOL_MAX_LEN);
	free(ctx->tool->mcp.tool);
	ctx->tool->mcp.tool = xstrdup(s);
	return 0;
}

/* catalog.*.http */

int
sect_tool_http(struct cfgctx *ctx, const struct cfgkey *k, yaml_node_t *val,
    const char *path)
{
	struct tool	*t = ctx->tool;
	char		 sub[KEY_PATH_LEN];
	size_t		 before = cfg_nerrs(ctx);

	ctx->tnodes[t - ctx->conf->catalog].http = val;
	if (cfg_walk(ctx, val, path, k->name) == -1)
		return -1;
	if (t->http.url == NULL) {
		cfg_key_path(sub, sizeof(sub), path, "url");
		return cfg_error(ctx, val, sub, "missing: an HTTP tool needs "
		    "the URL it calls");
	}
	if (t->http.method == NULL)
		t->http.method = xstrdup("POST");
	return cfg_nerrs(ctx) == before ? 0 : -1;
}

/*
 * http:// or https:// and a host; no whitespace or control characters,
 * which libcurl would take as they are.  No user:password@: credentials
 * come from the credentials dir, never from the config.
 */
int
sect_http_url(struct cfgctx *ctx, const struct cfgkey *k, yaml_node_t *val,
    const char *path)
{
	const char	*s, *host, *end;
	size_t		 len;

	(void)k;
	if (cfg_get_str(ctx, val, path, &s) == -1)
		return -1;
	len = strlen(s);
	if (len > URL_MAX_LEN)
		return cfg_error(ctx, val, path, "longer than %d bytes",
		    URL_MAX_LEN);
	/* cfg_get_str() refused control characters but for the tab. */
	if (strpbrk(s, " \t") != NULL)
		return cfg_error(ctx, val, path, "a URL holds no spaces");
	if (strncasecmp(s, "https://", 8) == 0)
		host = s + 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		host = s + 7;
	else
		return cfg_error(ctx, val, path, "must start with https:// "
		    "or http://");
	end = host + strcspn(host, "/?#");
	if (end == host)
		return cfg_error(ctx, val, path, "names no host");
	if (memchr(host, '@', (size_t)(end - host)) != NULL)
		return cfg_error(ctx, val, path, "must not hold a user or "
		    "password: the credential comes from the credentials "
		    "dir");
	free(ctx->tool->http.url);
	ctx->tool->http.url = xstrdup(s);
	return 0;
}

int
sect_http_method(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *val, const char *path)
{
	static const char *const methods[] = { "GET", "POST", "PUT", "PATCH",
	    "DELETE", NULL };
	const char	*s;
	size_t		 i;

	(void)k;
	if (cfg_get_str(ctx, val, path, &s) == -1)
		return -1;
	for (i = 0; methods[i] != NULL; i++)
		if (strcmp(s, methods[i]) == 0) {
			free(ctx->tool->http.method);
			ctx->tool->http.method = xstrdup(s);
			return 0;
		}
	return cfg_expected(ctx, val, path, "GET, POST, PUT, PATCH or DELETE");
}

/* An HTTP header name: a token (RFC 9110), at most 128 bytes. */
static int
header_name_ok(const char *s)
{
	size_t	 len = strlen(s);

	return len > 0 && len <= 128 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~") == len;
}

/*
 * Headers the executor sets itself: the credential, the idempotency key,
 * the body's type and length, and what libcurl owns.
 */
static int
header_reserved(const char *s)
{
	static const char *const reserved[] = { "Authorization",
	    "Idempotency-Key", "Content-Type", "Content-Length", "Host",
	    "Transfer-Encoding", "Connection", "Expect", "traceparent",
	    "Proxy-Authorization", "Cookie", NULL };
	size_t	 i;

	for (i = 0; reserved[i] != NULL; i++)
		if (strcasecmp(s, reserved[i]) == 0)
			return 1;
	return 0;
}

static const char *
header_name_bad(const char *name)
{
	if (!header_name_ok(name))
		return "not an HTTP header name";
	if (header_reserved(name))
		return "the executor sets this header itself (the credential "
		    "comes from the credentials dir, the idempotency key from "
		    "the ledger)";
	return NULL;
}

int
sect_http_headers(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *node, const char *path)
{
	struct tool_http	*h = &ctx->tool->http;

	(void)k;
	return read_pairs(ctx, node, path, header_name_bad, ": ",
	    &h->headers, &h->nheaders);
}

/* catalog.*.description: what an agent is told the tool does. */
int
sect_tool_description(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *val, const char *path)
{
	const char	*s;

	(void)k;
	if (cfg_get_str(ctx, val, path, &s) == -1)
		return -1;
	if (strlen(s) > DESCRIPTION_MAX_LEN)
		return cfg_error(ctx, val, path, "longer than %d bytes",
		    DESCRIPTION_MAX_LEN);
	free(ctx->tool->description);
	ctx->tool->description = xstrdup(s);
	return 0;
}

/*
 * catalog.*.input_schema: a JSON Schema object, written as YAML.  Plain
 * scalars take JSON's types as YAML 1.2's core schema reads them (true,
 * false, null, integers, floats); quoted ones are strings.  Aliases are
 * followed, and counted, so neither a cycle nor a billion laughs gets
 * past the limits.
 */
struct schema_walk {
	struct cfgctx	*ctx;
	const char	*path;
	size_t		 nodes;
};

static int
plain_is_int(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

static int
plain_is_float(const char *s)
{
	char	*end;

	if (strspn(s, "+-0123456789.eE") != strlen(s) ||
	    strpbrk(s, "0123456789") == NULL)
		return 0;
	(void)strtod(s, &end);
	return *end == '\0';
}

static json_t *
schema_scalar(struct schema_walk *w, const yaml_node_t *n)
{
	const char	*s = ynode_str(n);
	json_t		*j;

	if (ynode_is_quoted(n))
		j = json_stringn(s, n->data.scalar.length);
	else if (ynode_is_null(n))
		j = json_null();
	else if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 ||
	    strcmp(s, "TRUE") == 0)
		j = json_true();
	else if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 ||
	    strcmp(s, "FALSE") == 0)
		j = json_false();
	else if (plain_is_int(s)) {
		errno = 0;
		j = json_integer(strtoll(s, NULL, 10));
		if (errno == ERANGE) {
			json_decref(j);
			cfg_error(w->ctx, n, w->path, "integer %s out of"
			    " range", s);
			return NULL;
		}
	} else if (plain_is_float(s))
		j = json_real(strtod(s, NULL));
	else
		j = json_stringn(s, n->data.scalar.length);
	if (j == NULL)
		cfg_error(w->ctx, n, w->path, "a value JSON cannot hold");
	return j;
}

static json_t *
schema_node(struct schema_walk *w, yaml_node_t *n, int depth)
{
	yaml_node_pair_t	*pair;
	yaml_node_item_t	*item;
	yaml_node_t		*kn, *vn;
	json_t			*j, *v;

	if (depth > SCHEMA_MAX_DEPTH) {
		cfg_error(w->ctx, n, w->path, "nested deeper than %d",
		    SCHEMA_MAX_DEPTH);
		return NULL;
	}
	if (++w->nodes > SCHEMA_MAX_NODES) {
		cfg_error(w->ctx, n, w->path, "more than %d values",
		    SCHEMA_MAX_NODES);
		return NULL;
	}
	if (ynode_has_tag(n)) {
		cfg_error(w->ctx, n, w->path, "explicit YAML tags are not"
		    " taken");
		return NULL;
	}
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return schema_scalar(w, n);
	case YAML_SEQUENCE_NODE:
		j = json_array();
		for (item = n->data.sequence.items.start;
		    item < n->data.sequence.items.top; item++) {
			vn = yaml_document_get_node(&w->ctx->yd->doc, *item);
			if ((v = schema_node(w, vn, depth + 1)) == NULL) {
				json_decref(j);
				return NULL;
			}
			json_array_append_new(j, v);
		}
		return j;
	case YAML_MAPPING_NODE:
		j = json_object();
		for (pair = n->data.mapping.pairs.start;
		    pair < n->data.mapping.pairs.top; pair++) {
			kn = yaml_document_get_node(&w->ctx->yd->doc,
			    pair->key);
			vn = yaml_document_get_node(&w->ctx->yd->doc,
			    pair->value);
			if (kn->type != YAML_SCALAR_NODE || ynode_has_tag(kn) ||
			    memchr(ynode_str(kn), '\0',
			    kn->data.scalar.length) != NULL) {
				cfg_error(w->ctx, kn, w->path, "keys must be"
				    " strings");
				goto bad;
			}
			if (json_object_get(j, ynode_str(kn)) != NULL) {
				cfg_error(w->ctx, kn, w->path, "key %s given"
				    " twice", ynode_str(kn));
				goto bad;
			}
			if ((v = schema_node(w, vn, depth + 1)) == NULL)
				goto bad;
			if (json_object_set_new(j, ynode_str(kn), v) == -1) {
				cfg_error(w->ctx, kn, w->path, "a key JSON"
				    " cannot hold");
				goto bad;
			}
		}
		return j;
	default:
		cfg_error(w->ctx, n, w->path, "an empty node");
		return NULL;
	}
bad:
	json_decref(j);
	return NULL;
}

int
sect_tool_input_schema(struct cfgctx *ctx, const struct cfgkey *k,
    yaml_node_t *val, const char *path)
{
	struct schema_walk	 w = { ctx, path, 0 };
	json_t			*j, *type;
	char			*text;

	(void)k;
	if (val->type != YAML_MAPPING_NODE)
		return cfg_expected(ctx, val, path, "a mapping (a JSON Schema"
		    " object)");
	if ((j = schema_node(&w, val, 0)) == NULL)
		return -1;
	/* Args are a map: a schema of anything else could never match. */
	type = json_object_get(j, "type");
	if (type != NULL && !(json_is_string(type) &&
	    strcmp(json_string_value(type), "object") == 0)) {
		json_decref(j);
		return cfg_error(ctx, val, path, "type must be object: a"
		    " tool's args are a map");
	}
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (text == NULL)
		return cfg_error(ctx, val, path, "cannot be made JSON");
	if (strlen(text) > SCHEMA_MAX_LEN) {
		free(text);
		return cfg_error(ctx, val, path, "longer than %d bytes as"
		    " JSON", SCHEMA_MAX_LEN);
	}
	free(ctx->tool->input_schema);
	ctx->tool->input_schema = text;
	return 0;
}
