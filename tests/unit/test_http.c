/*
 * The http backend (executor/http.c) against tests/tools/https-server, a
 * real HTTPS server with its own CA: what is sent, and how answers,
 * silences and refusals become outcomes.  The daemon-level tests are in
 * tests/regress/test_http.py.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <msgpack.h>

#include "common/config.h"
#include "common/jsonmp.h"
#include "executor/backend.h"
#include "tests/unit/test.h"

struct job {
	struct tool		 tool;
	char			*headers[2];
	char			 url[256];
	struct tool_req		 req;
	int			 called;
	struct tool_outcome	 res;
	char			*json;		/* the result as JSON text */
};

struct server {
	pid_t	 pid;
	int	 port;
	char	 dir[128];
};

static struct event_base	*base;
static struct server		 srv, other;
static char			 tmpdir[64];
static char			 creddir[128];
static int			 in_start;
static int			 sync_calls;

static void
done_cb(const struct tool_outcome *res, void *arg)
{
	struct job		*j = arg;
	msgpack_unpacked	 up;

	if (in_start)
		sync_calls++;
	j->called++;
	j->res = *res;
	j->res.result = NULL;
	if (res->status == TR_OK) {
		msgpack_unpacked_init(&up);
		if (msgpack_unpack_next(&up, res->result, res->resultlen,
		    NULL) == MSGPACK_UNPACK_SUCCESS)
			j->json = msgpack_to_json(&up.data, 0);
		msgpack_unpacked_destroy(&up);
	}
}

static void
job_init(struct job *j, const struct server *s, const char *path,
    const char *key)
{
	memset(j, 0, sizeof(*j));
	snprintf(j->url, sizeof(j->url), "https://localhost:%d%s", s->port,
	    path);
	j->tool.name = "api";
	j->tool.backend = TB_HTTP;
	j->tool.timeout_ms = 3000;
	j->tool.http.url = j->url;
	j->headers[0] = "X-Team: support";
	j->tool.http.headers = j->headers;
	j->tool.http.nheaders = 1;
	j->tool.http.ca_file = NULL;
	j->req.tool = &j->tool;
	j->req.tenant = "acme";
	j->req.env = "prod";
	j->req.run_id = "r1";
	j->req.args_hash = "abc";
	j->req.idempotency_key = key;
	j->req.input = "{\"a\":1}";
	j->req.inputlen = strlen(j->req.input);
	j->req.credentials_dir = creddir;
	j->req.max_output = 100000;
}

static char	srv_ca[256];

static void
job_run(struct job *j)
{
	if (j->tool.http.ca_file == NULL)
		j->tool.http.ca_file = srv_ca;
	in_start = 1;
	backend_http.start(&j->req, done_cb, j);
	in_start = 0;
	while (!j->called)
		event_base_loop(base, EVLOOP_ONCE);
}

static void
job_free(struct job *j)
{
	free(j->json);
	j->json = NULL;
}

/* Requests the server logged so far. */
static int
logged(const struct server *s)
{
	char	 path[PATH_MAX + 32], buf[65536];
	FILE	*f;
	int	 n = 0;

	snprintf(path, sizeof(path), "%s/requests.log", s->dir);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(buf, sizeof(buf), f) != NULL)
		n++;
	fclose(f);
	return n;
}

