/*
 * libFuzzer target for ledger_decode() (executor/ledger.c,
 * executor/record.c): the input is
 * a ledger record as LMDB would hand it back.  Properties, each an
 * abort() when broken:
 *
 *  - on failure the record is left all zero (nothing leaks, nothing to
 *    free);
 *  - on success: state is running, done, failed or in_doubt; a done
 *    record carries its response; the input is one msgpack map holding
 *    no key twice;
 *  - round trip: ledger_encode() then ledger_decode() succeeds and gives
 *    the same fields (strings, NULL or not, integers, the response
 *    bytes), and encoding that again gives the same bytes.
 *
 * Build: ledger.c decodes with record.c and calls into store.c
 * (the transactions, stx_*) for its LMDB half, so this target links
 * executor/ledger.c, executor/record.c and executor/store.c besides
 * common/ and proto/.
 * Nothing else is needed.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/frame.h"
#include "fuzz/record_checks.h"
#include "executor/ledger.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_ledger: %s\n", what);
	abort();
}

static void
check_same(const struct ledger_rec *a, const struct ledger_rec *b)
{
	if (a->state != b->state)
		fail("round trip: state");
	if (!str_eq(a->tenant, b->tenant) || !str_eq(a->env, b->env) ||
	    !str_eq(a->tool, b->tool) || !str_eq(a->run_id, b->run_id) ||
	    !str_eq(a->step_id, b->step_id) ||
	    !str_eq(a->args_hash, b->args_hash) || !str_eq(a->note, b->note) ||
	    !str_eq(a->approver, b->approver) ||
	    !str_eq(a->compensates, b->compensates))
		fail("round trip: a string field");
	if (a->uid != b->uid || a->started_ms != b->started_ms ||
	    a->finished_ms != b->finished_ms ||
	    a->duration_ms != b->duration_ms || a->asks != b->asks)
		fail("round trip: an integer field");
	if ((a->args == NULL) != (b->args == NULL) ||
	    a->argslen != b->argslen ||
	    (a->argslen > 0 && memcmp(a->args, b->args, a->argslen) != 0))
		fail("round trip: the args");
	if ((a->response == NULL) != (b->response == NULL) ||
	    a->responselen != b->responselen ||
	    (a->responselen > 0 &&
	    memcmp(a->response, b->response, a->responselen) != 0))
		fail("round trip: response");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ledger_rec	 zero;
	struct ledger_rec		 r, r2;
	char				*enc, *enc2;
	size_t				 len, len2;
	const char			*bad;

	if (ledger_decode((const char *)data, size, &r) == -1) {
		if (memcmp(&r, &zero, sizeof(r)) != 0)
			fail("refused but left the record filled in");
		return 0;
	}
	if ((bad = accepted_record_shape(data, size)) != NULL)
		fail(bad);
	if (r.state != L_RUNNING && r.state != L_DONE &&
	    r.state != L_FAILED && r.state != L_IN_DOUBT)
		fail("accepted a state out of range");
	if (r.state == L_DONE && r.response == NULL)
		fail("accepted a done record without its response");
	if (strcmp(ledger_state_str(r.state), "unknown") == 0)
		fail("a decoded state has no name");

	enc = ledger_encode(&r, &len);
	if (enc == NULL)
		fail("ledger_encode returned NULL");
	if (ledger_decode(enc, len, &r2) == -1)
		fail("round trip: ledger_encode's output does not decode");
	check_same(&r, &r2);
	enc2 = ledger_encode(&r2, &len2);
	if (len2 != len || memcmp(enc, enc2, len) != 0)
		fail("round trip: encoding is not stable");
	free(enc2);
	free(enc);
	ledger_rec_free(&r2);
	ledger_rec_free(&r);
	if (memcmp(&r, &zero, sizeof(r)) != 0)
		fail("ledger_rec_free left fields behind");
	return 0;
}
