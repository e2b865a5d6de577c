/*
 * bench: how fast the gateway answers, next to baselines measured in the
 * same run on the same machine, so the ratios mean something on a noisy
 * host.  Started by bench/run, which brings the daemon pair and the Python
 * sidecar up.
 *
 *   bench [-m] [-H HTTP_PID] [-g GATEWAYD_PID] [-p PY_SOCKET -P PY_PID]
 *	[-q PG_AGENT_SOCKET -G PG_GATEWAYD_PID -O POSTMASTER_PID]
 *	AGENT_SOCKET SCRATCH_DIR
 *
 * Baselines: a raw Unix-socket echo of a frame of the same size (a child
 * process, a thread per connection), the Python asyncio sidecar
 * (bench/pysidecar.py: the seed's checks for a denied call), and raw LMDB
 * commits with the same durability as the ledger (default sync, one small
 * record a commit).  The deny scenario runs against the echo, gatewayd
 * and the sidecar in interleaved rounds.  Next to every scenario: the CPU
 * time each process spent on it per request, from the per-thread
 * nanosecond counters of /proc/PID/task/TID/schedstat, and this program's
 * own (the clients', from getrusage): on a small machine they share the
 * cores with what they measure.
 *
 * With -m, the gateway's catalog has mcp.read and mcp.write, tools of the
 * trivial MCP server bench/mcp-server.c that the executor runs, and the
 * mcp write rows are followed by the ledger alone (its two commits per
 * write in this process, against the same raw LMDB commits): what of the
 * write's cost is the store's and what the rest of the path's; with -H,
 * http.read, a POST to the trivial HTTP server bench/http-server.c (its
 * pid, for its CPU time).  bench/run passes them when this build's
 * gatewayd took a config with those backends.
 *
 * With -q, -G and -O, a second pair with store.backend: postgresql
 * (its agent socket, its gatewayd, the cluster's postmaster) and
 * BENCH_PG_DSN in the environment, the cluster bench/run started:
 * the postgresql rows (pg_section).  Without them the section says it
 * was skipped, and why (BENCH_PG_SKIP from bench/run).
 *
 * Environment: BENCH_N (scale, default 2000), BENCH_ROUNDS (deny rounds,
 * default 3), BENCH_STRACE=1 (count gatewayd's and the executor's system
 * calls per deny, and per mcp write with -m, with strace -c, and per pg
 * mcp write and pg replay with the postgresql pair; slow, so apart from
 * the timed runs), BENCH_ONLY=mcp_write (raw LMDB commits and the mcp
 * write rows only), BENCH_ONLY=mcp_read (only the echo, measured once
 * at 1 and 32 clients as the base, and the mcp read rows: quick
 * before/after comparisons of that path), BENCH_ONLY=pg (only the
 * postgresql rows), BENCH_ONLY=deny (only the deny section and its
 * targets).
 *
 * The audit log is always on: every denial gatewayd makes is reported to
 * the executor and written (batched, a loop turn's in one write).  The
 * deny section counts the records it added to SCRATCH_DIR/state/audit.log
 * (and its rotated files), so its ratios are said with auditing on.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <lmdb.h>
#include <msgpack.h>

#include "executor/ledger.h"
#include "executor/store.h"

#define MAX_CLIENTS	32
#define MAX_TASKS	256	/* threads of one measured process */
#define MAX_ROUNDS	9

/* What a scenario talks to. */
enum target { T_ECHO, T_GATEWAY, T_PYTHON, N_TARGETS };
static const char *target_names[N_TARGETS] = { "echo", "gatewayd", "python" };

/* The processes whose CPU time is counted; P_TOOLS is the executor's
 * reaped children, the tools (clock ticks only: coarse); P_MCP the MCP
 * server the executor keeps running, P_HTTP the HTTP server; P_CLIENTS
 * this program, its client threads (getrusage: they have ended when it
 * is read), which share the machine's cores with the rest. */
enum proc { P_ECHO, P_GATEWAYD, P_EXECUTOR, P_PYTHON, P_TOOLS, P_MCP, P_HTTP,
	P_POSTGRES, P_CLIENTS, N_PROCS };
static const char *proc_names[N_PROCS] = {
	"echo", "gatewayd", "executor", "python", "tools", "mcp server",
	"http server", "postgres", "clients"
};
static pid_t		 procs[N_PROCS];	/* 0: not measured */

static const char	*target_paths[N_TARGETS];
static char		 echo_path[108];	/* sun_path's size */
static volatile int	 run_seq;	/* makes keys distinct across passes */
static int		 nrounds = 3;
static int		 with_mcp, with_http;	/* -m, -H */

static uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static void
die(const char *what)
{
	fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int
dial(const char *path)
{
	struct sockaddr_un	sun;
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		die(path);
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		die(path);
	return fd;
}

static void
xfer(int fd, void *buf, size_t len, int rd)
{
	char	*p = buf;
	ssize_t	 n;

	while (len > 0) {
		n = rd ? read(fd, p, len) : write(fd, p, len);
		if (n <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			die(rd ? "read" : "write");
		}
		p += n;
		len -= (size_t)n;
	}
}

/* One request frame out, one answer frame back; returns the answer size. */
static size_t
roundtrip(int fd, const char *req, size_t len, char *ans, size_t anscap)
{
	unsigned char	hdr[4];
	uint32_t	n;

	xfer(fd, (void *)req, len, 0);
	xfer(fd, hdr, 4, 1);
	n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | hdr[3];
	if (n > anscap) {
		errno = EMSGSIZE;
		die("answer");
	}
	xfer(fd, ans, n, 1);
	return n;
}

/* The frame for one call; 'kind' picks the scenario. */
enum kind { K_DENY, K_READ, K_WRITE, K_REPLAY, K_MCP_READ, K_MCP_WRITE,
	K_HTTP_READ, K_MCP_ONCE, K_MCP_REPLAY, N_KINDS };

/* Each kind's tool (bench/run's catalog), and whether its args are unique. */
static const struct {
	const char	*tool;
	int		 unique;
} kinds[N_KINDS] = {
	[K_DENY] =	{ "nope", 0 },
	[K_READ] =	{ "read", 0 },
	[K_WRITE] =	{ "write", 1 },
	[K_REPLAY] =	{ "write", 0 },
	[K_MCP_READ] =	{ "mcp.read", 0 },
	[K_MCP_WRITE] =	{ "mcp.write", 1 },
	[K_HTTP_READ] =	{ "http.read", 0 },
	[K_MCP_ONCE] =	{ "mcp.write", 0 },	/* what K_MCP_REPLAY replays */
	[K_MCP_REPLAY] = { "mcp.write", 0 },
};

static size_t
make_request(char *buf, size_t cap, enum kind k, int client, int i)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
	char		run[64];
	size_t		len;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	msgpack_pack_str_with_body(&pk, "id", 2);
	msgpack_pack_int(&pk, i);
	msgpack_pack_str_with_body(&pk, "op", 2);
	msgpack_pack_str_with_body(&pk, "call", 4);
	msgpack_pack_str_with_body(&pk, "run_id", 6);
	/*
	 * Writes and replays come from a fresh run each time: no budget or
	 * duplicate stop.
	 */
	len = (size_t)snprintf(run, sizeof(run), "bench-%d-%d-%d", run_seq,
	    client, k == K_REPLAY || k == K_MCP_ONCE || k == K_MCP_REPLAY ||
	    kinds[k].unique ? i : 0);
	msgpack_pack_str_with_body(&pk, run, len);
	msgpack_pack_str_with_body(&pk, "tool", 4);
	msgpack_pack_str_with_body(&pk, kinds[k].tool, strlen(kinds[k].tool));
	msgpack_pack_str_with_body(&pk, "args", 4);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "n", 1);
	/* Distinct writes need distinct args; replays all share one. */
	msgpack_pack_int64(&pk, kinds[k].unique ? ((int64_t)run_seq << 40) |
	    ((int64_t)client << 24) | i : 0);
	if (sb.size + 4 > cap) {
		errno = EMSGSIZE;
		die("request");
	}
	buf[0] = (char)(sb.size >> 24);
	buf[1] = (char)(sb.size >> 16);
	buf[2] = (char)(sb.size >> 8);
	buf[3] = (char)sb.size;
	memcpy(buf + 4, sb.data, sb.size);
	len = sb.size + 4;
	msgpack_sbuffer_destroy(&sb);
	return len;
}

