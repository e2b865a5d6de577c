/*
 * Runs in gatewayd (gatewayd/runs.c): lookup and creation per tenant, the
 * max_runs cap, the first stop reason, and the per-run limits: steps,
 * repeated calls, duplicate writes, writes, tokens and cost.  Run it under
 * valgrind: runs_free() must leave nothing behind.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "gatewayd/gatewayd.h"
#include "gatewayd/runs.h"
#include "proto/proto.h"
#include "tests/unit/test.h"

struct gateway	*gw;

static struct config	conf;
static struct gateway	gateway;

/* No caps at all, then the test sets what it needs; runs_init() after. */
static void
setup(void)
{
	runs_free();		/* what a failed test left */
	memset(&conf, 0, sizeof(conf));
	conf.max_runs = 10000;
	conf.max_runs_per_tenant = 10000;
	conf.run_idle_s = 3600;
	memset(&gateway, 0, sizeof(gateway));
	gateway.conf = &conf;
	gateway.base = NULL;		/* no sweep timer */
	gw = &gateway;
}

static void
test_get(void)
{
	struct run	*a, *b, *c;

	setup();
	runs_init();
	ASSERT_EQ_INT(runs_count(), 0);
	ASSERT(run_get("acme", "r1", 0) == NULL);
	ASSERT_EQ_INT(runs_count(), 0);
	a = run_get("acme", "r1", 1);
	ASSERT(a != NULL);
	ASSERT_EQ_INT(runs_count(), 1);
	ASSERT_EQ_STR(a->tenant, "acme");
	ASSERT_EQ_STR(a->run_id, "r1");
	ASSERT(run_stopped(a) == NULL);
	/* Found again, with or without create. */
	ASSERT(run_get("acme", "r1", 0) == a);
	ASSERT(run_get("acme", "r1", 1) == a);
	ASSERT_EQ_INT(runs_count(), 1);
	/* The same run_id in another tenant is another run. */
	b = run_get("other", "r1", 1);
	ASSERT(b != NULL && b != a);
	ASSERT_EQ_INT(runs_count(), 2);
	ASSERT(run_get("other", "r1", 0) == b);
	ASSERT(run_get("acme", "r1", 0) == a);
	/* The separator: "ab"/"c" is not "a"/"bc". */
	c = run_get("ab", "c", 1);
	ASSERT(c != NULL && run_get("a", "bc", 0) == NULL);
	ASSERT(run_get("a", "bc", 1) != c);
	ASSERT_EQ_INT(runs_count(), 4);
	/* Prefixes are other runs. */
	ASSERT(run_get("acme", "r", 0) == NULL);
	ASSERT(run_get("acme", "r10", 0) == NULL);
	ASSERT(run_get("acm", "r1", 0) == NULL);
	/* State is per run. */
	run_stop(a, R_LOOP_DETECTED, "looping");
	ASSERT(run_stopped(b) == NULL);
	ASSERT_EQ_STR(run_stopped(run_get("acme", "r1", 0)), R_LOOP_DETECTED);
	runs_free();
	ASSERT_EQ_INT(runs_count(), 0);
}

/* Many runs, many per bucket: each still found. */
static void
test_many(void)
{
	struct run	*r[3000];
	char		 id[32];
	int		 i;

	setup();
	conf.max_runs = 3000;
	runs_init();
	for (i = 0; i < 3000; i++) {
		snprintf(id, sizeof(id), "run-%d", i);
		r[i] = run_get(i % 2 ? "a" : "b", id, 1);
		ASSERT(r[i] != NULL);
	}
	ASSERT_EQ_INT(runs_count(), 3000);
	for (i = 0; i < 3000; i++) {
		snprintf(id, sizeof(id), "run-%d", i);
		ASSERT(run_get(i % 2 ? "a" : "b", id, 0) == r[i]);
		ASSERT(run_get(i % 2 ? "b" : "a", id, 0) == NULL);
	}
	runs_free();
}

