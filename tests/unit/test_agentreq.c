/*
 * gatewayd/agentreq.c: agentreq_parse() on each op, each field's limits
 * and the order the reasons come in (the first bad field is named), with
 * the exact messages agents get; and frame_peek_buf(), the byte-buffer
 * twin of frame_peek() that agent connections use.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/frame.h"
#include "gatewayd/agentreq.h"
#include "proto/proto.h"
#include "tests/unit/test.h"

/* A map packed from pairs: "s:" a string, "i:" an integer, "f" 0.25, "m" {}. */
static msgpack_sbuffer	sb;

static void
pack(const char *const *kv, size_t n)
{
	msgpack_packer	pk;
	size_t		i;

	msgpack_sbuffer_clear(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, n / 2);
	for (i = 0; i < n; i += 2) {
		msgpack_pack_str_with_body(&pk, kv[i], strlen(kv[i]));
		if (strncmp(kv[i + 1], "s:", 2) == 0)
			msgpack_pack_str_with_body(&pk, kv[i + 1] + 2,
			    strlen(kv[i + 1] + 2));
		else if (strncmp(kv[i + 1], "i:", 2) == 0)
			msgpack_pack_int64(&pk, strtoll(kv[i + 1] + 2, NULL, 10));
		else if (strcmp(kv[i + 1], "f") == 0)
			msgpack_pack_double(&pk, 0.25);
		else
			msgpack_pack_map(&pk, 0);
	}
}

#define PARSE(q, why, ...) do {						\
	const char *const kv_[] = { __VA_ARGS__ };			\
	pack(kv_, sizeof(kv_) / sizeof(kv_[0]));			\
	rv = agentreq_parse(sb.data, sb.size, (q), (why));		\
} while (0)

static void
test_call(void)
{
	struct agent_req	q;
	struct agent_reason	why;
	int			rv;

	PARSE(&q, &why, "op", "s:call", "id", "i:7", "run_id", "s:r1",
	    "tool", "s:echo", "step_id", "i:-3", "args", "m");
	ASSERT_EQ_INT(rv, 0);
	ASSERT_EQ_INT(q.op, AOP_CALL);
	ASSERT_EQ_INT(q.idlen, 1);
	ASSERT_EQ_INT((unsigned char)q.id[0], 7);
	ASSERT_EQ_STR(q.run_id, "r1");
	ASSERT_EQ_STR(q.tool, "echo");
	ASSERT_EQ_STR(q.step_id, "-3");
	ASSERT(q.args != NULL && q.args->type == MSGPACK_OBJECT_MAP);
	agentreq_free(&q);

	/* The first bad field is the one named: run_id before tool. */
	PARSE(&q, &why, "op", "s:call", "id", "s:x", "tool", "s:",
	    "args", "m");
	ASSERT_EQ_INT(rv, -1);
	ASSERT_EQ_INT(why.close, 0);
	ASSERT_EQ_INT(why.has_id, 1);
	ASSERT_EQ_STR(why.error, E_BAD_REQUEST);
	ASSERT_EQ_STR(why.message, "run_id must be a non-empty string of at"
	    " most 256 bytes");
	ASSERT_EQ_INT(q.idlen, 2);
	agentreq_free(&q);

	PARSE(&q, &why, "op", "s:call", "id", "i:1", "run_id", "s:r",
	    "tool", "s:t", "step_id", "f", "args", "m");
	ASSERT_EQ_INT(rv, -1);
	ASSERT_EQ_STR(why.message, "step_id must be an integer or a string");
	agentreq_free(&q);

	PARSE(&q, &why, "op", "s:call", "id", "i:1", "run_id", "s:r",
	    "tool", "s:t", "args", "s:{}");
	ASSERT_EQ_INT(rv, -1);
	ASSERT_EQ_STR(why.message, "args must be a map");
	agentreq_free(&q);
}

static void
test_id_and_op(void)
{
	struct agent_req	q;
	struct agent_reason	why;
	char			long_id[260];
	int			rv;

	PARSE(&q, &why, "op", "s:hello");
	ASSERT_EQ_INT(rv, -1);
	ASSERT_EQ_INT(why.has_id, 0);
	ASSERT_EQ_INT(q.idlen, 0);
	ASSERT_EQ_STR(why.message, "id must be an integer or a string of at"
	    " most 256 bytes");
	agentreq_free(&q);

	memset(long_id, 'a', sizeof(long_id));
	memcpy(long_id, "s:", 2);
	long_id[2 + 256] = '\0';
	PARSE(&q, &why, "op", "s:hello", "id", long_id);
	ASSERT_EQ_INT(rv, 0);
	ASSERT_EQ_INT(q.idlen, 3 + 256);
	agentreq_free(&q);
	long_id[2 + 256] = 'a';
	long_id[2 + 257] = '\0';
	PARSE(&q, &why, "op", "s:hello", "id", long_id);
	ASSERT_EQ_INT(rv, -1);
	ASSERT_EQ_INT(why.has_id, 0);
	agentreq_free(&q);

	PARSE(&q, &why, "op", "s:nope", "id", "i:2");
	ASSERT_EQ_INT(rv, -1);
	ASSERT_EQ_INT(why.has_id, 1);
	ASSERT_EQ_STR(why.message, "op must be one of hello, call, resume,"
	    " wait, usage, tools");
	agentreq_free(&q);

	/* tools: the id alone; other fields are ignored, as for hello. */
	PARSE(&q, &why, "op", "s:tools", "id", "i:3", "tool", "i:1");
	ASSERT_EQ_INT(rv, 0);
	ASSERT_EQ_INT(q.op, AOP_TOOLS);
	ASSERT(q.tool == NULL && q.run_id == NULL);
	ASSERT_EQ_STR(agentreq_op_name(q.op), "tools");
	agentreq_free(&q);
}