/* The raw baseline: echo every frame back. */
static void *
echo_conn(void *arg)
{
	int		fd = (int)(intptr_t)arg;
	unsigned char	hdr[4];
	char		buf[65536];
	uint32_t	n;
	ssize_t		r;

	for (;;) {
		if ((r = read(fd, hdr, 4)) != 4)
			break;
		n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
		    (uint32_t)hdr[2] << 8 | hdr[3];
		if (n > sizeof(buf))
			break;
		xfer(fd, buf, n, 1);
		xfer(fd, hdr, 4, 0);
		xfer(fd, buf, n, 0);
	}
	close(fd);
	return NULL;
}

static void
echo_serve(int lfd)
{
	pthread_t	t;
	int		fd;

	while ((fd = accept(lfd, NULL, NULL)) != -1) {
		pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
	_exit(1);
}

/*
 * The echo is a process of its own, forked before any thread, so that its
 * CPU time is counted as the daemons' is and apart from the clients'.
 */
static void
start_echo(const char *scratch)
{
	struct sockaddr_un	sun;
	pid_t			pid;
	int			fd;

	/* In the scratch dir, which bench/run removes, however we end. */
	if ((size_t)snprintf(echo_path, sizeof(echo_path), "%s/echo.sock",
	    scratch) >= sizeof(echo_path)) {
		errno = ENAMETOOLONG;
		die(scratch);
	}
	unlink(echo_path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, echo_path, strlen(echo_path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, 64) == -1)
		die("echo socket");
	if ((pid = fork()) == -1)
		die("fork");
	if (pid == 0) {
		/* Gone with us, however we end. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		echo_serve(fd);
	}
	close(fd);
	procs[P_ECHO] = pid;
	target_paths[T_ECHO] = echo_path;
}

static void
stop_echo(void)
{
	kill(procs[P_ECHO], SIGTERM);
	waitpid(procs[P_ECHO], NULL, 0);
	unlink(echo_path);
}

/* CPU time: nanoseconds per live thread, counted per thread id. */

struct tasks {
	int		n;
	pid_t		tid[MAX_TASKS];
	uint64_t	ns[MAX_TASKS];
};

struct cpusnap {
	struct tasks	t[N_PROCS];
	uint64_t	tools_ns;
	uint64_t	self_ns;
};

/* Fields 'first' and 'first + 1' of a /proc stat line, 1-based, summed. */
static uint64_t
stat_pair(const char *path, int first)
{
	unsigned long long	 a, b;
	char			 line[1024], *p;
	FILE			*f;
	int			 i;

	if ((f = fopen(path, "r")) == NULL)
		return 0;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	/* After the command name, which may hold spaces: field 3 on. */
	if (p == NULL || (p = strrchr(line, ')')) == NULL)
		return 0;
	for (i = 2; i < first && p != NULL; i++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %llu %llu", &a, &b) != 2)
		return 0;
	return (uint64_t)(a + b);
}

static uint64_t
ticks_ns(uint64_t ticks)
{
	static long	hz;

	if (hz == 0 && (hz = sysconf(_SC_CLK_TCK)) <= 0)
		hz = 100;
	return ticks * (1000000000 / (uint64_t)hz);
}

static uint64_t
task_ns(pid_t pid, pid_t tid)
{
	unsigned long long	 ns;
	char			 path[64];
	FILE			*f;
	int			 ok;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid,
	    (int)tid);
	if ((f = fopen(path, "r")) != NULL) {
		ok = fscanf(f, "%llu", &ns) == 1;
		fclose(f);
		if (ok)
			return (uint64_t)ns;
	}
	/* No schedstat in this kernel: utime + stime, in clock ticks. */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid,
	    (int)tid);
	return ticks_ns(stat_pair(path, 14));
}

static void
snap_tasks(pid_t pid, struct tasks *t)
{
	struct dirent	*de;
	char		 path[64];
	DIR		*d;

	t->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (pid == 0 || (d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL && t->n < MAX_TASKS) {
		if (de->d_name[0] == '.')
			continue;
		t->tid[t->n] = (pid_t)atoi(de->d_name);
		t->ns[t->n] = task_ns(pid, t->tid[t->n]);
		t->n++;
	}
	closedir(d);
}

/*
 * PostgreSQL's processes: the postmaster and its children (the backends
 * of every connection, the WAL writer, the checkpointer, ...), one
 * thread each.
 */
static void
snap_cluster(pid_t postmaster, struct tasks *t)
{
	struct dirent	*de;
	char		 path[300], line[512], *p;
	DIR		*d;
	FILE		*f;
	int		 ppid;

	t->n = 0;
	if (postmaster == 0 || (d = opendir("/proc")) == NULL)
		return;
	t->tid[t->n] = postmaster;
	t->ns[t->n++] = task_ns(postmaster, postmaster);
	while ((de = readdir(d)) != NULL && t->n < MAX_TASKS) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		p = fgets(line, sizeof(line), f);
		fclose(f);
		if (p == NULL || (p = strrchr(line, ')')) == NULL ||
		    sscanf(p + 1, " %*c %d", &ppid) != 1 ||
		    ppid != (int)postmaster)
			continue;
		t->tid[t->n] = (pid_t)atoi(de->d_name);
		t->ns[t->n] = task_ns(t->tid[t->n], t->tid[t->n]);
		t->n++;
	}
	closedir(d);
}

static void
snap_all(struct cpusnap *s)
{
	struct rusage	ru;
	char		path[64];
	int		i;

	for (i = 0; i < N_PROCS; i++)
		if (i == P_POSTGRES)
			snap_cluster(procs[i], &s->t[i]);
		else
			snap_tasks(i == P_TOOLS || i == P_CLIENTS ? 0 :
			    procs[i], &s->t[i]);
	getrusage(RUSAGE_SELF, &ru);
	s->self_ns = ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)
	    ru.ru_stime.tv_sec) * 1000000000 + ((uint64_t)ru.ru_utime.tv_usec +
	    (uint64_t)ru.ru_stime.tv_usec) * 1000;
	s->tools_ns = 0;
	if (procs[P_EXECUTOR] != 0) {
		snprintf(path, sizeof(path), "/proc/%d/stat",
		    (int)procs[P_EXECUTOR]);
		s->tools_ns = ticks_ns(stat_pair(path, 16));	/* cutime, cstime */
	}
}

/*
 * CPU time between two snapshots.  Threads born in between count from
 * zero; threads that ended in between are lost, which is why the clients
 * keep their connections (and the echo its threads) until 'b' is taken.
 */
static uint64_t
snap_delta(const struct cpusnap *a, const struct cpusnap *b, enum proc p)
{
	const struct tasks	*ta = &a->t[p], *tb = &b->t[p];
	uint64_t		 sum = 0, was;
	int			 i, j;

	if (p == P_TOOLS)
		return b->tools_ns - a->tools_ns;
	if (p == P_CLIENTS)
		return b->self_ns - a->self_ns;
	for (i = 0; i < tb->n; i++) {
		was = 0;
		for (j = 0; j < ta->n; j++)
			if (ta->tid[j] == tb->tid[i])
				was = ta->ns[j];
		if (tb->ns[i] > was)
			sum += tb->ns[i] - was;
	}
	return sum;
}

/* Clients. */

struct worker {
	pthread_t	 t;
	enum target	 target;
	enum kind	 kind;
	int		 client;
	int		 n;
	int		 fd;	/* left open: see snap_delta */
	uint64_t	*lat;	/* n latencies, nanoseconds */
	int		 bad;
};

