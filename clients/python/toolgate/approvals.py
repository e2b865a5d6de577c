"""Waiting for an operator's decision and resuming the write it held."""
import time

from .errors import ApprovalTimeout

WAIT_CAP_MS = 300000   # the gate caps one wait here


def wait_and_resume(gw, needs_approval, timeout_s=300.0, on_pending=None, slice_s=30.0):
    """Wait for the approval a NeedsApproval names, then resume it.

    Waits in slices of at most slice_s seconds (a `wait` each, so a
    connection is never held by one long request), for timeout_s in all.
    on_pending(needs_approval), when given, is called once before the
    first wait (to tell a human which approval to decide, say).

    Approved: returns resume()'s Result (exactly one execution, however
    often this is retried with the same checkpoint).  Denied or expired:
    the resume raises ApprovalDenied (with the operator's note) or
    ApprovalExpired, as the gate words it.  Nobody decided within
    timeout_s: ApprovalTimeout, carrying the checkpoint to resume later.
    """
    if on_pending is not None:
        on_pending(needs_approval)
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ApprovalTimeout("approval %s: nobody decided within %g s" %
                                  (needs_approval.approval_id, timeout_s), needs_approval)
        ms = max(1, min(int(left * 1000), int(slice_s * 1000), WAIT_CAP_MS))
        state = gw.wait(needs_approval.approval_id, ms)
        if state != "pending":
            # approved, denied, expired (or a state this client does not
            # know): the resume runs the write or says why not.
            return gw.resume(needs_approval.checkpoint)
