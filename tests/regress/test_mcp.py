"""The mcp backend, through the daemon pair, against a real MCP server of
our own (tests/tools/mcp-server): the handshake, calls in flight side by
side, writes once, a crash mid-call, a hang, a changed definition,
isError, a server's own requests, junk on stdout, tenant_env servers with
their credential, and _meta as sent."""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

MAX_OUTPUT = 100000
TOOLS = {
    # catalog name: (server's tool, mode, extra)
    "m.echo": ("echo", "read", {}),
    "m.rec": ("record", "write", {}),
    "m.note": ("note", "write", {}),
    "m.rec.crash": ("record.crash", "write", {}),
    "m.slow": ("slow", "read", {"timeout_ms": 10000}),
    "m.crash": ("crash", "read", {}),
    "m.hang": ("hang", "read", {"timeout_ms": 400}),
    "m.hang.w": ("hang", "write", {"timeout_ms": 400}),
    "m.hang.long": ("hang", "write", {"timeout_ms": 60000}),
    "m.fail": ("fail", "read", {}),
    "m.fail.w": ("fail", "write", {}),
    "m.rpcerror": ("rpcerror", "read", {}),
    "m.ask": ("ask", "read", {}),
    "m.junk": ("junk", "read", {}),
    "m.change": ("change", "read", {}),
    "m.big": ("big", "read", {}),
    "m.env": ("env", "read", {}),
    "m.flood": ("flood", "read", {}),
    "m.missing": ("no-such-tool", "read", {}),
}


def mcp_conf(files, server=None, extra_args=(), tools=TOOLS, **over):
    over["limits"] = dict({"max_output": MAX_OUTPUT}, **over.get("limits", {}))
    return mcp_server_conf(files, tools, dict({"max_inflight": 8}, **(server or {})),
                           extra_args, **over)


_tries = [0]


def wait_ready(d, tool_name="m.echo", uid=None, timeout=15):
    """Calls are unavailable until the server has answered initialize and
    tools/list: call until one goes through (each try its own args and
    run, or the gate would see a loop)."""
    deadline = time.time() + timeout
    while True:
        _tries[0] += 1
        r = d.client(uid=uid).call(tool_name, {"ping": _tries[0]},
                                   run_id="ready-%d" % _tries[0])
        if r["status"] == "ok":
            return r
        assert r["status"] == "error" and r["error"] == "unavailable", r
        if time.time() > deadline:
            raise AssertionError("server never ready: %s\n%s" % (r, d.read_log()[-3000:]))
        time.sleep(0.05)


@test
def handshake_and_a_read():
    f = Files()
    with Daemon(mcp_conf(f)) as d:
        r = wait_ready(d)
        init = f.received("initialize")
        assert len(init) == 1, init
        p = init[0]["params"]
        assert p["protocolVersion"] == "2025-11-25", p
        assert p["capabilities"] == {}, p
        assert p["clientInfo"]["name"] == "toolgate", p
        assert len(f.received("notifications/initialized")) == 1
        # Both pages of tools/list were read: a tool of the second works.
        lists = f.received("tools/list")
        assert [m.get("params", {}).get("cursor") for m in lists[:2]] == [None, "page2"], lists
        args = {"q": "hello", "n": [1, 2]}
        r = d.client().call("m.echo", args, run_id="run-r")
        assert r["status"] == "ok", r
        res = r["result"]
        # content and structuredContent, nothing else the server added.
        assert set(res) == {"content", "structuredContent"}, res
        assert res["structuredContent"]["args"] == args, res
        meta = res["structuredContent"]["meta"]
        assert meta == {"io.toolgate/run_id": "run-r", "io.toolgate/tenant": "acme"}, meta
        assert json.loads(res["content"][0]["text"])["args"] == args, res
        # Our request ids are integers, each used once.
        calls = f.received("tools/call")
        ids = [m["id"] for m in calls]
        assert all(isinstance(i, int) for i in ids) and len(set(ids)) == len(ids), ids
        assert calls[-1]["params"]["name"] == "echo", calls[-1]
        # The agent's traceparent goes along in _meta.
        tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        r = d.client().call("m.echo", {"t": 1}, run_id="run-r", traceparent=tp)
        assert r["result"]["structuredContent"]["meta"]["traceparent"] == tp, r
        # The server's environment: PATH and the configured env only.
        r = d.client().call("m.env", {}, run_id="run-r")
        env = r["result"]["structuredContent"]["env"]
        assert set(env) == {"PATH"}, env


