/*
 * toolrun: run the small programs in tests/tools/ through the exec backend
 * and check what they were given and what came back.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <msgpack.h>

#include "common/config.h"
#include "executor/toolrun.h"
#include "tests/unit/test.h"

#define MIB		(1024 * 1024)
#define NCONCURRENT	20
#define NLEAK		50

/* One run: the request, the tool it names, and what came back. */
struct job {
	struct tool		 tool;
	char			*argv[2];
	char			 path[PATH_MAX + 64];
	struct tool_req	 req;

	int			 called;
	enum tool_status	 status;
	char			 message[512];
	int			 wstatus;
	uint64_t		 duration_ms;
	char			*result;
	size_t			 resultlen;
	msgpack_unpacked	 up;
};

static struct event_base	*base;
static char			 tooldir[PATH_MAX];
static char			 creddir[PATH_MAX];
static int			 pending;	/* callbacks still to come */
static int			 in_start;	/* inside toolrun_start() */
static int			 sync_calls;	/* callbacks from inside it */

static void
done_cb(const struct tool_outcome *res, void *arg)
{
	struct job	*j = arg;

	if (in_start)
		sync_calls++;
	j->called++;
	j->status = res->status;
	snprintf(j->message, sizeof(j->message), "%s", res->message);
	j->wstatus = res->wstatus;
	j->duration_ms = res->duration_ms;
	if (res->status == TR_OK) {
		j->result = malloc(res->resultlen);
		memcpy(j->result, res->result, res->resultlen);
		j->resultlen = res->resultlen;
	}
	if (--pending == 0)
		event_base_loopbreak(base);
}

/*
 * A job for the program tests/tools/PROG (or PROG, when absolute), with
 * the catalog name NAME and the defaults of a read.
 */
static void
job_init(struct job *j, const char *name, const char *prog, const char *input)
{
	memset(j, 0, sizeof(*j));
	if (prog[0] == '/')
		snprintf(j->path, sizeof(j->path), "%s", prog);
	else
		snprintf(j->path, sizeof(j->path), "%s/%s", tooldir, prog);
	j->argv[0] = j->path;
	j->argv[1] = NULL;
	j->tool.name = (char *)name;
	j->tool.mode = TOOL_READ;
	j->tool.argv = j->argv;
	j->tool.argc = 1;
	j->tool.timeout_ms = 10000;

	j->req.tool = &j->tool;
	j->req.tenant = "acme";
	j->req.env = "prod";
	j->req.run_id = "run-1";
	j->req.step_id = NULL;
	j->req.args_hash = "abc123";
	j->req.idempotency_key = NULL;
	j->req.input = input;
	j->req.inputlen = strlen(input);
	j->req.credentials_dir = creddir;
	j->req.max_output = MIB;
	msgpack_unpacked_init(&j->up);
}

static void
job_free(struct job *j)
{
	msgpack_unpacked_destroy(&j->up);
	free(j->result);
	j->result = NULL;
}

static void
job_start(struct job *j)
{
	pending++;
	in_start = 1;
	toolrun_start(&j->req, done_cb, j);
	in_start = 0;
}

/*
 * Orphans of the tools' process groups come to us (we are a subreaper,
 * see main()): reap them, but only when no tool is running, so that no
 * child of toolrun is taken from it.
 */
