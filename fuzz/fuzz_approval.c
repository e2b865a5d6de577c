/*
 * libFuzzer target for approval_decode() (executor/apstore.c,
 * executor/record.c): the input
 * is an approval record as LMDB would hand it back.  Properties, each an
 * abort() when broken:
 *
 *  - on failure the record is left all zero;
 *  - on success: the input is one msgpack map holding no key twice; the
 *    id is 32 characters and args_sha256 64, neither holding a NUL; state
 *    is pending, approved or denied (expired is never stored); tenant,
 *    env, run_id, tool, args_hash and args are there;
 *  - round trip: approval_encode() then approval_decode() succeeds and
 *    gives the same fields, and encoding that again gives the same bytes.
 *
 * Build: this target links the approval store, executor/apstore.c, and
 * what it stores through (record.c, store.c, apquota.c, and sweep.c with
 * ledger.c for the expiry index) besides common/ and proto/.  The store
 * reads the executor's global 'ex' for its store and quotas; the decoder
 * and encoder never do, so 'ex' is defined here and left NULL.  The
 * handlers (approval.c) are not linked: no stubs of the daemon needed.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/frame.h"
#include "fuzz/record_checks.h"
#include "executor/apstore.h"
#include "executor/executor.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct executor	*ex;

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_approval: %s\n", what);
	abort();
}

static void
check_same(const struct approval *a, const struct approval *b)
{
	if (strcmp(a->id, b->id) != 0 || a->state != b->state ||
	    strcmp(a->args_sha256, b->args_sha256) != 0)
		fail("round trip: id, state or args_sha256");
	if (!str_eq(a->tenant, b->tenant) || !str_eq(a->env, b->env) ||
	    !str_eq(a->run_id, b->run_id) ||
	    !str_eq(a->step_id, b->step_id) || !str_eq(a->tool, b->tool) ||
	    !str_eq(a->args_hash, b->args_hash) ||
	    !str_eq(a->approver, b->approver) || !str_eq(a->note, b->note))
		fail("round trip: a string field");
	if (a->uid != b->uid || a->created_ms != b->created_ms ||
	    a->expires_at != b->expires_at || a->decided_ms != b->decided_ms)
		fail("round trip: an integer field");
	if ((a->args == NULL) != (b->args == NULL) ||
	    a->argslen != b->argslen ||
	    (a->argslen > 0 && memcmp(a->args, b->args, a->argslen) != 0))
		fail("round trip: args");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct approval	 zero;
	struct approval			 a, a2;
	char				*enc, *enc2;
	size_t				 len, len2;
	const char			*bad;

	if (approval_decode((const char *)data, size, &a) == -1) {
		if (memcmp(&a, &zero, sizeof(a)) != 0)
			fail("refused but left the record filled in");
		return 0;
	}
	if ((bad = accepted_record_shape(data, size)) != NULL)
		fail(bad);
	if (strlen(a.id) != APPROVAL_ID_LEN || strlen(a.args_sha256) != 64)
		fail("accepted an id or args_sha256 of the wrong length");
	if (a.state != A_PENDING && a.state != A_APPROVED &&
	    a.state != A_DENIED)
		fail("accepted a state that is never stored");
	if (a.tenant == NULL || a.env == NULL || a.run_id == NULL ||
	    a.tool == NULL || a.args_hash == NULL || a.args == NULL)
		fail("accepted a record without a required field");

	enc = approval_encode(&a, &len);
	if (enc == NULL)
		fail("approval_encode returned NULL");
	if (approval_decode(enc, len, &a2) == -1)
		fail("round trip: approval_encode's output does not decode");
	check_same(&a, &a2);
	enc2 = approval_encode(&a2, &len2);
	if (len2 != len || memcmp(enc, enc2, len) != 0)
		fail("round trip: encoding is not stable");
	free(enc2);
	free(enc);
	approval_free(&a2);
	approval_free(&a);
	return 0;
}
