"""An agent's W3C traceparent (CONTRACT.md, "Tool backends"): checked by
gatewayd, checked again by the executor, recorded in the audit record of
the call, and passed to the tool's backend (the mcp and http tests see it
arrive); one that is not a traceparent is a bad request."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def conf():
    c = writes_config({"rec": {"mode": "write", "exec": [tool("echo-args")]}})
    return c


def audit_of(d, run_id):
    return [r for r in read_audit(d) if r.get("run_id") == run_id and r.get("event") == "call"]


@test
def traceparent_is_in_the_audit_record():
    with Daemon(conf()) as d:
        c = d.client()
        r = c.call("echo", {"q": 1}, run_id="run-tp", traceparent=TP)
        assert r["status"] == "ok", r
        r = c.call("rec", {"q": 2}, run_id="run-tp", traceparent=TP)
        assert r["status"] == "ok", r
        r = c.call("echo", {"q": 3}, run_id="run-tp")
        assert r["status"] == "ok", r
        recs = audit_of(d, "run-tp")
        assert [x.get("traceparent") for x in recs] == [TP, TP, None], recs


@test
def a_bad_traceparent_is_a_bad_request():
    bad = [
        "",                                                          # empty
        TP.upper(),                                                  # uppercase
        "01" + TP[2:],                                               # unknown version
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",                   # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",   # zero parent id
        TP + "-x",                                                   # too long
        TP[:-1],                                                     # too short
        TP.replace("-", "\n", 1),                                    # header injection
        7,                                                           # not a string
    ]
    with Daemon(conf()) as d:
        c = d.client()
        for tp in bad:
            r = c.call("echo", {}, run_id="run-bad", traceparent=tp)
            assert r["status"] == "error" and r["error"] == "bad_request", (tp, r)
            assert "traceparent" in r["message"], r
        # The connection still serves, and nothing ran.
        assert c.call("echo", {}, run_id="run-bad")["status"] == "ok"
        assert all(x.get("traceparent") is None for x in audit_of(d, "run-bad"))


@test
def a_write_resumed_after_its_approval_keeps_the_asking_calls_traceparent():
    """The approval record keeps the asking call's traceparent: the
    approval's records (requested, decision) carry it, and so do the
    records of the write resumed after it (the resume carries none)."""
    effects = os.path.join(tempfile.mkdtemp(prefix="tp-"), "effects")
    with Daemon(approvals_config(effects, require=["rec"])) as d:
        c = d.client()
        r = c.call("rec", {"q": 4}, run_id="run-ap", traceparent=TP)
        assert r["status"] == "needs_approval", r
        assert d.ctl("approve", r["approval_id"])[0] == 0
        y = c.resume(r["checkpoint"])
        assert y["status"] == "ok", y
        recs = [x for x in read_audit(d) if x.get("run_id") == "run-ap"]
        events = [(x.get("event"), x.get("decision")) for x in recs]
        assert ("approval", "requested") in events and \
            ("decision", "approved") in events, events
        assert all(x.get("traceparent") == TP for x in recs), \
            [(x.get("event"), x.get("decision"), x.get("traceparent")) for x in recs]
        # Without one, none is made up.
        r = c.call("rec", {"q": 5}, run_id="run-ap2")
        assert d.ctl("approve", r["approval_id"])[0] == 0
        assert c.resume(r["checkpoint"])["status"] == "ok"
        assert all("traceparent" not in x for x in read_audit(d)
                   if x.get("run_id") == "run-ap2")


if __name__ == "__main__":
    main()