static void
reap_orphans(void)
{
	if (toolrun_active() != 0)
		return;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static void
watchdog_cb(int fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	fprintf(stderr, "watchdog: %d callbacks missing\n", pending);
	event_base_loopbreak(base);
}

/* Run the loop until every started job has called back; 0 when they did. */
static int
wait_all(void)
{
	struct event	*wd;
	struct timeval	 tv = { 60, 0 };

	wd = evtimer_new(base, watchdog_cb, NULL);
	evtimer_add(wd, &tv);
	if (pending > 0)
		event_base_dispatch(base);
	event_free(wd);
	reap_orphans();
	return pending == 0 ? 0 : -1;
}

/* Start one job, check that it did not call back yet, and wait for it. */
static int
run(struct job *j)
{
	job_start(j);
	if (j->called != 0)
		return -1;
	if (wait_all() == -1 || j->called != 1)
		return -1;
	if (j->status == TR_OK && msgpack_unpack_next(&j->up, j->result,
	    j->resultlen, NULL) != MSGPACK_UNPACK_SUCCESS)
		return -1;
	return 0;
}

static const msgpack_object *
map_get(const msgpack_object *m, const char *key)
{
	uint32_t	i;

	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (i = 0; i < m->via.map.size; i++) {
		const msgpack_object	*k = &m->via.map.ptr[i].key;

		if (k->type == MSGPACK_OBJECT_STR &&
		    k->via.str.size == strlen(key) &&
		    memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

static int
obj_streq(const msgpack_object *o, const char *s)
{
	return o != NULL && o->type == MSGPACK_OBJECT_STR &&
	    o->via.str.size == strlen(s) &&
	    memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static int
obj_int(const msgpack_object *o, int64_t *v)
{
	if (o == NULL)
		return -1;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		*v = (int64_t)o->via.u64;
	else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		*v = o->via.i64;
	else
		return -1;
	return 0;
}

/* The map 'env' holds exactly the NULL-terminated list of "KEY=VALUE". */
static int
env_is(const msgpack_object *env, const char *const want[])
{
	char	 key[128];
	size_t	 n;

	if (env == NULL || env->type != MSGPACK_OBJECT_MAP)
		return 0;
	for (n = 0; want[n] != NULL; n++) {
		const char	*eq = strchr(want[n], '=');

		snprintf(key, sizeof(key), "%.*s", (int)(eq - want[n]),
		    want[n]);
		if (!obj_streq(map_get(env, key), eq + 1)) {
			fprintf(stderr, "env: %s missing or wrong\n", key);
			return 0;
		}
	}
	if (env->via.map.size != n)
		fprintf(stderr, "env: %u keys, want %zu\n",
		    (unsigned)env->via.map.size, n);
	return env->via.map.size == n;
}

/* The array 'fds' is exactly 0 .. last. */
static int
fds_are(const msgpack_object *fds, int last)
{
	int64_t	v;
	int	i;

	if (fds == NULL || fds->type != MSGPACK_OBJECT_ARRAY ||
	    fds->via.array.size != (uint32_t)last + 1)
		return 0;
	for (i = 0; i <= last; i++)
		if (obj_int(&fds->via.array.ptr[i], &v) == -1 || v != i)
			return 0;
	return 1;
}

static int
count_fds(void)
{
	DIR	*d;
	int	 n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static uint64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
test_ok_result(void)
{
	struct job		 j;
	const char		*in = "{\"a\":1,\"b\":[true,null,\"x\"]}";
	const msgpack_object	*args, *b;
	int64_t			 v;

	job_init(&j, "echo", "echo-args", in);
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_OK);
	ASSERT_EQ_INT(j.wstatus, 0);
	ASSERT(j.duration_ms < 10000);
	args = map_get(&j.up.data, "args");
	ASSERT(args != NULL);
	ASSERT_EQ_INT(args->type, MSGPACK_OBJECT_MAP);
	ASSERT_EQ_INT(args->via.map.size, 2);
	ASSERT_EQ_INT(obj_int(map_get(args, "a"), &v), 0);
	ASSERT_EQ_INT(v, 1);
	b = map_get(args, "b");
	ASSERT(b != NULL);
	ASSERT_EQ_INT(b->type, MSGPACK_OBJECT_ARRAY);
	ASSERT_EQ_INT(b->via.array.size, 3);
	ASSERT_EQ_INT(b->via.array.ptr[0].type, MSGPACK_OBJECT_BOOLEAN);
	ASSERT(b->via.array.ptr[0].via.boolean);
	ASSERT_EQ_INT(b->via.array.ptr[1].type, MSGPACK_OBJECT_NIL);
	ASSERT(obj_streq(&b->via.array.ptr[2], "x"));
	/* Exactly the canonical JSON and one newline. */
	ASSERT(obj_streq(map_get(&j.up.data, "stdin"),
	    "{\"a\":1,\"b\":[true,null,\"x\"]}\n"));
	job_free(&j);
}

static void
test_env_read(void)
{
	struct job		 j;
	const msgpack_object	*o;
	int64_t			 pid, pgid;
	const char *const	 want[] = {
		"TOOLGATE_TOOL=kb.read",
		"TOOLGATE_TENANT=acme",
		"TOOLGATE_ENV=prod",
		"TOOLGATE_RUN_ID=run-1",
		"TOOLGATE_STEP_ID=",
		"TOOLGATE_ARGS_HASH=abc123",
		"PATH=/usr/local/bin:/usr/bin:/bin",
		NULL
	};

	job_init(&j, "kb.read", "env-dump", "{}");
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_OK);
	ASSERT(env_is(map_get(&j.up.data, "env"), want));
	o = map_get(&j.up.data, "credential");
	ASSERT(o != NULL);
	ASSERT_EQ_INT(o->type, MSGPACK_OBJECT_NIL);
	ASSERT(fds_are(map_get(&j.up.data, "fds"), 2));
	ASSERT(obj_streq(map_get(&j.up.data, "cwd"), "/"));
	ASSERT_EQ_INT(obj_int(map_get(&j.up.data, "pid"), &pid), 0);
	ASSERT_EQ_INT(obj_int(map_get(&j.up.data, "pgid"), &pgid), 0);
	ASSERT_EQ_INT(pid, pgid);
	job_free(&j);
}

static void
test_env_write_credential(void)
{
	struct job		 j;
	const char *const	 want[] = {
		"TOOLGATE_TOOL=echo",
		"TOOLGATE_TENANT=acme",
		"TOOLGATE_ENV=prod",
		"TOOLGATE_RUN_ID=run-2",
		"TOOLGATE_STEP_ID=step-7",
		"TOOLGATE_ARGS_HASH=abc123",
		"TOOLGATE_IDEMPOTENCY_KEY=idem-1",
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"TOOLGATE_CREDENTIAL_FD=3",
		NULL
	};

	/* CREDS/acme/prod/echo exists (main() made it). */
	job_init(&j, "echo", "env-dump", "{}");
	j.tool.mode = TOOL_WRITE;
	j.req.run_id = "run-2";
	j.req.step_id = "step-7";
	j.req.idempotency_key = "idem-1";
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_OK);
	ASSERT(env_is(map_get(&j.up.data, "env"), want));
	ASSERT(obj_streq(map_get(&j.up.data, "credential"), "s3cret\n"));
	ASSERT(fds_are(map_get(&j.up.data, "fds"), 3));
	job_free(&j);
}

static void
test_credential_other_tenant(void)
{
	struct job		 j;
	const msgpack_object	*o;

	/* The same tool for another tenant has no credential. */
	job_init(&j, "echo", "env-dump", "{}");
	j.req.tenant = "globex";
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_OK);
	o = map_get(&j.up.data, "credential");
	ASSERT(o != NULL);
	ASSERT_EQ_INT(o->type, MSGPACK_OBJECT_NIL);
	ASSERT(map_get(map_get(&j.up.data, "env"),
	    "TOOLGATE_CREDENTIAL_FD") == NULL);
	ASSERT(fds_are(map_get(&j.up.data, "fds"), 2));
	job_free(&j);
}

/* Anything but a missing or a regular file fails closed. */
static void
test_credential_fail_closed(void)
{
	struct job	j;
	const char	*names[] = { "link", "dir" };
	size_t		 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		job_init(&j, names[i], "env-dump", "{}");
		ASSERT_EQ_INT(run(&j), 0);
		ASSERT_EQ_INT(j.status, TR_FAILED);
		ASSERT_EQ_INT(j.wstatus, -1);
		ASSERT_EQ_STR(j.message, "cannot open the tool's credential");
		job_free(&j);
	}

	job_init(&j, "echo", "env-dump", "{}");
	j.req.tenant = "..";
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_FAILED);
	ASSERT_EQ_INT(j.wstatus, -1);
	job_free(&j);
}

