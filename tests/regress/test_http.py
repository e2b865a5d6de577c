"""The http backend (CONTRACT.md, "http: a tool that is an HTTP API")
through the daemon pair, against tests/tools/https-server: a real HTTPS
server with its own CA that logs every request it reads.  What is sent
(body, credential, key, traceparent), how each class of status maps,
TLS refusals with nothing sent, timeouts, bodies too large, and writes
whose request got no answer, with and without idempotent_upstream."""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

MAX_OUTPUT = 100000
TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def http_conf(tools):
    return writes_config(tools, limits={"max_output": MAX_OUTPUT})


@test
def what_is_sent():
    with Api() as api, Daemon(http_conf({
            "api.read": http_tool(api, "/echo", headers={"X-Team": "support"}),
            "api.get": http_tool(api, "/echo", method="GET"),
            "api.write": http_tool(api, "/echo", mode="write", method="PUT")})) as d:
        set_credential(d, "api.write", "tok-123\n")
        c = d.client()
        args = {"b": [1, 2], "a": "é", "idempotency_key": "agent-chosen"}
        r = c.call("api.read", args, run_id="s1", traceparent=TP)
        assert r["status"] == "ok", r
        got = r["result"]
        assert got["method"] == "POST", got
        assert got["body"] == canonical_json(args).decode(), got
        h = got["headers"]
        assert h["content-type"] == "application/json", h
        assert h["x-team"] == "support", h
        assert h["traceparent"] == TP, h
        # A read: no key; no credential file for it: no Authorization.
        assert "idempotency-key" not in h and "authorization" not in h, h
        # No traceparent from the agent: none sent.
        r = c.call("api.read", {"n": 1}, run_id="s1")
        assert "traceparent" not in r["result"]["headers"], r
        # The method from the catalog; the body is the args all the same.
        r = c.call("api.get", {"q": 1}, run_id="s1")
        assert r["status"] == "ok", r
        assert r["result"]["method"] == "GET", r
        assert r["result"]["body"] == '{"q":1}', r
        # A write: the gateway's key and the scoped credential.
        wargs = {"ticket": "T-1"}
        r = c.call("api.write", wargs, run_id="s1")
        assert r["status"] == "ok", r
        h = r["result"]["headers"]
        assert r["result"]["method"] == "PUT", r
        assert h["idempotency-key"] == key_of("api.write", wargs) == r["idempotency_key"], h
        assert h["authorization"] == "Bearer tok-123", h
        # Another tenant has no credential: none sent.
        r = d.client(uid=OTHER_UID).call("api.write", wargs, run_id="s2")
        assert r["status"] == "ok", r
        assert "authorization" not in r["result"]["headers"], r
        assert r["result"]["headers"]["idempotency-key"] == key_of("api.write", wargs, "globex")
        assert len(api.requests()) == 5, api.requests()
        # The credential is never in the log.
        assert "tok-123" not in d.read_log()
        # Operators see the backend.
        by = {t["name"]: t for t in d.ctl_json("tools")}
        assert by["api.write"]["backend"] == "http" and by["echo"]["backend"] == "exec", by
        assert by["api.write"]["state"] == "ok", by


@test
def a_credential_that_cannot_be_read_sends_nothing():
    with Api() as api, Daemon(http_conf({
            "api.read": http_tool(api, "/echo")})) as d:
        set_credential(d, "api.read", "line1\nline2\n")   # a header would split
        r = d.client().call("api.read", {}, run_id="c1")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert "credential" in r["message"], r
        assert api.requests() == [], api.requests()


