"""The http backend against an API that speaks HTTP/2 only
(tests/tools/h2-server: node's own http2 module, TLS with its own CA,
ALPN "h2" and nothing else), as most public APIs answer today.  curl
negotiates HTTP/2 by itself; these tests hold that what is sent, how
answers map, and "sent or not" for writes stay the same on it, and that
no request joins a write's connection (HTTP/2 multiplexing is off)."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@test
def what_is_sent_over_http2():
    with Api(h2=True) as api, Daemon(writes_config({
            "api.read": http_tool(api, "/echo", headers={"X-Team": "support"}),
            "api.write": http_tool(api, "/echo", mode="write", method="PUT")})) as d:
        set_credential(d, "api.write", "tok-h2\n")
        c = d.client()
        args = {"b": [1, 2], "a": "é"}
        r = c.call("api.read", args, run_id="h1", traceparent=TP)
        assert r["status"] == "ok", r
        got = r["result"]
        assert got["version"] == "2.0" and got["method"] == "POST", got
        assert got["body"] == canonical_json(args).decode(), got
        h = got["headers"]
        assert h["content-type"] == "application/json", h
        assert h["x-team"] == "support" and h["traceparent"] == TP, h
        assert "idempotency-key" not in h and "authorization" not in h, h
        wargs = {"ticket": "H-1"}
        r = c.call("api.write", wargs, run_id="h1")
        assert r["status"] == "ok" and r["result"]["method"] == "PUT", r
        h = r["result"]["headers"]
        assert h["idempotency-key"] == key_of("api.write", wargs), h
        assert h["authorization"] == "Bearer tok-h2", h
        # Replayed under its key: nothing more is sent.
        r = d.client().call("api.write", wargs, run_id="h2")
        assert r["status"] == "ok" and r["replayed"] is True, r
        assert len(api.requests()) == 2, api.requests()


@test
def statuses_and_retry_after_over_http2():
    with Api(h2=True) as api, Daemon(writes_config({
            "s404": http_tool(api, "/status/404"),
            "s429": http_tool(api, "/status/429?retry_after=5"),
            "s503w": http_tool(api, "/status/503", mode="write")})) as d:
        c = d.client()
        r = c.call("s404", {}, run_id="st")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert "404" in r["message"] and "retryable" not in r, r
        r = c.call("s429", {}, run_id="st")
        assert r["retryable"] is True and r["retry_after_ms"] == 5000, r
        # A write answered 5xx changed nothing: failed, and it runs again.
        r = c.call("s503w", {"x": 1}, run_id="st")
        assert r["error"] == "tool_failed" and r["retryable"] is True, r
        assert d.ctl_json("ledger") == []
        r = c.call("s503w", {"x": 1}, run_id="st-again")
        assert "in doubt" not in r["message"], r
        assert sum(1 for q in api.requests() if q["path"] == "/status/503") == 2


@test
def a_reset_stream_leaves_a_write_in_doubt_and_it_is_not_sent_again():
    # RST_STREAM after the request was read: the API may have acted.
    with Api(h2=True) as api, Daemon(writes_config({
            "reset.w": http_tool(api, "/reset", mode="write"),
            "reset.r": http_tool(api, "/reset"),
            "ok": http_tool(api, "/echo")})) as d:
        c = d.client()
        assert c.call("ok", {}, run_id="r")["status"] == "ok"
        args = {"ticket": "R-1"}
        key = key_of("reset.w", args)
        r = c.call("reset.w", args, run_id="r")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert "no answer" in r["message"], r
        items = d.ctl_json("ledger")
        assert [(i["key"], i["state"]) for i in items] == [(key, "in_doubt")], items
        resets = lambda: [q for q in api.requests() if q["path"] == "/reset"]  # noqa: E731
        assert len(resets()) == 1, resets()
        r = c.call("reset.w", args, run_id="r-again")
        assert r["status"] == "error" and "in doubt" in r["message"], r
        assert len(resets()) == 1, resets()
        r = c.call("reset.r", {}, run_id="r")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        # The connection is still good for the others.
        assert c.call("ok", {"n": 2}, run_id="r")["status"] == "ok"


@test
def idempotent_upstream_resends_a_reset_write_with_its_key():
    with Api(h2=True) as api, Daemon(writes_config({
            "once.w": http_tool(api, "/reset-once/a", mode="write",
                              idempotent_upstream=True)})) as d:
        args = {"ticket": "I-1"}
        key = key_of("once.w", args)
        r = d.client().call("once.w", args, run_id="i")
        assert r["status"] == "ok", r
        reqs = api.requests()
        assert [q["path"] for q in reqs] == ["/reset-once/a"] * 2, reqs
        assert [q["headers"]["idempotency-key"] for q in reqs] == [key, key], reqs
        assert reqs[0]["body"] == reqs[1]["body"] == canonical_json(args).decode()
        assert d.ctl_json("ledger") == []


@test
def calls_side_by_side_run_side_by_side_and_connections_are_kept():
    # One request per connection at a time, HTTP/2 or not (see
    # a_write_whose_connection_others_would_join_is_sent_once); connections
    # are kept and reused between calls.
    with Api(h2=True) as api, Daemon(writes_config({
            "slow": http_tool(api, "/slow/0.5", timeout_ms=5000)})) as d:
        n = 16
        t0 = time.time()
        res = concurrent_calls(d, [("slow", {"i": i}, "par-%d" % i) for i in range(n)])
        took = time.time() - t0
        assert all(r["status"] == "ok" for r in res), res
        assert took < 4, took   # side by side, not one after the other
        first = {r["result"]["session"] for r in res}
        assert len(first) == n, first   # none shared a connection
        again = concurrent_calls(d, [("slow", {"i": i}, "again-%d" % i)
                                     for i in range(n)])
        assert all(r["status"] == "ok" for r in again), again
        new = {r["result"]["session"] for r in again} - first
        assert len(new) <= 4, (len(new), first)


@test
def a_write_whose_connection_others_would_join_is_sent_once():
    """Regression: a write opens a connection of its own, and with HTTP/2
    a read started while it ran became a stream of that connection, which
    made it a "reused" one for libcurl.  When the API then dropped the
    connection with no answer, libcurl could send the write again by
    itself on a new one (CI saw it once: the same key twice; it depends on
    which transfer reads the close first).  Now nothing joins a write's
    connection, so it stays one libcurl never sends again."""
    with Api(h2=True) as api, Daemon(writes_config({
            "hold.w": http_tool(api, "/hold-drop/0.8", mode="write"),
            "slow": http_tool(api, "/slow/2", timeout_ms=5000),
            "ok": http_tool(api, "/echo")})) as d:
        w, r = d.client(), d.client()
        w.s.settimeout(10)
        r.s.settimeout(10)
        w.send({"op": "call", "id": 1, "run_id": "j", "tool": "hold.w",
                "args": {"ticket": "J-1"}})
        wait_for(lambda: any(q["path"].startswith("/hold-drop")
                             for q in api.requests()), 5, "the write to be sent")
        # Reads while the write waits for its answer: one still running
        # when the API drops the write's connection, others done before.
        r.send({"op": "call", "id": 2, "run_id": "j", "tool": "slow", "args": {}})
        for i in range(3):
            assert d.client().call("ok", {"i": i}, run_id="j")["status"] == "ok"
        wait_for(lambda: any(q["path"] == "/slow/2" for q in api.requests()), 5,
                 "the slow read to be sent")
        reqs = api.requests()
        write_session = reqs[0]["session"]
        # What makes it safe: nothing joins the write's connection.
        assert all(q["session"] != write_session for q in reqs[1:]), reqs
        a = w.recv()
        assert a["status"] == "error" and a["error"] == "tool_failed", a
        assert "no answer" in a["message"], a
        assert r.recv()["status"] == "ok"
        time.sleep(0.5)
        holds = [q for q in api.requests() if q["path"].startswith("/hold-drop")]
        assert len(holds) == 1, api.requests()
        items = d.ctl_json("ledger")
        assert [i["state"] for i in items] == ["in_doubt"], items


if __name__ == "__main__":
    main()
