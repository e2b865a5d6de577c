/*
 * config_load(): the reference safe default, a config using every key,
 * and a table of broken configs, each of which must be refused with the
 * right "FILE:LINE: KEY:" so an operator can find the mistake.
 */
#include <sys/stat.h>

#include <errno.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/config.h"
#include "common/policy.h"
#include "tests/unit/test.h"

/* Write 'text' (of 'len' bytes) to a fresh temporary file named in 'path'. */
static int
write_tmp(const char *text, size_t len, char *path, size_t pathlen)
{
	const char	*dir;
	int		 fd;

	if ((dir = getenv("TMPDIR")) == NULL || *dir == '\0')
		dir = "/tmp";
	snprintf(path, pathlen, "%s/test_config.XXXXXX", dir);
	if ((fd = mkstemp(path)) == -1)
		return -1;
	if (write(fd, text, len) != (ssize_t)len) {
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

/* Load 'text'; the temporary file's name is left in 'path' for messages. */
static struct config *
load_text(const char *text, char *path, size_t pathlen, char *err,
    size_t errlen)
{
	struct config	*c;

	if (write_tmp(text, strlen(text), path, pathlen) == -1) {
		snprintf(err, errlen, "cannot write a temporary file");
		return NULL;
	}
	c = config_load(path, err, errlen);
	unlink(path);
	return c;
}

static const char *
shared_dir(void)
{
	const char	*s;

	if ((s = getenv("TG_SHARED")) != NULL && *s != '\0')
		return s;
	return "../shared";
}

/* Is 'prog' the file 'rel' in the (canonical) directory of 'conf'? */
static int
beside(const char *prog, const char *conf, const char *rel)
{
	char	 dir[1024], want[2048], *real, *slash;
	int	 ok;

	snprintf(dir, sizeof(dir), "%s", conf);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		*slash = '\0';
	if ((real = realpath(dir, NULL)) == NULL)
		return 0;
	snprintf(want, sizeof(want), "%s/%s", real, rel);
	free(real);
	if (!(ok = strcmp(prog, want) == 0))
		fprintf(stderr, "\"%s\" != \"%s\"\n", prog, want);
	return ok;
}

static void
test_safe_default(void)
{
	struct config	*c;
	char		 path[1024], err[1024];

	snprintf(path, sizeof(path), "%s/spec/safe-default.yaml",
	    shared_dir());
	c = config_load(path, err, sizeof(err));
	if (c == NULL)
		fprintf(stderr, "%s\n", err);
	ASSERT(c != NULL);
	ASSERT_EQ_STR(c->file, path);
	ASSERT_EQ_INT(c->read_write, 0);
	ASSERT_EQ_INT(c->writes_enabled, 0);
	ASSERT_EQ_INT(c->approval_all, 1);
	ASSERT_EQ_INT(c->napproval_tools, 0);
	ASSERT_EQ_INT(c->nallow, 3);
	ASSERT_EQ_STR(c->allow[0], "search.read");
	ASSERT_EQ_STR(c->allow[1], "kb.read");
	ASSERT_EQ_STR(c->allow[2], "http.get");
	ASSERT(policy_allowed(c, "kb.read"));
	ASSERT(!policy_allowed(c, "ticket.close"));
	/* Allowed but not in the catalog: a write, which is not an error. */
	ASSERT_EQ_INT(c->ncatalog, 0);
	ASSERT(policy_tool(c, "kb.read") == NULL);
	ASSERT_EQ_INT(policy_tool_mode(c, "kb.read"), TOOL_WRITE);
	ASSERT(policy_needs_approval(c, "http.get"));
	/* Everything else at its default. */
	ASSERT_EQ_STR(c->agent_socket, "/run/toolgate/agent.sock");
	ASSERT_EQ_STR(c->control_socket, "/run/toolgate/control.sock");
	ASSERT_EQ_STR(c->state_dir, "/var/lib/toolgate");
	ASSERT_EQ_STR(c->credentials_dir, "/etc/toolgate/credentials");
	ASSERT_EQ_STR(c->user, "toolgate");
	ASSERT_EQ_STR(c->tool_user, "nobody");
	ASSERT_EQ_INT(c->allow_self_approval, 0);
	ASSERT_EQ_INT(c->nprincipals, 0);
	ASSERT(policy_principal(c, 1000, 1000) == NULL);
	ASSERT_EQ_INT(c->nop_uids, 1);
	ASSERT_EQ_INT(c->op_uids[0], 0);
	ASSERT_EQ_INT(c->nop_gids, 0);
	ASSERT(policy_is_operator(c, 0, 0));
	ASSERT(!policy_is_operator(c, 1000, 0));
	ASSERT_EQ_INT(c->retention_s, 86400);
	ASSERT_EQ_INT(c->max_steps_per_run, 50);
	ASSERT_EQ_INT(c->max_writes_per_run, 10);
	ASSERT_EQ_INT(c->max_tokens_per_run, 200000);
	ASSERT(c->max_cost_per_run == 5.0);
	ASSERT_EQ_INT(c->repeat_limit, 3);
	ASSERT_EQ_INT(c->approvals_ttl_s, 3600);
	ASSERT_EQ_INT(c->max_frame, 1048576);
	ASSERT_EQ_INT(c->max_output, 1048576);
	ASSERT_EQ_INT(c->max_connections, 1024);
	ASSERT_EQ_INT(c->max_inflight, 64);
	ASSERT_EQ_INT(c->max_conns_per_uid, 256);
	ASSERT_EQ_INT(c->max_stranger_conns, 16);
	ASSERT_EQ_INT(c->frame_timeout_s, 30);
	ASSERT_EQ_INT(c->stranger_summary_s, 60);
	ASSERT_EQ_INT(c->stranger_uids, 1024);
	ASSERT_EQ_INT(c->max_tools, 256);
	ASSERT_EQ_INT(c->max_tools_per_tenant, 128);
	ASSERT_EQ_INT(c->run_idle_s, 3600);
	ASSERT_EQ_INT(c->max_runs, 10000);
	ASSERT_EQ_INT(c->max_runs_per_tenant, 1000);
	ASSERT_EQ_INT(c->map_size, 64ULL * 1024 * 1024);
	ASSERT_EQ_INT(c->max_map_size, 1024ULL * 1024 * 1024);
	ASSERT_EQ_INT(c->store_reserve, 32ULL * 1024 * 1024);
	ASSERT_EQ_INT(c->max_pending_per_tenant, 100);
	ASSERT_EQ_INT(c->max_pending_bytes_per_tenant, 16ULL * 1024 * 1024);
	ASSERT(c->metrics_listen == NULL);
	config_free(c);
}

static const char full_config[] =
    "# every key there is\n"
    "paths:\n"
    "  agent_socket: /tmp/tg/agent.sock\n"
    "  control_socket: \"/tmp/tg/control.sock\"\n"
    "  state_dir: /tmp/tg/state\n"
    "  credentials_dir: /tmp/tg/creds\n"
    "user: _toolgate\n"
    "tool_user: _tools\n"
    "principals:\n"
    "  - { uid: 1001, tenant: acme, env: prod }\n"
    "  - { gid: 2000, tenant: globex, env: staging }\n"
    "  - uid: 1002\n"
    "    tenant: initech\n"
    "    env: dev-1\n"
    "operators: { uids: [0, 1500], gids: [4, 27], allow_self_approval: no }\n"
    "catalog:\n"
    "  kb.read:      { mode: read,  exec: [\"/usr/libexec/toolgate/tools/kb-read\"], timeout_ms: 2000 }\n"
    "  ticket.close: { mode: write, exec: [\"/usr/libexec/toolgate/tools/ticket-close\", --reason, \"\"], compensate: ticket.reopen }\n"
    "  ticket.reopen:\n"
    "    exec:\n"
    "      - tools/ticket-reopen\n"
    "tools: { default_mode: read_write, allow: [kb.read, ticket.close, ticket.reopen] }\n"
    "writes: { enabled: yes, require_approval: [ticket.close], idempotency: gateway_inject, retention_s: 7200 }\n"
    "budgets: { max_steps_per_run: 0, max_writes_per_run: 2, max_tokens_per_run: 1000,\n"
    "           max_cost_per_run: 2, repeat_limit: 5 }\n"
    "approvals: { ttl_s: 600 }\n"
    "limits: { max_frame: 65536, max_output: 67108864, max_connections: 8, max_inflight: 4 }\n"
    "runs: { idle_s: 60, max_runs: 100 }\n"
    "store: { map_size: 1048576, max_map_size: 1048576 }\n"
    "metrics: { listen: \"127.0.0.1:9464\" }\n"
    "credentials:\n"
    "  scope: { tenant: true, environment: On }\n"
    "kill_switch: { mode_when_enabled: disable_writes }\n";

static void
test_full(void)
{
	struct config		*c;
	const struct tool	*t;
	char			 path[1024], err[1024];

	c = load_text(full_config, path, sizeof(path), err, sizeof(err));
	if (c == NULL)
		fprintf(stderr, "%s\n", err);
	ASSERT(c != NULL);
	ASSERT_EQ_STR(c->file, path);
	ASSERT_EQ_STR(c->agent_socket, "/tmp/tg/agent.sock");
	ASSERT_EQ_STR(c->control_socket, "/tmp/tg/control.sock");
	ASSERT_EQ_STR(c->state_dir, "/tmp/tg/state");
	ASSERT_EQ_STR(c->credentials_dir, "/tmp/tg/creds");
	ASSERT_EQ_STR(c->user, "_toolgate");
	ASSERT_EQ_STR(c->tool_user, "_tools");

	ASSERT_EQ_INT(c->nprincipals, 3);
	ASSERT(c->principals[0].has_uid && !c->principals[0].has_gid);
	ASSERT_EQ_INT(c->principals[0].uid, 1001);
	ASSERT_EQ_STR(c->principals[0].tenant, "acme");
	ASSERT_EQ_STR(c->principals[0].env, "prod");
	ASSERT(!c->principals[1].has_uid && c->principals[1].has_gid);
	ASSERT_EQ_INT(c->principals[1].gid, 2000);
	ASSERT_EQ_STR(c->principals[1].tenant, "globex");
	ASSERT_EQ_STR(c->principals[1].env, "staging");
	ASSERT(c->principals[2].has_uid);
	ASSERT_EQ_INT(c->principals[2].uid, 1002);
	ASSERT_EQ_STR(c->principals[2].tenant, "initech");
	ASSERT_EQ_STR(c->principals[2].env, "dev-1");

	ASSERT_EQ_INT(c->nop_uids, 2);
	ASSERT_EQ_INT(c->op_uids[0], 0);
	ASSERT_EQ_INT(c->op_uids[1], 1500);
	ASSERT_EQ_INT(c->nop_gids, 2);
	ASSERT_EQ_INT(c->op_gids[0], 4);
	ASSERT_EQ_INT(c->op_gids[1], 27);
	ASSERT_EQ_INT(c->allow_self_approval, 0);

	ASSERT_EQ_INT(c->ncatalog, 3);
	ASSERT((t = policy_tool(c, "kb.read")) != NULL);
	ASSERT_EQ_STR(t->name, "kb.read");
	ASSERT_EQ_INT(t->mode, TOOL_READ);
	ASSERT_EQ_INT(t->argc, 1);
	ASSERT_EQ_STR(t->argv[0], "/usr/libexec/toolgate/tools/kb-read");
	ASSERT(t->argv[1] == NULL);
	ASSERT_EQ_INT(t->timeout_ms, 2000);
	ASSERT(t->compensate == NULL);
	ASSERT((t = policy_tool(c, "ticket.close")) != NULL);
	ASSERT_EQ_INT(t->mode, TOOL_WRITE);
	ASSERT_EQ_INT(t->argc, 3);
	ASSERT_EQ_STR(t->argv[0], "/usr/libexec/toolgate/tools/ticket-close");
	ASSERT_EQ_STR(t->argv[1], "--reason");
	ASSERT_EQ_STR(t->argv[2], "");
	ASSERT(t->argv[3] == NULL);
	ASSERT_EQ_INT(t->timeout_ms, 10000);
	ASSERT_EQ_STR(t->compensate, "ticket.reopen");
	/* No mode: a write.  A relative program: beside the config. */
	ASSERT((t = policy_tool(c, "ticket.reopen")) != NULL);
	ASSERT_EQ_INT(t->mode, TOOL_WRITE);
	ASSERT_EQ_INT(t->argc, 1);
	ASSERT_EQ_INT(t->timeout_ms, 10000);
	ASSERT(beside(t->argv[0], path, "tools/ticket-reopen"));
	ASSERT_EQ_INT(policy_tool_mode(c, "kb.read"), TOOL_READ);
	ASSERT_EQ_INT(policy_tool_mode(c, "ticket.reopen"), TOOL_WRITE);
	ASSERT_EQ_INT(policy_tool_mode(c, "nonesuch"), TOOL_WRITE);
	ASSERT(policy_tool(c, "nonesuch") == NULL);

	ASSERT_EQ_INT(c->read_write, 1);
	ASSERT_EQ_INT(c->nallow, 3);
	ASSERT(policy_allowed(c, "ticket.reopen"));
	ASSERT(!policy_allowed(c, "kb"));

	ASSERT_EQ_INT(c->writes_enabled, 1);
	ASSERT_EQ_INT(c->approval_all, 0);
	ASSERT_EQ_INT(c->napproval_tools, 1);
	ASSERT_EQ_STR(c->approval_tools[0], "ticket.close");
	ASSERT_EQ_INT(c->retention_s, 7200);

	ASSERT_EQ_INT(c->max_steps_per_run, 0);
	ASSERT_EQ_INT(c->max_writes_per_run, 2);
	ASSERT_EQ_INT(c->max_tokens_per_run, 1000);
	ASSERT(c->max_cost_per_run == 2.0);
	ASSERT_EQ_INT(c->repeat_limit, 5);
	ASSERT_EQ_INT(c->approvals_ttl_s, 600);
	ASSERT_EQ_INT(c->max_frame, 65536);
	ASSERT_EQ_INT(c->max_output, 67108864);
	ASSERT_EQ_INT(c->max_connections, 8);
	ASSERT_EQ_INT(c->max_inflight, 4);
	/* Not set: cut to fit max_connections, strangers to a quarter. */
	ASSERT_EQ_INT(c->max_conns_per_uid, 8);
	ASSERT_EQ_INT(c->max_stranger_conns, 2);
	ASSERT_EQ_INT(c->run_idle_s, 60);
	ASSERT_EQ_INT(c->max_runs, 100);
	/* The default share is cut to max_runs. */
	ASSERT_EQ_INT(c->max_runs_per_tenant, 100);
	ASSERT_EQ_INT(c->map_size, 1048576);
	ASSERT_EQ_INT(c->max_map_size, 1048576);
	ASSERT(c->store_reserve == 65536);	/* 1/32, at least 64 KiB */
	ASSERT_EQ_STR(c->metrics_listen, "127.0.0.1:9464");
	config_free(c);
}

/*
 * The example from the contract, with the catalog entry of ticket.reopen
 * added: a compensate must name a tool of the catalog.
 */
static void
test_contract_example(void)
{
	static const char text[] =
	    "paths: { agent_socket: /run/a.sock, control_socket: /run/c.sock, state_dir: /var/lib/tg, credentials_dir: /etc/tg/creds }\n"
	    "user: toolgate\n"
	    "principals:\n"
	    "  - { uid: 1001, tenant: acme, env: prod }\n"
	    "  - { gid: 2000, tenant: globex, env: staging }\n"
	    "operators: { uids: [0], gids: [] }\n"
	    "catalog:\n"
	    "  kb.read:      { mode: read,  exec: [\"/usr/libexec/toolgate/tools/kb-read\"], timeout_ms: 2000 }\n"
	    "  ticket.close: { mode: write, exec: [\"/usr/libexec/toolgate/tools/ticket-close\"], compensate: ticket.reopen }\n"
	    "  ticket.reopen: { mode: write, exec: [\"/usr/libexec/toolgate/tools/ticket-reopen\"] }\n"
	    "tools: { default_mode: read_only, allow: [kb.read, ticket.close] }\n"
	    "writes: { enabled: true, require_approval: true, idempotency: gateway_inject, retention_s: 86400 }\n"
	    "budgets: { max_steps_per_run: 50, max_writes_per_run: 10, max_tokens_per_run: 200000,\n"
	    "           max_cost_per_run: 5.0, repeat_limit: 3 }\n"
	    "approvals: { ttl_s: 3600 }\n"
	    "limits: { max_frame: 1048576, max_output: 1048576, max_connections: 1024 }\n"
	    "metrics: { listen: \"127.0.0.1:9464\" }\n";
	struct config	*c;
	char		 path[1024], err[1024];

	c = load_text(text, path, sizeof(path), err, sizeof(err));
	if (c == NULL)
		fprintf(stderr, "%s\n", err);
	ASSERT(c != NULL);
	ASSERT_EQ_INT(c->read_write, 0);
	ASSERT_EQ_INT(c->writes_enabled, 1);
	ASSERT_EQ_INT(c->approval_all, 1);
	ASSERT_EQ_INT(c->nop_uids, 1);
	ASSERT_EQ_INT(c->nop_gids, 0);
	ASSERT(policy_needs_approval(c, "ticket.close"));
	config_free(c);
}

/* compensate's map form and entity. */
static void
test_compensate_map(void)
{
	static const char text[] =
	    "catalog:\n"
	    "  ticket.close:\n"
	    "    exec: [/bin/close]\n"
	    "    entity: [ticket_id, queue]\n"
	    "    compensate: { tool: ticket.reopen, args: { ticket_id: \"$.ticket_id\",\n"
	    "      note: \"Reopened by compensation (run ${run_id})\", empty: \"\" } }\n"
	    "  ticket.reopen: { exec: [/bin/reopen], compensate: ticket.close }\n";
	const struct tool	*t;
	struct config		*c;
	char			 path[1024], err[1024];

	c = load_text(text, path, sizeof(path), err, sizeof(err));
	if (c == NULL)
		fprintf(stderr, "%s\n", err);
	ASSERT(c != NULL);
	if (c == NULL)
		return;
	t = policy_tool(c, "ticket.close");
	ASSERT(t != NULL);
	ASSERT_EQ_STR(t->compensate, "ticket.reopen");
	ASSERT_EQ_INT(t->comp_map, 1);
	ASSERT_EQ_INT(t->ncomp_args, 3);
	ASSERT_EQ_STR(t->comp_names[0], "ticket_id");
	ASSERT_EQ_STR(t->comp_values[0], "$.ticket_id");
	ASSERT_EQ_STR(t->comp_values[1],
	    "Reopened by compensation (run ${run_id})");
	ASSERT_EQ_STR(t->comp_values[2], "");
	ASSERT_EQ_INT(t->nentity, 2);
	ASSERT_EQ_STR(t->entity[1], "queue");
	t = policy_tool(c, "ticket.reopen");
	ASSERT_EQ_INT(t->comp_map, 0);
	ASSERT_EQ_INT(t->nentity, 0);
	config_free(c);
}

/* The contract's examples of the mcp and http backends. */
static void
test_backends(void)
{
	static const char text[] =
	    "mcp_servers:\n"
	    "  memory:\n"
	    "    command: [\"/usr/bin/node\", \"/opt/mcp/server-memory/dist/index.js\"]\n"
	    "    env: { MEMORY_FILE_PATH: /var/lib/toolgate/memory.jsonl }\n"
	    "    user: toolgate-tools\n"
	    "    scope: shared\n"
	    "  tix:\n"
	    "    command: [\"/usr/bin/tix\"]\n"
	    "    scope: tenant_env\n"
	    "    credential_env: API_TOKEN\n"
	    "catalog:\n"
	    "  memory.search:  { mode: read,  mcp: { server: memory, tool: search_nodes }, timeout_ms: 5000 }\n"
	    "  memory.observe: { mode: write, mcp: { server: memory, tool: add_observations } }\n"
	    "  tix.close: { mcp: { server: tix, tool: close } }\n"
	    "  ticket.close:\n"
	    "    mode: write\n"
	    "    http: { url: \"https://tickets.example/api/close\", method: POST, headers: { X-Team: support },\n"
	    "            ca_file: /etc/toolgate/ca.pem, idempotent_upstream: true }\n"
	    "    timeout_ms: 5000\n"
	    "  kb.get: { mode: read, http: { url: \"http://127.0.0.1:8080/kb\" }, description: Reads the KB }\n";
	const struct mcp_server	*m;
	const struct tool	*t;
	struct config		*c;
	char			 path[1024], err[1024];

	c = load_text(text, path, sizeof(path), err, sizeof(err));
	if (c == NULL)
		fprintf(stderr, "%s\n", err);
	ASSERT(c != NULL);
	if (c == NULL)
		return;
	ASSERT_EQ_INT(c->nmcp_servers, 2);
	m = &c->mcp_servers[0];
	ASSERT_EQ_STR(m->name, "memory");
	ASSERT_EQ_INT(m->argc, 2);
	ASSERT_EQ_STR(m->argv[1], "/opt/mcp/server-memory/dist/index.js");
	ASSERT(m->argv[2] == NULL);
	ASSERT_EQ_INT(m->nenv, 1);
	ASSERT_EQ_STR(m->envp[0],
	    "MEMORY_FILE_PATH=/var/lib/toolgate/memory.jsonl");
	ASSERT(m->envp[1] == NULL);
	ASSERT_EQ_STR(m->user, "toolgate-tools");
	ASSERT_EQ_INT(m->scope, MCP_SHARED);
	ASSERT(m->credential_env == NULL);
	ASSERT_EQ_INT(m->max_inflight, 64);
	ASSERT_EQ_INT(m->init_timeout_ms, 10000);
	m = &c->mcp_servers[1];
	ASSERT_EQ_INT(m->scope, MCP_TENANT_ENV);
	ASSERT_EQ_STR(m->credential_env, "API_TOKEN");
	ASSERT(m->user == NULL);
	ASSERT_EQ_INT(m->nenv, 0);

	t = policy_tool(c, "memory.search");
	ASSERT(t != NULL && t->backend == TB_MCP && t->mode == TOOL_READ);
	ASSERT_EQ_STR(t->mcp.server, "memory");
	ASSERT_EQ_INT(t->mcp.server_idx, 0);
	ASSERT_EQ_STR(t->mcp.tool, "search_nodes");
	ASSERT(t->argv == NULL);
	t = policy_tool(c, "tix.close");
	ASSERT(t != NULL && t->backend == TB_MCP && t->mode == TOOL_WRITE);
	ASSERT_EQ_INT(t->mcp.server_idx, 1);

	t = policy_tool(c, "ticket.close");
	ASSERT(t != NULL && t->backend == TB_HTTP);
	ASSERT_EQ_STR(t->http.url, "https://tickets.example/api/close");
	ASSERT_EQ_STR(t->http.method, "POST");
	ASSERT_EQ_INT(t->http.nheaders, 1);
	ASSERT_EQ_STR(t->http.headers[0], "X-Team: support");
	ASSERT_EQ_STR(t->http.ca_file, "/etc/toolgate/ca.pem");
	ASSERT_EQ_INT(t->http.idempotent_upstream, 1);
	ASSERT_EQ_INT(t->timeout_ms, 5000);
	t = policy_tool(c, "kb.get");
	ASSERT(t != NULL && t->backend == TB_HTTP);
	ASSERT_EQ_STR(t->http.method, "POST");
	ASSERT_EQ_INT(t->http.nheaders, 0);
	ASSERT(t->http.ca_file == NULL);
	ASSERT_EQ_INT(t->http.idempotent_upstream, 0);
	ASSERT_EQ_STR(t->description, "Reads the KB");
	config_free(c);
}

/*
 * catalog.*.input_schema: YAML in, canonical JSON out (keys sorted),
 * plain scalars typed as JSON's, quoted ones strings; none: NULL, the
 * tools op's {"type": "object"}.
 */
static void
test_input_schema(void)
{
	static const char text[] =
	    "catalog:\n"
	    "  a:\n"
	    "    exec: [/bin/a]\n"
	    "    input_schema:\n"
	    "      type: object\n"
	    "      required: [ticket]\n"
	    "      additionalProperties: false\n"
	    "      properties:\n"
	    "        ticket: { type: string, maxLength: 32, pattern: \"^T-\" }\n"
	    "        n: { type: integer, minimum: -3, default: null }\n"
	    "        r: { type: number, maximum: 2.5, const: \"7\" }\n"
	    "        f: { type: boolean, default: True, examples: [yes, ~] }\n"
	    "  b: { exec: [/bin/b], input_schema: {} }\n"
	    "  c: { exec: [/bin/c] }\n";
	static const char want[] =
	    "{\"additionalProperties\":false,\"properties\":{"
	    "\"f\":{\"default\":true,\"examples\":[\"yes\",null],"
	    "\"type\":\"boolean\"},"
	    "\"n\":{\"default\":null,\"minimum\":-3,\"type\":\"integer\"},"
	    "\"r\":{\"const\":\"7\",\"maximum\":2.5,\"type\":\"number\"},"
	    "\"ticket\":{\"maxLength\":32,\"pattern\":\"^T-\","
	    "\"type\":\"string\"}},"
	    "\"required\":[\"ticket\"],\"type\":\"object\"}";
	struct config	*c;
	char		 path[1024], err[1024];

	c = load_text(text, path, sizeof(path), err, sizeof(err));
	if (c == NULL)
		fprintf(stderr, "%s\n", err);
	ASSERT(c != NULL);
	if (c == NULL)
		return;
	ASSERT_EQ_STR(policy_tool(c, "a")->input_schema, want);
	ASSERT_EQ_STR(policy_tool(c, "b")->input_schema, "{}");
	ASSERT(policy_tool(c, "c")->input_schema == NULL);
	config_free(c);
}

/* The demo's config, whose programs are relative to its directory. */
static void
test_example(void)
{
	struct config	*c;
	char		 err[1024];
	size_t		 i;

	c = config_load("examples/toolgate.yaml", err, sizeof(err));
	if (c == NULL)
		fprintf(stderr, "%s\n", err);
	ASSERT(c != NULL);
	ASSERT(c->ncatalog > 0);
	for (i = 0; i < c->ncatalog; i++)
		if (c->catalog[i].backend == TB_EXEC)
			ASSERT_EQ_INT(c->catalog[i].argv[0][0], '/');
	/* Its MCP server's command too (make demo's server-memory). */
	for (i = 0; i < c->nmcp_servers; i++)
		ASSERT_EQ_INT(c->mcp_servers[i].argv[0][0], '/');
	if (policy_tool(c, "kb.read") != NULL)
		ASSERT(beside(policy_tool(c, "kb.read")->argv[0],
		    "examples/toolgate.yaml", "tools/kb-read"));
	config_free(c);
}

/* A config named without a directory: its programs are in the cwd. */
static void
test_relative_cwd(void)
{
	static const char text[] = "catalog: { t: { exec: [./t, x] } }\n";
	struct config	*c;
	char		 path[1024], full[1100], err[1024], *dir, *base, *cwd;

	ASSERT_EQ_INT(write_tmp(text, sizeof(text) - 1, path, sizeof(path)), 0);
	ASSERT((cwd = getcwd(NULL, 0)) != NULL);
	base = strrchr(path, '/');
	*base++ = '\0';
	dir = path;
	if (chdir(dir) == -1) {
		free(cwd);
		ASSERT(0);
	}
	c = config_load(base, err, sizeof(err));
	unlink(base);
	if (chdir(cwd) == -1)
		test_failed = 1;
	free(cwd);
	if (c == NULL)
		fprintf(stderr, "%s\n", err);
	ASSERT(c != NULL);
	ASSERT_EQ_INT(c->ncatalog, 1);
	ASSERT_EQ_INT(c->catalog[0].argc, 2);
	snprintf(full, sizeof(full), "%s/%s", dir, base);
	ASSERT(beside(c->catalog[0].argv[0], full, "./t"));
	ASSERT_EQ_STR(c->catalog[0].argv[1], "x");
	config_free(c);
}

static void
test_lookups(void)
{
	static const char text[] =
	    "principals:\n"
	    "  - { gid: 100, tenant: bygid, env: e }\n"
	    "  - { uid: 1000, tenant: byuid, env: e }\n"
	    "  - { gid: 200, tenant: other, env: e }\n"
	    "operators: { uids: [1500], gids: [27] }\n"
	    "catalog: { a.write: { exec: [/bin/a] }, b.write: { exec: [/bin/b] },\n"
	    "           c.write: { exec: [/bin/c] } }\n"
	    "writes: { require_approval: [a.write, b.write] }\n";
	struct config		*c;
	const struct principal	*p;
	char			 path[1024], err[1024];

	c = load_text(text, path, sizeof(path), err, sizeof(err));
	if (c == NULL)
		fprintf(stderr, "%s\n", err);
	ASSERT(c != NULL);
	/* The uid wins over the gid, whatever the order in the file. */
	ASSERT((p = policy_principal(c, 1000, 100)) != NULL);
	ASSERT_EQ_STR(p->tenant, "byuid");
	ASSERT((p = policy_principal(c, 1001, 100)) != NULL);
	ASSERT_EQ_STR(p->tenant, "bygid");
	ASSERT((p = policy_principal(c, 1001, 200)) != NULL);
	ASSERT_EQ_STR(p->tenant, "other");
	ASSERT(policy_principal(c, 1001, 300) == NULL);

	ASSERT_EQ_INT(c->approval_all, 0);
	ASSERT(policy_needs_approval(c, "a.write"));
	ASSERT(policy_needs_approval(c, "b.write"));
	ASSERT(!policy_needs_approval(c, "c.write"));

	/* operators replaces the default [0]. */
	ASSERT(!policy_is_operator(c, 0, 0));
	ASSERT(policy_is_operator(c, 1500, 1));
	ASSERT(policy_is_operator(c, 1, 27));
	ASSERT(!policy_is_operator(c, 1, 1));
	config_free(c);
}

static void
test_require_approval_false(void)
{
	struct config	*c;
	char		 path[1024], err[1024];

	c = load_text("writes: { enabled: true, require_approval: false }\n",
	    path, sizeof(path), err, sizeof(err));
	ASSERT(c != NULL);
	ASSERT_EQ_INT(c->approval_all, 0);
	ASSERT_EQ_INT(c->napproval_tools, 0);
	ASSERT(!policy_needs_approval(c, "x"));
	config_free(c);
}

/* Load 'text', which must fail at "LINE: KEY: ...MSG...". */
static int
refused(const char *text, int line, const char *key, const char *msg)
{
	struct config	*c;
	char		 path[1024], err[1024], want[1200];

	if ((c = load_text(text, path, sizeof(path), err, sizeof(err))) != NULL) {
		fprintf(stderr, "loaded:\n%s", text);
		config_free(c);
		return 0;
	}
	snprintf(want, sizeof(want), "%s:%d: %s: ", path, line, key);
	if (strncmp(err, want, strlen(want)) != 0 ||
	    strstr(err, msg) == NULL) {
		fprintf(stderr, "want \"%s...%s\"\n got \"%s\"\n", want, msg,
		    err);
		return 0;
	}
	return 1;
}

static int
loads(const char *text)
{
	struct config	*c;
	char		 path[1024], err[1024];

	if ((c = load_text(text, path, sizeof(path), err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 0;
	}
	config_free(c);
	return 1;
}

/*
 * Without a catalog nothing can run: tools.allow may name tools to come
 * (the safe default does).  require_approval may not.
 */
static void
test_allow_without_catalog(void)
{
	ASSERT(loads("tools: { allow: [a, b] }\n"));
	ASSERT(loads("tools: { allow: [a] }\nwrites: { require_approval: false }\n"));
	ASSERT(refused("tools: { allow: [a] }\ncatalog: {}\n", 1,
	    "tools.allow[0]", "not a tool of the catalog"));
}

/* allow_self_approval lifts the operator rules, and only those. */
static void
test_allow_self_approval(void)
{
	static const char text[] =
	    "operators: { allow_self_approval: true }\n"
	    "principals:\n  - { uid: 0, tenant: a, env: b }\n"
	    "tool_user: root\n"
	    "catalog: { t: { exec: [/bin/t], user: root } }\n";
	struct config	*c;
	char		 path[1024], err[1024];

	c = load_text(text, path, sizeof(path), err, sizeof(err));
	if (c == NULL)
		fprintf(stderr, "%s\n", err);
	ASSERT(c != NULL);
	ASSERT_EQ_INT(c->allow_self_approval, 1);
	ASSERT_EQ_STR(c->tool_user, "root");
	ASSERT_EQ_STR(c->catalog[0].user, "root");
	config_free(c);
	ASSERT(refused("operators: { allow_self_approval: true }\n"
	    "writes: { require_approval: [x] }\n", 2,
	    "writes.require_approval[0]", "not a tool of the catalog"));
}

/*
 * The rules that need the passwd database, with the account nobody: a
 * primary group makes an operator an agent, or a tool an operator.  A user
 * unknown now is not checked (the call fails when the tool runs).
 */
static void
test_primary_groups(void)
{
	struct passwd	*pw;
	char		 text[512];
	unsigned	 uid, gid;

	if ((pw = getpwnam("nobody")) == NULL || pw->pw_uid == 0 ||
	    pw->pw_gid == 0) {
		fprintf(stderr, "no usable user nobody: skipped\n");
		return;
	}
	uid = (unsigned)pw->pw_uid;
	gid = (unsigned)pw->pw_gid;
	/* An operator uid whose primary gid is a principal gid. */
	snprintf(text, sizeof(text), "operators: { uids: [0, %u] }\n"
	    "principals:\n  - { gid: %u, tenant: a, env: b }\n", uid, gid);
	ASSERT(refused(text, 3, "principals[0].gid", "is the primary gid of "
	    "operator uid"));
	/* A principal uid whose primary gid is an operator gid. */
	snprintf(text, sizeof(text), "operators: { gids: [%u] }\n"
	    "principals:\n  - { uid: %u, tenant: a, env: b }\n", gid, uid);
	ASSERT(refused(text, 3, "principals[0].uid", "an operator gid "
	    "(operators.gids[0])"));
	/* The default tool_user, nobody, made an operator. */
	snprintf(text, sizeof(text), "# an operator\n"
	    "operators: { uids: [0, %u] }\n", uid);
	ASSERT(refused(text, 2, "tool_user", "user nobody (uid"));
	snprintf(text, sizeof(text), "tool_user: nobody\n"
	    "operators: { gids: [%u] }\n", gid);
	ASSERT(refused(text, 1, "tool_user", "an operator gid"));
	/* A catalog user, with a tool_user that does not exist. */
	snprintf(text, sizeof(text), "tool_user: no-such-user-here\n"
	    "operators: { gids: [%u] }\n"
	    "catalog:\n  t: { exec: [/bin/t], user: nobody }\n", gid);
	ASSERT(refused(text, 4, "catalog.t.user", "an operator gid"));
	snprintf(text, sizeof(text), "tool_user: no-such-user-here\n"
	    "operators: { uids: [%u] }\n"
	    "catalog:\n  t: { exec: [/bin/t], user: no-such-user-either }\n",
	    uid + 1);
	ASSERT(loads(text));
	/* The opt-in lifts them all. */
	snprintf(text, sizeof(text), "operators: { uids: [0, %u], gids: [%u], "
	    "allow_self_approval: true }\n"
	    "principals:\n  - { gid: %u, tenant: a, env: b }\n", uid, gid,
	    gid);
	ASSERT(loads(text));
}

static void
test_file_errors(void)
{
	struct config	*c;
	char		 err[1024], want[1200];
	const char	*missing = "/nonexistent/toolgate.yaml";

	c = config_load(missing, err, sizeof(err));
	ASSERT(c == NULL);
	snprintf(want, sizeof(want), "%s: cannot open: %s", missing,
	    strerror(ENOENT));
	ASSERT_EQ_STR(err, want);

	c = config_load("/", err, sizeof(err));
	ASSERT(c == NULL);
	ASSERT(strncmp(err, "/: cannot open: ", 16) == 0);

	/* A NULL err is allowed. */
	ASSERT(config_load(missing, NULL, 0) == NULL);
	config_free(NULL);
}

/* "\0" cannot be put in a table of C strings: its own test. */
static void
test_nul_byte(void)
{
	static const char text[] = "user: \"a\\0b\"\n";
	struct config	*c;
	char		 path[1024], err[1024], want[1200];

	c = load_text(text, path, sizeof(path), err, sizeof(err));
	ASSERT(c == NULL);
	snprintf(want, sizeof(want), "%s:1: user: contains a NUL byte", path);
	ASSERT_EQ_STR(err, want);
}

/* A raw NUL in the file is a YAML reader error, found at its line. */
static void
test_raw_nul(void)
{
	static const char text[] = "user: a\nuser2: b\0c\n";
	struct config	*c;
	char		 path[1024], err[1024], want[1200];

	ASSERT_EQ_INT(write_tmp(text, sizeof(text) - 1, path, sizeof(path)), 0);
	c = config_load(path, err, sizeof(err));
	unlink(path);
	ASSERT(c == NULL);
	snprintf(want, sizeof(want), "%s:2: syntax error: ", path);
	if (strncmp(err, want, strlen(want)) != 0)
		fprintf(stderr, "got: %s\n", err);
	ASSERT(strncmp(err, want, strlen(want)) == 0);
}

struct bad {
	const char	*yaml;
	int		 line;
	const char	*key;
	const char	*msg;		/* a part of the message */
};

static const struct bad bad[] = {
	/* the file as a whole */
	{ "", 1, "(top level)", "empty" },
	{ "# nothing but a comment\n", 1, "(top level)", "empty" },
	{ "- a\n- b\n", 1, "(top level)", "expected a mapping, got a list" },
	{ "just words\n", 1, "(top level)", "expected a mapping" },
	{ "user: a\n---\nuser: b\n", 3, "(top level)", "second YAML document" },
	{ "writes:\n  enabled: true\n bad: [\n", 3, "syntax error", NULL },
	{ "user: [a, b\n", 2, "syntax error", NULL },
	{ "user: *nothing\n", 1, "syntax error", "alias" },
	{ "writes:\n\tenabled: true\n", 2, "syntax error", NULL },
	{ "? [a]\n: b\n", 1, "(top level)", "keys must be strings" },
	{ "user: !custom x\n", 1, "user", "tags are not supported" },
	{ "budgets: { repeat_limit: !!int 5 }\n", 1, "budgets.repeat_limit",
	    "tags" },
	/* unknown and duplicate keys */
	{ "paths: {}\nfrobnicate: 1\n", 2, "frobnicate", "unknown key" },
	{ "writes:\n  enabled: false\n  enabeld: true\n", 3, "writes.enabeld",
	    "unknown key" },
	{ "user: a\nuser: b\n", 2, "user", "duplicate key (first given at "
	    "line 1)" },
	{ "writes: { enabled: false, enabled: false }\n", 1, "writes.enabled",
	    "duplicate" },
	{ "catalog:\n  a: { exec: [/bin/a] }\n  a: { exec: [/bin/b] }\n", 3,
	    "catalog.a", "duplicate" },
	{ "paths: { state: /x }\n", 1, "paths.state", "unknown key" },
	{ "limits: { max_frames: 10 }\n", 1, "limits.max_frames", "unknown" },
	{ "credentials: { scope: { tenant: true, user: true } }\n", 1,
	    "credentials.scope.user", "unknown key" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    timeout: 5\n", 4,
	    "catalog.t.timeout", "unknown key" },
	{ "principals:\n  - { uid: 1, tenant: a, env: b, role: x }\n", 2,
	    "principals[0].role", "unknown key" },
	/* wrong kinds */
	{ "writes: true\n", 1, "writes", "expected a mapping, got \"true\"" },
	{ "writes:\n", 1, "writes", "expected a mapping, got an empty value" },
	{ "tools: [a]\n", 1, "tools", "expected a mapping, got a list" },
	{ "paths:\n  state_dir: [a]\n", 2, "paths.state_dir",
	    "expected a string, got a list" },
	{ "user: { a: b }\n", 1, "user", "got a mapping" },
	{ "user: \"\"\n", 1, "user", "must not be empty" },
	{ "user:\n", 1, "user", "expected a string, got an empty value" },
	{ "user: \"a b\"\n", 1, "user", "not a valid user name" },
	{ "user: -toolgate\n", 1, "user", "not a valid user name" },
	{ "paths:\n  state_dir: \"/var/lib/\\ntg\"\n", 2, "paths.state_dir",
	    "control character" },
	{ "!k user: a\n", 1, "user", "tags are not supported" },
	/* booleans, integers, numbers */
	{ "writes:\n  enabled: maybe\n", 2, "writes.enabled",
	    "expected a boolean" },
	{ "writes:\n  enabled: \"true\"\n", 2, "writes.enabled",
	    "expected a boolean" },
	{ "writes: { enabled: 1 }\n", 1, "writes.enabled", "boolean" },
	{ "budgets:\n  max_steps_per_run: -1\n", 2,
	    "budgets.max_steps_per_run", "must not be negative" },
	{ "budgets:\n  max_steps_per_run: 1.5\n", 2,
	    "budgets.max_steps_per_run", "decimal integer" },
	{ "budgets:\n  max_steps_per_run: 0x10\n", 2,
	    "budgets.max_steps_per_run", "decimal integer" },
	{ "budgets:\n  max_steps_per_run: 010\n", 2,
	    "budgets.max_steps_per_run", "leading zeros" },
	{ "budgets:\n  max_steps_per_run: \"5\"\n", 2,
	    "budgets.max_steps_per_run", "expected an integer" },
	{ "budgets:\n  max_tokens_per_run: 99999999999999999999999\n", 2,
	    "budgets.max_tokens_per_run", "out of range" },
	{ "budgets:\n  repeat_limit: 9223372036854775808\n", 2,
	    "budgets.repeat_limit", "out of range" },
	{ "budgets:\n  max_cost_per_run: -1\n", 2, "budgets.max_cost_per_run",
	    "must not be negative" },
	{ "budgets:\n  max_cost_per_run: .nan\n", 2,
	    "budgets.max_cost_per_run", "expected a number" },
	{ "budgets:\n  max_cost_per_run: 1e999\n", 2,
	    "budgets.max_cost_per_run", "out of range" },
	{ "budgets:\n  max_cost_per_run: five\n", 2,
	    "budgets.max_cost_per_run", "expected a number" },
	/* limits and other ranges */
	{ "limits:\n  max_frame: 0\n", 2, "limits.max_frame", "out of range" },
	{ "limits:\n  max_frame: 67108865\n", 2, "limits.max_frame",
	    "out of range (1..67108864)" },
	{ "limits:\n  max_output: 0\n", 2, "limits.max_output",
	    "out of range" },
	{ "limits:\n  max_output: 67108865\n", 2, "limits.max_output",
	    "out of range" },
	{ "limits:\n  max_connections: 0\n", 2, "limits.max_connections",
	    "out of range" },
	{ "limits:\n  max_inflight: 0\n", 2, "limits.max_inflight",
	    "out of range" },
	{ "limits:\n  max_connections: 8\n  max_connections_per_uid: 9\n", 3,
	    "limits.max_connections_per_uid",
	    "more than limits.max_connections (8)" },
	{ "limits:\n  max_connections_per_uid: 0\n", 2,
	    "limits.max_connections_per_uid", "out of range" },
	{ "limits:\n  max_stranger_connections: 1025\n", 2,
	    "limits.max_stranger_connections",
	    "more than limits.max_connections (1024)" },
	{ "limits:\n  frame_timeout_s: 0\n", 2, "limits.frame_timeout_s",
	    "out of range (1..3600)" },
	{ "limits:\n  stranger_summary_s: 0\n", 2,
	    "limits.stranger_summary_s", "out of range" },
	{ "limits:\n  stranger_uids: 0\n", 2, "limits.stranger_uids",
	    "out of range" },
	{ "limits:\n  max_tools: 0\n", 2, "limits.max_tools",
	    "out of range" },
	{ "limits:\n  max_tools_per_tenant: 0\n", 2,
	    "limits.max_tools_per_tenant", "out of range" },
	{ "limits:\n  max_tools: 4\n  max_tools_per_tenant: 5\n", 3,
	    "limits.max_tools_per_tenant", "more than limits.max_tools (4)" },
	{ "approvals: { ttl_s: 0 }\n", 1, "approvals.ttl_s", "out of range" },
	{ "approvals: { max_pending_per_tenant: 0 }\n", 1,
	    "approvals.max_pending_per_tenant", "out of range" },
	{ "approvals: { max_pending_bytes_per_tenant: 0 }\n", 1,
	    "approvals.max_pending_bytes_per_tenant", "out of range" },
	{ "store: { reserve: 1000 }\n", 1, "store.reserve", "out of range" },
	{ "store:\n  map_size: 1048576\n  max_map_size: 1048576\n"
	    "  reserve: 600000\n", 4,
	    "store.reserve", "more than half of store.max_map_size" },
	{ "runs: { idle_s: 0 }\n", 1, "runs.idle_s", "out of range" },
	{ "runs: { max_runs: 0 }\n", 1, "runs.max_runs", "out of range" },
	{ "runs: { max_runs_per_tenant: 0 }\n", 1, "runs.max_runs_per_tenant",
	    "out of range" },
	{ "runs:\n  max_runs: 10\n  max_runs_per_tenant: 11\n", 3,
	    "runs.max_runs_per_tenant", "more than runs.max_runs (10)" },
	{ "writes: { retention_s: 0 }\n", 1, "writes.retention_s",
	    "out of range" },
	{ "store: { map_size: 1000 }\n", 1, "store.map_size", "out of range" },
	{ "store: { backend: postgresql }\n", 1, "store.backend",
	    "postgresql needs store.dsn" },
	{ "store: { backend: sqlite }\n", 1, "store.backend",
	    "lmdb or postgresql" },
	{ "store: { backend: postgresql, dsn: \"\" }\n", 1, "store.dsn",
	    "must not be empty" },
	{ "store: { backend: postgresql, dsn: \"a\\tb\" }\n", 1, "store.dsn",
	    "control character" },
	{ "store: { backend: postgresql, dsn: x, host_id: \"a b\" }\n", 1,
	    "store.host_id", "" },
	{ "store:\n  map_size: 2097152\n  max_map_size: 1048576\n", 3,
	    "store.max_map_size", "less than store.map_size" },
	{ "store:\n  map_size: 2147483648\n", 2, "store.map_size",
	    "more than store.max_map_size" },
	/* paths */
	{ "paths:\n  agent_socket: run/agent.sock\n", 2, "paths.agent_socket",
	    "absolute path" },
	{ "paths:\n  control_socket: /run/toolgate/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n",
	    2, "paths.control_socket", "longer than" },
	{ "paths:\n  credentials_dir: \"\"\n", 2, "paths.credentials_dir",
	    "must not be empty" },
	/* principals */
	{ "principals: { uid: 1 }\n", 1, "principals", "expected a list" },
	{ "principals:\n  - { uid: 1, gid: 2, tenant: a, env: b }\n", 2,
	    "principals[0]", "both uid and gid" },
	{ "principals:\n  - { uid: 1, tenant: a, env: b }\n"
	    "  - { tenant: a, env: b }\n", 3, "principals[1]",
	    "needs a uid or a gid" },
	{ "principals:\n  - uid: 1\n    env: b\n", 2, "principals[0].tenant",
	    "missing" },
	{ "principals:\n  - uid: 1\n    tenant: a\n", 2, "principals[0].env",
	    "missing" },
	{ "principals:\n  - { uid: 1, tenant: ../etc, env: b }\n", 2,
	    "principals[0].tenant", "not a valid name" },
	{ "principals:\n  - { uid: 1, tenant: a, env: \"a/b\" }\n", 2,
	    "principals[0].env", "not a valid name" },
	{ "principals:\n  - { uid: 1, tenant: \"\", env: b }\n", 2,
	    "principals[0].tenant", "must not be empty" },
	{ "principals:\n  - { uid: -5, tenant: a, env: b }\n", 2,
	    "principals[0].uid", "negative" },
	{ "principals:\n  - { uid: root, tenant: a, env: b }\n", 2,
	    "principals[0].uid", "decimal integer" },
	{ "principals:\n  - { uid: 4294967295, tenant: a, env: b }\n", 2,
	    "principals[0].uid", "out of range" },
	{ "principals:\n  - { uid: 1, tenant: a, env: b }\n"
	    "  - { uid: 2, tenant: a, env: b }\n"
	    "  - { uid: 1, tenant: c, env: d }\n", 4, "principals[2].uid",
	    "already mapped by principals[0]" },
	{ "principals:\n  - { gid: 7, tenant: a, env: b }\n"
	    "  - { gid: 7, tenant: c, env: d }\n", 3, "principals[1].gid",
	    "already mapped" },
	{ "principals:\n  - 1001\n", 2, "principals[0]", "expected a mapping" },
	/* operators */
	{ "operators:\n  uids: [root]\n", 2, "operators.uids[0]",
	    "decimal integer" },
	{ "operators:\n  uids: [0, 1.5]\n", 2, "operators.uids[1]",
	    "decimal integer" },
	{ "operators:\n  gids: 5\n", 2, "operators.gids", "expected a list" },
	{ "operators:\n  gids:\n    - -1\n", 3, "operators.gids[0]",
	    "negative" },
	/* catalog */
	{ "catalog: [a]\n", 1, "catalog", "expected a mapping" },
	{ "catalog:\n  ticket.close: { mode: write }\n", 2,
	    "catalog.ticket.close.exec", "missing" },
	{ "catalog:\n  t:\n    exec: []\n", 3, "catalog.t.exec",
	    "must not be empty" },
	{ "catalog:\n  t:\n    exec: /bin/t\n", 3, "catalog.t.exec",
	    "expected a list, got \"/bin/t\"" },
	{ "catalog:\n  t:\n    exec: [\"\"]\n", 3, "catalog.t.exec[0]",
	    "must not be empty" },
	{ "catalog:\n  t:\n    exec:\n      - /bin/t\n      - { a: 1 }\n", 5,
	    "catalog.t.exec[1]", "expected a string" },
	{ "catalog:\n  t:\n    exec: [/bin/t, ~]\n", 3, "catalog.t.exec[1]",
	    "expected a string" },
	{ "catalog:\n  t:\n    mode: execute\n    exec: [/bin/t]\n", 3,
	    "catalog.t.mode", "expected read or write" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    timeout_ms: 0\n", 4,
	    "catalog.t.timeout_ms", "out of range" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    timeout_ms: 3600001\n", 4,
	    "catalog.t.timeout_ms", "out of range (1..3600000)" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    compensate: [a]\n", 4,
	    "catalog.t.compensate", "expected a string" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    compensate: \"\"\n", 4,
	    "catalog.t.compensate", "must not be empty" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    compensate: ../x\n", 4,
	    "catalog.t.compensate", "not a valid name" },
	{ "catalog:\n  bad/name: { exec: [/bin/t] }\n", 2, "catalog.bad/name",
	    "not a valid name" },
	{ "catalog:\n  .hidden: { exec: [/bin/t] }\n", 2, "catalog..hidden",
	    "not a valid name" },
	{ "catalog:\n  t: /bin/t\n", 2, "catalog.t", "expected a mapping" },
	{ "catalog:\n  aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: { exec: [/bin/t] }\n",
	    2, "catalog.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "at most 128" },
	/* tools */
	{ "tools:\n  default_mode: readonly\n", 2, "tools.default_mode",
	    "expected read_only or read_write" },
	{ "tools:\n  default_mode: read_write\n"
	    "writes:\n  enabled: false\n", 2, "tools.default_mode",
	    "needs writes.enabled: true" },
	{ "writes: { require_approval: true }\n"
	    "tools: { default_mode: read_write }\n", 2, "tools.default_mode",
	    "needs writes.enabled" },
	{ "tools:\n  allow: kb.read\n", 2, "tools.allow", "expected a list" },
	{ "tools:\n  allow: [kb.read, \"a b\"]\n", 2, "tools.allow[1]",
	    "not a valid name" },
	{ "tools:\n  allow:\n    - kb.read\n    - [x]\n", 4, "tools.allow[1]",
	    "expected a string" },
	/* writes */
	{ "writes:\n  idempotency: agent\n", 2, "writes.idempotency",
	    "expected gateway_inject" },
	{ "writes:\n  require_approval: maybe\n", 2, "writes.require_approval",
	    "expected a boolean" },
	{ "writes:\n  require_approval: { a: 1 }\n", 2,
	    "writes.require_approval", "a boolean or a list of tool names" },
	{ "writes:\n  require_approval: [ok, \"bad name\"]\n", 2,
	    "writes.require_approval[1]", "not a valid name" },
	/* every tool name names a catalog tool */
	{ "catalog: { a: { exec: [/bin/a] } }\ntools:\n  allow: [a, ab]\n", 3,
	    "tools.allow[1]", "\"ab\" is not a tool of the catalog" },
	{ "catalog: {}\ntools:\n  allow:\n    - kb.read\n", 4,
	    "tools.allow[0]", "not a tool of the catalog" },
	{ "writes:\n  require_approval: [ticket.clsoe]\n", 2,
	    "writes.require_approval[0]", "\"ticket.clsoe\" is not a tool" },
	{ "catalog:\n  ticket.close: { exec: [/bin/t] }\n"
	    "writes:\n  require_approval:\n    - ticket.close\n"
	    "    - ticket.clsoe\n", 6, "writes.require_approval[1]",
	    "not a tool of the catalog" },
	{ "writes:\n  require_approval: []\n", 2, "writes.require_approval",
	    "an empty list; write false" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    compensate: u\n", 4,
	    "catalog.t.compensate", "\"u\" is not a tool of the catalog" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    compensate: u\n"
	  "  u: { mode: read, exec: [/bin/u] }\n", 4,
	    "catalog.t.compensate", "\"u\" is not a write tool" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    compensate: { args: {} }\n",
	  4, "catalog.t.compensate", "the map form names its tool" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    compensate: { tool: t, "
	  "x: 1 }\n", 4, "catalog.t.compensate.x", "not a key of compensate" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    compensate: { tool: t, "
	  "args: { a: \"$.\" } }\n", 4, "catalog.t.compensate.args.a",
	  "must name one top-level arg" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    compensate: { tool: t, "
	  "args: { a: \"x ${who}\" } }\n", 4, "catalog.t.compensate.args.a",
	  "unknown \"${...}\"" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    compensate: { tool: t, "
	  "args: { a: \"5$\" } }\n", 4, "catalog.t.compensate.args.a",
	  "a '$' must begin" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    entity: id\n", 4,
	    "catalog.t.entity", "expected a list" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    entity: [../x]\n", 4,
	    "catalog.t.entity[0]", "not a valid name" },
	/* agents are not operators */
	{ "principals:\n  - { uid: 0, tenant: a, env: b }\n", 2,
	    "principals[0].uid", "uid 0 is also an operator (operators.uids, "
	    "by default [0])" },
	{ "operators: { uids: [5, 1001] }\nprincipals:\n"
	    "  - { uid: 1001, tenant: a, env: b }\n", 3, "principals[0].uid",
	    "(operators.uids[1]): the agent could approve its own writes; "
	    "operators.allow_self_approval: true allows it" },
	{ "principals:\n  - { uid: 1001, tenant: a, env: b }\n"
	    "  - { gid: 2000, tenant: a, env: b }\n"
	    "operators: { gids: [2000] }\n", 3, "principals[1].gid",
	    "gid 2000 is also an operator gid (operators.gids[0])" },
	{ "principals:\n  - { gid: 0, tenant: a, env: b }\n", 2,
	    "principals[0].gid", "gid 0 is root's group" },
	{ "operators: { uids: [7], allow_self_approval: true }\n"
	    "principals:\n  - gid: 0\n    tenant: a\n    env: b\n", 3,
	    "principals[0].gid", "root's group" },
	{ "operators: { allow_self_approval: 1 }\n", 1,
	    "operators.allow_self_approval", "expected a boolean" },
	/* tools do not run as root or as an operator */
	{ "tool_user: root\n", 1, "tool_user", "user root is root" },
	{ "tool_user: \"a b\"\n", 1, "tool_user", "not a valid user name" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    user: root\n", 4,
	    "catalog.t.user", "is root" },
	/* credentials, kill switch, metrics */
	{ "credentials:\n  scope:\n    tenant: false\n", 3,
	    "credentials.scope.tenant", "only credentials scoped" },
	{ "credentials:\n  scope: { tenant: true, environment: no }\n", 2,
	    "credentials.scope.environment", "must be true" },
	{ "credentials:\n  scope: yes\n", 2, "credentials.scope",
	    "expected a mapping" },
	{ "credentials:\n  scoped: {}\n", 2, "credentials.scoped",
	    "unknown key" },
	{ "kill_switch:\n  mode_when_enabled: stop_all\n", 2,
	    "kill_switch.mode_when_enabled", "disable_writes" },
	{ "kill_switch:\n  mode: disable_writes\n", 2, "kill_switch.mode",
	    "unknown key" },
	{ "metrics:\n  listen: \"\"\n", 2, "metrics.listen", "empty" },
	{ "metrics:\n  listen: localhost\n", 2, "metrics.listen",
	    "[::1]:PORT or unix:PATH" },
	{ "metrics:\n  listen: \"0.0.0.0:9464\"\n", 2, "metrics.listen",
	    "loopback" },
	{ "metrics:\n  listen: \"localhost:9464\"\n", 2, "metrics.listen",
	    "loopback" },
	{ "metrics:\n  listen: \"[::]:9464\"\n", 2, "metrics.listen",
	    "loopback" },
	{ "metrics:\n  listen: \"127.0.0.10:9464\"\n", 2,
	    "metrics.listen", "loopback" },
	{ "metrics:\n  listen: \"127.0.0.1:99999\"\n", 2, "metrics.listen",
	    "port" },
	{ "metrics:\n  listen: \"unix:run/m.sock\"\n", 2, "metrics.listen",
	    "absolute" },
	{ "metrics:\n  port: 9464\n", 2, "metrics.port", "unknown key" },
	/* backends: exactly one per tool */
	{ "catalog:\n  t: { mode: read }\n", 2, "catalog.t.exec",
	    "exec, mcp or http" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n"
	    "    http: { url: \"http://x\" }\n", 4, "catalog.t",
	    "names two backends" },
	{ "mcp_servers:\n  m: { command: [/bin/m] }\ncatalog:\n  t:\n"
	    "    mcp: { server: m, tool: x }\n    exec: [/bin/t]\n", 5,
	    "catalog.t", "names two backends" },
	/* mcp */
	{ "catalog:\n  t: { mcp: { server: m, tool: x } }\n", 2,
	    "catalog.t.mcp.server", "\"m\" is not a server of mcp_servers" },
	{ "mcp_servers:\n  m: { command: [/bin/m] }\ncatalog:\n"
	    "  t: { mcp: { server: m } }\n", 4, "catalog.t.mcp.tool",
	    "missing" },
	{ "mcp_servers:\n  m: { command: [/bin/m] }\ncatalog:\n"
	    "  t: { mcp: { server: m, tool: \"a b\" } }\n", 4,
	    "catalog.t.mcp.tool", "not an MCP tool name" },
	{ "mcp_servers:\n  m: { command: [/bin/m] }\ncatalog:\n"
	    "  t: { mcp: { server: m, tool: x, args: 1 } }\n", 4,
	    "catalog.t.mcp.args", "unknown key" },
	{ "mcp_servers:\n  m: { scope: shared }\n", 2,
	    "mcp_servers.m.command", "missing" },
	{ "mcp_servers:\n  m: { command: [] }\n", 2,
	    "mcp_servers.m.command", "must not be empty" },
	{ "mcp_servers:\n  m: { command: [/bin/m], scope: global }\n", 2,
	    "mcp_servers.m.scope", "expected shared or tenant_env" },
	{ "mcp_servers:\n  m: { command: [/bin/m], credential_env: T }\n", 2,
	    "mcp_servers.m.credential_env", "needs scope: tenant_env" },
	{ "mcp_servers:\n  m: { command: [/bin/m], scope: tenant_env,\n"
	    "       credential_env: \"A-B\" }\n", 3,
	    "mcp_servers.m.credential_env", "not a variable name" },
	{ "mcp_servers:\n  m:\n    command: [/bin/m]\n"
	    "    env: { PATH: /tmp }\n", 4, "mcp_servers.m.env.PATH",
	    "not PATH" },
	{ "mcp_servers:\n  m: { command: [/bin/m], user: root }\n", 2,
	    "mcp_servers.m.user", "is root" },
	{ "mcp_servers:\n  m: { command: [/bin/m], max_inflight: 0 }\n", 2,
	    "mcp_servers.m.max_inflight", "out of range" },
	{ "mcp_servers:\n  \"m/x\": { command: [/bin/m] }\n", 2,
	    "mcp_servers.m/x", "not a valid name" },
	/* http */
	{ "catalog:\n  t: { http: { method: GET } }\n", 2,
	    "catalog.t.http.url", "missing" },
	{ "catalog:\n  t: { http: { url: \"ftp://h/x\" } }\n", 2,
	    "catalog.t.http.url", "https:// or http://" },
	{ "catalog:\n  t: { http: { url: \"https://\" } }\n", 2,
	    "catalog.t.http.url", "names no host" },
	{ "catalog:\n  t: { http: { url: \"https://u:p@h/x\" } }\n", 2,
	    "catalog.t.http.url", "user or password" },
	{ "catalog:\n  t: { http: { url: \"https://h/a b\" } }\n", 2,
	    "catalog.t.http.url", "no spaces" },
	{ "catalog:\n  t: { http: { url: \"https://h\", method: get } }\n",
	    2, "catalog.t.http.method", "GET, POST, PUT, PATCH or DELETE" },
	{ "catalog:\n  t:\n    http:\n      url: \"https://h\"\n"
	    "      headers: { authorization: x }\n", 5,
	    "catalog.t.http.headers.authorization", "sets this header itself" },
	{ "catalog:\n  t:\n    http:\n      url: \"https://h\"\n"
	    "      headers: { Idempotency-Key: x }\n", 5,
	    "catalog.t.http.headers.Idempotency-Key",
	    "sets this header itself" },
	{ "catalog:\n  t:\n    http:\n      url: \"https://h\"\n"
	    "      headers: { \"X: y\": x }\n", 5,
	    "catalog.t.http.headers.X: y", "not an HTTP header name" },
	{ "catalog:\n  t:\n    http:\n      url: \"https://h\"\n"
	    "      headers: { X-A: \"a\\nB: c\" }\n", 5,
	    "catalog.t.http.headers.X-A", "control character" },
	{ "catalog:\n  t:\n    http: { url: \"https://h\", ca_file: ca.pem }\n",
	    3, "catalog.t.http.ca_file", "absolute" },
	/* input_schema */
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    input_schema: [a, b]\n", 4,
	    "catalog.t.input_schema", "expected a mapping (a JSON Schema" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    input_schema: object\n", 4,
	    "catalog.t.input_schema", "expected a mapping" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    input_schema: { type: string }\n",
	    4, "catalog.t.input_schema", "type must be object" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    input_schema:\n"
	    "      properties: { a: !!int \"5\" }\n", 5, "catalog.t.input_schema",
	    "explicit YAML tags" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    input_schema:\n"
	    "      properties:\n        [a]: 1\n", 6, "catalog.t.input_schema",
	    "keys must be strings" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    input_schema:\n"
	    "      a: &x [*x]\n", 5, "catalog.t.input_schema",
	    "nested deeper than 32" },
	{ "catalog:\n  t:\n    exec: [/bin/t]\n    input_schema:\n"
	    "      minimum: 99999999999999999999\n", 5, "catalog.t.input_schema",
	    "out of range" },
};

/* The per-tenant default follows a smaller max_tools; set, it is kept. */
static void
test_tool_caps(void)
{
	struct config	*c;
	char		 path[1024], err[1024];

	c = load_text("limits: { max_tools: 4 }\n", path, sizeof(path), err,
	    sizeof(err));
	ASSERT(c != NULL);
	if (c == NULL)
		return;
	ASSERT_EQ_INT(c->max_tools, 4);
	ASSERT_EQ_INT(c->max_tools_per_tenant, 4);
	config_free(c);
	c = load_text("limits: { max_tools: 100, max_tools_per_tenant: 3 }\n",
	    path, sizeof(path), err, sizeof(err));
	ASSERT(c != NULL);
	if (c == NULL)
		return;
	ASSERT_EQ_INT(c->max_tools, 100);
	ASSERT_EQ_INT(c->max_tools_per_tenant, 3);
	config_free(c);
}

static void
test_bad_configs(void)
{
	struct config	*c;
	char		 path[1024], err[1024], want[1200];
	size_t		 i;
	int		 bad_ones = 0, verbose;

	/* TEST_VERBOSE=1 shows every message, to read them as an operator. */
	verbose = getenv("TEST_VERBOSE") != NULL;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = load_text(bad[i].yaml, path, sizeof(path), err,
		    sizeof(err));
		if (c != NULL) {
			fprintf(stderr, "case %zu: loaded:\n%s", i,
			    bad[i].yaml);
			config_free(c);
			bad_ones++;
			continue;
		}
		if (verbose)
			fprintf(stderr, "case %zu: %s\n", i, err);
		snprintf(want, sizeof(want), "%s:%d: %s: ", path, bad[i].line,
		    bad[i].key);
		if (strncmp(err, want, strlen(want)) != 0 ||
		    (bad[i].msg != NULL &&
		    strstr(err + strlen(want), bad[i].msg) == NULL)) {
			fprintf(stderr, "case %zu: want \"%s...%s\"\n"
			    "             got \"%s\"\n", i, want,
			    bad[i].msg ? bad[i].msg : "", err);
			bad_ones++;
		}
	}
	ASSERT_EQ_INT(bad_ones, 0);
}

/*
 * A config with several mistakes reports them all in one load, one line
 * each, in the order of the file, then the rules between keys; a rule
 * whose keys had a mistake of their own stays quiet.
 */
static void
test_several_errors(void)
{
	static const char text[] =
	    "user: \"a b\"\n"				/* 1 */
	    "writes:\n"					/* 2 */
	    "  enabled: maybe\n"				/* 3 */
	    "  enabeld: true\n"				/* 4 */
	    "limits: { max_tools: 4, max_tools_per_tenant: 8 }\n"	/* 5 */
	    "principals:\n"					/* 6 */
	    "  - { uid: x, tenant: a, env: b }\n"		/* 7 */
	    "runs: { max_runs: 0, max_runs_per_tenant: 5 }\n";	/* 8 */
	static const char *const want[] = {
	    "1: user: not a valid user name",
	    "3: writes.enabled: expected a boolean",
	    "4: writes.enabeld: unknown key",
	    "7: principals[0].uid: expected a decimal integer",
	    "8: runs.max_runs: 0 is out of range",
	    "5: limits.max_tools_per_tenant: 8 is more than limits.max_tools",
	};
	char		 path[1024], err[4096], line[1200], *p, *nl;
	size_t		 i;

	ASSERT(load_text(text, path, sizeof(path), err, sizeof(err)) == NULL);
	p = err;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		ASSERT(p != NULL);
		snprintf(line, sizeof(line), "%s:%s", path, want[i]);
		if (strncmp(p, line, strlen(line)) != 0)
			fprintf(stderr, "want \"%s...\"\n got \"%s\"\n", line,
			    p);
		ASSERT(strncmp(p, line, strlen(line)) == 0);
		nl = strchr(p, '\n');
		p = nl != NULL ? nl + 1 : NULL;
	}
	/* runs.max_runs_per_tenant is not held to a max_runs that is bad. */
	ASSERT(p == NULL);
}

/* Past the room of 'err', the last line counts the errors not shown. */
static void
test_errors_counted(void)
{
	char		 text[4096], path[1024], err[300], want[1200];
	size_t		 i, o = 0;
	const char	*last;

	for (i = 0; i < 40; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o,
		    "bad%zu: 1\n", i);
	ASSERT(load_text(text, path, sizeof(path), err, sizeof(err)) == NULL);
	snprintf(want, sizeof(want), "%s:1: bad0: unknown key\n", path);
	ASSERT(strncmp(err, want, strlen(want)) == 0);
	ASSERT((last = strrchr(err, '\n')) != NULL);
	snprintf(want, sizeof(want), "\n%s: ", path);
	ASSERT(strncmp(last, want, strlen(want)) == 0);
	ASSERT(strstr(last, " more errors") != NULL);
	ASSERT(strlen(err) < sizeof(err) - 1);
}

/* In a child of its own UTS namespace named 'name': store.host_id's default. */
static int
host_id_under(const char *name, char *got, size_t gotlen)
{
	struct config	*c;
	char		 path[1024], err[1024];
	int		 fds[2], status;
	ssize_t		 n;
	pid_t		 pid;

	if (pipe(fds) == -1 || (pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		close(fds[0]);
		if (unshare(CLONE_NEWUTS) == -1 ||
		    sethostname(name, strlen(name)) == -1)
			_exit(77);
		c = load_text("store: { backend: postgresql,"
		    " dsn: \"dbname=x\" }\n", path, sizeof(path), err,
		    sizeof(err));
		if (c == NULL || c->store_host_id == NULL)
			_exit(1);
		n = write(fds[1], c->store_host_id,
		    strlen(c->store_host_id));
		_exit(n == (ssize_t)strlen(c->store_host_id) ? 0 : 1);
	}
	close(fds[1]);
	n = read(fds[0], got, gotlen - 1);
	got[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	if (waitpid(pid, &status, 0) == -1 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/*
 * store.host_id defaults to the host name, whole (CONTRACT.md): cut at its
 * first dot, hosts named web-3.a and web-3.b would share one id.  Needs
 * root for a UTS namespace of its own (CI runs as root).
 */
static void
test_host_id_default(void)
{
	char	got[256];
	int	rc;

	rc = host_id_under("web-3.example", got, sizeof(got));
	if (rc == 77) {
		printf("SKIP: test_host_id_default: no UTS namespace of its"
		    " own (not root)\n");
		return;
	}
	ASSERT(rc == 0);
	ASSERT(strcmp(got, "web-3.example") == 0);
}

int
main(void)
{
	RUN(test_safe_default);
	RUN(test_full);
	RUN(test_contract_example);
	RUN(test_compensate_map);
	RUN(test_backends);
	RUN(test_input_schema);
	RUN(test_example);
	RUN(test_relative_cwd);
	RUN(test_lookups);
	RUN(test_require_approval_false);
	RUN(test_allow_without_catalog);
	RUN(test_allow_self_approval);
	RUN(test_primary_groups);
	RUN(test_file_errors);
	RUN(test_nul_byte);
	RUN(test_raw_nul);
	RUN(test_tool_caps);
	RUN(test_bad_configs);
	RUN(test_several_errors);
	RUN(test_errors_counted);
	RUN(test_host_id_default);
	return tests_failed != 0;
}