@test
def every_status_class():
    with Api() as api, Daemon(http_conf({
            "s404": http_tool(api, "/status/404"),
            "s429": http_tool(api, "/status/429?retry_after=5"),
            "s429d": http_tool(api, "/status/429?retry_date=20"),
            "s503": http_tool(api, "/status/503"),
            "s500w": http_tool(api, "/status/500", mode="write"),
            "redir": http_tool(api, "/redirect"),
            "notjson": http_tool(api, "/notjson"),
            "empty": http_tool(api, "/empty"),
            "huge": http_tool(api, "/huge/%d" % (MAX_OUTPUT + 1)),
            "huge.w": http_tool(api, "/huge/%d" % (4 * MAX_OUTPUT), mode="write"),
            "fits": http_tool(api, "/huge/%d" % MAX_OUTPUT)})) as d:
        c = d.client()
        r = c.call("s404", {}, run_id="st")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert "404" in r["message"] and "retryable" not in r, r
        # The body, sanitized: the server's newline and \x01 are escaped.
        assert "\n" not in r["message"] and "\x01" not in r["message"], r

        r = c.call("s429", {}, run_id="st")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert r["retryable"] is True and r["retry_after_ms"] == 5000, r
        r = c.call("s429d", {}, run_id="st")
        assert r["retryable"] is True and 14000 <= r["retry_after_ms"] <= 21000, r
        r = c.call("s503", {}, run_id="st")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert r["retryable"] is True and "retry_after_ms" not in r, r
        assert "503" in r["message"], r
        # A write answered 5xx changed nothing: failed, not in doubt, and
        # the same call runs again.
        r = c.call("s500w", {"x": 1}, run_id="st")
        assert r["error"] == "tool_failed" and r["retryable"] is True, r
        assert d.ctl_json("ledger") == [], d.ctl_json("ledger")
        r = c.call("s500w", {"x": 1}, run_id="st-again")
        assert r["error"] == "tool_failed" and "in doubt" not in r["message"], r
        assert sum(1 for q in api.requests() if q["path"] == "/status/500") == 2

        # A redirect is not followed: one request, to /redirect only.
        n = len(api.requests())
        r = c.call("redir", {}, run_id="st")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert "302" in r["message"], r
        assert [q["path"] for q in api.requests()[n:]] == ["/redirect"], api.requests()[n:]

        for name in ("notjson", "empty", "huge"):
            r = c.call(name, {}, run_id="st-" + name)
            assert r["status"] == "stopped" and r["stop_reason"] == "invalid_tool_output", \
                (name, r)
        r = c.call("fits", {}, run_id="st")
        assert r["status"] == "ok" and len(r["result"]) == MAX_OUTPUT - 2, r["status"]
        # A write: the API said it acted, so the stop is its outcome.
        r = c.call("huge.w", {}, run_id="st-hw")
        assert r["status"] == "stopped" and r["stop_reason"] == "invalid_tool_output", r
        assert "larger" in r["message"], r
        r = d.client().call("huge.w", {}, run_id="st-hw2")
        assert r["status"] == "stopped" and r.get("replayed") is True, r
        assert sum(1 for q in api.requests() if q["path"].startswith("/huge/400")) == 1


@test
def tls_is_verified_and_nothing_is_sent_to_a_stranger():
    with Api() as api, Api() as other, Api("--name", "elsewhere.example") as misnamed:
        conf = http_conf({
            # other's certificate, checked against api's CA
            "stranger": http_tool(other, "/echo", mode="write", ca=api.ca),
            # its own CA, but a certificate for another name
            "misnamed": http_tool(misnamed, "/echo"),
            # no ca_file: the system store knows no test CA
            "system": {"mode": "read", "http": {"url": api.url("/echo")}},
            "ok": http_tool(api, "/echo")})
        with Daemon(conf) as d:
            c = d.client()
            r = c.call("stranger", {"t": 1}, run_id="tls")
            assert r["status"] == "error" and r["error"] == "tool_failed", r
            assert "TLS" in r["message"] and "nothing was sent" in r["message"], r
            assert other.requests() == [], other.requests()
            assert other.tls_failures(), "no handshake reached the server"
            # Nothing was sent: not in doubt, and it may run again.
            assert d.ctl_json("ledger") == []
            r = c.call("stranger", {"t": 1}, run_id="tls-again")
            assert r["error"] == "tool_failed" and "TLS" in r["message"], r
            r = c.call("misnamed", {}, run_id="tls")
            assert r["error"] == "tool_failed" and "TLS" in r["message"], r
            assert misnamed.requests() == [], misnamed.requests()
            r = c.call("system", {}, run_id="tls")
            assert r["error"] == "tool_failed" and "TLS" in r["message"], r
            assert api.requests() == [], api.requests()
            r = c.call("ok", {}, run_id="tls")
            assert r["status"] == "ok", r
            assert len(api.requests()) == 1


@test
def unreachable_is_unavailable_and_plain_http_works():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()       # nobody listens there now
    with Api("--plain") as plain, Daemon(http_conf({
            "down.w": {"mode": "write",
                       "http": {"url": "https://127.0.0.1:%d/x" % port}},
            "plain": http_tool(plain, "/echo")})) as d:
        c = d.client()
        r = c.call("down.w", {"a": 1}, run_id="u")
        assert r["status"] == "error" and r["error"] == "unavailable", r
        assert d.ctl_json("ledger") == []
        r = c.call("down.w", {"a": 1}, run_id="u-again")
        assert r["error"] == "unavailable", r
        r = c.call("plain", {"p": 1}, run_id="u")
        assert r["status"] == "ok" and r["result"]["body"] == '{"p":1}', r