def tool_calls(f, name):
    return [m for m in f.received("tools/call") if m["params"]["name"] == name]


def starts(f):
    return f.events("start")


@test
def calls_in_flight_side_by_side_on_one_process():
    f = Files()
    with Daemon(mcp_conf(f)) as d:
        wait_ready(d)
        n = 6
        t0 = time.time()
        rs = concurrent_calls(d, [("m.slow", {"delay": 1.0, "n": i}, "run-p%d" % i)
                                  for i in range(n)])
        took = time.time() - t0
        assert all(r["status"] == "ok" for r in rs), rs
        assert [r["result"]["structuredContent"]["n"] for r in rs] == list(range(n)), rs
        # One after another would take n seconds.
        assert took < 2.5, took
        assert len(set(e["pid"] for e in f.events("slow-begin"))) == 1
        begins = sorted(e["t"] for e in f.events("slow-begin"))
        ends = sorted(e["t"] for e in f.events("slow-end"))
        assert len(begins) == n and begins[-1] < ends[0], (begins, ends)


@test
def max_inflight_caps_what_is_sent_and_the_rest_waits():
    f = Files()
    with Daemon(mcp_conf(f, server={"max_inflight": 2})) as d:
        wait_ready(d)
        t0 = time.time()
        rs = concurrent_calls(d, [("m.slow", {"delay": 0.5, "n": i}, "run-q%d" % i)
                                  for i in range(4)])
        took = time.time() - t0
        assert all(r["status"] == "ok" for r in rs), rs
        assert took >= 0.95, took
        # Never more than two at once on the server.
        evs = sorted([(e["t"], 1) for e in f.events("slow-begin")] +
                     [(e["t"], -1) for e in f.events("slow-end")])
        cur = peak = 0
        for _, delta in evs:
            cur += delta
            peak = max(peak, cur)
        assert peak == 2, evs


@test
def a_write_runs_once_and_replays():
    f = Files()
    with Daemon(mcp_conf(f)) as d:
        wait_ready(d)
        args = {"ticket": "T-1", "note": "x"}
        r = d.client().call("m.rec", args, run_id="w1")
        assert r["status"] == "ok" and r["replayed"] is False, r
        key = key_of("m.rec", args)
        assert r["idempotency_key"] == key, r
        r2 = d.client().call("m.rec", args, run_id="w2")
        assert r2["status"] == "ok" and r2["replayed"] is True, r2
        assert r2["result"] == r["result"], (r, r2)
        eff = f.effects_lines()
        assert len(eff) == 1, eff
        assert eff[0]["args"] == args, eff
        assert eff[0]["meta"] == {"io.toolgate/run_id": "w1", "io.toolgate/tenant": "acme",
                                  "io.toolgate/idempotency_key": key}, eff
        assert len(tool_calls(f, "record")) == 1


@test
def crash_mid_call_fails_a_read_leaves_a_write_in_doubt_and_restarts():
    f = Files()
    with Daemon(mcp_conf(f)) as d:
        wait_ready(d)
        pid0 = starts(f)[-1]["pid"]
        r = d.client().call("m.crash", {}, run_id="c1")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert "in flight" in r["message"], r
        # Restarted, and calls work again.
        wait_ready(d)
        assert starts(f)[-1]["pid"] != pid0, starts(f)
        args = {"ticket": "T-2"}
        key = key_of("m.rec.crash", args)
        r = d.client().call("m.rec.crash", args, run_id="c2")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        items = d.ctl_json("ledger")
        assert [(i["key"], i["state"]) for i in items] == [(key, "in_doubt")], items
        wait_ready(d)
        # Never sent again: refused as in doubt, the server saw it once.
        r = d.client().call("m.rec.crash", args, run_id="c3")
        assert r["status"] == "error" and "in doubt" in r["message"], r
        assert len(f.effects_lines()) == 1
        assert len(tool_calls(f, "record.crash")) == 1
        r = d.client().call("m.echo", {"after": "crash"}, run_id="c4")
        assert r["status"] == "ok", r


