/*
 * The audit chain's verifier on lines made here: a good chain with signed
 * heads verifies, and each way of breaking it is named at the right line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/auditchain.h"
#include "tests/unit/test.h"

#define NLINES	12
#define HEAD_AT	6		/* lines[HEAD_AT] is a head */

static char		 lines[NLINES + 1][1024];
static unsigned char	 pk[32], sk[64];

/* A chain of records, seq 1.., with a head signing the one before it. */
static void
make_chain(void)
{
	struct audithead	h;
	char			prev[AUDIT_HEX], hpk[AUDIT_PKHEX], hsig[AUDIT_SIGHEX];
	int			i;

	snprintf(prev, sizeof(prev), "%s", AUDIT_GENESIS);
	for (i = 0; i < NLINES; i++) {
		if (i == HEAD_AT) {
			memset(&h, 0, sizeof(h));
			h.seq = (uint64_t)i;
			snprintf(h.hash, sizeof(h.hash), "%s", prev);
			h.ts_ms = 1000 + (uint64_t)i;
			auditchain_head_sign(&h, sk);
			sodium_bin2hex(hpk, sizeof(hpk), h.pk, 32);
			sodium_bin2hex(hsig, sizeof(hsig), h.sig, 64);
			snprintf(lines[i], sizeof(lines[i]), "{\"seq\":%d,"
			    "\"prev\":\"%s\",\"ts_ms\":%llu,\"event\":\"head\","
			    "\"head_seq\":%d,\"head_hash\":\"%s\","
			    "\"public_key\":\"%s\",\"signature\":\"%s\"}",
			    i + 1, prev, (unsigned long long)h.ts_ms, i, prev,
			    hpk, hsig);
		} else
			snprintf(lines[i], sizeof(lines[i]), "{\"seq\":%d,"
			    "\"prev\":\"%s\",\"ts_ms\":%d,\"event\":\"call\","
			    "\"tool\":\"t%d\"}", i + 1, prev, 1000 + i, i);
		auditchain_hash(lines[i], strlen(lines[i]), prev);
	}
}

/* Verify lines in the order of idx (n of them); the message in msg. */
static int
run(const int *idx, int n, const unsigned char *key,
    const struct audithead *kept, char *msg, size_t len)
{
	struct auditverify	*v = auditverify_new(key, kept);
	uint64_t		 nl, nh;
	int			 i, rc;

	auditverify_file(v, "log", 0);
	for (i = 0; i < n; i++)
		auditverify_line(v, lines[idx[i]], strlen(lines[idx[i]]));
	rc = auditverify_end(v, msg, len, &nl, &nh);
	auditverify_free(v);
	return rc;
}

static int	all[NLINES] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };

static void
test_good_chain(void)
{
	char	msg[512];

	ASSERT_EQ_INT(run(all, NLINES, pk, NULL, msg, sizeof(msg)), 0);
	ASSERT_EQ_STR(msg, "ok: 12 records, 1 heads");
	/* No key given: the first head's is taken. */
	ASSERT_EQ_INT(run(all, NLINES, NULL, NULL, msg, sizeof(msg)), 0);
}

static void
test_breaks_are_named(void)
{
	int	del[] = { 0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11 };
	int	swap[] = { 0, 1, 2, 4, 3, 5, 6, 7, 8, 9, 10, 11 };
	int	first[] = { 1, 2, 3 };
	char	msg[512], saved[1024];

	ASSERT_EQ_INT(run(del, 11, pk, NULL, msg, sizeof(msg)), -1);
	ASSERT(strncmp(msg, "log:4: deleted", 14) == 0);
	ASSERT_EQ_INT(run(swap, 12, pk, NULL, msg, sizeof(msg)), -1);
	ASSERT(strncmp(msg, "log:4: reordered", 16) == 0);
	ASSERT_EQ_INT(run(first, 3, pk, NULL, msg, sizeof(msg)), -1);
	ASSERT(strncmp(msg, "log:1: deleted", 14) == 0);
	memcpy(saved, lines[8], sizeof(saved));
	lines[8][strlen(lines[8]) - 3] = 'X';		/* the tool's name */
	ASSERT_EQ_INT(run(all, NLINES, pk, NULL, msg, sizeof(msg)), -1);
	ASSERT(strncmp(msg, "log:9: edited", 13) == 0);
	snprintf(lines[8], sizeof(lines[8]), "{\"seq\":9}");
	ASSERT_EQ_INT(run(all, NLINES, pk, NULL, msg, sizeof(msg)), -1);
	ASSERT(strncmp(msg, "log:9: edited: not a record", 27) == 0);
	memcpy(lines[8], saved, sizeof(saved));
}

