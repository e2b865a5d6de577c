/*
 * bench: how fast the gateway answers, next to baselines measured in the
 * same run on the same machine, so the ratios mean something on a noisy
 * host.  Started by bench/run, which brings the daemon pair up.
 *
 *   bench AGENT_SOCKET STATE_DIR
 *
 * Baselines: a raw Unix-socket round trip of a frame of the same size
 * (an echo thread in this process) and raw LMDB commits with the same
 * durability as the ledger (default sync, one small record a commit).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <msgpack.h>

#define MAX_CLIENTS	32

static const char	*agent_path;
static char		 echo_path[64];
static volatile int	 run_seq;	/* makes keys distinct across passes */

static uint64_t
now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
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
enum kind { K_RAW, K_DENY, K_READ, K_WRITE, K_REPLAY };

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
	/* Replays come from a fresh run each time: same key, no duplicate stop. */
	len = (size_t)snprintf(run, sizeof(run), "bench-%d-%d-%d", run_seq,
	    client, k == K_REPLAY || k == K_WRITE ? i : 0);
	msgpack_pack_str_with_body(&pk, run, len);
	msgpack_pack_str_with_body(&pk, "tool", 4);
	msgpack_pack_str_with_body(&pk, k == K_DENY ? "nope" : k == K_READ ?
	    "read" : "write", k == K_DENY ? 4 : k == K_READ ? 4 : 5);
	msgpack_pack_str_with_body(&pk, "args", 4);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "n", 1);
	/* Distinct writes need distinct args; replays all share one. */
	msgpack_pack_int64(&pk, k == K_WRITE ? ((int64_t)run_seq << 40) |
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

static void *
echo_server(void *arg)
{
	int		 lfd = (int)(intptr_t)arg, fd;
	pthread_t	 t;

	while ((fd = accept(lfd, NULL, NULL)) != -1) {
		pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
	return NULL;
}

static void
start_echo(void)
{
	struct sockaddr_un	sun;
	pthread_t		t;
	int			fd;

	snprintf(echo_path, sizeof(echo_path), "/tmp/tg-bench-echo.%d",
	    (int)getpid());
	unlink(echo_path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, echo_path, strlen(echo_path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, 64) == -1)
		die("echo socket");
	pthread_create(&t, NULL, echo_server, (void *)(intptr_t)fd);
	pthread_detach(t);
}

struct worker {
	pthread_t	 t;
	enum kind	 kind;
	int		 client;
	int		 n;
	uint64_t	*lat;	/* n latencies, microseconds */
	int		 bad;
};

static void *
worker_run(void *arg)
{
	struct worker	*w = arg;
	char		 req[512], ans[65536];
	size_t		 len;
	uint64_t	 t0;
	int		 fd, i;

	fd = dial(w->kind == K_RAW ? echo_path : agent_path);
	for (i = 0; i < w->n; i++) {
		len = make_request(req, sizeof(req), w->kind, w->client, i);
		t0 = now_us();
		roundtrip(fd, req, len, ans, sizeof(ans));
		w->lat[i] = now_us() - t0;
		/* Every gateway answer must be what the scenario expects. */
		if (w->kind != K_RAW && memmem(ans, 64, w->kind == K_DENY ?
		    "denied" : "\xa2ok", w->kind == K_DENY ? 6 : 3) == NULL)
			w->bad++;
	}
	close(fd);
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct result {
	double		rate;	/* operations per second, all clients */
	uint64_t	p50, p99;
};

static struct result
measure(enum kind k, int clients, int per_client)
{
	struct worker	w[MAX_CLIENTS];
	struct result	r;
	uint64_t	*all, t0, el;
	int		i, j, n = 0, bad = 0;

	run_seq++;
	all = calloc((size_t)clients * per_client, sizeof(*all));
	if (all == NULL)
		die("calloc");
	t0 = now_us();
	for (i = 0; i < clients; i++) {
		w[i].kind = k;
		w[i].client = i;
		w[i].n = per_client;
		w[i].lat = all + (size_t)i * per_client;
		w[i].bad = 0;
		pthread_create(&w[i].t, NULL, worker_run, &w[i]);
	}
	for (i = 0; i < clients; i++) {
		pthread_join(w[i].t, NULL);
		bad += w[i].bad;
	}
	el = now_us() - t0;
	for (i = 0; i < clients; i++)
		for (j = 0; j < per_client; j++)
			n++;
	qsort(all, (size_t)n, sizeof(*all), cmp_u64);
	r.rate = (double)n * 1e6 / (double)(el ? el : 1);
	r.p50 = all[n / 2];
	r.p99 = all[(size_t)n * 99 / 100];
	free(all);
	if (bad) {
		fprintf(stderr, "bench: %d answers were not as expected\n",
		    bad);
		exit(1);
	}
	return r;
}

static void
report(const char *name, enum kind k, int per_client, struct result raw[2])
{
	static const int	clients[2] = { 1, MAX_CLIENTS };
	struct result		r;
	int			i;

	for (i = 0; i < 2; i++) {
		r = measure(k, clients[i], clients[i] == 1 ? per_client :
		    per_client / 8);
		printf("%-14s %2d client%s %9.0f/s  p50 %6llu us  p99 %6llu us"
		    "   %5.2fx raw rate, p50 %5.1fx raw\n", name, clients[i],
		    clients[i] == 1 ? " " : "s", r.rate,
		    (unsigned long long)r.p50, (unsigned long long)r.p99,
		    r.rate / raw[i].rate,
		    (double)r.p50 / (double)(raw[i].p50 ? raw[i].p50 : 1));
	}
}

/* Raw LMDB: one small put per commit, default (synchronous) durability. */
static double
lmdb_commits(const char *dir, int n)
{
	MDB_env	*env;
	MDB_txn	*txn;
	MDB_dbi	 dbi;
	MDB_val	 k, v;
	char	 key[64], val[128];
	uint64_t t0;
	int	 i;

	mkdir(dir, 0700);
	if (mdb_env_create(&env) || mdb_env_set_mapsize(env, 64 << 20) ||
	    mdb_env_open(env, dir, MDB_NOTLS, 0600))
		die("lmdb");
	memset(val, 'v', sizeof(val));
	t0 = now_us();
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
	t0 = now_us() - t0;
	mdb_env_close(env);
	return (double)n * 1e6 / (double)t0;
}

int
main(int argc, char *argv[])
{
	struct result	raw[2];
	char		dir[512];
	double		commits;
	int		n = 2000;

	if (argc != 3) {
		fprintf(stderr, "usage: bench AGENT_SOCKET SCRATCH_DIR\n");
		return 2;
	}
	agent_path = argv[1];
	if (getenv("BENCH_N") != NULL)
		n = atoi(getenv("BENCH_N"));
	start_echo();

	printf("baseline: raw Unix-socket round trip of a request-sized frame\n");
	raw[0] = measure(K_RAW, 1, n * 4);
	raw[1] = measure(K_RAW, MAX_CLIENTS, n / 2);
	printf("%-14s %2d client  %9.0f/s  p50 %6llu us  p99 %6llu us\n",
	    "raw", 1, raw[0].rate, (unsigned long long)raw[0].p50,
	    (unsigned long long)raw[0].p99);
	printf("%-14s %2d clients %9.0f/s  p50 %6llu us  p99 %6llu us\n",
	    "raw", MAX_CLIENTS, raw[1].rate, (unsigned long long)raw[1].p50,
	    (unsigned long long)raw[1].p99);
	printf("\nthe gateway (ratios against the raw round trip above)\n");
	report("deny", K_DENY, n, raw);
	report("read", K_READ, n / 4, raw);

	snprintf(dir, sizeof(dir), "%s/lmdb-baseline", argv[2]);
	commits = lmdb_commits(dir, n / 4);
	printf("\nbaseline: raw LMDB commits, one record each, synchronous:"
	    " %.0f/s\n", commits);
	{
		struct result	w1, w32, rp;

		w1 = measure(K_WRITE, 1, n / 8);
		w32 = measure(K_WRITE, MAX_CLIENTS, n / 16);
		/* One write first so the replays have a done key. */
		measure(K_REPLAY, 1, 1);
		rp = measure(K_REPLAY, 1, n / 2);
		printf("%-14s %2d client  %9.0f/s  p50 %6llu us  p99 %6llu us"
		    "   %5.2fx raw LMDB commits\n", "durable write", 1, w1.rate,
		    (unsigned long long)w1.p50, (unsigned long long)w1.p99,
		    w1.rate / commits);
		printf("%-14s %2d clients %9.0f/s  p50 %6llu us  p99 %6llu us"
		    "   %5.2fx raw LMDB commits\n", "durable write", MAX_CLIENTS,
		    w32.rate, (unsigned long long)w32.p50,
		    (unsigned long long)w32.p99, w32.rate / commits);
		printf("%-14s %2d client  %9.0f/s  p50 %6llu us  p99 %6llu us"
		    "   %5.2fx raw LMDB commits\n", "replay", 1, rp.rate,
		    (unsigned long long)rp.p50, (unsigned long long)rp.p99,
		    rp.rate / commits);
	}
	unlink(echo_path);
	return 0;
}