static void
test_max_runs(void)
{
	struct run	*r[5];
	char		 id[32];
	int		 i;

	setup();
	conf.max_runs = 5;
	runs_init();
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "r%d", i);
		ASSERT((r[i] = run_get("acme", id, 1)) != NULL);
	}
	ASSERT_EQ_INT(runs_count(), 5);
	/* Full: a new run is refused, in any tenant. */
	ASSERT(run_get("acme", "r5", 1) == NULL);
	ASSERT(run_get("other", "r0", 1) == NULL);
	ASSERT_EQ_INT(runs_count(), 5);
	/* ... and no existing run was forgotten to make room. */
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "r%d", i);
		ASSERT(run_get("acme", id, 1) == r[i]);
	}
	runs_free();

	/* A cap of one. */
	setup();
	conf.max_runs = 1;
	runs_init();
	ASSERT(run_get("t", "a", 1) != NULL);
	ASSERT(run_get("t", "b", 1) == NULL);
	ASSERT(run_get("t", "a", 1) != NULL);
	runs_free();
}

/*
 * One tenant's runs stop at max_runs_per_tenant; the others still start
 * theirs, and a tenant gets room back as its runs are forgotten.
 */
static void
test_max_runs_per_tenant(void)
{
	struct run	*r[3];
	char		 id[32], msg[128];
	int		 i;

	setup();
	conf.max_runs = 5;
	conf.max_runs_per_tenant = 3;
	runs_init();
	for (i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "r%d", i);
		ASSERT((r[i] = run_get("acme", id, 1)) != NULL);
	}
	ASSERT(run_get("acme", "r3", 1) == NULL);
	ASSERT_EQ_STR(runs_full_message(msg, sizeof(msg)),
	    "too many live runs (runs.max_runs_per_tenant)");
	/* Its own runs are still found, none forgotten. */
	for (i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "r%d", i);
		ASSERT(run_get("acme", id, 1) == r[i]);
	}
	/* Another tenant is not held back, up to the global cap. */
	ASSERT(run_get("globex", "r0", 1) != NULL);
	ASSERT(run_get("globex", "r1", 1) != NULL);
	ASSERT_EQ_INT(runs_count(), 5);
	ASSERT(run_get("initech", "r0", 1) == NULL);
	ASSERT_EQ_STR(runs_full_message(msg, sizeof(msg)),
	    "too many live runs (runs.max_runs)");
	runs_free();

	/* Swept runs give their tenant room again (runtab itself). */
	struct runtab	t;

	runtab_init(&t, 5, 2, SIZE_MAX, SIZE_MAX);
	ASSERT(runtab_get(&t, "acme", "a", 1) != NULL);
	ASSERT(runtab_get(&t, "acme", "b", 1) != NULL);
	ASSERT(runtab_get(&t, "acme", "c", 1) == NULL);
	ASSERT_EQ_INT(runtab_tenant_count(&t, "acme"), 2);
	runtab_sweep(&t, 0);
	ASSERT_EQ_INT(runtab_tenant_count(&t, "acme"), 0);
	ASSERT(t.tenants == NULL);
	ASSERT(runtab_get(&t, "acme", "c", 1) != NULL);
	ASSERT_EQ_INT(runtab_tenant_count(&t, "acme"), 1);
	runtab_free(&t);
	ASSERT(t.tenants == NULL);
}

static void
test_stop(void)
{
	struct run	*r;

	setup();
	runs_init();
	r = run_get("acme", "r1", 1);
	ASSERT(r != NULL);
	ASSERT(run_stopped(r) == NULL);
	run_stop(r, R_BUDGET_EXCEEDED, "too many steps");
	ASSERT_EQ_STR(run_stopped(r), R_BUDGET_EXCEEDED);
	ASSERT_EQ_STR(run_stop_message(r), "too many steps");
	/* The first reason stands. */
	run_stop(r, R_LOOP_DETECTED, "looping");
	ASSERT_EQ_STR(run_stopped(r), R_BUDGET_EXCEEDED);
	ASSERT_EQ_STR(run_stop_message(r), "too many steps");
	/* Without a message, the reason is the message. */
	r = run_get("acme", "r2", 1);
	run_stop(r, R_DUPLICATE_WRITE, NULL);
	ASSERT_EQ_STR(run_stopped(r), R_DUPLICATE_WRITE);
	ASSERT_EQ_STR(run_stop_message(r), R_DUPLICATE_WRITE);
	runs_free();
}