static void
test_resume_wait_usage(void)
{
	struct agent_req	q;
	struct agent_reason	why;
	int			rv;

	PARSE(&q, &why, "op", "s:resume", "id", "i:1", "checkpoint", "s:cp");
	ASSERT_EQ_INT(rv, 0);
	ASSERT_EQ_INT(q.op, AOP_RESUME);
	ASSERT_EQ_INT(q.checkpoint->via.str.size, 2);
	agentreq_free(&q);
	PARSE(&q, &why, "op", "s:resume", "id", "i:1", "checkpoint", "s:");
	ASSERT_EQ_INT(rv, -1);
	ASSERT_EQ_STR(why.message, "checkpoint must be the string"
	    " needs_approval returned");
	agentreq_free(&q);

	PARSE(&q, &why, "op", "s:wait", "id", "i:1", "approval_id", "s:a",
	    "timeout_ms", "i:1500");
	ASSERT_EQ_INT(rv, 0);
	ASSERT_EQ_INT(q.timeout_ms, 1500);
	agentreq_free(&q);
	PARSE(&q, &why, "op", "s:wait", "id", "i:1", "approval_id", "s:a",
	    "timeout_ms", "i:-1");
	ASSERT_EQ_INT(rv, -1);
	ASSERT_EQ_STR(why.message, "timeout_ms must be a non-negative integer");
	agentreq_free(&q);

	PARSE(&q, &why, "op", "s:usage", "id", "i:1", "run_id", "s:r",
	    "tokens", "i:10", "cost", "f");
	ASSERT_EQ_INT(rv, 0);
	ASSERT_EQ_INT(q.tokens, 10);
	ASSERT(q.cost == 0.25);
	agentreq_free(&q);
	PARSE(&q, &why, "op", "s:usage", "id", "i:1", "run_id", "s:r",
	    "tokens", "i:10", "cost", "s:1");
	ASSERT_EQ_INT(rv, -1);
	ASSERT_EQ_STR(why.message, "cost must be a non-negative number");
	agentreq_free(&q);
}

static void
test_bad_frame(void)
{
	struct agent_req	q;
	struct agent_reason	why;
	const char		arr[] = "\x92\x01\x02", extra[] = "\x80\x00";

	ASSERT_EQ_INT(agentreq_parse(arr, 3, &q, &why), -1);
	ASSERT_EQ_INT(why.close, 1);
	ASSERT_EQ_STR(why.error, E_BAD_FRAME);
	agentreq_free(&q);
	ASSERT_EQ_INT(agentreq_parse(extra, 2, &q, &why), -1);
	ASSERT_EQ_INT(why.close, 1);
	agentreq_free(&q);
}

static void
test_peek_buf(void)
{
	const char	buf[] = "\x00\x00\x00\x02\x80\x80\x00\x00\x00";
	uint32_t	len = 0;
	size_t		n;

	for (n = 0; n < 6; n++)
		ASSERT_EQ_INT(frame_peek_buf(buf, n, 100, &len), FRAME_MORE);
	ASSERT_EQ_INT(frame_peek_buf(buf, 6, 100, &len), FRAME_READY);
	ASSERT_EQ_INT(len, 2);
	ASSERT_EQ_INT(frame_peek_buf(buf, 6, 1, &len), FRAME_TOO_LARGE);
	/* The next frame's header, cut short. */
	ASSERT_EQ_INT(frame_peek_buf(buf + 6, 3, 100, &len), FRAME_MORE);
	ASSERT_EQ_INT(frame_peek_buf(buf + 5, 4, 100, &len), FRAME_TOO_LARGE);
	ASSERT_EQ_INT(len, 0x80000000u);
	ASSERT_EQ_INT(frame_peek_buf("\0\0\0\0", 4, 100, &len), FRAME_EMPTY);
}

int
main(void)
{
	msgpack_sbuffer_init(&sb);
	RUN(test_call);
	RUN(test_id_and_op);
	RUN(test_resume_wait_usage);
	RUN(test_bad_frame);
	RUN(test_peek_buf);
	msgpack_sbuffer_destroy(&sb);
	return tests_failed != 0;
}
