"""Approvals as an agent meets them: a covered write that must come back
needs_approval, and the refusals a resume gets."""

ROOT_WHO = "uid 0 (root)"      # how an approval by root names its approver


def request_approval(d, c=None, args=None, run_id="run-1", tool_name="rec", **kw):
    """A covered write on c (a new client of d when None): asserts
    needs_approval, returns the answer."""
    c = c or d.client()
    args = {"ticket_id": "T-1", "n": 1} if args is None else args
    r = c.call(tool_name, args, run_id=run_id, **kw)
    assert r["status"] == "needs_approval", r
    return r


def assert_denied(r, reason):
    assert r["status"] == "denied" and r.get("stop_reason") == reason, r