static void
test_heads(void)
{
	struct audithead	kept;
	unsigned char		opk[32], osk[64];
	char			msg[512], *j;
	const char		*why;
	size_t			len;

	/* The head in the log, as a kept head, verifies and round-trips. */
	memset(&kept, 0, sizeof(kept));
	kept.seq = 11;
	auditchain_hash(lines[10], strlen(lines[10]), kept.hash);
	kept.ts_ms = 5;
	auditchain_head_sign(&kept, sk);
	ASSERT_EQ_INT(auditchain_head_check(&kept), 0);
	j = auditchain_head_json(&kept);
	ASSERT(j != NULL);
	len = strlen(j);
	ASSERT_EQ_INT(auditchain_head_parse(j, len, &kept, &why), 0);
	free(j);
	ASSERT_EQ_INT(run(all, NLINES, pk, &kept, msg, sizeof(msg)), 0);
	/* The tail cut below it. */
	ASSERT_EQ_INT(run(all, 9, pk, &kept, msg, sizeof(msg)), -1);
	ASSERT(strstr(msg, "log:9: tail cut") == msg);
	/* Another key, or a seq changed under the signature. */
	crypto_sign_keypair(opk, osk);
	ASSERT_EQ_INT(run(all, NLINES, opk, NULL, msg, sizeof(msg)), -1);
	ASSERT(strstr(msg, "log:7: forged head: signed by a key other") == msg);
	kept.seq = 10;
	ASSERT_EQ_INT(run(all, NLINES, pk, &kept, msg, sizeof(msg)), -1);
	ASSERT(strstr(msg, "forged head: the kept head's signature") == msg);
	/* A head whose signed seq is not the record before it. */
	kept.seq = 9;
	auditchain_head_sign(&kept, sk);
	ASSERT_EQ_INT(run(all, NLINES, pk, &kept, msg, sizeof(msg)), -1);
	ASSERT(strstr(msg, "log:9: rolled back") == msg);
}

static void
test_parse(void)
{
	struct auditline	l;
	const char		*why;
	const char		*bad[] = {
		"", "[]", "{}", "{\"seq\":-1,\"prev\":\"" AUDIT_GENESIS "\"}",
		"{\"seq\":1,\"prev\":\"00\"}",
		"{\"seq\":1,\"prev\":\"" AUDIT_GENESIS "\",\"event\":\"head\"}",
		"{\"seq\":1,\"seq\":2,\"prev\":\"" AUDIT_GENESIS "\"}",
	};
	size_t			i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ASSERT_EQ_INT(auditchain_parse(bad[i], strlen(bad[i]), &l,
		    &why), -1);
	ASSERT_EQ_INT(auditchain_parse(lines[HEAD_AT],
	    strlen(lines[HEAD_AT]), &l, &why), 0);
	ASSERT(l.is_head && l.head_seq == HEAD_AT && l.seq == HEAD_AT + 1);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	crypto_sign_keypair(pk, sk);
	make_chain();
	RUN(test_good_chain);
	RUN(test_breaks_are_named);
	RUN(test_heads);
	RUN(test_parse);
	return tests_failed != 0;
}