static void
server_start(struct server *s, const char *name)
{
	char	 line[64], exe[PATH_MAX];
	int	 p[2];
	FILE	*f;

	snprintf(s->dir, sizeof(s->dir), "%s/%s", tmpdir, name);
	snprintf(exe, sizeof(exe), "%s/tests/tools/https-server",
	    getenv("TG_SRCDIR") ? getenv("TG_SRCDIR") : ".");
	if (pipe(p) == -1)
		exit(2);
	if ((s->pid = fork()) == 0) {
		dup2(p[1], 1);
		close(p[0]);
		execl("/usr/bin/python3", "python3", exe, s->dir, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	if (f == NULL || fgets(line, sizeof(line), f) == NULL ||
	    sscanf(line, "PORT %d", &s->port) != 1) {
		fprintf(stderr, "https-server did not start\n");
		exit(2);
	}
	fclose(f);
}

static void
test_echo_headers(void)
{
	struct job	j;
	char		path[PATH_MAX + 64];
	int		fd;

	snprintf(path, sizeof(path), "%s/acme/prod/api", creddir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ASSERT(fd != -1);
	ASSERT(write(fd, "s3cret\n", 7) == 7);
	close(fd);
	job_init(&j, &srv, "/echo", "acme:api:abc");
	j.req.traceparent =
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	job_run(&j);
	unlink(path);
	ASSERT_EQ_INT(j.called, 1);
	ASSERT_EQ_INT(j.res.status, TR_OK);
	ASSERT(j.json != NULL);
	ASSERT(strstr(j.json, "\"authorization\":\"Bearer s3cret\"") != NULL);
	ASSERT(strstr(j.json, "\"idempotency-key\":\"acme:api:abc\"") != NULL);
	ASSERT(strstr(j.json, "\"x-team\":\"support\"") != NULL);
	ASSERT(strstr(j.json, "\"content-type\":\"application/json\"") !=
	    NULL);
	ASSERT(strstr(j.json, "\"traceparent\":\"00-4bf9") != NULL);
	ASSERT(strstr(j.json, "\"accept\":\"application/json\"") != NULL);
	ASSERT(strstr(j.json, "\"method\":\"POST\"") != NULL);
	ASSERT(strstr(j.json, "\"body\":\"{\\\"a\\\":1}\"") != NULL);
	job_free(&j);

	/* A read: no key; PUT as configured; the catalog's Accept. */
	job_init(&j, &srv, "/echo", NULL);
	j.tool.http.method = "PUT";
	j.headers[0] = "Accept: application/vnd.api+json";
	job_run(&j);
	ASSERT_EQ_INT(j.res.status, TR_OK);
	ASSERT(strstr(j.json, "\"accept\":\"application/vnd.api+json\"") !=
	    NULL);
	ASSERT(strstr(j.json, "idempotency-key") == NULL);
	ASSERT(strstr(j.json, "authorization") == NULL);
	ASSERT(strstr(j.json, "\"method\":\"PUT\"") != NULL);
	job_free(&j);
}

static void
test_statuses(void)
{
	struct job	j;

	job_init(&j, &srv, "/status/503?retry_after=7", NULL);
	job_run(&j);
	ASSERT_EQ_INT(j.res.status, TR_FAILED);
	ASSERT_EQ_INT(j.res.retryable, 1);
	ASSERT_EQ_INT(j.res.retry_after_ms, 7000);
	ASSERT(strstr(j.res.message, "HTTP 503") != NULL);
	/* The body, sanitized: no raw newline or control character. */
	ASSERT(strchr(j.res.message, '\n') == NULL);

	job_init(&j, &srv, "/status/429?retry_date=30", NULL);
	job_run(&j);
	ASSERT_EQ_INT(j.res.status, TR_FAILED);
	ASSERT_EQ_INT(j.res.retryable, 1);
	ASSERT(j.res.retry_after_ms >= 25000 && j.res.retry_after_ms <= 31000);

	job_init(&j, &srv, "/status/429?retry_after=999999", NULL);
	job_run(&j);
	ASSERT_EQ_INT(j.res.retry_after_ms, 3600000);

	job_init(&j, &srv, "/status/404", NULL);
	job_run(&j);
	ASSERT_EQ_INT(j.res.status, TR_FAILED);
	ASSERT_EQ_INT(j.res.retryable, 0);
	ASSERT_EQ_INT(j.res.may_have_acted, 0);
	ASSERT(strstr(j.res.message, "HTTP 404") != NULL);

	job_init(&j, &srv, "/redirect", NULL);
	job_run(&j);
	ASSERT_EQ_INT(j.res.status, TR_FAILED);
	ASSERT(strstr(j.res.message, "HTTP 302") != NULL);

	job_init(&j, &srv, "/notjson", NULL);
	job_run(&j);
	ASSERT_EQ_INT(j.res.status, TR_BAD_OUTPUT);

	job_init(&j, &srv, "/huge/200000", NULL);
	job_run(&j);
	ASSERT_EQ_INT(j.res.status, TR_BAD_OUTPUT);
	ASSERT(strstr(j.res.message, "larger") != NULL);

	job_init(&j, &srv, "/huge/100000", NULL);
	job_run(&j);
	ASSERT_EQ_INT(j.res.status, TR_OK);
	job_free(&j);
}

static void
test_unsent(void)
{
	struct job	j;
	int		before;

	/* Another CA's certificate: refused in the handshake. */
	before = logged(&other);
	job_init(&j, &other, "/echo", "acme:api:k1");
	job_run(&j);
	ASSERT_EQ_INT(j.res.status, TR_FAILED);
	ASSERT_EQ_INT(j.res.may_have_acted, 0);
	ASSERT(strstr(j.res.message, "TLS") != NULL);
	ASSERT_EQ_INT(logged(&other), before);

	/* Nobody listens: nothing was sent. */
	job_init(&j, &srv, "/echo", "acme:api:k2");
	snprintf(j.url, sizeof(j.url), "https://127.0.0.1:1/echo");
	job_run(&j);
	ASSERT_EQ_INT(j.res.status, TR_UNAVAILABLE);

	/* A catalog header the gateway owns. */
	job_init(&j, &srv, "/echo", NULL);
	j.headers[0] = "authorization: Bearer x";
	before = logged(&srv);
	job_run(&j);
	ASSERT_EQ_INT(j.res.status, TR_FAILED);
	ASSERT_EQ_INT(sync_calls, 0);
	ASSERT_EQ_INT(logged(&srv), before);
}

static void
test_no_answer(void)
{
	struct job	j;
	int		before;

	/* A write that went out and got no answer: may have acted. */
	before = logged(&srv);
	job_init(&j, &srv, "/drop", "acme:api:d1");
	job_run(&j);
	ASSERT_EQ_INT(j.res.status, TR_FAILED);
	ASSERT_EQ_INT(j.res.may_have_acted, 1);
	ASSERT_EQ_INT(logged(&srv), before + 1);

	/* idempotent_upstream: sent again with the same key. */
	before = logged(&srv);
	job_init(&j, &srv, "/drop-once/u1", "acme:api:d2");
	j.tool.http.idempotent_upstream = 1;
	job_run(&j);
	ASSERT_EQ_INT(j.res.status, TR_OK);
	ASSERT_EQ_INT(logged(&srv), before + 2);
	job_free(&j);

	/* ... for as long as timeout_ms lasts. */
	job_init(&j, &srv, "/drop", "acme:api:d3");
	j.tool.http.idempotent_upstream = 1;
	j.tool.timeout_ms = 600;
	job_run(&j);
	ASSERT_EQ_INT(j.res.status, TR_TIMEOUT);

	/* Slow: a timeout. */
	job_init(&j, &srv, "/slow/2", NULL);
	j.tool.timeout_ms = 300;
	job_run(&j);
	ASSERT_EQ_INT(j.res.status, TR_TIMEOUT);
	ASSERT(j.res.duration_ms >= 250 && j.res.duration_ms < 1500);
}

static void
test_cancel_expire(void)
{
	struct job	j, k;

	job_init(&j, &srv, "/slow/2", NULL);
	j.tool.http.ca_file = srv_ca;
	backend_http.start(&j.req, done_cb, &j);
	ASSERT_EQ_INT(backend_http.active(), 1);
	ASSERT_EQ_INT(backend_http.cancel(&j), 1);
	ASSERT_EQ_INT(j.called, 0);
	while (!j.called)
		event_base_loop(base, EVLOOP_ONCE);
	ASSERT_EQ_INT(j.res.status, TR_CANCELLED);
	ASSERT_EQ_INT(backend_http.active(), 0);

	job_init(&k, &srv, "/slow/2", "acme:api:e1");
	k.tool.http.ca_file = srv_ca;
	backend_http.start(&k.req, done_cb, &k);
	ASSERT_EQ_INT(backend_http.expire(), 1);
	while (!k.called)
		event_base_loop(base, EVLOOP_ONCE);
	ASSERT_EQ_INT(k.res.status, TR_TIMEOUT);
	/* Nothing starts after the deadline. */
	job_init(&k, &srv, "/echo", NULL);
	job_run(&k);
	ASSERT_EQ_INT(k.res.status, TR_FAILED);
}

static struct tool	 http_tool;
static struct config	 http_conf;

int
main(void)
{
	char	path[PATH_MAX + 64];

	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_http.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 2;
	snprintf(creddir, sizeof(creddir), "%s/creds", tmpdir);
	mkdir(creddir, 0700);
	snprintf(path, sizeof(path), "%s/acme", creddir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/acme/prod", creddir);
	mkdir(path, 0700);
	server_start(&srv, "srv");
	server_start(&other, "other");
	snprintf(srv_ca, sizeof(srv_ca), "%s/ca.pem", srv.dir);
	base = event_base_new();
	/* A config with an http tool: the connection cache is kept. */
	http_tool.backend = TB_HTTP;
	http_conf.catalog = &http_tool;
	http_conf.ncatalog = 1;
	http_conf.max_tools = 64;
	backend_http.init(base, &http_conf);

	RUN(test_echo_headers);
	RUN(test_statuses);
	RUN(test_unsent);
	RUN(test_no_answer);
	RUN(test_cancel_expire);

	backend_http.shutdown();
	event_base_free(base);
	kill(srv.pid, SIGTERM);
	kill(other.pid, SIGTERM);
	waitpid(srv.pid, NULL, 0);
	waitpid(other.pid, NULL, 0);
	snprintf(path, sizeof(path), "rm -rf '%s'", tmpdir);
	if (system(path) != 0)
		return 2;
	return tests_failed ? 1 : 0;
}
