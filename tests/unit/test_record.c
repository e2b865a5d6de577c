/*
 * The stored-record codec (executor/record.c): the bytes of each record
 * type as the stores and checkpoints out there hold them (the golden
 * strings below were packed by the encoders before record.c existed, so
 * a store written then still opens), and the strict checks of the
 * decoder on a small table of its own.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "executor/apstore.h"
#include "executor/checkpoint.h"
#include "executor/executor.h"
#include "executor/ledger.h"
#include "executor/record.h"
#include "tests/unit/test.h"

/* apstore.c reads the store through it; the codec never does. */
struct executor	*ex;

static const char LEDGER_DONE[] =
    "8ea17601a57374617465a4646f6e65a3756964cd03e8aa737461727465645f6d"
    "73cf0000018bcfe56800ab66696e69736865645f6d73cf0000018bcfe568faab"
    "6475726174696f6e5f6d73ccfaae66696e69736865645f636c6f636bcd012ca6"
    "74656e616e74a461636d65a3656e76a470726f64a4746f6f6cac7469636b6574"
    "2e636c6f7365a672756e5f6964a572756e2d31a7737465705f6964a137a96172"
    "67735f68617368a461623132a8726573706f6e7365c40b81a6737461747573a2"
    "6f6b";
static const char LEDGER_RUNNING[] =
    "88a17601a57374617465a772756e6e696e67a3756964ce00011170aa73746172"
    "7465645f6d7300ab66696e69736865645f6d7300ab6475726174696f6e5f6d73"
    "00ae66696e69736865645f636c6f636b00a674656e616e74a461636d65";
static const char APPROVAL[] =
    "de0010a17601a26964d920303132333435363738396162636465663031323334"
    "3536373839616263646566a57374617465a8617070726f766564a674656e616e"
    "74a461636d65a3656e76a470726f64a672756e5f6964a572756e2d31a4746f6f"
    "6cac7469636b65742e636c6f7365a9617267735f68617368a461623132ab6172"
    "67735f736861323536d940666666666666666666666666666666666666666666"
    "6666666666666666666666666666666666666666666666666666666666666666"
    "6666666666666666666666a461726773c40581a2696407a3756964cd03e8aa63"
    "7265617465645f6d73cf0000018bcfe56800aa657870697265735f6174ce6553"
    "ff10aa646563696465645f6d73cf0000018bcfe56be8aa737461727465645f6d"
    "7300a8617070726f766572a4726f6f74";
static const char PAYLOAD[] =
    "89a36b6964b061666365336361353734393136366330a3616964d92030313233"
    "34353637383961626364656630313233343536373839616263646566a674656e"
    "616e74a461636d65a3656e76a470726f64a672756e5f6964a572756e2d31a773"
    "7465705f6964a137a4746f6f6cac7469636b65742e636c6f7365ab617267735f"
    "736861323536d940656565656565656565656565656565656565656565656565"
    "6565656565656565656565656565656565656565656565656565656565656565"
    "6565656565656565a3657870ce6553ff10";

/* A malloc'ed copy of the bytes a hex string spells. */
static char *
unhex(const char *h, size_t *len)
{
	size_t	 i, n = strlen(h) / 2;
	char	*b = malloc(n + 1);
	unsigned int x;

	for (i = 0; i < n; i++) {
		sscanf(h + 2 * i, "%2x", &x);
		b[i] = (char)x;
	}
	*len = n;
	return b;
}

static int
same_bytes(const char *buf, size_t len, const char *h)
{
	size_t	 n;
	char	*want = unhex(h, &n);
	int	 ok = n == len && memcmp(buf, want, n) == 0;

	free(want);
	return ok;
}

/*
 * The fields forensics added (forensics.h) round trip; asks is left out
 * when 0, so a record without them keeps the bytes test_ledger_bytes
 * checks.
 */
