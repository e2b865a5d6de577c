/*
 * libFuzzer target for config_load() (common/config.c): the input is the
 * text of a config file.  It is written to one temporary file, made once
 * per process in its own temporary directory (relative exec paths are
 * taken from the config's directory) and rewritten for every input.
 * Properties, each an abort() when broken:
 *
 *  - config_load() never crashes, and returns either a config or NULL
 *    with a message naming the file ("FILE:LINE: KEY: ..." or
 *    "FILE: ...");
 *  - a config it returns keeps the rules config.h and proto/CONFIG.md
 *    state: paths absolute; every principal has exactly one of uid/gid,
 *    neither (uid_t)-1, and a tenant and env; every catalog tool has a
 *    name found again by policy_tool(), a mode, an argv of at least one
 *    element ending in NULL whose argv[0] is absolute, and a timeout in
 *    1..3600000 ms, and a user, if any, that is a valid user name, as is
 *    the top-level user; read_write only with writes.enabled; map_size at
 *    most max_map_size;
 *  - config_free() frees it all (LeakSanitizer would say otherwise).
 */

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/policy.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	dir[64], path[128];

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_config: %s\n", what);
	abort();
}

static void
cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/fuzz_config.XXXXXX");
	if (mkdtemp(dir) == NULL)
		fail("mkdtemp");
	snprintf(path, sizeof(path), "%s/toolgate.yaml", dir);
	atexit(cleanup);
	return 0;
}

/* 1..32 of letters, digits, '.', '_', '-'; not starting with '-'. */
static int
user_ok(const char *s)
{
	size_t	 n = strlen(s);

	return n >= 1 && n <= 32 && s[0] != '-' &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") == n;
}

static void
check_config(const struct config *c)
{
	const struct principal	*p;
	const struct tool	*t;
	size_t			 i;

	if (c->file == NULL || strcmp(c->file, path) != 0)
		fail("the config does not name its file");
	if (c->agent_socket == NULL || c->agent_socket[0] != '/' ||
	    c->control_socket == NULL || c->control_socket[0] != '/' ||
	    c->state_dir == NULL || c->state_dir[0] != '/' ||
	    c->credentials_dir == NULL || c->credentials_dir[0] != '/')
		fail("a path is not absolute");
	if (c->user == NULL || !user_ok(c->user))
		fail("no user, or not a valid user name");
	for (i = 0; i < c->nprincipals; i++) {
		p = &c->principals[i];
		if (!!p->has_uid + !!p->has_gid != 1)
			fail("a principal without exactly one of uid, gid");
		if ((p->has_uid && p->uid == (uid_t)-1) ||
		    (p->has_gid && p->gid == (gid_t)-1))
			fail("a principal with id -1");
		if (p->tenant == NULL || p->env == NULL)
			fail("a principal without tenant or env");
	}
	for (i = 0; i < c->nop_uids; i++)
		if (c->op_uids[i] == (uid_t)-1)
			fail("an operator uid -1");
	for (i = 0; i < c->nop_gids; i++)
		if (c->op_gids[i] == (gid_t)-1)
			fail("an operator gid -1");
	for (i = 0; i < c->ncatalog; i++) {
		t = &c->catalog[i];
		if (t->name == NULL || policy_tool(c, t->name) != t)
			fail("a tool not found by its name");
		if (t->mode != TOOL_READ && t->mode != TOOL_WRITE)
			fail("a tool without a mode");
		if (t->argv == NULL || t->argc < 1 || t->argv[t->argc] != NULL ||
		    t->argv[0] == NULL || t->argv[0][0] != '/')
			fail("a tool's argv is not absolute and NULL-ended");
		if (t->timeout_ms < 1 || t->timeout_ms > 3600000)
			fail("a tool's timeout is out of range");
		if (policy_tool_mode(c, t->name) != t->mode)
			fail("policy_tool_mode disagrees");
		if (t->user != NULL && !user_ok(t->user))
			fail("a tool's user is not a valid user name");
	}
	for (i = 0; i < c->nallow; i++)
		if (c->allow[i] == NULL || !policy_allowed(c, c->allow[i]))
			fail("an allowed tool is not allowed");
	for (i = 0; i < c->napproval_tools; i++)
		if (!policy_needs_approval(c, c->approval_tools[i]))
			fail("a tool listed for approval does not need it");
	if (c->read_write && !c->writes_enabled)
		fail("read_write without writes.enabled");
	if (c->map_size > c->max_map_size)
		fail("map_size over max_map_size");
	if (c->approvals_ttl_s < 1 || c->max_frame < 1 || c->max_output < 1)
		fail("a limit of 0");
}

/* Every line of a refusal names the file: "FILE:LINE: ..." or "FILE: ...". */
static void
check_lines(const char *err)
{
	const char	*line = err, *nl;

	do {
		if (strncmp(line, path, strlen(path)) != 0 ||
		    line[strlen(path)] != ':') {
			fprintf(stderr, "error: %s\n", err);
			fail("refused with a line not naming the file");
		}
		if ((nl = strchr(line, '\n')) != NULL)
			line = nl + 1;
	} while (nl != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	*c;
	char		 err[1024];
	int		 fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1)
		fail("cannot open the temporary file");
	if (size > 0 && write(fd, data, size) != (ssize_t)size)
		fail("cannot write the temporary file");
	close(fd);

	memset(err, 'x', sizeof(err));
	if ((c = config_load(path, err, sizeof(err))) == NULL) {
		if (memchr(err, '\0', sizeof(err)) == NULL) {
			fprintf(stderr, "error: %.*s\n", (int)sizeof(err), err);
			fail("refused without a message");
		}
		check_lines(err);
		return 0;
	}
	check_config(c);
	config_free(c);
	return 0;
}