/* The SigIgn mask (hex) without glibc's internal signals 32 and 33. */
static unsigned long long
ignored_besides_glibc(const msgpack_object *o)
{
	char	buf[32];

	if (o == NULL || o->type != MSGPACK_OBJECT_STR ||
	    o->via.str.size >= sizeof(buf))
		return ~0ULL;
	memcpy(buf, o->via.str.ptr, o->via.str.size);
	buf[o->via.str.size] = '\0';
	return strtoull(buf, NULL, 16) & ~(3ULL << 31);
}

static void
test_signals_reset(void)
{
	struct job	j;
	sigset_t	set, old;
	int		r;

	/* Ours: SIGPIPE ignored (main()), and SIGUSR1 blocked here. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, &old);
	job_init(&j, "sig", "sig-dump", "{}");
	r = run(&j);
	sigprocmask(SIG_SETMASK, &old, NULL);
	ASSERT_EQ_INT(r, 0);
	ASSERT_EQ_INT(j.status, TR_OK);
	ASSERT(obj_streq(map_get(&j.up.data, "blocked"), "0000000000000000"));
	/*
	 * Signals 32 and 33 are glibc's own (cancellation, setxid): its
	 * sigaction() refuses them, so a child cannot reset them, and make
	 * starts its children with them ignored.  Every other one must be
	 * default.
	 */
	ASSERT_EQ_INT(ignored_besides_glibc(map_get(&j.up.data, "ignored")), 0);
	job_free(&j);
}