static void
test_ledger_forensics(void)
{
	struct ledger_rec	 r, d;
	char			*enc;
	size_t			 len;

	memset(&r, 0, sizeof(r));
	r.state = L_RUNNING;
	r.tenant = "acme";
	r.args = "{\"ticket_id\":\"T-1\"}";
	r.argslen = strlen(r.args);
	r.asks = 3;
	r.approver = "uid 0 (root)";
	r.compensates = "acme:t:ab12";
	enc = ledger_encode(&r, &len);
	ASSERT(ledger_decode(enc, len, &d) == 0);
	ASSERT(d.asks == 3 && d.argslen == r.argslen &&
	    memcmp(d.args, r.args, r.argslen) == 0);
	ASSERT(strcmp(d.approver, r.approver) == 0 &&
	    strcmp(d.compensates, r.compensates) == 0);
	ledger_rec_free(&d);
	free(enc);

	r.asks = 0;
	r.args = NULL;
	r.argslen = 0;
	r.approver = r.compensates = NULL;
	enc = ledger_encode(&r, &len);
	ASSERT(memmem(enc, len, "asks", 4) == NULL);
	ASSERT(ledger_decode(enc, len, &d) == 0);
	ASSERT(d.asks == 0 && d.args == NULL && d.approver == NULL);
	ledger_rec_free(&d);
	free(enc);
}

static void
test_ledger_bytes(void)
{
	struct ledger_rec	 r, d;
	char			*enc, *buf;
	size_t			 len, n;

	memset(&r, 0, sizeof(r));
	r.state = L_DONE;
	r.tenant = "acme";
	r.env = "prod";
	r.tool = "ticket.close";
	r.run_id = "run-1";
	r.step_id = "7";
	r.args_hash = "ab12";
	r.uid = 1000;
	r.started_ms = 1700000000000ULL;
	r.finished_ms = 1700000000250ULL;
	r.duration_ms = 250;
	r.finished_clock = 300;
	r.response = "\x81\xa6status\xa2ok";
	r.responselen = 11;
	enc = ledger_encode(&r, &len);
	ASSERT(same_bytes(enc, len, LEDGER_DONE));
	free(enc);

	memset(&r, 0, sizeof(r));
	r.state = L_RUNNING;
	r.tenant = "acme";
	r.uid = 70000;
	enc = ledger_encode(&r, &len);
	ASSERT(same_bytes(enc, len, LEDGER_RUNNING));
	free(enc);

	buf = unhex(LEDGER_DONE, &n);
	ASSERT(ledger_decode(buf, n, &d) == 0);
	free(buf);
	ASSERT(d.state == L_DONE && d.uid == 1000 && d.duration_ms == 250 &&
	    d.finished_clock == 300 && d.responselen == 11);
	ASSERT_EQ_STR(d.step_id, "7");
	ASSERT_EQ_STR(d.tool, "ticket.close");
	ASSERT(d.note == NULL);
	enc = ledger_encode(&d, &len);
	ASSERT(same_bytes(enc, len, LEDGER_DONE));
	free(enc);
	ledger_rec_free(&d);
}

static void
test_approval_bytes(void)
{
	struct approval	 a, d;
	char		*enc, *buf;
	size_t		 len, n;

	memset(&a, 0, sizeof(a));
	memcpy(a.id, "0123456789abcdef0123456789abcdef", APPROVAL_ID_LEN + 1);
	a.state = A_APPROVED;
	a.tenant = "acme";
	a.env = "prod";
	a.run_id = "run-1";
	a.tool = "ticket.close";
	a.args_hash = "ab12";
	memset(a.args_sha256, 'f', 64);
	a.args = "\x81\xa2id\x07";
	a.argslen = 5;
	a.uid = 1000;
	a.created_ms = 1700000000000ULL;
	a.expires_at = 1700003600;
	a.decided_ms = 1700000001000ULL;
	a.approver = "root";
	enc = approval_encode(&a, &len);
	ASSERT(same_bytes(enc, len, APPROVAL));
	free(enc);

	buf = unhex(APPROVAL, &n);
	ASSERT(approval_decode(buf, n, &d) == 0);
	free(buf);
	ASSERT(d.state == A_APPROVED && d.argslen == 5 && d.step_id == NULL);
	ASSERT_EQ_STR(d.id, a.id);
	ASSERT_EQ_STR(d.approver, "root");
	enc = approval_encode(&d, &len);
	ASSERT(same_bytes(enc, len, APPROVAL));
	free(enc);
	approval_free(&d);

	/* The asking call's traceparent, when it had one, goes along. */
	a.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	enc = approval_encode(&a, &len);
	ASSERT(approval_decode(enc, len, &d) == 0);
	free(enc);
	ASSERT_EQ_STR(d.traceparent, a.traceparent);
	approval_free(&d);
}