static void *
worker_run(void *arg)
{
	struct worker	*w = arg;
	char		 req[512], ans[65536];
	size_t		 len, n;
	uint64_t	 t0;
	int		 i;

	w->fd = dial(target_paths[w->target]);
	for (i = 0; i < w->n; i++) {
		len = make_request(req, sizeof(req), w->kind, w->client, i);
		t0 = now_ns();
		n = roundtrip(w->fd, req, len, ans, sizeof(ans));
		w->lat[i] = now_ns() - t0;
		/* Every gate's answer must be what the scenario expects. */
		if (w->target != T_ECHO && memmem(ans, 64, w->kind == K_DENY ?
		    "denied" : "\xa2ok", w->kind == K_DENY ? 6 : 3) == NULL)
			w->bad++;
		/* A replay that ran the tool again would be no replay. */
		else if (w->kind == K_MCP_REPLAY && memmem(ans, n,
		    "\xa8replayed\xc3", 10) == NULL)
			w->bad++;
	}
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct result {
	double		rate;		/* requests per second, all clients */
	uint64_t	p50, p99;	/* nanoseconds */
	uint64_t	requests;
	uint64_t	cpu[N_PROCS];	/* nanoseconds, all requests */
};

/* Run the clients, all at once; fills the latencies, returns the time. */
static uint64_t
run_clients(struct worker *w, enum target tg, enum kind k, int clients,
    int per_client, uint64_t *lat)
{
	uint64_t	t0;
	int		i, bad = 0;

	t0 = now_ns();
	for (i = 0; i < clients; i++) {
		w[i].target = tg;
		w[i].kind = k;
		w[i].client = i;
		w[i].n = per_client;
		w[i].lat = lat + (size_t)i * per_client;
		w[i].bad = 0;
		pthread_create(&w[i].t, NULL, worker_run, &w[i]);
	}
	for (i = 0; i < clients; i++) {
		pthread_join(w[i].t, NULL);
		bad += w[i].bad;
	}
	t0 = now_ns() - t0;
	if (bad) {
		fprintf(stderr, "bench: %s: %d answers were not as expected\n",
		    target_names[tg], bad);
		exit(1);
	}
	return t0;
}

/*
 * The result of n requests in el ns, their latencies in lat (sorted and
 * freed here), the CPU between the two snapshots.
 */
static struct result
result_of(uint64_t *lat, size_t n, uint64_t el, const struct cpusnap *before,
    const struct cpusnap *after)
{
	struct result	r;
	int		i;

	qsort(lat, n, sizeof(*lat), cmp_u64);
	memset(&r, 0, sizeof(r));
	r.rate = (double)n * 1e9 / (double)(el ? el : 1);
	r.p50 = lat[n / 2];
	r.p99 = lat[n * 99 / 100];
	r.requests = n;
	for (i = 0; i < N_PROCS; i++)
		r.cpu[i] = snap_delta(before, after, (enum proc)i);
	free(lat);
	return r;
}

static struct result
measure(enum target tg, enum kind k, int clients, int per_client)
{
	static struct cpusnap	 before, after;
	struct worker		 w[MAX_CLIENTS];
	uint64_t		*lat, el;
	size_t			 n;
	int			 i;

	if (per_client < 1)
		per_client = 1;
	n = (size_t)clients * (size_t)per_client;
	run_seq++;
	if ((lat = calloc(n, sizeof(*lat))) == NULL)
		die("calloc");
	snap_all(&before);
	el = run_clients(w, tg, k, clients, per_client, lat);
	snap_all(&after);
	for (i = 0; i < clients; i++)
		close(w[i].fd);
	return result_of(lat, n, el, &before, &after);
}

/* Rounds of one thing: the median round by rate, CPU over all rounds. */
static struct result
combine(struct result *rs, int n)
{
	struct result	r;
	int		i, j, below;

	r = rs[0];
	for (i = 0; i < n; i++) {
		for (below = 0, j = 0; j < n; j++)
			below += rs[j].rate < rs[i].rate;
		if (below == n / 2)
			r = rs[i];
	}
	r.requests = 0;
	memset(r.cpu, 0, sizeof(r.cpu));
	for (i = 0; i < n; i++) {
		r.requests += rs[i].requests;
		for (j = 0; j < N_PROCS; j++)
			r.cpu[j] += rs[i].cpu[j];
	}
	return r;
}

/* Printing. */

/* Whose CPU time a row shows, up to N_PROCS. */
static const enum proc	target_procs[N_TARGETS][5] = {
	[T_ECHO] =	{ P_ECHO, P_CLIENTS, N_PROCS },
	[T_GATEWAY] =	{ P_GATEWAYD, P_EXECUTOR, P_TOOLS, P_CLIENTS, N_PROCS },
	[T_PYTHON] =	{ P_PYTHON, P_CLIENTS, N_PROCS },
};
static const enum proc	mcp_procs[] = { P_GATEWAYD, P_EXECUTOR, P_MCP,
	P_CLIENTS, N_PROCS };
static const enum proc	http_procs[] = { P_GATEWAYD, P_EXECUTOR, P_HTTP,
	P_CLIENTS, N_PROCS };
static const enum proc	pg_procs[] = { P_GATEWAYD, P_EXECUTOR, P_MCP,
	P_POSTGRES, P_CLIENTS, N_PROCS };
static const enum proc	pgraw_procs[] = { P_POSTGRES, P_CLIENTS, N_PROCS };

static void
print_header(void)
{
	printf("%-24s %8s %9s %9s   %s\n", "", "rate/s", "p50 us", "p99 us",
	    "CPU us per request");
}

static void
print_row(const char *name, int clients, const struct result *r,
    const enum proc *list, const char *extra)
{
	const enum proc	*p;
	double		 us;

	printf("%-13s %2d client%s %8.0f %9.1f %9.1f  ", name, clients,
	    clients == 1 ? " " : "s", r->rate, (double)r->p50 / 1e3,
	    (double)r->p99 / 1e3);
	for (p = list; *p != N_PROCS; p++) {
		us = (double)r->cpu[*p] / 1e3 / (double)r->requests;
		/* The tools' time comes in clock ticks: no decimals. */
		if (*p == P_TOOLS && r->cpu[*p] != 0)
			printf(", tools ~%.0f", us);
		else if (*p != P_TOOLS && procs[*p] == 0)
			printf("%s %s -", p == list ? "" : ",", proc_names[*p]);
		else if (*p != P_TOOLS)
			printf("%s %s %.1f", p == list ? "" : ",",
			    proc_names[*p], us);
	}
	printf("%s%s\n", extra ? "; " : "", extra ? extra : "");
}

static double
ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

/* The deny scenario. */

/* Rounds of every target in turn, the first one rotating: none is always
 * first after an idle pause or last behind the others' leftovers. */
static void
deny_rounds(struct result out[N_TARGETS], int clients, int per_client)
{
	static struct result	rs[N_TARGETS][MAX_ROUNDS];
	int			r, i, tg;

	for (r = 0; r < nrounds; r++)
		for (i = 0; i < N_TARGETS; i++) {
			tg = (r + i) % N_TARGETS;
			if (target_paths[tg] != NULL)
				rs[tg][r] = measure((enum target)tg, K_DENY,
				    clients, per_client);
		}
	for (tg = 0; tg < N_TARGETS; tg++)
		if (target_paths[tg] != NULL)
			out[tg] = combine(rs[tg], nrounds);
}

static void
deny_print(struct result res[N_TARGETS], int clients)
{
	const struct result	*g = &res[T_GATEWAY], *e = &res[T_ECHO];
	const struct result	*py = &res[T_PYTHON];
	int			 tg;

	for (tg = 0; tg < N_TARGETS; tg++)
		if (target_paths[tg] != NULL)
			print_row(target_names[tg], clients, &res[tg],
			    target_procs[tg], NULL);
	printf("  gatewayd/echo rate %.2fx, p50 %.2fx", ratio(g->rate,
	    e->rate), ratio((double)g->p50, (double)e->p50));
	if (target_paths[T_PYTHON] != NULL)
		printf("; gatewayd/python rate %.2fx, p50 %.2fx",
		    ratio(g->rate, py->rate), ratio((double)g->p50,
		    (double)py->p50));
	printf("\n");
}

/* Lines of the audit log and its rotated files under scratch/state. */
static uint64_t
audit_lines(const char *scratch)
{
	char		path[4200], buf[65536];
	uint64_t	lines = 0;
	ssize_t		got, i;
	int		fd, k;

	for (k = 0; k < 1000; k++) {
		if (k == 0)
			snprintf(path, sizeof(path), "%s/state/audit.log",
			    scratch);
		else
			snprintf(path, sizeof(path), "%s/state/audit.log.%d",
			    scratch, k);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			break;
		while ((got = read(fd, buf, sizeof(buf))) > 0)
			for (i = 0; i < got; i++)
				lines += buf[i] == '\n';
		close(fd);
	}
	return lines;
}

static uint64_t	deny_records, deny_requests;

static void
deny_section(struct result res[2][N_TARGETS], int n, const char *scratch)
{
	uint64_t	before = audit_lines(scratch);

	if (target_paths[T_PYTHON] != NULL)
		printf("\ndeny: a call to a tool not on the allowlist; the echo,"
		    " gatewayd and the\nPython sidecar (bench/pysidecar.py)");
	else
		printf("\ndeny: a call to a tool not on the allowlist; the echo"
		    " and gatewayd");
	printf(" in %d interleaved rounds (the\nmedian round by rate shown,"
	    " the CPU time of all)\n", nrounds);
	print_header();
	deny_rounds(res[0], 1, n * 2);
	deny_print(res[0], 1);
	deny_rounds(res[1], MAX_CLIENTS, n / 4);
	deny_print(res[1], MAX_CLIENTS);
	/* gatewayd's reports are written a loop turn after the answers. */
	usleep(300000);
	deny_records = audit_lines(scratch) - before;
	deny_requests = (uint64_t)nrounds * ((uint64_t)n * 2 +
	    (uint64_t)MAX_CLIENTS * (uint64_t)(n / 4));
	printf("  audit log on: %llu records written during the rounds, for"
	    " %llu denials by gatewayd (signed heads included)\n",
	    (unsigned long long)deny_records,
	    (unsigned long long)deny_requests);
}

static void
target_line(const char *what, double got, const char *cmp, double want)
{
	int	met = cmp[0] == '>' ? got >= want : got <= want;

	printf("  %-37s %5.2fx (target %s %.1fx): %s\n", what, got, cmp, want,
	    met ? "met" : "not met");
}

/* Issue 9's hot-path targets, said, never enforced: speed is measured. */
static void
targets_print(struct result res[2][N_TARGETS])
{
	printf("\nissue 9 targets, informational (not a test: a busy machine"
	    " moves them); the deny rows with the audit log on (%llu records"
	    " for %llu denials)\n", (unsigned long long)deny_records,
	    (unsigned long long)deny_requests);
	target_line("deny, 32 clients, rate vs echo:", ratio(
	    res[1][T_GATEWAY].rate, res[1][T_ECHO].rate), ">=", 0.6);
	if (target_paths[T_PYTHON] != NULL)
		target_line("deny, 32 clients, rate vs python:", ratio(
		    res[1][T_GATEWAY].rate, res[1][T_PYTHON].rate), ">=", 1.5);
	else
		printf("  deny, 32 clients, rate vs python: no python sidecar"
		    " in this run\n");
	target_line("deny, 1 client, p50 vs echo:", ratio(
	    (double)res[0][T_GATEWAY].p50, (double)res[0][T_ECHO].p50), "<=",
	    1.3);
}

/* The other scenarios, against gatewayd alone. */

static void
read_section(struct result echo[2], int n)
{
	struct result	r;
	char		extra[64];

	printf("\nread: an allowed read tool (/bin/echo {}), against the echo"
	    " rate above\n");
	print_header();
	r = measure(T_GATEWAY, K_READ, 1, n / 4);
	snprintf(extra, sizeof(extra), "rate %.3fx echo", ratio(r.rate,
	    echo[0].rate));
	print_row("read", 1, &r, target_procs[T_GATEWAY], extra);
	r = measure(T_GATEWAY, K_READ, MAX_CLIENTS, n / 32);
	snprintf(extra, sizeof(extra), "rate %.3fx echo", ratio(r.rate,
	    echo[1].rate));
	print_row("read", MAX_CLIENTS, &r, target_procs[T_GATEWAY], extra);
}

/* Raw LMDB: one small put per commit, default (synchronous) durability. */
static double
lmdb_commits(const char *dir, int n)
{
	MDB_env		*env;
	MDB_txn		*txn;
	MDB_dbi		 dbi;
	MDB_val		 k, v;
	char		 key[64], val[128];
	uint64_t	 t0;
	int		 i;

	mkdir(dir, 0700);
	if (mdb_env_create(&env) || mdb_env_set_mapsize(env, 64 << 20) ||
	    mdb_env_open(env, dir, MDB_NOTLS, 0600))
		die("lmdb");
	memset(val, 'v', sizeof(val));
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		k.mv_size = (size_t)snprintf(key, sizeof(key), "acme:bench:%d",
		    i);
		k.mv_data = key;
		v.mv_size = sizeof(val);
		v.mv_data = val;
		if (mdb_txn_begin(env, NULL, 0, &txn) ||
		    mdb_dbi_open(txn, NULL, 0, &dbi) ||
		    mdb_put(txn, dbi, &k, &v, 0) || mdb_txn_commit(txn))
			die("lmdb commit");
	}
	t0 = now_ns() - t0;
	mdb_env_close(env);
	return (double)n * 1e9 / (double)(t0 ? t0 : 1);
}

