/*
 * gatewayctl forensics RUN_ID and compensate RUN_ID: the command lines,
 * and their answers printed for a person, one block a write.  With --json
 * the answers are printed as they come, like every other command's.
 *
 * Entity values and notes are the agent's args and the tools' words, not
 * ours: printed with control characters replaced.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/jsonmp.h"
#include "common/mpack.h"
#include "ctl/ctl.h"

/* --wait SECONDS: 1..3600. */
static unsigned long
wait_seconds(const char *s)
{
	char		*end;
	unsigned long	 v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *s < '0' || *s > '9' || *end != '\0' || v == 0 ||
	    v > 3600)
		usage();
	return v;
}

/* RUN_ID, then the flags in any order, each at most once. */
void
forensics_parse(int argc, char **argv, struct request *r)
{
	int	i, comp = strcmp(argv[0], "compensate") == 0;

	if (argc < 2 || argv[1][0] == '-' || argv[1][0] == '\0')
		usage();
	r->op = argv[0];
	r->k1 = "run_id";
	r->v1 = argv[1];
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--tenant") == 0 && i + 1 < argc &&
		    r->v2 == NULL) {
			r->k2 = "tenant";
			r->v2 = argv[++i];
		} else if (comp && strcmp(argv[i], "--tool") == 0 &&
		    i + 1 < argc && r->v3 == NULL) {
			r->k3 = "tool";
			r->v3 = argv[++i];
		} else if (comp && strcmp(argv[i], "--dry-run") == 0 &&
		    !r->dry_run)
			r->dry_run = 1;
		else if (comp && strcmp(argv[i], "--wait") == 0 &&
		    i + 1 < argc && r->wait_s == 0)
			r->wait_s = wait_seconds(argv[++i]);
		else
			usage();
	}
}

/* A string on one line, control bytes as '?'; "-" when not a string. */
static void
put_field(const char *label, const msgpack_object *o)
{
	uint32_t	i;

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return;
	printf("  %s: ", label);
	if (o->type == MSGPACK_OBJECT_STR) {
		for (i = 0; i < o->via.str.size; i++)
			putchar((unsigned char)o->via.str.ptr[i] < 0x20 ||
			    o->via.str.ptr[i] == 0x7f ? '?' :
			    o->via.str.ptr[i]);
	} else if (o->type == MSGPACK_OBJECT_BOOLEAN)
		fputs(o->via.boolean ? "yes" : "no", stdout);
	else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		printf("%llu", (unsigned long long)o->via.u64);
	else
		fputs("?", stdout);
	putchar('\n');
}

/* entity: NAME=VALUE ..., each value as JSON (strings escaped). */
static void
put_entity(const msgpack_object *e)
{
	uint32_t	 i;
	char		*j;

	if (e == NULL)
		return;
	if (e->type != MSGPACK_OBJECT_MAP) {
		printf("  entity: (args not kept)\n");
		return;
	}
	printf("  entity:");
	for (i = 0; i < e->via.map.size; i++) {
		j = msgpack_to_json(&e->via.map.ptr[i].val, 0);
		printf(" %.*s=%s", (int)e->via.map.ptr[i].key.via.str.size,
		    e->via.map.ptr[i].key.via.str.ptr,
		    e->via.map.ptr[i].val.type == MSGPACK_OBJECT_NIL ?
		    "(absent)" : j ? j : "?");
		free(j);
	}
	putchar('\n');
}

/* The answer's run id, "?" when it has none. */
static void
put_run(const msgpack_object *ans)
{
	const msgpack_object	*r = mp_get(ans, "run_id");

	if (r != NULL && r->type == MSGPACK_OBJECT_STR)
		printf("run %.*s", (int)r->via.str.size, r->via.str.ptr);
	else
		printf("run ?");
}

static const msgpack_object *
writes_of(const msgpack_object *ans)
{
	const msgpack_object	*w = mp_get(ans, "writes");

	if (w == NULL || w->type != MSGPACK_OBJECT_ARRAY) {
		fprintf(stderr, "gatewayctl: bad answer: no writes\n");
		return NULL;
	}
	return w;
}