@test
def a_hang_times_out_sends_cancelled_and_restarts_the_server():
    f = Files()
    with Daemon(mcp_conf(f)) as d:
        wait_ready(d)
        pid0 = starts(f)[-1]["pid"]
        t0 = time.time()
        r = d.client().call("m.hang", {"i": 0}, run_id="h1")
        assert r["status"] == "error" and r["error"] == "tool_timeout", r
        assert 0.3 < time.time() - t0 < 3, time.time() - t0
        call_id = tool_calls(f, "hang")[0]["id"]
        wait_for(lambda: f.received("notifications/cancelled"), what="cancelled")
        c = f.received("notifications/cancelled")[0]
        assert c["params"]["requestId"] == call_id, c
        assert c["params"]["reason"], c
        # The server answered nothing else meanwhile: two more timeouts in
        # a row and it counts as hung, and is restarted.
        assert starts(f)[-1]["pid"] == pid0
        args = {"ticket": "H-1"}
        r = d.client().call("m.hang.w", args, run_id="h2")
        assert r["status"] == "error" and r["error"] == "tool_timeout", r
        items = d.ctl_json("ledger")
        assert [(i["key"], i["state"]) for i in items] == [(key_of("m.hang.w", args), "in_doubt")], items
        r = d.client().call("m.hang", {"i": 2}, run_id="h3")
        assert r["status"] == "error" and r["error"] == "tool_timeout", r
        wait_for(lambda: len(starts(f)) >= 2, what="a restart")
        assert starts(f)[-1]["pid"] != pid0
        wait_ready(d)
        assert "3 calls in a row timed out" in d.read_log()


@test
def a_changed_definition_is_denied_until_accepted():
    f = Files()
    with Daemon(mcp_conf(f)) as d:
        wait_ready(d)
        by = {t["name"]: t for t in d.ctl_json("tools")}
        assert by["m.echo"]["state"] == "ok", by["m.echo"]
        assert by["m.missing"]["state"] == "not offered", by["m.missing"]
        r = d.client().call("m.change", {}, run_id="ch1")
        assert r["status"] == "ok", r
        wait_for(lambda: {t["name"]: t for t in d.ctl_json("tools")}["m.echo"]["state"] == "changed",
                 what="state changed")
        sent = len(tool_calls(f, "echo"))
        r = d.client().call("m.echo", {"x": 1}, run_id="ch2")
        assert r["status"] == "denied" and r["stop_reason"] == "tool_changed", r
        assert "gatewayctl tools accept m.echo" in r["message"], r
        assert len(tool_calls(f, "echo")) == sent
        # Other tools of the server are not affected.
        assert d.client().call("m.env", {}, run_id="ch2")["status"] == "ok"
        rc, out, err = d.ctl("tools", "accept", "m.echo")
        assert rc == 0, (rc, out, err)
        r = d.client().call("m.echo", {"x": 1}, run_id="ch3")
        assert r["status"] == "ok", r
        assert len(tool_calls(f, "echo")) == sent + 1


@test
def a_changed_write_is_not_sent_and_runs_once_accepted():
    """Regression: a write denied tool_changed kept its place in the run,
    so once the operator accepted the tool, the same write in the same run
    was stopped as a duplicate of one that never ran."""
    f = Files()
    with Daemon(mcp_conf(f)) as d:
        wait_ready(d)
        open(f.state, "w").close()
        assert d.client().call("m.change", {}, run_id="cw0")["status"] == "ok"
        wait_for(lambda: {t["name"]: t for t in d.ctl_json("tools")}["m.note"]["state"] == "changed",
                 what="state changed")
        c = d.client()
        for _ in range(2):
            r = c.call("m.note", {"n": 1}, run_id="cw")
            assert r["status"] == "denied" and r["stop_reason"] == "tool_changed", r
        assert f.effects_lines() == [], f.effects_lines()
        rc, out, err = d.ctl("tools", "accept", "m.note")
        assert rc == 0, (rc, out, err)
        r = c.call("m.note", {"n": 1}, run_id="cw")
        assert r["status"] == "ok" and r["replayed"] is False, r
        r = c.call("m.note", {"n": 1}, run_id="cw2")
        assert r["status"] == "ok" and r["replayed"] is True, r
        assert len(f.effects_lines()) == 1, f.effects_lines()


@test
def the_pin_outlives_a_restart_of_the_pair():
    f = Files()
    d = Daemon(mcp_conf(f))
    try:
        d.start()
        wait_ready(d)
        d.stop()
        open(f.state, "w").close()
        d.start()
        wait_for(lambda: {t["name"]: t for t in d.ctl_json("tools")}["m.echo"]["state"] == "changed",
                 what="state changed")
        r = d.client().call("m.echo", {}, run_id="pin")
        assert r["status"] == "denied" and r["stop_reason"] == "tool_changed", r
        d.stop()
    finally:
        d.cleanup()