static void
test_payload_bytes(void)
{
	struct checkpoint	 cp;
	char			 kid[17], *buf;
	size_t			 n;

	buf = unhex(PAYLOAD, &n);
	ASSERT(checkpoint_decode_payload((unsigned char *)buf, n, &cp,
	    kid) == 0);
	free(buf);
	ASSERT_EQ_STR(kid, "afce3ca5749166c0");
	ASSERT_EQ_STR(cp.approval_id, "0123456789abcdef0123456789abcdef");
	ASSERT_EQ_STR(cp.step_id, "7");
	ASSERT_EQ_STR(cp.tool, "ticket.close");
	ASSERT(cp.expires_at == 1700003600 && cp.args_sha256[63] == 'e');
	checkpoint_free(&cp);
}

/* The decoder's checks, on a table of its own. */
enum color { C_NONE, C_RED, C_GREEN, C_BLUE };
static const char *const color_names[] = { "none", "red", "green", "blue" };

struct thing {
	char		*name;
	char		 code[5];
	char		 hex[5];
	enum color	 color;
	uint64_t	 n;
	char		*blob;
	size_t		 bloblen;
};

static const struct rec_field thing_fields[] = {
	{ "v", RF_VERSION, RF_REQUIRED, 0, 0, 0, NULL, 0, 0, 0 },
	{ "name", RF_STR, RF_REQUIRED, offsetof(struct thing, name), 0, 0,
	  NULL, 0, 0, 0 },
	{ "code", RF_FIXED, 0, offsetof(struct thing, code), 0, 4, NULL, 0,
	  0, 0 },
	{ "hex", RF_HEX, 0, offsetof(struct thing, hex), 0, 4, NULL, 0, 0, 0 },
	{ "color", RF_ENUM, 0, offsetof(struct thing, color), 0, 0,
	  color_names, 4, C_RED, C_GREEN },	/* blue is never stored */
	{ "n", RF_UINT, 0, offsetof(struct thing, n), 0, 0, NULL, 0, 0, 0 },
	{ "blob", RF_BIN, 0, offsetof(struct thing, blob),
	  offsetof(struct thing, bloblen), 0, NULL, 0, 0, 0 },
};

static int
no_seven(const void *rec)
{
	return ((const struct thing *)rec)->n == 7 ? -1 : 0;
}

static const struct rec_schema thing_schema = {
	"thing", 2, thing_fields, sizeof(thing_fields) / sizeof(thing_fields[0]),
	sizeof(struct thing), no_seven
};

/* Decode a hex string: 0 or -1; refused, the record must be all zero. */
static int
decode_hex(const char *h, struct thing *t)
{
	static const struct thing	 zero;
	size_t				 n;
	char				*buf = unhex(h, &n);
	int				 rc;

	rc = rec_decode(&thing_schema, buf, n, t);
	free(buf);
	if (rc == -1 && memcmp(t, &zero, sizeof(zero)) != 0)
		return -2;
	return rc;
}