static void
test_fail_stderr(void)
{
	struct job	j;

	job_init(&j, "fail", "fail", "{}");
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_FAILED);
	ASSERT(WIFEXITED(j.wstatus));
	ASSERT_EQ_INT(WEXITSTATUS(j.wstatus), 3);
	/* The last non-empty line, made printable. */
	ASSERT_EQ_STR(j.message, "second\\x09line");
	job_free(&j);

	/* Longer than message[] (and than the tail of stderr we keep). */
	job_init(&j, "fail", "fail-long", "{}");
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_FAILED);
	ASSERT(strlen(j.message) > 400 && strlen(j.message) < 512);
	ASSERT(strncmp(j.message, "xxxxxxxx", 8) == 0);
	ASSERT_EQ_STR(j.message + strlen(j.message) - 3, "...");
	job_free(&j);
}

static void
test_fail_quiet(void)
{
	struct job	j;

	job_init(&j, "quiet", "exit-quiet", "{}");
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_FAILED);
	ASSERT_EQ_STR(j.message, "exit status 4");
	job_free(&j);

	job_init(&j, "killed", "killed", "{}");
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_FAILED);
	ASSERT(WIFSIGNALED(j.wstatus));
	ASSERT_EQ_INT(WTERMSIG(j.wstatus), SIGTERM);
	ASSERT_EQ_STR(j.message, "killed by signal 15");
	job_free(&j);
}

static void
test_timeout(void)
{
	struct job	 j;
	char		 runid[64], pidfile[128];
	FILE		*f;
	int		 pgid = 0, i;

	snprintf(runid, sizeof(runid), "timeout-%d", (int)getpid());
	snprintf(pidfile, sizeof(pidfile), "/tmp/toolrun-test-%s.pid", runid);
	unlink(pidfile);
	job_init(&j, "sleep", "sleep", "{}");
	j.req.run_id = runid;
	j.tool.timeout_ms = 300;
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_TIMEOUT);
	ASSERT_EQ_STR(j.message, "tool timed out after 300 ms");
	ASSERT(j.duration_ms >= 300 && j.duration_ms < 5000);
	ASSERT(WIFSIGNALED(j.wstatus));
	ASSERT_EQ_INT(WTERMSIG(j.wstatus), SIGKILL);

	ASSERT((f = fopen(pidfile, "r")) != NULL);
	ASSERT_EQ_INT(fscanf(f, "%d", &pgid), 1);
	fclose(f);
	unlink(pidfile);
	ASSERT(pgid > 1);
	/* The background sleep was killed too: reap it, then nobody is left. */
	for (i = 0; i < 200; i++) {
		while (waitpid(-pgid, NULL, WNOHANG) > 0)
			;
		if (kill(-pgid, 0) == -1 && errno == ESRCH)
			break;
		usleep(10000);
	}
	ASSERT_EQ_INT(kill(-pgid, 0), -1);
	ASSERT_EQ_INT(errno, ESRCH);
	job_free(&j);
}

/*
 * A cancelled run: its group is killed at once, the callback comes once,
 * from the loop, with TR_CANCELLED; one that never started ends so too.
 */
