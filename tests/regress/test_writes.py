"""The write path through the daemon pair: idempotency keys, replay,
one execution however many identical callers, failures, restarts, the
kill switch."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def record_daemon(extra=None, name="wr", **over):
    """A daemon whose "rec" write appends to d.dir/rec.log (one line per
    execution); extra: more catalog entries, as name -> (tool, args...)."""
    d = Daemon(writes_config(), name=name)
    rec = os.path.join(d.dir, "rec.log")
    tools = {"rec": {"mode": "write", "exec": [tool("record"), rec]},
             "env.write": {"mode": "write", "exec": [tool("env-dump")]}}
    for k, v in (extra or {}).items():
        tools[k] = v(d) if callable(v) else v
    d.conf = writes_config(tools, **over)
    d.conf.setdefault("paths", {})["credentials_dir"] = d.creds
    write_config(d.config_path, d.conf)
    d.rec = rec
    return d


def expect_ok_write(r, tool_name, args, tenant="acme", replayed=False):
    assert r["status"] == "ok", r
    assert r["args_hash"] == args_hash(args), r
    assert r["idempotency_key"] == "%s:%s:%s" % (tenant, tool_name, args_hash(args)), r
    assert r["replayed"] is replayed, r


@test
def write_key_and_env():
    d = record_daemon()
    with d:
        c = d.client()
        assert c.hello()["writes_enabled"] is True
        args = {"ticket": "T-1", "n": 1}
        r = c.call("rec", args, run_id="a1")
        expect_ok_write(r, "rec", args)
        assert r["result"] == {"recorded": True}, r
        assert count_lines(d.rec) == 1
        assert open(d.rec).read() == canonical_json(args).decode() + "\n"

        r = c.call("env.write", {"x": 1}, run_id="a1", step_id=7)
        expect_ok_write(r, "env.write", {"x": 1})
        env = r["result"]["env"]
        assert env["TOOLGATE_IDEMPOTENCY_KEY"] == r["idempotency_key"], env
        assert env["TOOLGATE_ARGS_HASH"] == args_hash({"x": 1}), env
        assert env["TOOLGATE_TENANT"] == "acme" and env["TOOLGATE_RUN_ID"] == "a1", env
        assert env["TOOLGATE_STEP_ID"] == "7", env
        # A read has no key in its environment.
        r = c.call("env.dump", {}, run_id="a1")
        assert r["status"] == "ok" and "idempotency_key" not in r, r
        assert "TOOLGATE_IDEMPOTENCY_KEY" not in r["result"]["env"], r


@test
def replay_from_another_run_and_injected_fields():
    d = record_daemon()
    with d:
        c = d.client()
        args = {"ticket": "T-2"}
        first = c.call("env.write", args, run_id="b1")
        expect_ok_write(first, "env.write", args)
        again = c.call("env.write", args, run_id="b2")
        expect_ok_write(again, "env.write", args, replayed=True)
        # The stored result, not a new execution (env-dump's pid and run id).
        assert again["result"] == first["result"], (again, first)
        assert again["result"]["env"]["TOOLGATE_RUN_ID"] == "b1"

        r = c.call("rec", args, run_id="b3")
        expect_ok_write(r, "rec", args)
        assert count_lines(d.rec) == 1
        # Top-level idempotency_key / approval_token are not part of the hash:
        # the same key, a replay, no second side effect.
        for i, extra in enumerate(({"idempotency_key": "attacker"},
                                   {"approval_token": "tok"},
                                   {"idempotency_key": "k", "approval_token": "t"})):
            injected = dict(args, **extra)
            r = c.call("rec", injected, run_id="b4-%d" % i)
            expect_ok_write(r, "rec", args, replayed=True)
            assert r["args_hash"] == args_hash(injected) == args_hash(args), r
        assert count_lines(d.rec) == 1
        # Nested, it is just data: another key, another execution.
        nested = dict(args, meta={"idempotency_key": "attacker"})
        r = c.call("rec", nested, run_id="b5")
        expect_ok_write(r, "rec", nested)
        assert r["args_hash"] != args_hash(args)
        assert count_lines(d.rec) == 2


@test
def tenants_have_their_own_keys():
    need_root()
    d = record_daemon()
    with d:
        args = {"ticket": "T-3"}
        a = d.client().call("rec", args, run_id="t1")
        expect_ok_write(a, "rec", args)
        g = d.client(OTHER_UID, OTHER_UID)
        assert g.hello()["tenant"] == "globex"
        r = g.call("rec", args, run_id="t1")
        expect_ok_write(r, "rec", args, tenant="globex")
        assert count_lines(d.rec) == 2
        # And each replays its own.
        r = g.call("rec", args, run_id="t2")
        expect_ok_write(r, "rec", args, tenant="globex", replayed=True)
        r = d.client().call("rec", args, run_id="t2")
        expect_ok_write(r, "rec", args, replayed=True)
        assert count_lines(d.rec) == 2


@test
def concurrent_identical_writes_run_once():
    d = record_daemon({"slow": lambda d: {"mode": "write", "exec": [
        tool("slow-record"), os.path.join(d.dir, "slow.log"), "0.5"]}})
    slow = os.path.join(d.dir, "slow.log")
    with d:
        args = {"ticket": "T-4", "op": "close"}
        t0 = time.time()
        answers = concurrent_calls(d, [("slow", args, "c%d" % i) for i in range(16)])
        for r in answers:
            assert r["status"] == "ok", r
            assert r["idempotency_key"] == "acme:slow:" + args_hash(args), r
            assert r["result"] == {"recorded": True}, r
        fresh = [r for r in answers if r["replayed"] is False]
        assert len(fresh) == 1, answers
        assert count_lines(slow) == 1, open(slow).read()
        # They waited for the one execution rather than running in turn.
        assert time.time() - t0 < 5, time.time() - t0
        # Settled: one more is a replay.
        r = d.client().call("slow", args, run_id="c-late")
        assert r["status"] == "ok" and r["replayed"] is True, r
        assert count_lines(slow) == 1


@test
def concurrent_distinct_writes_each_run_once():
    # All 32 run at once: past the default limits.max_tools_per_tenant.
    d = record_daemon(limits={"max_tools_per_tenant": 64})
    with d:
        calls = [("rec", {"ticket": "T-%d" % i}, "d%d" % i) for i in range(32)]
        answers = concurrent_calls(d, calls)
        for (t, a, _), r in zip(calls, answers):
            expect_ok_write(r, t, a)
        lines = open(d.rec).read().splitlines()
        assert sorted(lines) == sorted(canonical_json(a).decode() for _, a, _ in calls), lines


@test
def failed_write_may_run_again():
    d = record_daemon({"failing": lambda d: {"mode": "write", "exec": [
        tool("record-fail"), os.path.join(d.dir, "fail.log")]}})
    flog = os.path.join(d.dir, "fail.log")
    with d:
        c = d.client()
        args = {"ticket": "T-5"}
        r = c.call("failing", args, run_id="f1")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert "record-fail: the write was refused" in r["message"], r
        assert count_lines(flog) == 1
        # Not in doubt: the tool said it failed.
        rc, out, err = d.ctl("--json", "ledger")
        assert rc == 0 and json.loads(out) == [], (rc, out, err)
        # A new run tries again: the tool runs again.
        r = c.call("failing", args, run_id="f2")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert count_lines(flog) == 2
        # The run is not stopped by a failed write: reads go on.
        assert c.call("echo", {"x": 1}, run_id="f2")["status"] == "ok"


@test
def ledger_survives_restart():
    d = record_daemon()
    try:
        d.start()
        args = {"ticket": "T-6"}
        first = d.client().call("env.write", args, run_id="s1")
        expect_ok_write(first, "env.write", args)
        r = d.client().call("rec", args, run_id="s1")
        expect_ok_write(r, "rec", args)
        d.stop()
        d.start()
        r = d.client().call("rec", args, run_id="s2")
        expect_ok_write(r, "rec", args, replayed=True)
        assert r["result"] == {"recorded": True}, r
        assert count_lines(d.rec) == 1
        r = d.client().call("env.write", args, run_id="s2")
        expect_ok_write(r, "env.write", args, replayed=True)
        assert r["result"] == first["result"]
        d.stop()
    finally:
        d.cleanup()


@test
def kill_switch_refuses_even_replays():
    """The policy gate comes before the ledger: with writes disabled, a
    write whose result is stored is denied, not replayed."""
    d = record_daemon()
    with d:
        c = d.client()
        args = {"ticket": "T-7"}
        expect_ok_write(c.call("rec", args, run_id="k1"), "rec", args)
        rc, out, err = d.ctl("writes", "disable")
        assert rc == 0, (rc, out, err)
        # No wait for gatewayd to hear of it: the executor gates again.
        r = c.call("rec", args, run_id="k2")
        assert r["status"] == "denied" and r["stop_reason"] == "writes_disabled", r
        wait_for(lambda: c.hello()["writes_enabled"] is False, 5, "gatewayd to hear")
        r = c.call("rec", args, run_id="k3")
        assert r["status"] == "denied" and r["stop_reason"] == "writes_disabled", r
        r = c.call("rec", {"ticket": "T-new"}, run_id="k3")
        assert r["status"] == "denied" and r["stop_reason"] == "writes_disabled", r
        # Reads go on; the run was not stopped by a denial.
        assert c.call("echo", {}, run_id="k3")["status"] == "ok"
        assert count_lines(d.rec) == 1
        rc, out, err = d.ctl("writes", "enable")
        assert rc == 0, (rc, out, err)
        wait_for(lambda: c.hello()["writes_enabled"] is True, 5, "gatewayd to hear")
        r = c.call("rec", args, run_id="k4")
        expect_ok_write(r, "rec", args, replayed=True)
        assert count_lines(d.rec) == 1


if __name__ == "__main__":
    main()