/* What metrics_render() says of the finished runs, as text. */
static char *
render(void)
{
	char	*text = NULL;
	size_t	 len = 0;
	FILE	*fp = open_memstream(&text, &len);

	if (fp == NULL)
		abort();
	metrics_render(fp, 1);
	if (fclose(fp) != 0)
		abort();
	return text;
}

/*
 * A run is finished, for toolgate_run_calls and toolgate_run_tokens, at
 * its first stop and only then; its stop reason is counted once.
 */
static void
test_finished_runs_metrics(void)
{
	struct run	*r;
	char		 msg[128], *text;

	setup();
	runs_init();
	metrics_init();
	r = run_get("acme", "m1", 1);
	ASSERT(run_account(r, "echo", "h1", 0, msg, sizeof(msg)) == NULL);
	ASSERT(run_account(r, "echo", "h2", 0, msg, sizeof(msg)) == NULL);
	ASSERT(run_usage(r, 700, 0, msg, sizeof(msg)) == NULL);
	text = render();
	ASSERT(strstr(text, "\ntoolgate_run_calls_count 0\n") != NULL);
	free(text);
	run_stop(r, R_LOOP_DETECTED, "looping");
	run_stop(r, R_BUDGET_EXCEEDED, "again");
	text = render();
	ASSERT(strstr(text, "\ntoolgate_run_calls_count 1\n") != NULL);
	ASSERT(strstr(text, "\ntoolgate_run_calls_sum 2\n") != NULL);
	ASSERT(strstr(text, "\ntoolgate_run_calls_bucket{le=\"1\"} 0\n") != NULL);
	ASSERT(strstr(text, "\ntoolgate_run_calls_bucket{le=\"2\"} 1\n") != NULL);
	ASSERT(strstr(text, "\ntoolgate_run_tokens_sum 700\n") != NULL);
	ASSERT(strstr(text, "\ntoolgate_run_tokens_bucket{le=\"1000\"} 1\n") !=
	    NULL);
	ASSERT(strstr(text, "\ntoolgate_runs_stopped_total{reason="
	    "\"loop_detected\"} 1\n") != NULL);
	ASSERT(strstr(text, "\ntoolgate_runs_stopped_total{reason="
	    "\"budget_exceeded\"} 0\n") != NULL);
	ASSERT(strstr(text, "\ntoolgate_runs 1\n") != NULL);
	/* A tool the catalog lacks is (other): the agent's word never shows. */
	metrics_call(NULL, ST_DENIED, metrics_clock());
	metrics_stop_reason("made-up-by-an-agent");
	free(text);
	text = render();
	ASSERT(strstr(text, "toolgate_calls_total{tool=\"(other)\",mode="
	    "\"(other)\",decision=\"denied\"} 1\n") != NULL);
	ASSERT(strstr(text, "toolgate_stops_total{reason=\"(other)\"} 1\n") !=
	    NULL);
	ASSERT(strstr(text, "made-up") == NULL);
	ASSERT(strstr(text, "\ntoolgate_decision_seconds_count 1\n") != NULL);
	free(text);
	metrics_free();
	runs_free();
}

static void
test_steps(void)
{
	struct run	*r;
	const char	*why;
	char		 msg[256], hash[32];
	int		 i;

	setup();
	conf.max_steps_per_run = 5;
	runs_init();
	r = run_get("acme", "r1", 1);
	for (i = 0; i < 5; i++) {
		snprintf(hash, sizeof(hash), "h%d", i);
		ASSERT(run_account(r, "kb.read", hash, 0, msg,
		    sizeof(msg)) == NULL);
	}
	ASSERT_EQ_INT(r->steps, 5);
	msg[0] = '\0';
	why = run_account(r, "kb.read", "h-new", 0, msg, sizeof(msg));
	ASSERT(why != NULL);
	ASSERT_EQ_STR(why, R_BUDGET_EXCEEDED);
	ASSERT(strstr(msg, "max_steps_per_run") != NULL);
	/* Steps are per run. */
	ASSERT(run_account(run_get("acme", "r2", 1), "kb.read", "h0", 0, msg,
	    sizeof(msg)) == NULL);
	runs_free();
}