static void
test_cancel(void)
{
	struct job	 j;
	char		 runid[64], pidfile[128];
	FILE		*f;
	int		 pgid = 0, i;

	snprintf(runid, sizeof(runid), "cancel-%d", (int)getpid());
	snprintf(pidfile, sizeof(pidfile), "/tmp/toolrun-test-%s.pid", runid);
	unlink(pidfile);
	job_init(&j, "sleep", "sleep", "{}");
	j.req.run_id = runid;
	j.tool.timeout_ms = 60000;
	job_start(&j);
	for (i = 0; i < 1000 && access(pidfile, R_OK) == -1; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(10000);
	}
	ASSERT((f = fopen(pidfile, "r")) != NULL);
	ASSERT_EQ_INT(fscanf(f, "%d", &pgid), 1);
	fclose(f);
	unlink(pidfile);
	ASSERT(pgid > 1);
	ASSERT_EQ_INT(toolrun_cancel(&j), 1);
	ASSERT_EQ_INT(toolrun_cancel(&j), 0);
	ASSERT_EQ_INT(j.called, 0);
	ASSERT_EQ_INT(wait_all(), 0);
	ASSERT_EQ_INT(j.called, 1);
	ASSERT_EQ_INT(j.status, TR_CANCELLED);
	ASSERT_EQ_STR(j.message, "cancelled");
	ASSERT(j.duration_ms < 30000);
	ASSERT(WIFSIGNALED(j.wstatus));
	ASSERT_EQ_INT(WTERMSIG(j.wstatus), SIGKILL);
	ASSERT_EQ_INT(toolrun_cancel(&j), 0);
	for (i = 0; i < 200; i++) {
		while (waitpid(-pgid, NULL, WNOHANG) > 0)
			;
		if (kill(-pgid, 0) == -1 && errno == ESRCH)
			break;
		usleep(10000);
	}
	ASSERT_EQ_INT(kill(-pgid, 0), -1);
	ASSERT_EQ_INT(errno, ESRCH);
	job_free(&j);

	job_init(&j, "nope", "/nonexistent/toolrun-test", "{}");
	job_start(&j);
	ASSERT_EQ_INT(toolrun_cancel(&j), 1);
	ASSERT_EQ_INT(wait_all(), 0);
	ASSERT_EQ_INT(j.called, 1);
	ASSERT_EQ_INT(j.status, TR_CANCELLED);
	job_free(&j);
}

static void
test_bad_output(void)
{
	struct job	j;
	const char	*progs[] = { "not-json", "two-values" };
	size_t		 i;

	for (i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		job_init(&j, progs[i], progs[i], "{}");
		ASSERT_EQ_INT(run(&j), 0);
		ASSERT_EQ_INT(j.status, TR_BAD_OUTPUT);
		ASSERT(strncmp(j.message, "tool output is not one JSON value: ",
		    35) == 0);
		job_free(&j);
	}
}

static void
test_big_output(void)
{
	struct job	j;

	job_init(&j, "big", "big-output", "{}");
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_BAD_OUTPUT);
	ASSERT_EQ_STR(j.message, "output larger than 1048576 bytes");
	/* Killed at once, not at the timeout. */
	ASSERT(j.duration_ms < 5000);
	ASSERT(WIFSIGNALED(j.wstatus));
	ASSERT_EQ_INT(WTERMSIG(j.wstatus), SIGKILL);
	job_free(&j);
}

/* "{"ok": true}\n" is 13 bytes: 13 is allowed, 12 is not. */
static void
test_output_limit_exact(void)
{
	struct job	j;

	job_init(&j, "ok", "ok", "{}");
	j.req.max_output = 13;
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_OK);
	ASSERT(map_get(&j.up.data, "ok") != NULL);
	job_free(&j);

	job_init(&j, "ok", "ok", "{}");
	j.req.max_output = 12;
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_BAD_OUTPUT);
	ASSERT_EQ_STR(j.message, "output larger than 12 bytes");
	job_free(&j);
}

static void
test_cannot_execute(void)
{
	struct job	j;
	char		path[PATH_MAX + 64];

	job_init(&j, "nope", "/nonexistent/toolrun-test", "{}");
	job_start(&j);
	ASSERT_EQ_INT(j.called, 0);
	ASSERT_EQ_INT(wait_all(), 0);
	ASSERT_EQ_INT(j.called, 1);
	ASSERT_EQ_INT(j.status, TR_FAILED);
	ASSERT_EQ_INT(j.wstatus, -1);
	ASSERT_EQ_STR(j.message, "cannot execute /nonexistent/toolrun-test: "
	    "No such file or directory");
	job_free(&j);

	/* Not executable. */
	snprintf(path, sizeof(path), "%s/../unit/test.h", tooldir);
	job_init(&j, "nox", path, "{}");
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_FAILED);
	ASSERT(strstr(j.message, "cannot execute ") == j.message);
	ASSERT(strstr(j.message, ": Permission denied") != NULL);
	job_free(&j);
}