@test
def is_error_and_jsonrpc_errors_are_tool_failed():
    f = Files()
    with Daemon(mcp_conf(f)) as d:
        wait_ready(d)
        r = d.client().call("m.fail", {}, run_id="e1")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert r["message"] == "it went wrong: disk full", r
        r = d.client().call("m.rpcerror", {}, run_id="e1")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert "-32602" in r["message"] and "bad arguments here" in r["message"], r
        # A write that reports an error changed nothing: it may run again.
        args = {"k": 1}
        r = d.client().call("m.fail.w", args, run_id="e2")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert d.ctl_json("ledger") == []
        r = d.client().call("m.fail.w", args, run_id="e3")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert len(tool_calls(f, "fail")) == 3, tool_calls(f, "fail")
        r = d.client().call("m.missing", {}, run_id="e4")
        assert r["status"] == "error" and r["error"] == "unavailable", r
        assert "does not offer" in r["message"], r
        r = d.client().call("m.big", {"n": MAX_OUTPUT + 10}, run_id="e5")
        assert r["status"] == "stopped" and r["stop_reason"] == "invalid_tool_output", r


@test
def server_requests_are_refused_with_method_not_found():
    f = Files()
    with Daemon(mcp_conf(f)) as d:
        wait_ready(d)
        r = d.client().call("m.ask", {}, run_id="a1")
        assert r["status"] == "ok", r
        answers = r["result"]["structuredContent"]["answers"]
        for method in ("sampling/createMessage", "elicitation/create", "roots/list"):
            a = answers[method]
            assert a is not None and a["error"]["code"] == -32601, (method, a)
            assert "result" not in a, a
        assert "request sampling/createMessage refused" in d.read_log()
        # Requests from a server that does not read our answers do not pile
        # up: past 1 MiB unread, they go unanswered; it works on after.
        n = 60000
        r = d.client().call("m.flood", {"n": n}, run_id="a2")
        assert r["status"] == "ok", r
        wait_for(lambda: "does not read its stdin" in d.read_log(), what="the drop")
        r = d.client().call("m.echo", {"after": "flood"}, run_id="a3")
        assert r["status"] == "ok", r
        answered = [e for e in f.events("recv") if str(e["msg"].get("id", "")).startswith("f")]
        assert 10000 < len(answered) < n, len(answered)


@test
def junk_on_stdout_is_dropped_and_the_server_keeps_working():
    f = Files()
    with Daemon(mcp_conf(f)) as d:
        wait_ready(d)
        # A line longer than max_output plus room for the envelope too.
        r = d.client().call("m.junk", {"long": MAX_OUTPUT + 70000, "flood": 100},
                            run_id="j1")
        assert r["status"] == "ok", r
        r = d.client().call("m.echo", {"after": "junk"}, run_id="j2")
        assert r["status"] == "ok", r
        log = d.read_log()
        assert "stdout line dropped (not JSON)" in log, log[-3000:]
        assert "stdout line dropped (jsonrpc is not" in log, log[-3000:]
        assert "stdout line dropped (not a JSON object)" in log, log[-3000:]
        assert "stdout line longer than" in log, log[-3000:]
        # stderr goes to the log, but not 200 lines of it at once.
        noise = log.count("stderr: noise line")
        assert 1 <= noise <= 40, noise
        assert "lines of stderr not logged" not in log
        # Nor 100 lines of junk: a server cannot flood the log.
        assert 4 <= log.count("stdout line dropped") <= 40, log.count("stdout line dropped")
        # The next second's first line comes with the count of those dropped.
        time.sleep(1.1)
        r = d.client().call("m.junk", {}, run_id="j3")
        assert r["status"] == "ok", r
        wait_for(lambda: "lines of stderr not logged" in d.read_log(), what="the count")
        assert "dropped lines of stdout not logged" in d.read_log()
        assert len(starts(f)) == 1, starts(f)


@test
def protocol_versions_we_do_not_speak_fail_the_start():
    f = Files()
    with Daemon(mcp_conf(f, extra_args=["--version", "2024-11-05"],
                         server={"init_timeout_ms": 300})) as d:
        wait_for(lambda: len(starts(f)) >= 2, what="restarts")
        r = d.client().call("m.echo", {}, run_id="v1")
        assert r["status"] == "error" and r["error"] == "unavailable", r
        assert "2024-11-05 is not one we speak" in d.read_log()
        assert f.received("notifications/initialized") == []
    f = Files()
    with Daemon(mcp_conf(f, extra_args=["--version", "2025-03-26"])) as d:
        wait_ready(d)