/*
 * The ledger alone: a write's two commits as the executor makes them
 * (executor/ledger.c on executor/store.c: the intent with its run record
 * and the expiry entry of a new run, the outcome with its own), in this
 * process, without gatewayd, the executor's loop, the audit log or a
 * tool.  Its rate over raw LMDB commits is what the store allows the
 * durable write (at most 0.5: two commits); the mcp write's is that less
 * what the rest costs.  The store persists across rounds, as the
 * executor's does across the bench.
 */
struct ledger_write {
	struct store		*st;
	char			key[128];
	char			run[64];
	struct ledger_rec	rec;
};

static int
ledger_intent(struct store_txn *txn, void *arg)
{
	struct ledger_write	*lw = arg;
	struct ledger_rec	 found;
	int			 rc, off;

	if ((rc = store_writes_off_txn(txn, lw->st, &off)) != 0 ||
	    (rc = ledger_get(txn, lw->key, &found)) != 0)
		return rc;
	ledger_rec_free(&found);
	if ((rc = ledger_run_add(txn, "bench", lw->run, lw->key, 0, 0,
	    lw->rec.started_ms, lw->rec.started_ms)) != 0)
		return rc;
	return ledger_put(txn, lw->key, &lw->rec);
}

static int
ledger_outcome(struct store_txn *txn, void *arg)
{
	struct ledger_write	*lw = arg;

	return ledger_put(txn, lw->key, &lw->rec);
}

/* n writes of unique keys, each in a run of its own; writes/s. */
static double
ledger_writes(const char *dir, int first, int n, uint64_t *cpu_ns)
{
	struct ledger_write	 lw;
	struct store		*st;
	struct rusage		 ru0, ru1;
	char			 err[256], resp[96];
	uint64_t		 t0;
	int			 i;

	if ((st = store_open(dir, 64 << 20, 1 << 30, err, sizeof(err))) == NULL)
		die(err);
	memset(resp, 'r', sizeof(resp));
	getrusage(RUSAGE_SELF, &ru0);
	t0 = now_ns();
	for (i = first; i < first + n; i++) {
		memset(&lw, 0, sizeof(lw));
		lw.st = st;
		/* TENANT:TOOL:ARGS_HASH, the hash spread as sha256's is. */
		snprintf(lw.key, sizeof(lw.key), "bench:mcp.write:%016llx"
		    "%016llx%016llx%016llx",
		    (unsigned long long)i * 0x9e3779b97f4a7c15ULL,
		    (unsigned long long)i * 0xc2b2ae3d27d4eb4fULL,
		    (unsigned long long)i, (unsigned long long)~i);
		snprintf(lw.run, sizeof(lw.run), "bench-ledger-%d", i);
		lw.rec.state = L_RUNNING;
		lw.rec.tenant = "bench";
		lw.rec.env = "prod";
		lw.rec.tool = "mcp.write";
		lw.rec.run_id = lw.run;
		lw.rec.args_hash = lw.key + 16;
		lw.rec.uid = 1000;
		lw.rec.started_ms = store_clock_ms(st);
		if (store_write(st, ledger_intent, &lw) != 0)
			die("ledger intent");
		lw.rec.state = L_DONE;
		lw.rec.finished_ms = lw.rec.started_ms + 1;
		lw.rec.finished_clock = store_clock_ms(st);
		lw.rec.response = resp;
		lw.rec.responselen = sizeof(resp);
		if (store_write_reserve(st, ledger_outcome, &lw) != 0)
			die("ledger outcome");
	}
	t0 = now_ns() - t0;
	getrusage(RUSAGE_SELF, &ru1);
	*cpu_ns = ((uint64_t)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec +
	    ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1000000 +
	    (uint64_t)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec +
	    ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec)) * 1000;
	store_close(st);
	return (double)n * 1e9 / (double)(t0 ? t0 : 1);
}

/*
 * The ledger alone against raw LMDB commits, in interleaved rounds as
 * scenario_vs_lmdb; a row with the median round's ratio.
 */