/*
 * With stdin closed, the first pipe lands on fd 0: the child must still
 * give the tool its stdin (dup2(0, 0) would leave it close-on-exec).
 */
static void
test_low_fds(void)
{
	struct job	j;
	int		r;

	close(0);
	job_init(&j, "low", "echo-args", "[1]");
	r = run(&j);
	if (open("/dev/null", O_RDONLY) != 0)
		abort();
	ASSERT_EQ_INT(r, 0);
	ASSERT_EQ_INT(j.status, TR_OK);
	ASSERT(obj_streq(map_get(&j.up.data, "stdin"), "[1]\n"));
	job_free(&j);

	/* Now the credential is opened on fd 0. */
	close(0);
	job_init(&j, "echo", "env-dump", "{}");
	r = run(&j);
	if (open("/dev/null", O_RDONLY) != 0)
		abort();
	ASSERT_EQ_INT(r, 0);
	ASSERT_EQ_INT(j.status, TR_OK);
	ASSERT(obj_streq(map_get(&j.up.data, "credential"), "s3cret\n"));
	ASSERT(fds_are(map_get(&j.up.data, "fds"), 3));
	job_free(&j);
}

static void
test_fork_stray(void)
{
	struct job		 j;
	const msgpack_object	*o;
	uint64_t		 t0;

	t0 = now_ms();
	job_init(&j, "stray", "fork-stray", "{}");
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT(now_ms() - t0 < 5000);
	ASSERT_EQ_INT(j.status, TR_OK);
	o = &j.up.data;
	ASSERT_EQ_INT(o->type, MSGPACK_OBJECT_MAP);
	ASSERT_EQ_INT(o->via.map.size, 0);
	job_free(&j);
}

static void
test_huge_stdin(void)
{
	struct job	 j;
	char		*in;
	size_t		 len = 4 * MIB;
	int64_t		 v;

	/* A JSON string of 4 MiB, quotes included. */
	in = malloc(len + 1);
	memset(in, 'a', len);
	in[0] = in[len - 1] = '"';
	in[len] = '\0';

	job_init(&j, "count", "count-stdin", in);
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_OK);
	ASSERT_EQ_INT(obj_int(&j.up.data, &v), 0);
	ASSERT_EQ_INT(v, (int64_t)len + 1);
	job_free(&j);

	/* A tool that does not read it: EPIPE is not an error. */
	job_init(&j, "ok", "ok", in);
	ASSERT_EQ_INT(run(&j), 0);
	ASSERT_EQ_INT(j.status, TR_OK);
	job_free(&j);
	free(in);
}

static void
test_concurrent(void)
{
	struct job	*jobs;
	char		 inputs[NCONCURRENT][32];
	int64_t		 v;
	int		 i;

	jobs = calloc(NCONCURRENT, sizeof(*jobs));
	for (i = 0; i < NCONCURRENT; i++) {
		snprintf(inputs[i], sizeof(inputs[i]), "{\"n\":%d}", i);
		job_init(&jobs[i], "echo", "echo-args", inputs[i]);
		job_start(&jobs[i]);
	}
	ASSERT_EQ_INT(toolrun_active(), NCONCURRENT);
	ASSERT_EQ_INT(wait_all(), 0);
	ASSERT_EQ_INT(toolrun_active(), 0);
	for (i = 0; i < NCONCURRENT; i++) {
		ASSERT_EQ_INT(jobs[i].called, 1);
		ASSERT_EQ_INT(jobs[i].status, TR_OK);
		ASSERT(msgpack_unpack_next(&jobs[i].up, jobs[i].result,
		    jobs[i].resultlen, NULL) == MSGPACK_UNPACK_SUCCESS);
		ASSERT(obj_int(map_get(map_get(&jobs[i].up.data, "args"), "n"),
		    &v) == 0 && v == i);
		job_free(&jobs[i]);
	}
	free(jobs);
}