@test
def a_server_that_never_answers_initialize_is_restarted():
    f = Files()
    with Daemon(mcp_conf(f, extra_args=["--mute-init"],
                         server={"init_timeout_ms": 200})) as d:
        wait_for(lambda: len(starts(f)) >= 3, timeout=10, what="restarts")
        pids = [e["pid"] for e in starts(f)]
        assert len(set(pids)) == len(pids), pids
        r = d.client().call("m.echo", {}, run_id="i1")
        assert r["status"] == "error" and r["error"] == "unavailable", r
        assert "no answer to initialize within 200 ms" in d.read_log()
        # The old ones are gone.
        for pid in pids[:-2]:
            assert not pid_alive(pid), pid


@test
def tenant_env_servers_get_their_own_credential():
    f = Files()
    conf = mcp_conf(f, server={"scope": "tenant_env", "credential_env": "API_TOKEN",
                               "env": {"MODE": "test"}})
    d = Daemon(conf)
    for tenant, env, tok in (("acme", "prod", "tok-acme"), ("globex", "staging", "tok-globex")):
        os.makedirs(os.path.join(d.creds, tenant, env), exist_ok=True)
        with open(os.path.join(d.creds, tenant, env, "t"), "w") as fh:
            fh.write(tok + "\n")
    with d:
        wait_ready(d)
        wait_ready(d, uid=OTHER_UID)
        ra = d.client().call("m.env", {}, run_id="te1")
        rg = d.client(uid=OTHER_UID).call("m.env", {}, run_id="te2")
        ea = ra["result"]["structuredContent"]["env"]
        eg = rg["result"]["structuredContent"]["env"]
        assert ea["API_TOKEN"] == "tok-acme" and eg["API_TOKEN"] == "tok-globex", (ea, eg)
        assert ea["MODE"] == "test", ea
        assert set(ea) == {"PATH", "MODE", "API_TOKEN"}, ea
        # Two processes, each called only by its own tenant.
        assert len(set(e["pid"] for e in starts(f))) == 2, starts(f)
        metas = [(e["pid"], e["meta"]["io.toolgate/tenant"]) for e in f.events("call")]
        tenants_of = {}
        for pid, tenant in metas:
            tenants_of.setdefault(pid, set()).add(tenant)
        assert sorted(map(sorted, tenants_of.values())) == [["acme"], ["globex"]], tenants_of
        # The credential is read at each start: without its file, no variable.
        os.unlink(os.path.join(d.creds, "globex", "staging", "t"))
        r = d.client(uid=OTHER_UID).call("m.crash", {}, run_id="te3")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        wait_ready(d, uid=OTHER_UID)
        rg = d.client(uid=OTHER_UID).call("m.env", {}, run_id="te4")
        assert set(rg["result"]["structuredContent"]["env"]) == {"PATH", "MODE"}, rg
        # acme's process was not touched.
        ra = d.client().call("m.env", {}, run_id="te5")
        assert ra["result"]["structuredContent"]["env"]["API_TOKEN"] == "tok-acme", ra
        assert len(starts(f)) == 3, starts(f)


@test
def a_read_whose_agent_hangs_up_is_cancelled_on_the_server():
    f = Files()
    with Daemon(mcp_conf(f)) as d:
        wait_ready(d)
        c = d.client()
        c.send({"op": "call", "id": 1, "run_id": "hu", "tool": "m.slow", "args": {"delay": 3}})
        wait_for(lambda: tool_calls(f, "slow"), what="the call")
        c.close()
        wait_for(lambda: f.received("notifications/cancelled"), what="cancelled")
        c = f.received("notifications/cancelled")[0]
        assert c["params"]["requestId"] == tool_calls(f, "slow")[0]["id"], c
        # Its late answer is dropped; the server works on.
        time.sleep(3)
        r = d.client().call("m.echo", {}, run_id="hu2")
        assert r["status"] == "ok", r
        # The exec backend's stray sweep (each second, and at every exit
        # of an exec tool) left the server alone: still the first process.
        assert d.client().call("echo", {}, run_id="hu3")["status"] == "ok"
        time.sleep(1.2)
        assert d.client().call("m.echo", {"n": 2}, run_id="hu4")["status"] == "ok"
        assert len(starts(f)) == 1, starts(f)