static void
test_repeat(void)
{
	struct run	*r;
	const char	*why;
	char		 msg[256];
	int		 i;

	setup();
	conf.repeat_limit = 3;
	runs_init();
	r = run_get("acme", "r1", 1);
	for (i = 0; i < 3; i++)
		ASSERT(run_account(r, "kb.read", "h1", 0, msg,
		    sizeof(msg)) == NULL);
	/* Other args, other tools: their own counts. */
	ASSERT(run_account(r, "kb.read", "h2", 0, msg, sizeof(msg)) == NULL);
	ASSERT(run_account(r, "kb.search", "h1", 0, msg, sizeof(msg)) == NULL);
	/* The (limit+1)th identical call is a loop. */
	msg[0] = '\0';
	why = run_account(r, "kb.read", "h1", 0, msg, sizeof(msg));
	ASSERT(why != NULL);
	ASSERT_EQ_STR(why, R_LOOP_DETECTED);
	ASSERT(strstr(msg, "kb.read") != NULL);
	ASSERT(strstr(msg, "repeat_limit") != NULL);
	/* Tool and hash are not confused across the boundary. */
	ASSERT(run_account(r, "kb.rea", "dh1", 0, msg, sizeof(msg)) == NULL);
	ASSERT(run_account(r, "kb.readh", "1", 0, msg, sizeof(msg)) == NULL);
	/* Per run. */
	ASSERT(run_account(run_get("acme", "r2", 1), "kb.read", "h1", 0, msg,
	    sizeof(msg)) == NULL);
	runs_free();

	/* A limit of 1: the second identical call is a loop. */
	setup();
	conf.repeat_limit = 1;
	runs_init();
	r = run_get("acme", "r1", 1);
	ASSERT(run_account(r, "kb.read", "h1", 0, msg, sizeof(msg)) == NULL);
	why = run_account(r, "kb.read", "h1", 0, msg, sizeof(msg));
	ASSERT(why != NULL);
	ASSERT_EQ_STR(why, R_LOOP_DETECTED);
	runs_free();
}

static void
test_duplicate_write(void)
{
	struct run	*r;
	const char	*why;
	char		 msg[256];

	setup();
	conf.repeat_limit = 10;
	runs_init();
	r = run_get("acme", "r1", 1);
	ASSERT(run_account(r, "ticket.close", "h1", 1, msg,
	    sizeof(msg)) == NULL);
	ASSERT_EQ_INT(r->writes, 1);
	/* The second identical write, well under the repeat limit. */
	msg[0] = '\0';
	why = run_account(r, "ticket.close", "h1", 1, msg, sizeof(msg));
	ASSERT(why != NULL);
	ASSERT_EQ_STR(why, R_DUPLICATE_WRITE);
	ASSERT(strstr(msg, "ticket.close") != NULL);
	ASSERT_EQ_INT(r->writes, 1);
	/* Other args: a write of its own. */
	ASSERT(run_account(r, "ticket.close", "h2", 1, msg,
	    sizeof(msg)) == NULL);
	ASSERT_EQ_INT(r->writes, 2);
	/* The same write in another run is fine. */
	ASSERT(run_account(run_get("acme", "r2", 1), "ticket.close", "h1", 1,
	    msg, sizeof(msg)) == NULL);
	runs_free();
}