static void
ledger_vs_lmdb(const char *dir, int nwrites, int ncommits)
{
	double		ratios[MAX_ROUNDS] = { 0 }, rates[MAX_ROUNDS] = { 0 }, t;
	char		rdir[1024], sdir[1024];
	uint64_t	cpu, cpu_total = 0;
	int		i, j, per = nwrites / nrounds, nc = ncommits / nrounds;

	if (per < 1)
		per = 1;
	if (nc < 16)
		nc = 16;
	snprintf(sdir, sizeof(sdir), "%s-ledger", dir);
	for (i = 0; i < nrounds; i++) {
		snprintf(rdir, sizeof(rdir), "%s-l%d", dir, i);
		t = lmdb_commits(rdir, nc);
		rates[i] = ledger_writes(sdir, i * per, per, &cpu);
		cpu_total += cpu;
		ratios[i] = ratio(rates[i], t);
	}
	for (i = 1; i < nrounds; i++)
		for (j = i; j > 0 && ratios[j] < ratios[j - 1]; j--) {
			t = ratios[j]; ratios[j] = ratios[j - 1]; ratios[j - 1] = t;
			t = rates[j]; rates[j] = rates[j - 1]; rates[j - 1] = t;
		}
	printf("%-13s %2d client  %8.0f %9s %9s   this process %.1f; rate "
	    "%.3fx LMDB (rounds %.2f-%.2f)\n", "ledger alone", 1,
	    rates[nrounds / 2], "-", "-",
	    (double)cpu_total / 1e3 / (double)(per * nrounds),
	    ratios[nrounds / 2], ratios[0], ratios[nrounds - 1]);
}

static void
write_section(const char *scratch, int n)
{
	struct result	r;
	char		dir[512], extra[64];
	double		commits;

	snprintf(dir, sizeof(dir), "%s/lmdb-baseline", scratch);
	commits = lmdb_commits(dir, n / 4);
	printf("\nwrite: an allowed write tool (/bin/echo {}), against raw LMDB"
	    " commits\n(one record each, synchronous: %.0f/s)\n", commits);
	print_header();
	r = measure(T_GATEWAY, K_WRITE, 1, n / 8);
	snprintf(extra, sizeof(extra), "rate %.2fx LMDB", ratio(r.rate, commits));
	print_row("durable write", 1, &r, target_procs[T_GATEWAY], extra);
	r = measure(T_GATEWAY, K_WRITE, MAX_CLIENTS, n / 16);
	snprintf(extra, sizeof(extra), "rate %.2fx LMDB", ratio(r.rate, commits));
	print_row("durable write", MAX_CLIENTS, &r, target_procs[T_GATEWAY],
	    extra);
	/* One write first so the replays have a done key. */
	measure(T_GATEWAY, K_REPLAY, 1, 1);
	r = measure(T_GATEWAY, K_REPLAY, 1, n / 2);
	snprintf(extra, sizeof(extra), "rate %.2fx LMDB", ratio(r.rate, commits));
	print_row("replay", 1, &r, target_procs[T_GATEWAY], extra);
}

/*
 * A child of 'parent': the executor is gatewayd's child; the MCP server
 * the executor's, named by its command (the kernel keeps 15 characters
 * of it), or its start; NULL: any.
 */
static pid_t
find_child(pid_t parent, const char *comm)
{
	struct dirent	*de;
	char		 path[300], line[512], *p, *name, state;
	DIR		*d;
	FILE		*f;
	pid_t		 found = 0;
	int		 ppid;

	if ((d = opendir("/proc")) == NULL)
		return 0;
	while (found == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		p = fgets(line, sizeof(line), f);
		fclose(f);
		if (p == NULL || (name = strchr(line, '(')) == NULL ||
		    (p = strrchr(line, ')')) == NULL)
			continue;
		*p = '\0';
		if (sscanf(p + 1, " %c %d", &state, &ppid) == 2 &&
		    ppid == (int)parent && (comm == NULL ||
		    strncmp(name + 1, comm, strlen(comm)) == 0))
			found = (pid_t)atoi(de->d_name);
	}
	closedir(d);
	return found;
}

/* The other backends: mcp and http (issue 10). */

/* Issue 10's ratios, for its targets; 0 when not measured. */
struct backend_ratios {
	double	mcp_read[2];	/* 1 and 32 clients, rate vs echo */
	double	mcp_write[2];	/* rate vs LMDB commits */
	double	http_read[2];	/* rate vs echo */
};

/* One scenario against gatewayd, its row, and its rate over 'base'. */
static double
scenario(const char *name, enum kind k, int clients, int per_client,
    const enum proc *list, const char *vs, double base)
{
	struct result	r;
	char		extra[64];

	r = measure(T_GATEWAY, k, clients, per_client);
	snprintf(extra, sizeof(extra), "rate %.3fx %s", ratio(r.rate, base),
	    vs);
	print_row(name, clients, &r, list, extra);
	return ratio(r.rate, base);
}

/*
 * A durable write scenario against raw LMDB commits, in nrounds rounds of
 * the two in turn, each round's ratio its own: the disk's speed changes
 * by the second (other guests, the host's writeback), and a base measured
 * once, before, made the ratio swing by 3x between runs.  The median
 * round's ratio is shown; 'commits' gets the median LMDB rate.
 */
static double
scenario_vs_lmdb(const char *name, enum kind k, int clients, int per_client,
    const enum proc *list, const char *dir, int ncommits, double *commits)
{
	struct result	rs[MAX_ROUNDS], r;
	double		ratios[MAX_ROUNDS] = { 0 }, lm[MAX_ROUNDS] = { 0 }, t;
	char		extra[96], rdir[1024];
	int		i, j, per = per_client / nrounds, nc = ncommits / nrounds;

	memset(rs, 0, sizeof(rs));

	if (per < 1)
		per = 1;
	if (nc < 16)
		nc = 16;
	for (i = 0; i < nrounds; i++) {
		snprintf(rdir, sizeof(rdir), "%s-%d", dir, i);
		lm[i] = lmdb_commits(rdir, nc);
		rs[i] = measure(T_GATEWAY, k, clients, per);
		ratios[i] = ratio(rs[i].rate, lm[i]);
	}
	/* Insertion sorts: nrounds is at most MAX_ROUNDS. */
	for (i = 1; i < nrounds; i++)
		for (j = i; j > 0 && ratios[j] < ratios[j - 1]; j--) {
			t = ratios[j]; ratios[j] = ratios[j - 1]; ratios[j - 1] = t;
		}
	for (i = 1; i < nrounds; i++)
		for (j = i; j > 0 && lm[j] < lm[j - 1]; j--) {
			t = lm[j]; lm[j] = lm[j - 1]; lm[j - 1] = t;
		}
	r = combine(rs, nrounds);
	*commits = lm[nrounds / 2];
	snprintf(extra, sizeof(extra), "rate %.3fx LMDB (rounds %.2f-%.2f, "
	    "LMDB %.0f/s)", ratios[nrounds / 2], ratios[0],
	    ratios[nrounds - 1], *commits);
	print_row(name, clients, &r, list, extra);
	return ratios[nrounds / 2];
}

/* An answer's string field 'key' into buf ("" when none). */
static void
answer_field(const char *ans, size_t n, const char *key, char *buf,
    size_t len)
{
	msgpack_unpacked	 u;
	msgpack_object_kv	*kv;
	uint32_t		 i;
	size_t			 l;

	buf[0] = '\0';
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, ans, n, NULL) == MSGPACK_UNPACK_SUCCESS &&
	    u.data.type == MSGPACK_OBJECT_MAP)
		for (i = 0; i < u.data.via.map.size; i++) {
			kv = &u.data.via.map.ptr[i];
			if (kv->key.type != MSGPACK_OBJECT_STR ||
			    kv->val.type != MSGPACK_OBJECT_STR ||
			    kv->key.via.str.size != strlen(key) ||
			    memcmp(kv->key.via.str.ptr, key, strlen(key)) != 0)
				continue;
			l = kv->val.via.str.size < len - 1 ?
			    kv->val.via.str.size : len - 1;
			memcpy(buf, kv->val.via.str.ptr, l);
			buf[l] = '\0';
		}
	msgpack_unpacked_destroy(&u);
}

/*
 * A backend's server may still be starting (the executor answers
 * error/unavailable meanwhile): ask until it answers, for 15 seconds.
 * Any answer but ok is said, and ends the scenario.
 */
static int
wait_ok(enum kind k)
{
	char	req[512], ans[65536], status[32], error[64], msg[256];
	size_t	len, n;
	int	fd, i;

	fd = dial(target_paths[T_GATEWAY]);
	for (i = 0; i < 300; i++) {
		len = make_request(req, sizeof(req), k, MAX_CLIENTS, i);
		n = roundtrip(fd, req, len, ans, sizeof(ans));
		answer_field(ans, n, "status", status, sizeof(status));
		answer_field(ans, n, "error", error, sizeof(error));
		if (strcmp(status, "ok") == 0 ||
		    strcmp(error, "unavailable") != 0)
			break;
		usleep(50000);
	}
	close(fd);
	if (strcmp(status, "ok") == 0)
		return 1;
	answer_field(ans, n, "message", msg, sizeof(msg));
	printf("  %s answered %s/%s (%s): no scenarios\n", kinds[k].tool,
	    status, error, msg);
	return 0;
}