@test
def servers_stop_with_the_executor():
    f = Files()
    d = Daemon(mcp_conf(f))
    with d:
        wait_ready(d)
        pid = starts(f)[-1]["pid"]
    wait_for(lambda: not pid_alive(pid), what="server gone")
    assert f.events("eof"), f.events()


@test
def the_shutdown_deadline_leaves_a_write_in_flight_in_doubt():
    f = Files()
    d = Daemon(mcp_conf(f, limits={"shutdown_s": 1}))
    try:
        d.start()
        wait_ready(d)
        args = {"ticket": "S-1"}
        c = d.client()
        c.send({"op": "call", "id": 1, "run_id": "sd", "tool": "m.hang.long", "args": args})
        wait_for(lambda: tool_calls(f, "hang"), what="the call")
        t0 = time.time()
        d.proc.send_signal(signal.SIGTERM)
        d.proc.wait(20)
        assert time.time() - t0 < 10, time.time() - t0
        c.close()
        d.stop(expect_rc=0)
        cancels = f.received("notifications/cancelled")
        assert [m["params"]["reason"] for m in cancels] == ["shutdown"], cancels
        d.start()
        items = d.ctl_json("ledger")
        assert [(i["key"], i["state"]) for i in items] == [(key_of("m.hang.long", args), "in_doubt")], items
        assert "shutdown" in items[0]["note"], items
        d.stop()
    finally:
        d.cleanup()


@test
def mcp_tools_shows_what_a_server_offers_as_lines_to_paste():
    f = Files()
    with Daemon(mcp_conf(f)) as d:
        wait_ready(d)
        items = d.ctl_json("mcp", "tools", "t")
        by = {t["name"]: t for t in items}
        assert len(items) == len(by) and "shout" in by and "echo" in by, items
        # The mode is only suggested, and only readOnlyHint: true says read.
        assert by["echo"]["suggested_mode"] == "read", by["echo"]
        assert by["record"]["suggested_mode"] == "write", by["record"]
        assert by["slow"]["suggested_mode"] == "write", by["slow"]
        assert by["shout"]["input_schema"]["properties"]["q"] == {"type": "string"}, by["shout"]
        assert by["shout"]["annotations"] == {"readOnlyHint": True, "title": "Shout"}, by["shout"]
        assert by["echo"]["catalogued_as"] == "m.echo", by["echo"]
        assert "catalogued_as" not in by["shout"], by["shout"]
        assert by["shout"]["catalog_name"] == "t.shout", by["shout"]
        # For a person: catalog lines, the mode marked as a suggestion, and
        # no byte of the server's that a terminal would act on.
        rc, out, err = d.ctl("mcp", "tools", "t")
        assert rc == 0, (rc, out, err)
        assert "\x1b" not in out and "\x07" not in out, repr(out)
        assert "Shout?[2J" in out, out
        line = [l for l in out.splitlines() if l.strip().startswith("t.shout:")][0]
        assert line.split("#")[0].strip() == \
            "t.shout: { mode: read, mcp: { server: t, tool: shout } }", line
        assert "suggested" in line, line
        assert "suggestion" in out.splitlines()[0], out
        # Servers that are not configured, or not listed yet, are refused.
        rc, out, err = d.ctl("mcp", "tools", "nope")
        assert rc == 1 and "not a server of mcp_servers" in err, (rc, err)


@test
def tools_accept_is_on_the_record():
    f = Files()
    with Daemon(mcp_conf(f)) as d:
        wait_ready(d)
        open(f.state, "w").close()
        assert d.client().call("m.change", {}, run_id="acc")["status"] == "ok"
        wait_for(lambda: {t["name"]: t for t in d.ctl_json("tools")}["m.echo"]["state"] == "changed",
                 what="state changed")
        rc, out, err = d.ctl("--json", "tools", "accept", "m.echo")
        assert rc == 0, (rc, out, err)
        ans = json.loads(out)
        assert (ans["tool"], ans["state"]) == ("m.echo", "ok"), ans
        recs = [r for r in read_audit(d) if r.get("event") == "tool_accept"]
        assert len(recs) == 1 and recs[0]["tool"] == "m.echo", recs
        assert "uid" in recs[0]["approver"], recs


if __name__ == "__main__":
    main()