/* A write refused before it started is no write of the run. */
static void
test_unwrite(void)
{
	struct run	*r;
	char		 msg[256];

	setup();
	conf.repeat_limit = 10;
	conf.max_writes_per_run = 1;
	runs_init();
	r = run_get("acme", "r1", 1);
	ASSERT(run_account(r, "ticket.close", "h1", 1, msg,
	    sizeof(msg)) == NULL);
	ASSERT_EQ_INT(r->writes, 1);
	run_unwrite(r, "ticket.close", "h1");
	ASSERT_EQ_INT(r->writes, 0);
	/* Retried: neither a duplicate nor over max_writes_per_run. */
	ASSERT(run_account(r, "ticket.close", "h1", 1, msg,
	    sizeof(msg)) == NULL);
	ASSERT_EQ_INT(r->writes, 1);
	/* Unknown pairs and reads change nothing, and create nothing. */
	run_unwrite(r, "ticket.close", "h9");
	ASSERT(run_account(r, "kb.read", "h2", 0, msg, sizeof(msg)) == NULL);
	run_unwrite(r, "kb.read", "h2");
	ASSERT_EQ_INT(r->writes, 1);
	ASSERT_EQ_INT(r->nseen, 2);
	ASSERT(run_seen_find(r, "ticket.close", "h9") == NULL);
	runs_free();
}

static void
test_max_writes(void)
{
	struct run	*r;
	const char	*why;
	char		 msg[256];

	setup();
	conf.max_writes_per_run = 2;
	runs_init();
	r = run_get("acme", "r1", 1);
	ASSERT(run_account(r, "t.w", "h1", 1, msg, sizeof(msg)) == NULL);
	ASSERT(run_account(r, "t.w", "h2", 1, msg, sizeof(msg)) == NULL);
	/* Reads do not count as writes. */
	ASSERT(run_account(r, "t.r", "h3", 0, msg, sizeof(msg)) == NULL);
	ASSERT_EQ_INT(r->writes, 2);
	msg[0] = '\0';
	why = run_account(r, "t.w", "h4", 1, msg, sizeof(msg));
	ASSERT(why != NULL);
	ASSERT_EQ_STR(why, R_BUDGET_EXCEEDED);
	ASSERT(strstr(msg, "max_writes_per_run") != NULL);
	ASSERT_EQ_INT(r->writes, 2);
	runs_free();
}

/* Every cap at 0: none applies. */
static void
test_zero_caps(void)
{
	struct run	*r;
	char		 msg[256], hash[32];
	int		 i;

	setup();
	runs_init();
	r = run_get("acme", "r1", 1);
	for (i = 0; i < 1000; i++)
		ASSERT(run_account(r, "kb.read", "h1", 0, msg,
		    sizeof(msg)) == NULL);
	for (i = 0; i < 200; i++) {
		snprintf(hash, sizeof(hash), "w%d", i);
		ASSERT(run_account(r, "t.w", hash, 1, msg,
		    sizeof(msg)) == NULL);
	}
	ASSERT_EQ_INT(r->steps, 1200);
	ASSERT_EQ_INT(r->writes, 200);
	ASSERT(run_usage(r, 1000000000, 1e9, msg, sizeof(msg)) == NULL);
	ASSERT(run_usage(r, UINT64_MAX, 1e300, msg, sizeof(msg)) == NULL);
	ASSERT_EQ_INT(r->tokens, UINT64_MAX);
	runs_free();
}

/* The longest tool name with a full args hash still fits. */
static void
test_long_names(void)
{
	struct run	*r;
	const char	*why;
	char		 tool[129], hash[25], msg[256];

	setup();
	conf.repeat_limit = 2;
	runs_init();
	r = run_get("acme", "r1", 1);
	memset(tool, 'a', 128);
	tool[128] = '\0';
	memset(hash, 'f', 24);
	hash[24] = '\0';
	ASSERT(run_account(r, tool, hash, 0, msg, sizeof(msg)) == NULL);
	ASSERT(run_account(r, tool, hash, 0, msg, sizeof(msg)) == NULL);
	why = run_account(r, tool, hash, 0, msg, sizeof(msg));
	ASSERT(why != NULL);
	ASSERT_EQ_STR(why, R_LOOP_DETECTED);
	runs_free();
}

