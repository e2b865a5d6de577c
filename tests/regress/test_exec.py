"""The exec backend, through the daemon pair: environment, stdin, failures,
timeouts, bad output, and tools running side by side."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

MAX_OUTPUT = 100000
BASE_ENV = {"TOOLGATE_TOOL", "TOOLGATE_TENANT", "TOOLGATE_ENV", "TOOLGATE_RUN_ID",
            "TOOLGATE_STEP_ID", "TOOLGATE_ARGS_HASH", "PATH"}


def exec_conf():
    c = base_config(writes={"enabled": True, "require_approval": False},
                    tools={"default_mode": "read_write"},
                    limits={"max_output": MAX_OUTPUT})
    c["catalog"].update({
        "env.dump.w": {"mode": "write", "exec": [tool("env-dump")]},
        "nap": {"mode": "read", "exec": [tool("nap")], "timeout_ms": 10000},
        "sized": {"mode": "read", "exec": [tool("sized")]},
        "two.values": {"mode": "read", "exec": [tool("two-values")]},
        "exit.quiet": {"mode": "read", "exec": [tool("exit-quiet")]},
        "deep": {"mode": "read", "exec": ["/usr/bin/python3", "-c",
                 "import json,sys; n=json.load(sys.stdin)['n']; print('['*n + ']'*n)"]},
    })
    c["tools"]["allow"] += ["env.dump.w", "nap", "sized", "two.values", "exit.quiet", "deep"]
    return c


@test
def environment_is_exactly_the_contract():
    with Daemon(exec_conf()) as d:
        c = d.client()
        args = {"q": "x", "n": [1, 2]}
        r = c.call("env.dump", args, run_id="run-env", step_id=7)
        assert r["status"] == "ok", r
        env = r["result"]["env"]
        assert set(env) == BASE_ENV, sorted(env)
        assert env["TOOLGATE_TOOL"] == "env.dump"
        assert (env["TOOLGATE_TENANT"], env["TOOLGATE_ENV"]) == ("acme", "prod"), env
        assert env["TOOLGATE_RUN_ID"] == "run-env", env
        assert env["TOOLGATE_STEP_ID"] == "7", env
        assert env["TOOLGATE_ARGS_HASH"] == args_hash(args) == r["args_hash"], (env, r)
        assert "idempotency_key" not in r and "replayed" not in r, r
        # A string step_id comes as it is.
        r = c.call("env.dump", {}, run_id="run-env", step_id="step-b")
        env = r["result"]["env"]
        assert env["TOOLGATE_STEP_ID"] == "step-b", env
        assert env["TOOLGATE_ARGS_HASH"] == args_hash({}), env
        # Other tenant, other values.
        r = d.client(uid=OTHER_UID).call("env.dump", {}, run_id="run-g")
        env = r["result"]["env"]
        assert (env["TOOLGATE_TENANT"], env["TOOLGATE_ENV"]) == ("globex", "staging"), env
        # A write has its idempotency key, computed by the executor.
        args = {"ticket_id": "T-9", "idempotency_key": "agent-chosen"}
        r = c.call("env.dump.w", args, run_id="run-w", step_id=1)
        assert r["status"] == "ok", r
        env = r["result"]["env"]
        assert set(env) == BASE_ENV | {"TOOLGATE_IDEMPOTENCY_KEY"}, sorted(env)
        key = "acme:env.dump.w:" + args_hash(args)
        assert env["TOOLGATE_IDEMPOTENCY_KEY"] == key == r["idempotency_key"], (env, r)
        assert args_hash(args) == args_hash({"ticket_id": "T-9"})
        assert r["replayed"] is False, r
        # No stray descriptors beyond stdin, stdout, stderr.
        assert r["result"]["fds"] == [0, 1, 2], r["result"]["fds"]


@test
def stdin_is_canonical_json_and_a_newline():
    with Daemon(exec_conf()) as d:
        c = d.client()
        cases = [
            {},
            {"b": 1, "a": 2, "A": 3, "é": 4, "z": {"y": [3, 2, 1], "x": None}},
            {"f": 1.5, "g": 1e100, "h": -0.0, "i": 0.1, "j": 2 ** 63 - 1, "k": -2 ** 63},
            {"s": "quote\" backslash\\ nl\n tab\t ctl\x01 del\x7f \u2028 😀"},
            {"t": True, "u": False, "v": None, "w": [], "x": {}},
        ]
        for args in cases:
            r = c.call("echo", args, run_id="stdin")
            assert r["status"] == "ok", (args, r)
            assert r["result"]["stdin"] == canonical_json(args).decode() + "\n", (args, r)
            assert r["args_hash"] == args_hash(args), (args, r)


@test
def failures_timeouts_and_bad_output():
    with Daemon(exec_conf()) as d:
        c = d.client()
        r = c.call("fail", {}, run_id="f")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert "second" in r["message"] and "line" in r["message"], r
        assert "first" not in r["message"], r
        r = c.call("exit.quiet", {}, run_id="f")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert "4" in r["message"], r
        # A failure does not stop the run.
        r = c.call("echo", {}, run_id="f")
        assert r["status"] == "ok", r

        t0 = time.time()
        r = c.call("sleep", {}, run_id="t")
        took = time.time() - t0
        assert r["status"] == "error" and r["error"] == "tool_timeout", r
        assert 0.4 <= took < 5, took
        r = c.call("echo", {}, run_id="t")
        assert r["status"] == "ok", r


@test
def invalid_output_stops_the_run():
    with Daemon(exec_conf()) as d:
        c = d.client()
        o = d.client(uid=OTHER_UID)
        for tool_name, args in (("not.json", {}), ("two.values", {}),
                                ("big.output", {}), ("sized", {"n": MAX_OUTPUT + 1})):
            run = "bad-" + tool_name
            t0 = time.time()
            r = c.call(tool_name, args, run_id=run)
            assert time.time() - t0 < 5, (tool_name, time.time() - t0)
            assert r["status"] == "stopped" and r["stop_reason"] == "invalid_tool_output", r
            msg = r["message"]
            # Every later call in the run: stopped, same reason, not run.
            for later in ("echo", "env.dump", "nomode"):
                r = c.call(later, {"later": 1}, run_id=run)
                assert r["status"] == "stopped", (tool_name, later, r)
                assert r["stop_reason"] == "invalid_tool_output", r
            # The same run_id from another connection of the same tenant.
            r = d.client().call("echo", {}, run_id=run)
            assert r["status"] == "stopped", r
            # Another run goes on; so does another tenant's run of that name.
            r = c.call("echo", {}, run_id=run + "-other")
            assert r["status"] == "ok", r
            r = o.call("echo", {}, run_id=run)
            assert r["status"] == "ok", (tool_name, r)
            assert isinstance(msg, str) and msg
        # Exactly max_output is fine.
        r = c.call("sized", {"n": MAX_OUTPUT}, run_id="exact")
        assert r["status"] == "ok", {k: v for k, v in r.items() if k != "result"}
        assert len(r["result"]) == MAX_OUTPUT - 2


@test
def deep_tool_output_never_kills_the_pair():
    """A tool printing deeply nested JSON gets an answer (ok or
    stopped/invalid_tool_output), and the pair goes on."""
    with Daemon(exec_conf()) as d:
        c = d.client()
        for n in (10, 20, 26, 27, 28, 29, 30, 31, 32, 33, 40, 64, 100, 1000, 100000):
            try:
                r = c.call("deep", {"n": n}, run_id="deep-%d" % n)
            except (EOFError, OSError) as e:
                try:
                    d.proc.wait(2)
                except subprocess.TimeoutExpired:
                    pass
                raise AssertionError("tool output nested %d deep: connection lost (%s);"
                                     " gatewayd exit status %s:\n%s"
                                     % (n, e, d.proc.poll(), d.read_log()[-1000:]))
            assert r["status"] in ("ok", "stopped"), (n, r)
            if r["status"] == "stopped":
                assert r["stop_reason"] == "invalid_tool_output", (n, r)
            if n <= 20:
                assert r["status"] == "ok", (n, r)
            assert d.proc.poll() is None, (n, d.read_log()[-1000:])


@test
def burst_of_16_concurrent_reads():
    with Daemon(exec_conf()) as d:
        cs = [d.client() for _ in range(16)]
        for i, c in enumerate(cs):
            c.send({"op": "call", "id": i, "run_id": "burst-%d" % i,
                    "tool": "echo", "args": {"i": i}})
        for i, c in enumerate(cs):
            r = c.recv()
            assert r["id"] == i and r["status"] == "ok", r
            assert r["result"]["args"] == {"i": i}, r


@test
def a_slow_tool_blocks_nobody():
    with Daemon(exec_conf()) as d:
        a, b = d.client(), d.client()
        t0 = time.time()
        a.send({"op": "call", "id": "slow", "run_id": "slow", "tool": "nap",
                "args": {"ms": 2000}})
        time.sleep(0.1)
        r = b.call("echo", {"quick": 1}, run_id="quick")
        assert r["status"] == "ok", r
        assert time.time() - t0 < 1.5, time.time() - t0
        # The same connection too: answers come out of order.
        a.send({"op": "call", "id": "fast", "run_id": "slow", "tool": "echo", "args": {}})
        r = a.recv()
        assert r["id"] == "fast" and r["status"] == "ok", r
        assert time.time() - t0 < 1.5, time.time() - t0
        r = a.recv()
        assert r["id"] == "slow" and r["status"] == "ok", r
        assert r["result"] == {"slept_ms": 2000}
        # Two slow tools run side by side, not one after the other.
        t0 = time.time()
        a.send({"op": "call", "id": 1, "run_id": "p1", "tool": "nap", "args": {"ms": 1000}})
        b.send({"op": "call", "id": 2, "run_id": "p2", "tool": "nap", "args": {"ms": 1000}})
        assert a.recv()["status"] == "ok" and b.recv()["status"] == "ok"
        assert time.time() - t0 < 1.8, time.time() - t0


if __name__ == "__main__":
    main()