static void
test_strict(void)
{
	struct thing	 t;
	char		*enc;
	size_t		 len;

	/* {"v":2,"name":"x"} */
	ASSERT(decode_hex("82a17602a46e616d65a178", &t) == 0);
	ASSERT_EQ_STR(t.name, "x");
	ASSERT(t.blob == NULL && t.color == C_NONE);
	enc = rec_encode(&thing_schema, &t, &len);
	/* Every field but the NULL optional blob, in table order. */
	ASSERT(same_bytes(enc, len, "86a17602a46e616d65a178a4636f6465a0a3686578"
	    "a0a5636f6c6f72a46e6f6e65a16e00"));
	free(enc);
	rec_free(&thing_schema, &t);
	ASSERT(t.name == NULL);

	/* {"v":2,"name":"x","code":"ab\0d"}: a NUL in a fixed string */
	ASSERT(decode_hex("83a17602a46e616d65a178a4636f6465a4616200"
	    "64", &t) == -1);
	/* version 3 */
	ASSERT(decode_hex("82a17603a46e616d65a178", &t) == -1);
	/* no "v", no "name" */
	ASSERT(decode_hex("81a46e616d65a178", &t) == -1);
	ASSERT(decode_hex("81a17602", &t) == -1);
	/* "name" twice: refused, and the first copy freed (ASan) */
	ASSERT(decode_hex("83a17602a46e616d65a178a46e616d65a179", &t) == -1);
	/* "n" twice */
	ASSERT(decode_hex("84a17602a46e616d65a178a16e01a16e02", &t) == -1);
	/* an unknown key */
	ASSERT(decode_hex("83a17602a46e616d65a178a17801", &t) == -1);
	/* a key that is bin, not str */
	ASSERT(decode_hex("82a17602c4046e616d65a178", &t) == -1);
	/* "n" a string; "name" a number */
	ASSERT(decode_hex("83a17602a46e616d65a178a16ea131", &t) == -1);
	ASSERT(decode_hex("82a17602a46e616d6501", &t) == -1);
	/* "code" of 3 bytes; "hex" upper case; then both right */
	ASSERT(decode_hex("83a17602a46e616d65a178a4636f6465a3616263",
	    &t) == -1);
	ASSERT(decode_hex("83a17602a46e616d65a178a3686578a441424344",
	    &t) == -1);
	ASSERT(decode_hex("84a17602a46e616d65a178a4636f6465a461626364"
	    "a3686578a461626364", &t) == 0);
	ASSERT_EQ_STR(t.code, "abcd");
	ASSERT_EQ_STR(t.hex, "abcd");
	rec_free(&thing_schema, &t);
	/* "color": green yes, blue (outside lo..hi) and none no */
	ASSERT(decode_hex("83a17602a46e616d65a178a5636f6c6f72a5677265656e",
	    &t) == 0);
	ASSERT(t.color == C_GREEN);
	rec_free(&thing_schema, &t);
	ASSERT(decode_hex("83a17602a46e616d65a178a5636f6c6f72a4626c7565",
	    &t) == -1);
	ASSERT(decode_hex("83a17602a46e616d65a178a5636f6c6f72a46e6f6e65",
	    &t) == -1);
	/* an empty blob is there (not NULL); the record's own rule */
	ASSERT(decode_hex("83a17602a46e616d65a178a4626c6f62c400", &t) == 0);
	ASSERT(t.blob != NULL && t.bloblen == 0);
	rec_free(&thing_schema, &t);
	ASSERT(decode_hex("83a17602a46e616d65a178a16e07", &t) == -1);
	/* not one map: an array, a map and a byte more */
	ASSERT(decode_hex("92a17602", &t) == -1);
	ASSERT(decode_hex("82a17602a46e616d65a178c0", &t) == -1);
}

int
main(void)
{
	RUN(test_ledger_bytes);
	RUN(test_ledger_forensics);
	RUN(test_approval_bytes);
	RUN(test_payload_bytes);
	RUN(test_strict);
	return tests_failed != 0;
}