/* The distinct (tool, args) pairs a run may have are bounded. */
static void
test_distinct_bound(void)
{
	struct run	*r;
	const char	*why = NULL;
	char		 msg[256], hash[32];
	int		 i;

	setup();
	runs_init();
	r = run_get("acme", "r1", 1);
	for (i = 0; i < 100000 && why == NULL; i++) {
		snprintf(hash, sizeof(hash), "%024x", i);
		why = run_account(r, "kb.read", hash, 0, msg, sizeof(msg));
	}
	ASSERT(why != NULL);
	ASSERT_EQ_STR(why, R_BUDGET_EXCEEDED);
	ASSERT(i > 1000);
	/* Pairs already seen are still counted. */
	ASSERT(run_account(r, "kb.read", "000000000000000000000000", 0, msg,
	    sizeof(msg)) == NULL);
	runs_free();
}

static void
test_tokens(void)
{
	struct run	*r;
	const char	*why;
	char		 msg[256];

	setup();
	conf.max_tokens_per_run = 100;
	runs_init();
	r = run_get("acme", "r1", 1);
	ASSERT(run_usage(r, 60, 0, msg, sizeof(msg)) == NULL);
	ASSERT(run_usage(r, 40, 0, msg, sizeof(msg)) == NULL);	/* at 100 */
	ASSERT_EQ_INT(r->tokens, 100);
	msg[0] = '\0';
	why = run_usage(r, 1, 0, msg, sizeof(msg));
	ASSERT(why != NULL);
	ASSERT_EQ_STR(why, R_BUDGET_EXCEEDED);
	ASSERT(strstr(msg, "max_tokens_per_run") != NULL);
	/* Saturates rather than wrapping back under the cap. */
	why = run_usage(r, UINT64_MAX, 0, msg, sizeof(msg));
	ASSERT(why != NULL);
	ASSERT_EQ_INT(r->tokens, UINT64_MAX);
	why = run_usage(r, 5, 0, msg, sizeof(msg));
	ASSERT(why != NULL);
	ASSERT_EQ_INT(r->tokens, UINT64_MAX);
	/* One huge report at once. */
	ASSERT(run_usage(run_get("acme", "r2", 1), UINT64_MAX, 0, msg,
	    sizeof(msg)) != NULL);
	/* Zero tokens, nothing passed. */
	ASSERT(run_usage(run_get("acme", "r3", 1), 0, 0, msg,
	    sizeof(msg)) == NULL);
	runs_free();
}

static void
test_cost(void)
{
	struct run	*r;
	const char	*why;
	char		 msg[256];

	setup();
	conf.max_cost_per_run = 1.0;
	runs_init();
	r = run_get("acme", "r1", 1);
	ASSERT(run_usage(r, 0, 0.5, msg, sizeof(msg)) == NULL);
	ASSERT(run_usage(r, 0, 0.5, msg, sizeof(msg)) == NULL);	/* at 1.0 */
	msg[0] = '\0';
	why = run_usage(r, 0, 0.01, msg, sizeof(msg));
	ASSERT(why != NULL);
	ASSERT_EQ_STR(why, R_BUDGET_EXCEEDED);
	ASSERT(strstr(msg, "max_cost_per_run") != NULL);
	/* Tokens uncapped here: a big count passes, the cost does not. */
	ASSERT(run_usage(run_get("acme", "r2", 1), 1000000, 0.1, msg,
	    sizeof(msg)) == NULL);
	runs_free();
}

int
main(void)
{
	RUN(test_get);
	RUN(test_many);
	RUN(test_max_runs);
	RUN(test_max_runs_per_tenant);
	RUN(test_stop);
	RUN(test_finished_runs_metrics);
	RUN(test_steps);
	RUN(test_repeat);
	RUN(test_duplicate_write);
	RUN(test_unwrite);
	RUN(test_max_writes);
	RUN(test_zero_caps);
	RUN(test_long_names);
	RUN(test_distinct_bound);
	RUN(test_tokens);
	RUN(test_cost);
	runs_free();
	return tests_failed != 0;
}