@test
def a_write_never_sent_may_be_asked_again_in_its_run():
    """Regression: an unavailable write kept its place in the run, so the
    same write asked again in the run was stopped as a duplicate ("this
    write already ran in this run") and it used up the run's budget."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with Api() as api, Daemon(writes_config({
            "down.w": {"mode": "write",
                       "http": {"url": "https://127.0.0.1:%d/x" % port}},
            "up.w": http_tool(api, "/echo", mode="write")},
            limits={"max_output": MAX_OUTPUT},
            budgets={"max_writes_per_run": 1})) as d:
        c = d.client()
        for _ in range(3):
            r = c.call("down.w", {"a": 1}, run_id="again")
            assert r["status"] == "error" and r["error"] == "unavailable", r
        # The run's one write is still there to use.
        r = c.call("up.w", {"b": 2}, run_id="again")
        assert r["status"] == "ok", r
        r = c.call("up.w", {"b": 3}, run_id="again")
        assert r["status"] == "stopped" and r["stop_reason"] == "budget_exceeded", r


@test
def a_slow_answer_is_a_timeout():
    with Api() as api, Daemon(http_conf({
            "slow": http_tool(api, "/slow/3", timeout_ms=500),
            "slow.w": http_tool(api, "/slow/3", mode="write", timeout_ms=500),
            "ok": http_tool(api, "/echo")})) as d:
        c = d.client()
        t0 = time.time()
        r = c.call("slow", {}, run_id="t")
        took = time.time() - t0
        assert r["status"] == "error" and r["error"] == "tool_timeout", r
        assert 0.4 <= took < 2.5, took
        # A write that timed out is in doubt.
        args = {"w": 1}
        r = c.call("slow.w", args, run_id="t")
        assert r["error"] == "tool_timeout", r
        assert [i["key"] for i in d.ctl_json("ledger")] == [key_of("slow.w", args)]
        # The loop went on meanwhile, and goes on.
        r = c.call("ok", {}, run_id="t")
        assert r["status"] == "ok", r


@test
def a_write_that_got_no_answer_is_in_doubt_and_not_sent_again():
    with Api() as api, Daemon(http_conf({
            "drop.w": http_tool(api, "/drop", mode="write"),
            "drop.r": http_tool(api, "/drop"),
            "ok": http_tool(api, "/echo")})) as d:
        c = d.client()
        # A connection to the API is cached now.  curl, on its own, sends
        # a request again when a reused connection closes without an
        # answer; a write must not go out twice that way.
        assert c.call("ok", {}, run_id="d")["status"] == "ok"
        args = {"ticket": "D-1"}
        key = key_of("drop.w", args)
        r = c.call("drop.w", args, run_id="d")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert "no answer" in r["message"], r
        items = d.ctl_json("ledger")
        assert [(i["key"], i["state"]) for i in items] == [(key, "in_doubt")], items
        drops = lambda: [q for q in api.requests() if q["path"] == "/drop"]  # noqa: E731
        assert len(drops()) == 1, drops()
        # The same call again is refused, not sent.
        r = c.call("drop.w", args, run_id="d-again")
        assert r["status"] == "error" and "in doubt" in r["message"], r
        assert key in r["message"], r
        assert len(drops()) == 1, drops()
        # A read that got no answer just failed.
        r = c.call("drop.r", {}, run_id="d")
        assert r["status"] == "error" and r["error"] == "tool_failed", r


@test
def idempotent_upstream_resends_with_the_same_key():
    with Api() as api, Daemon(http_conf({
            "once.w": http_tool(api, "/drop-once/a", mode="write",
                                idempotent_upstream=True),
            "never.w": http_tool(api, "/drop", mode="write", idempotent_upstream=True,
                                 timeout_ms=1000)})) as d:
        c = d.client()
        args = {"ticket": "I-1"}
        key = key_of("once.w", args)
        r = c.call("once.w", args, run_id="i")
        assert r["status"] == "ok", r
        reqs = api.requests()
        assert [q["path"] for q in reqs] == ["/drop-once/a"] * 2, reqs
        assert [q["headers"]["idempotency-key"] for q in reqs] == [key, key], reqs
        assert reqs[0]["body"] == reqs[1]["body"] == canonical_json(args).decode()
        assert r["result"]["headers"]["idempotency-key"] == key, r
        assert d.ctl_json("ledger") == []
        # Done: the same call is a replay, nothing more is sent.
        r = c.call("once.w", args, run_id="i-again")
        assert r["status"] == "ok" and r["replayed"] is True, r
        assert len(api.requests()) == 2
        # An API that never answers: resent while timeout_ms lasts, then
        # a timeout (in doubt), with every attempt logged.
        t0 = time.time()
        r = c.call("never.w", {"n": 1}, run_id="i")
        took = time.time() - t0
        assert r["status"] == "error" and r["error"] == "tool_timeout", r
        assert 0.9 <= took < 3, took
        tries = [q for q in api.requests() if q["path"] == "/drop"]
        assert len(tries) >= 3, tries
        assert {q["headers"]["idempotency-key"] for q in tries} == {key_of("never.w", {"n": 1})}
        assert [i["key"] for i in d.ctl_json("ledger")] == [key_of("never.w", {"n": 1})]


@test
def a_write_replayed_under_its_key_runs_once():
    with Api() as api, Daemon(http_conf({
            "w": http_tool(api, "/echo", mode="write")})) as d:
        c = d.client()
        args = {"ticket": "R-1"}
        r1 = c.call("w", args, run_id="r")
        assert r1["status"] == "ok" and r1["replayed"] is False, r1
        r2 = c.call("w", dict(args, idempotency_key="other"), run_id="r-again")
        assert r2["status"] == "ok" and r2["replayed"] is True, r2
        assert r2["result"] == r1["result"], (r1, r2)
        r3 = d.client().call("w", args, run_id="r-other")
        assert r3["replayed"] is True, r3
        assert len(api.requests()) == 1, api.requests()
        # Other args: another key, another request.
        r = c.call("w", {"ticket": "R-2"}, run_id="r")
        assert r["replayed"] is False and len(api.requests()) == 2


@test
def many_requests_side_by_side_reuse_connections():
    with Api() as api, Daemon(http_conf({
            "slow": http_tool(api, "/slow/0.5", timeout_ms=5000),
            "ok": http_tool(api, "/echo")})) as d:
        t0 = time.time()
        res = concurrent_calls(d, [("slow", {"i": i}, "par-%d" % i) for i in range(8)])
        took = time.time() - t0
        assert all(r["status"] == "ok" for r in res), res
        assert took < 3, took   # side by side, not one after the other
        c = d.client()
        ports = set()
        for i in range(5):
            r = c.call("ok", {"i": i}, run_id="reuse")
            assert r["status"] == "ok", r
            ports.add(r["result"]["client_port"])
        assert len(ports) == 1, ports


@test
def connections_are_reused_with_many_calls_in_flight():
    """Regression: only 8 idle connections were kept, so with more calls
    in flight most calls opened a connection (and did a TLS handshake)."""
    with Api() as api, Daemon(http_conf({
            "slow": http_tool(api, "/slow/0.3", timeout_ms=5000)})) as d:
        n = 24
        first = concurrent_calls(d, [("slow", {"i": i}, "r1-%d" % i) for i in range(n)])
        assert all(r["status"] == "ok" for r in first), first
        ports = {r["result"]["client_port"] for r in first}
        second = concurrent_calls(d, [("slow", {"i": i}, "r2-%d" % i) for i in range(n)])
        assert all(r["status"] == "ok" for r in second), second
        new = {r["result"]["client_port"] for r in second} - ports
        # A few may race a connection back into the cache; not most.
        assert len(new) <= 4, (len(new), len(ports))


@test
def a_read_whose_agent_hangs_up_is_cancelled():
    with Api() as api, Daemon(http_conf({
            "slow": http_tool(api, "/slow/20", timeout_ms=30000)})) as d:
        c = d.client()
        c.send({"op": "call", "id": 1, "run_id": "hup", "tool": "slow", "args": {}})
        wait_for(lambda: len(api.requests()) == 1, 10, "the request at the API")
        t0 = time.time()
        c.close()

        def recorded():
            return [a for a in read_audit(d)
                    if a.get("run_id") == "hup" and a.get("event") == "call"]
        wait_for(lambda: recorded(), 10, "the cancelled read's record")
        assert time.time() - t0 < 5
        a = recorded()[0]
        assert a["decision"] == "error" and a["error"] == "unavailable", a
        assert "cancelled" in a["note"], a
        # The executor goes on serving.
        assert d.ctl_json("status")["gatewayd_connected"] is True


@test
def the_shutdown_deadline_ends_a_write_in_doubt():
    api = Api()
    d = Daemon(writes_config({"slow.w": http_tool(api, "/slow/30", mode="write",
                                                  timeout_ms=60000)},
                             limits={"shutdown_s": 1}), name="tg-http-stop")
    try:
        d.start()
        args = {"s": 1}
        c = d.client()
        c.send({"op": "call", "id": 1, "run_id": "stop", "tool": "slow.w", "args": args})
        wait_for(lambda: len(api.requests()) == 1, 10, "the request at the API")
        t0 = time.time()
        d.proc.send_signal(signal.SIGTERM)
        rc = d.proc.wait(15)
        assert rc == 0, (rc, d.read_log())
        assert time.time() - t0 < 8, time.time() - t0
        c.close()
        d.stop(expect_rc=0)
        d.start()
        items = d.ctl_json("ledger")
        assert [(i["key"], i["state"]) for i in items] == \
            [(key_of("slow.w", args), "in_doubt")], items
        assert "shutdown" in items[0]["note"], items
        assert len(api.requests()) == 1
        d.stop()
    finally:
        d.cleanup()
        api.close()


if __name__ == "__main__":
    main()