static void
mcp_section(struct result echo[2], const char *scratch, int n,
    struct backend_ratios *br)
{
	char	dir[512];
	double	commits;

	printf("\nmcp: tools of the trivial MCP server (bench/mcp-server.c, one"
	    " process the\nexecutor keeps running, answers at once); reads"
	    " against the echo rate above\n");
	if (!wait_ok(K_MCP_READ))
		return;
	procs[P_MCP] = find_child(procs[P_EXECUTOR], "bench-mcp-serv");
	print_header();
	br->mcp_read[0] = scenario("mcp read", K_MCP_READ, 1, n / 2, mcp_procs,
	    "echo", echo[0].rate);
	br->mcp_read[1] = scenario("mcp read", K_MCP_READ, MAX_CLIENTS,
	    n / 16, mcp_procs, "echo", echo[1].rate);
	printf("durable writes, unique args, against raw LMDB commits, the two"
	    " in %d\ninterleaved rounds (the median round's ratio)\n",
	    nrounds);
	snprintf(dir, sizeof(dir), "%s/lmdb-baseline-mcp", scratch);
	br->mcp_write[0] = scenario_vs_lmdb("mcp write", K_MCP_WRITE, 1,
	    n / 8, mcp_procs, dir, n / 4, &commits);
	br->mcp_write[1] = scenario_vs_lmdb("mcp write", K_MCP_WRITE,
	    MAX_CLIENTS, n / 16, mcp_procs, dir, n / 4, &commits);
	ledger_vs_lmdb(dir, n / 8, n / 4);
}

static void
http_section(struct result echo[2], int n, struct backend_ratios *br)
{
	printf("\nhttp: a POST to the trivial HTTP server (bench/http-server.c,"
	    " 127.0.0.1,\nkeep-alive, answers {}), against the echo rate"
	    " above\n");
	if (!wait_ok(K_HTTP_READ))
		return;
	print_header();
	br->http_read[0] = scenario("http read", K_HTTP_READ, 1, n / 2,
	    http_procs, "echo", echo[0].rate);
	br->http_read[1] = scenario("http read", K_HTTP_READ, MAX_CLIENTS,
	    n / 16, http_procs, "echo", echo[1].rate);
}

/* BENCH_ONLY=mcp_read: the echo as the base, then the mcp read rows. */
static void
mcp_read_only(int n)
{
	struct result	echo[2];

	if (!with_mcp) {
		printf("no mcp backend: nothing to run\n");
		return;
	}
	printf("\nmcp read only (BENCH_ONLY=mcp_read), against the echo\n");
	if (!wait_ok(K_MCP_READ))
		return;
	procs[P_MCP] = find_child(procs[P_EXECUTOR], "bench-mcp-serv");
	print_header();
	echo[0] = measure(T_ECHO, K_DENY, 1, n * 2);
	print_row("echo", 1, &echo[0], target_procs[T_ECHO], NULL);
	echo[1] = measure(T_ECHO, K_DENY, MAX_CLIENTS, n / 4);
	print_row("echo", MAX_CLIENTS, &echo[1], target_procs[T_ECHO], NULL);
	scenario("mcp read", K_MCP_READ, 1, n / 2, mcp_procs, "echo",
	    echo[0].rate);
	scenario("mcp read", K_MCP_READ, MAX_CLIENTS, n / 16, mcp_procs,
	    "echo", echo[1].rate);
}

/* BENCH_ONLY=mcp_write: raw LMDB commits, then the mcp write rows. */
static void
mcp_write_only(const char *scratch, int n)
{
	char	dir[1024];
	double	commits;

	if (!with_mcp) {
		printf("no mcp backend: nothing to run\n");
		return;
	}
	printf("\nmcp write only (BENCH_ONLY=mcp_write), against raw LMDB "
	    "commits\n");
	if (!wait_ok(K_MCP_READ))
		return;
	procs[P_MCP] = find_child(procs[P_EXECUTOR], "bench-mcp-serv");
	snprintf(dir, sizeof(dir), "%s/lmdb-baseline-mcp", scratch);
	printf("the two in %d interleaved rounds (the median round's ratio)\n",
	    nrounds);
	print_header();
	scenario_vs_lmdb("mcp write", K_MCP_WRITE, 1, n / 8, mcp_procs, dir,
	    n / 4, &commits);
	scenario_vs_lmdb("mcp write", K_MCP_WRITE, MAX_CLIENTS, n / 16,
	    mcp_procs, dir, n / 4, &commits);
	ledger_vs_lmdb(dir, n / 8, n / 4);
}

/*
 * The store on PostgreSQL (issue 15): a second daemon pair, with
 * store.backend: postgresql, on a cluster bench/run started (fsync and
 * synchronous_commit on, a Unix socket), against raw single-row commits
 * through libpq on the same cluster: one INSERT of a small row per
 * transaction, a prepared statement, from 1 and from 32 connections.
 */

static const char	*pg_dsn;	/* BENCH_PG_DSN */
static const char	*pg_agent;	/* -q: the second pair's agent socket */
static pid_t		 pg_gatewayd;	/* -G */
static pid_t		 pg_master;	/* -O: the postmaster */

/* Issue 15's ratios, for its targets; 0 when not measured. */
struct pg_ratios {
	double	write1;		/* 1 client vs raw commits, 1 connection */
	double	write32;	/* 32 clients vs raw commits, 32 connections */
	double	write32_1;	/* 32 clients vs raw commits, 1 connection */
};

struct pg_worker {
	pthread_t	 t;
	PGconn		*conn;
	int		 client;
	int		 n;
	uint64_t	*lat;
};

static void
pg_fail(PGconn *conn, const char *what)
{
	fprintf(stderr, "bench: postgresql: %s: %s", what,
	    PQerrorMessage(conn));
	exit(1);
}

static PGconn *
pg_connect(void)
{
	PGconn	*conn;

	if ((conn = PQconnectdb(pg_dsn)) == NULL)
		die("PQconnectdb");
	if (PQstatus(conn) != CONNECTION_OK)
		pg_fail(conn, "connect");
	return conn;
}

static void
pg_exec(PGconn *conn, const char *sql)
{
	PGresult	*res;

	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		pg_fail(conn, sql);
	PQclear(res);
}