/* The approvals the run asked for, whatever became of them. */
static void
put_approvals(const msgpack_object *ans)
{
	const msgpack_object	*as = mp_get(ans, "approvals"), *a;
	uint32_t		 i;

	if (as == NULL || as->type != MSGPACK_OBJECT_ARRAY ||
	    as->via.array.size == 0)
		return;
	printf("%u approvals asked%s\n", as->via.array.size,
	    mp_get(ans, "approvals_truncated") != NULL ?
	    " (more not shown)" : "");
	for (i = 0; i < as->via.array.size; i++) {
		a = &as->via.array.ptr[i];
		if (a->type != MSGPACK_OBJECT_MAP)
			continue;
		printf("a%u.", i + 1);
		put_field("tool", mp_get(a, "tool"));
		put_field("state", mp_get(a, "state"));
		put_field("approval_id", mp_get(a, "approval_id"));
		put_field("args_hash", mp_get(a, "args_hash"));
		put_field("approver", mp_get(a, "approver"));
		put_field("note", mp_get(a, "note"));
		put_field("started", mp_get(a, "started"));
	}
}

int
print_forensics(const msgpack_object *ans)
{
	const msgpack_object	*ws, *w, *c, *n;
	uint32_t		 i;

	if ((ws = writes_of(ans)) == NULL)
		return 1;
	n = mp_get(ans, "in_doubt");
	put_run(ans);
	printf(": %u writes, %llu in doubt%s\n", ws->via.array.size,
	    n != NULL && n->type == MSGPACK_OBJECT_POSITIVE_INTEGER ?
	    (unsigned long long)n->via.u64 : 0ULL,
	    mp_get(ans, "truncated") != NULL ? " (more not shown)" : "");
	for (i = 0; i < ws->via.array.size; i++) {
		w = &ws->via.array.ptr[i];
		if (w->type != MSGPACK_OBJECT_MAP)
			continue;
		printf("%u.", i + 1);
		put_field("tool", mp_get(w, "tool"));
		put_field("state", mp_get(w, "state"));
		put_field("in_doubt", mp_get(w, "in_doubt"));
		put_field("asks", mp_get(w, "asks"));
		put_field("args_hash", mp_get(w, "args_hash"));
		put_field("idempotency_key", mp_get(w, "idempotency_key"));
		put_entity(mp_get(w, "entity"));
		put_field("approver", mp_get(w, "approver"));
		put_field("note", mp_get(w, "note"));
		put_field("compensates", mp_get(w, "compensates"));
		if ((c = mp_get(w, "compensation")) != NULL &&
		    c->type == MSGPACK_OBJECT_MAP) {
			put_field("compensated_by", mp_get(c, "tool"));
			put_field("compensation_state", mp_get(c, "state"));
		}
	}
	put_approvals(ans);
	return 0;
}

/* 1 when a compensation was refused or failed: it is not done. */
int
compensate_rc(const msgpack_object *ans)
{
	const msgpack_object	*ws = mp_get(ans, "writes"), *st;
	uint32_t		 i;

	if (ws == NULL || ws->type != MSGPACK_OBJECT_ARRAY)
		return 1;
	for (i = 0; i < ws->via.array.size; i++) {
		if (ws->via.array.ptr[i].type != MSGPACK_OBJECT_MAP)
			continue;
		st = mp_get(&ws->via.array.ptr[i], "status");
		if (st != NULL && (mp_streq(st, "refused") ||
		    mp_streq(st, "failed")))
			return 1;
	}
	return 0;
}

int
print_compensate(const msgpack_object *ans)
{
	const msgpack_object	*ws, *w;
	uint32_t		 i;

	if ((ws = writes_of(ans)) == NULL)
		return 1;
	for (i = 0; i < ws->via.array.size; i++) {
		w = &ws->via.array.ptr[i];
		if (w->type != MSGPACK_OBJECT_MAP)
			continue;
		printf("%u.", i + 1);
		put_field("tool", mp_get(w, "tool"));
		put_field("args_hash", mp_get(w, "args_hash"));
		put_field("compensating_tool", mp_get(w, "compensating_tool"));
		put_field("compensation_args", mp_get(w,
		    "compensation_args"));
		put_field("status", mp_get(w, "status"));
		put_field("approval_id", mp_get(w, "approval_id"));
		put_field("reason", mp_get(w, "reason"));
	}
	if (ws->via.array.size == 0) {
		put_run(ans);
		printf(": no writes\n");
	}
	return compensate_rc(ans);
}