/* Every way a run can end, many times over: no descriptor stays open. */
static void
test_no_fd_leak(void)
{
	struct job	*jobs;
	const char	*progs[] = { "ok", "fail", "not-json", "/nonexistent",
			    "env-dump" };
	const char	*names[] = { "ok", "fail", "not-json", "nope", "echo" };
	int		 before, i;

	before = count_fds();
	ASSERT(before > 0);
	jobs = calloc(NLEAK, sizeof(*jobs));
	for (i = 0; i < NLEAK; i++) {
		job_init(&jobs[i], names[i % 5], progs[i % 5], "{}");
		if (i % 10 == 9)
			jobs[i].req.max_output = 2;
		job_start(&jobs[i]);
		/* In batches of 10, to keep well under RLIMIT_NOFILE. */
		if (i % 10 == 9)
			ASSERT_EQ_INT(wait_all(), 0);
	}
	for (i = 0; i < NLEAK; i++) {
		ASSERT_EQ_INT(jobs[i].called, 1);
		job_free(&jobs[i]);
	}
	free(jobs);
	ASSERT_EQ_INT(count_fds(), before);
}

static void
test_never_synchronous(void)
{
	ASSERT_EQ_INT(sync_calls, 0);
	ASSERT_EQ_INT(toolrun_active(), 0);
}

/* CREDS/acme/prod/{echo, link -> echo, dir/} */
static int
make_creds(void)
{
	char	path[PATH_MAX + 64], dir[PATH_MAX + 32];
	int	fd;

	snprintf(creddir, sizeof(creddir), "/tmp/toolrun-test-creds.XXXXXX");
	if (mkdtemp(creddir) == NULL)
		return -1;
	snprintf(dir, sizeof(dir), "%s/acme", creddir);
	if (mkdir(dir, 0700) == -1)
		return -1;
	snprintf(dir, sizeof(dir), "%s/acme/prod", creddir);
	if (mkdir(dir, 0700) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/echo", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) == -1)
		return -1;
	if (write(fd, "s3cret\n", 7) != 7)
		return -1;
	close(fd);
	snprintf(path, sizeof(path), "%s/link", dir);
	if (symlink("echo", path) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/dir", dir);
	if (mkdir(path, 0700) == -1)
		return -1;
	return 0;
}

static void
remove_creds(void)
{
	char	path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/acme/prod/echo", creddir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/acme/prod/link", creddir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/acme/prod/dir", creddir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/acme/prod", creddir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/acme", creddir);
	rmdir(path);
	rmdir(creddir);
}

/*
 * Descriptors that are not close-on-exec, on 3 and far above: the tools
 * must not see them (env-dump lists what it has).
 */
static int
leave_fds_open(void)
{
	int	fd;

	if ((fd = open("/dev/null", O_RDONLY)) == -1)
		return -1;
	if ((fd != 3 && dup2(fd, 3) == -1) || dup2(fd, 100) == -1)
		return -1;
	if (fd != 3)
		close(fd);
	return 0;
}

int
main(void)
{
	/* As in the executor. */
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Orphaned members of a tool's process group come to us instead of
	 * to init, so the timeout test can reap them and see the group gone
	 * (init in a container may never reap them).
	 */
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	if (realpath("tests/tools", tooldir) == NULL) {
		perror("tests/tools");
		return 1;
	}
	if (leave_fds_open() == -1) {
		perror("/dev/null");
		return 1;
	}
	if (make_creds() == -1) {
		perror("credentials");
		return 1;
	}
	if ((base = event_base_new()) == NULL)
		return 1;
	toolrun_init(base, NULL);

	RUN(test_ok_result);
	RUN(test_env_read);
	RUN(test_env_write_credential);
	RUN(test_credential_other_tenant);
	RUN(test_credential_fail_closed);
	RUN(test_signals_reset);
	RUN(test_fail_stderr);
	RUN(test_fail_quiet);
	RUN(test_timeout);
	RUN(test_cancel);
	RUN(test_bad_output);
	RUN(test_big_output);
	RUN(test_output_limit_exact);
	RUN(test_cannot_execute);
	RUN(test_low_fds);
	RUN(test_fork_stray);
	RUN(test_huge_stdin);
	RUN(test_concurrent);
	RUN(test_no_fd_leak);
	RUN(test_never_synchronous);

	remove_creds();
	return tests_failed != 0;
}