static void *
pg_worker_run(void *arg)
{
	struct pg_worker	*w = arg;
	PGresult		*res;
	const char		*params[2];
	char			 key[64], val[129];
	uint64_t		 t0;
	int			 i;

	/* As lmdb_commits: a key and 128 bytes. */
	memset(val, 'v', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	params[0] = key;
	params[1] = val;
	for (i = 0; i < w->n; i++) {
		snprintf(key, sizeof(key), "acme:bench:%d:%d:%d", run_seq,
		    w->client, i);
		t0 = now_ns();
		res = PQexecPrepared(w->conn, "ins", 2, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			pg_fail(w->conn, "insert");
		PQclear(res);
		w->lat[i] = now_ns() - t0;
	}
	return NULL;
}

/*
 * Raw commits from 'conns' connections at once, 'per_conn' each, one
 * row per transaction (autocommit).  The connections are made before
 * and closed after the CPU snapshots: their backends live through both.
 */
static struct result
pg_commits(int conns, int per_conn)
{
	static struct cpusnap	 before, after;
	struct pg_worker	 w[MAX_CLIENTS];
	PGresult		*res;
	uint64_t		*lat, el;
	size_t			 n;
	int			 i;

	if (per_conn < 1)
		per_conn = 1;
	n = (size_t)conns * (size_t)per_conn;
	run_seq++;
	if ((lat = calloc(n, sizeof(*lat))) == NULL)
		die("calloc");
	for (i = 0; i < conns; i++) {
		w[i].conn = pg_connect();
		res = PQprepare(w[i].conn, "ins", "INSERT INTO bench_raw (k, v) "
		    "VALUES ($1, $2)", 2, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			pg_fail(w[i].conn, "prepare");
		PQclear(res);
		w[i].client = i;
		w[i].n = per_conn;
		w[i].lat = lat + (size_t)i * per_conn;
	}
	snap_all(&before);
	el = now_ns();
	for (i = 0; i < conns; i++)
		pthread_create(&w[i].t, NULL, pg_worker_run, &w[i]);
	for (i = 0; i < conns; i++)
		pthread_join(w[i].t, NULL);
	el = now_ns() - el;
	snap_all(&after);
	for (i = 0; i < conns; i++)
		PQfinish(w[i].conn);
	return result_of(lat, n, el, &before, &after);
}

static void
sort_doubles(double *a, int n)
{
	double	t;
	int	i, j;

	for (i = 1; i < n; i++)
		for (j = i; j > 0 && a[j] < a[j - 1]; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t;
		}
}

/*
 * The durable mcp write against raw commits: in each of nrounds rounds,
 * raw commits from 1 connection, the write from 1 client, raw commits
 * from 32 connections, the write from 32 clients, each round's ratios
 * its own (the disk's speed changes by the second: scenario_vs_lmdb).
 * The median round's ratio is shown, with the range of the rounds.
 */
static void
pg_write_rounds(int n, struct pg_ratios *pr)
{
	struct result	raw[2][MAX_ROUNDS], gw[2][MAX_ROUNDS], r;
	double		q1[MAX_ROUNDS], q32[MAX_ROUNDS], q32_1[MAX_ROUNDS];
	char		extra[160];
	int		i, per1 = n / 8 / nrounds, per32 = n / 16 / nrounds;
	int		nc = n / 4 / nrounds;

	if (per1 < 1)
		per1 = 1;
	if (per32 < 1)
		per32 = 1;
	if (nc < 16)
		nc = 16;
	for (i = 0; i < nrounds; i++) {
		raw[0][i] = pg_commits(1, nc);
		gw[0][i] = measure(T_GATEWAY, K_MCP_WRITE, 1, per1);
		raw[1][i] = pg_commits(MAX_CLIENTS, per32);
		gw[1][i] = measure(T_GATEWAY, K_MCP_WRITE, MAX_CLIENTS, per32);
		q1[i] = ratio(gw[0][i].rate, raw[0][i].rate);
		q32[i] = ratio(gw[1][i].rate, raw[1][i].rate);
		q32_1[i] = ratio(gw[1][i].rate, raw[0][i].rate);
	}
	sort_doubles(q1, nrounds);
	sort_doubles(q32, nrounds);
	sort_doubles(q32_1, nrounds);
	pr->write1 = q1[nrounds / 2];
	pr->write32 = q32[nrounds / 2];
	pr->write32_1 = q32_1[nrounds / 2];

	r = combine(raw[0], nrounds);
	print_row("pg raw commit", 1, &r, pgraw_procs, NULL);
	r = combine(raw[1], nrounds);
	print_row("pg raw commit", MAX_CLIENTS, &r, pgraw_procs, NULL);
	r = combine(gw[0], nrounds);
	snprintf(extra, sizeof(extra), "rate %.3fx raw (rounds %.2f-%.2f)",
	    q1[nrounds / 2], q1[0], q1[nrounds - 1]);
	print_row("pg mcp write", 1, &r, pg_procs, extra);
	r = combine(gw[1], nrounds);
	snprintf(extra, sizeof(extra), "rate %.3fx raw 32 conns (rounds "
	    "%.2f-%.2f), %.2fx raw 1 conn", q32[nrounds / 2], q32[0],
	    q32[nrounds - 1], q32_1[nrounds / 2]);
	print_row("pg mcp write", MAX_CLIENTS, &r, pg_procs, extra);
}

/* The same write asked again: its stored answer, replayed: true. */
static void
pg_replay(int n, double raw1)
{
	struct result	r;
	char		extra[96];

	/* One write first so the replays have a done key. */
	measure(T_GATEWAY, K_MCP_ONCE, 1, 1);
	r = measure(T_GATEWAY, K_MCP_REPLAY, 1, n / 2);
	snprintf(extra, sizeof(extra), "rate %.2fx raw commits, 1 conn (%.0f/s)",
	    ratio(r.rate, raw1), raw1);
	print_row("pg replay", 1, &r, pg_procs, extra);
	r = measure(T_GATEWAY, K_MCP_REPLAY, MAX_CLIENTS, n / 16);
	snprintf(extra, sizeof(extra), "rate %.2fx raw commits, 1 conn",
	    ratio(r.rate, raw1));
	print_row("pg replay", MAX_CLIENTS, &r, pg_procs, extra);
}

/*
 * For the postgresql rows the gateway and its processes are the second
 * pair's; pg_leave puts the first pair's back.
 */
static const char	*pg_saved_path;
static pid_t		 pg_saved[3];

static void
pg_enter(void)
{
	pg_saved_path = target_paths[T_GATEWAY];
	pg_saved[0] = procs[P_GATEWAYD];
	pg_saved[1] = procs[P_EXECUTOR];
	pg_saved[2] = procs[P_MCP];
	target_paths[T_GATEWAY] = pg_agent;
	procs[P_GATEWAYD] = pg_gatewayd;
	procs[P_EXECUTOR] = find_child(pg_gatewayd, NULL);
	procs[P_MCP] = find_child(procs[P_EXECUTOR], "bench-mcp-serv");
	procs[P_POSTGRES] = pg_master;
}

static void
pg_leave(void)
{
	target_paths[T_GATEWAY] = pg_saved_path;
	procs[P_GATEWAYD] = pg_saved[0];
	procs[P_EXECUTOR] = pg_saved[1];
	procs[P_MCP] = pg_saved[2];
	procs[P_POSTGRES] = 0;
}

static void
pg_section(int n, struct pg_ratios *pr)
{
	struct result	 r;
	PGconn		*conn;

	printf("\npostgresql: a second daemon pair with store.backend:"
	    " postgresql, on a cluster of\nthe bench's own (fsync and"
	    " synchronous_commit on, a Unix socket); durable mcp\nwrites"
	    " (unique args) against raw single-row commits through libpq"
	    " (one INSERT\na transaction, prepared), the two in %d"
	    " interleaved rounds (the median\nround's ratio); postgres is"
	    " every process of the cluster\n", nrounds);
	if (pg_agent == NULL || pg_dsn == NULL || *pg_dsn == '\0') {
		printf("  SKIPPED: %s\n", getenv("BENCH_PG_SKIP") != NULL &&
		    *getenv("BENCH_PG_SKIP") != '\0' ? getenv("BENCH_PG_SKIP") :
		    "no PostgreSQL pair from bench/run (-q, BENCH_PG_DSN)");
		return;
	}
	if (!with_mcp) {
		printf("  SKIPPED: this gatewayd has no mcp backend\n");
		return;
	}
	pg_enter();
	/* The executor answers unavailable until its database is up. */
	if (wait_ok(K_MCP_WRITE)) {
		procs[P_MCP] = find_child(procs[P_EXECUTOR], "bench-mcp-serv");
		conn = pg_connect();
		pg_exec(conn, "CREATE TABLE bench_raw (k text PRIMARY KEY, "
		    "v text NOT NULL)");
		PQfinish(conn);
		print_header();
		pg_write_rounds(n, pr);
		/* A base for the replays, measured next to them. */
		r = pg_commits(1, n / 8);
		pg_replay(n, r.rate);
	}
	pg_leave();
}

static void
pg_targets_print(const struct pg_ratios *pr)
{
	printf("\nissue 15 targets, informational\n");
	if (pr->write1 == 0) {
		printf("  no postgresql scenarios in this run (the"
		    " postgresql section says why)\n");
		return;
	}
	target_line("pg write, 1 client, vs raw 1 conn:", pr->write1, ">=",
	    0.4);
	target_line("pg write, 32 clients, vs raw 32 conns:", pr->write32,
	    ">=", 2.0);
	target_line("pg write, 32 clients, vs raw 1 conn:", pr->write32_1,
	    ">=", 2.0);
}

/* Issue 10's targets, as informational as issue 9's. */
static void
backend_targets_print(const struct backend_ratios *br)
{
	printf("\nissue 10 targets, informational\n");
	if (!with_mcp || br->mcp_read[1] == 0) {
		printf("  no mcp scenarios in this run\n");
		return;
	}
	target_line("mcp read, 32 clients, rate vs echo:", br->mcp_read[1],
	    ">=", 0.3);
	target_line("mcp write, 1 client, rate vs LMDB:", br->mcp_write[0],
	    ">=", 0.4);
	target_line("mcp write, 32 clients, rate vs LMDB:", br->mcp_write[1],
	    ">=", 2.0);
}

/*
 * System calls per deny, and per mcp write (BENCH_STRACE=1): strace -c on
 * each daemon.
 */

static pid_t
strace_start(pid_t pid, const char *out)
{
	char	spid[16];
	pid_t	st;

	snprintf(spid, sizeof(spid), "%d", (int)pid);
	if ((st = fork()) == -1)
		die("fork");
	if (st == 0) {
		execlp("strace", "strace", "-c", "-f", "-q", "-o", out, "-p",
		    spid, (char *)NULL);
		_exit(127);
	}
	return st;
}

/* strace attaches in the background; the traced process says when. */
static int
strace_wait(pid_t pid)
{
	char	 path[64], line[128];
	FILE	*f;
	int	 i, tracer = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	for (i = 0; i < 500 && tracer == 0; i++) {
		if ((f = fopen(path, "r")) == NULL)
			return 0;
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "TracerPid: %d", &tracer) == 1)
				break;
		fclose(f);
		if (tracer == 0)
			usleep(10000);
	}
	return tracer != 0;
}

/* One line per process: the calls per request, then each system call's. */
static void
strace_print(const char *name, const char *path, uint64_t requests)
{
	char	 line[256], tok[6][64], list[2048] = "", *p = list;
	double	 total = 0, per;
	FILE	*f;
	int	 nt;

	if ((f = fopen(path, "r")) == NULL) {
		printf("  %-9s no strace output\n", name);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		nt = sscanf(line, "%63s %63s %63s %63s %63s %63s", tok[0],
		    tok[1], tok[2], tok[3], tok[4], tok[5]);
		/* % time, seconds, usecs/call, calls, [errors,] syscall */
		if (nt < 5 || tok[0][0] < '0' || tok[0][0] > '9' ||
		    strcmp(tok[nt - 1], "total") == 0)
			continue;
		per = strtod(tok[3], NULL) / (double)requests;
		total += per;
		if (per >= 0.01 && p < list + sizeof(list) - 80)
			p += snprintf(p, 80, "%s%s %.2f", p == list ? "" :
			    ", ", tok[nt - 1], per);
	}
	fclose(f);
	printf("  %-9s %5.2f: %s\n", name, total, list);
}

static void
strace_scenario(const char *scratch, enum kind k, const char *what,
    int clients, int per_client)
{
	static const enum proc	which[2] = { P_GATEWAYD, P_EXECUTOR };
	struct result		r;
	char			out[2][512];
	pid_t			st[2] = { 0, 0 };
	int			i;

	for (i = 0; i < 2; i++) {
		if (procs[which[i]] == 0)
			continue;
		snprintf(out[i], sizeof(out[i]), "%s/strace.%s", scratch,
		    proc_names[which[i]]);
		st[i] = strace_start(procs[which[i]], out[i]);
		if (!strace_wait(procs[which[i]])) {
			printf("\nsyscalls: strace did not attach to %s\n",
			    proc_names[which[i]]);
			kill(st[i], SIGKILL);
			waitpid(st[i], NULL, 0);
			st[i] = 0;
		}
	}
	r = measure(T_GATEWAY, k, clients, per_client);
	for (i = 0; i < 2; i++)
		if (st[i] != 0) {
			kill(st[i], SIGINT);
			waitpid(st[i], NULL, 0);
		}
	printf("\nsyscalls per %s, %d client%s (strace -c -f; under strace,"
	    " so no timing):\n", what, clients, clients == 1 ? "" : "s");
	for (i = 0; i < 2; i++)
		if (st[i] != 0)
			strace_print(proc_names[which[i]], out[i], r.requests);
}

/* The postgresql pair's write and replay, when they were measured. */
static void
pg_strace(const char *scratch, int n, const struct pg_ratios *pr)
{
	if (pr->write1 == 0)
		return;
	pg_enter();
	strace_scenario(scratch, K_MCP_WRITE, "pg mcp write", 1, n / 8);
	strace_scenario(scratch, K_MCP_REPLAY, "pg replay", 1, n / 4);
	pg_leave();
}

static void
print_load(const char *when)
{
	char	 line[128] = "";
	FILE	*f;

	if ((f = fopen("/proc/loadavg", "r")) != NULL) {
		if (fgets(line, sizeof(line), f) == NULL)
			line[0] = '\0';
		fclose(f);
	}
	line[strcspn(line, "\n")] = '\0';
	printf("load average %s: %s\n", when, line);
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench [-m] [-H HTTP_PID] [-g GATEWAYD_PID]"
	    " [-p PY_SOCKET -P PY_PID]\n             [-q PG_AGENT_SOCKET"
	    " -G PG_GATEWAYD_PID -O POSTMASTER_PID]\n             AGENT_SOCKET"
	    " SCRATCH_DIR\n");
	exit(2);
}

