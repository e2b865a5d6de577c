"""An agent's W3C traceparent (CONTRACT.md, "Tool backends"): checked by
gatewayd, checked again by the executor, recorded in the audit record of
the call, and passed to the tool's backend (the mcp and http tests see it
arrive); one that is not a traceparent is a bad request."""
import os
import sys

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


if __name__ == "__main__":
    main()
