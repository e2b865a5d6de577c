"""The agent socket basics: hello, allowed reads, refusals with reasons."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


@test
def hello_names_tenant_and_writes():
    with Daemon() as d:
        r = d.client().hello()
        assert r == {"id": 1, "status": "ok", "v": 1, "tenant": "acme",
                     "env": "prod", "writes_enabled": False}, r


@test
def allowed_read_runs_the_tool():
    with Daemon() as d:
        c = d.client()
        r = c.call("echo", {"q": "hi", "n": 1})
        assert r["status"] == "ok", r
        assert r["result"]["args"] == {"n": 1, "q": "hi"}, r
        assert r["result"]["stdin"] == '{"n":1,"q":"hi"}\n', r
        assert r["args_hash"] == args_hash({"q": "hi", "n": 1}), r
        assert "idempotency_key" not in r


@test
def not_allowed_is_denied():
    with Daemon() as d:
        r = d.client().call("rm.rf", {})
        assert r["status"] == "denied" and r["stop_reason"] == "not_allowed", r
        assert "rm.rf" in r["message"]


@test
def write_refused_when_writes_disabled():
    with Daemon() as d:
        c = d.client()
        for t in ("ticket.close", "nomode"):
            r = c.call(t, {"ticket_id": "T-1"})
            assert r["status"] == "denied", r
            assert r["stop_reason"] == "writes_disabled", r


if __name__ == "__main__":
    main()