static void
setup(int argc, char *argv[])
{
	int	ch;

	while ((ch = getopt(argc, argv, "g:G:H:mO:p:P:q:")) != -1) {
		switch (ch) {
		case 'G':
			pg_gatewayd = (pid_t)atoi(optarg);
			break;
		case 'O':
			pg_master = (pid_t)atoi(optarg);
			break;
		case 'q':
			pg_agent = optarg;
			break;
		case 'H':
			with_http = 1;
			procs[P_HTTP] = (pid_t)atoi(optarg);
			break;
		case 'm':
			with_mcp = 1;
			break;
		case 'g':
			procs[P_GATEWAYD] = (pid_t)atoi(optarg);
			break;
		case 'p':
			target_paths[T_PYTHON] = optarg;
			break;
		case 'P':
			procs[P_PYTHON] = (pid_t)atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2)
		usage();
	pg_dsn = getenv("BENCH_PG_DSN");
	target_paths[T_GATEWAY] = argv[optind];
	procs[P_CLIENTS] = getpid();
	if (procs[P_GATEWAYD] != 0)
		procs[P_EXECUTOR] = find_child(procs[P_GATEWAYD], NULL);
	if (getenv("BENCH_ROUNDS") != NULL)
		nrounds = atoi(getenv("BENCH_ROUNDS"));
	if (nrounds < 1 || nrounds > MAX_ROUNDS)
		nrounds = nrounds < 1 ? 1 : MAX_ROUNDS;
}

/* BENCH_ONLY names this scenario: run it alone. */
static int
bench_only(const char *name)
{
	const char	*only = getenv("BENCH_ONLY");

	return only != NULL && strcmp(only, name) == 0;
}

int
main(int argc, char *argv[])
{
	static struct result	deny[2][N_TARGETS];
	struct result		echo[2];
	struct backend_ratios	br;
	struct pg_ratios	pr;
	const char		*scratch;
	int			n = 2000;

	setup(argc, argv);
	scratch = argv[optind + 1];
	if (getenv("BENCH_N") != NULL && (n = atoi(getenv("BENCH_N"))) < 32)
		n = 32;
	/* Before any thread: the echo is a fork. */
	start_echo(scratch);
	print_load("at the start");
	if (procs[P_GATEWAYD] == 0)
		printf("no gatewayd pid (-g): no CPU figures for the pair\n");

	if (bench_only("mcp_read")) {
		mcp_read_only(n);
		print_load("at the end");
		stop_echo();
		return 0;
	}
	if (bench_only("mcp_write")) {
		mcp_write_only(scratch, n);
		print_load("at the end");
		stop_echo();
		return 0;
	}
	memset(&pr, 0, sizeof(pr));
	if (bench_only("pg")) {
		pg_section(n, &pr);
		pg_targets_print(&pr);
		if (getenv("BENCH_STRACE") != NULL &&
		    *getenv("BENCH_STRACE") != '0')
			pg_strace(scratch, n, &pr);
		print_load("at the end");
		stop_echo();
		return 0;
	}
	deny_section(deny, n, scratch);
	if (bench_only("deny")) {
		targets_print(deny);
		print_load("at the end");
		stop_echo();
		return 0;
	}
	echo[0] = deny[0][T_ECHO];
	echo[1] = deny[1][T_ECHO];
	read_section(echo, n);
	write_section(scratch, n);
	memset(&br, 0, sizeof(br));
	if (with_mcp)
		mcp_section(echo, scratch, n, &br);
	if (with_http)
		http_section(echo, n, &br);
	pg_section(n, &pr);
	targets_print(deny);
	backend_targets_print(&br);
	pg_targets_print(&pr);
	if (getenv("BENCH_STRACE") != NULL && *getenv("BENCH_STRACE") != '0') {
		strace_scenario(scratch, K_DENY, "deny", 1, n / 2);
		strace_scenario(scratch, K_DENY, "deny", MAX_CLIENTS, n / 16);
		if (with_mcp && br.mcp_write[0] != 0) {
			strace_scenario(scratch, K_MCP_WRITE, "mcp write", 1,
			    n / 8);
			strace_scenario(scratch, K_MCP_WRITE, "mcp write",
			    MAX_CLIENTS, n / 16);
		}
		pg_strace(scratch, n, &pr);
	}
	print_load("at the end");
	stop_echo();
	return 0;
}
