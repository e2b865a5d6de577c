"""The write ledger: writes in doubt and their resolution by an operator,
tool timeouts, retention, a full map, and the executor's own per-run
checks against a gatewayd that skips them."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def ledger_daemon(name="lg", hang_timeout_ms=60000, **over):
    """"hang" records (d.hang_log) and then, while d.hang_log + ".hang"
    exists, sleeps 30 s; "rec" records to d.rec."""
    d = Daemon(writes_config(), name=name)
    d.rec = os.path.join(d.dir, "rec.log")
    d.hang_log = os.path.join(d.dir, "hang.log")
    tools = {"rec": {"mode": "write", "exec": [tool("record"), d.rec]},
             "hang": {"mode": "write", "exec": [tool("record-hang"), d.hang_log],
                      "timeout_ms": hang_timeout_ms}}
    for k, v in over.pop("tools", {}).items():
        tools[k] = v(d) if callable(v) else v
    d.conf = writes_config(tools, **over)
    d.conf.setdefault("paths", {})["credentials_dir"] = d.creds
    write_config(d.config_path, d.conf)
    return d


def kill_executor_mid_write(d, args, run_id):
    """Start the hanging write, SIGKILL the executor once its side effect is
    done, let gatewayd die of it, and start the pair again."""
    hang = d.hang_log + ".hang"
    open(hang, "w").close()
    before = count_lines(d.hang_log)
    c = d.client()
    c.send({"op": "call", "id": 1, "run_id": run_id, "tool": "hang", "args": args})
    wait_for(lambda: count_lines(d.hang_log) == before + 1 and
             os.path.exists(d.hang_log + ".pid"), 10, "the write's side effect")
    os.kill(d.executor_pid(), signal.SIGKILL)
    try:
        rc = d.proc.wait(10)
    except subprocess.TimeoutExpired:
        raise AssertionError("gatewayd outlived its executor:\n" + d.read_log())
    assert rc != 0, (rc, d.read_log())
    assert c.closed(5), "the agent connection outlived gatewayd"
    c.close()
    d.stop(expect_rc=None)
    kill_pid_group(d.hang_log + ".pid")
    os.unlink(d.hang_log + ".pid")
    os.unlink(hang)
    d.start()


def in_doubt_items(d):
    return d.ctl_json("ledger")


def expect_in_doubt_refusal(r, key):
    assert r["status"] == "error" and r["error"] == "tool_failed", r
    assert "in doubt" in r["message"], r
    assert "gatewayctl resolve" in r["message"], r
    assert key in r["message"], r


@test
def executor_killed_mid_write_is_in_doubt_until_resolved_done():
    d = ledger_daemon()
    try:
        d.start()
        args = {"ticket": "L-1"}
        key = key_of("hang", args)
        kill_executor_mid_write(d, args, "k1")
        assert "in doubt" in d.read_log()

        items = in_doubt_items(d)
        assert len(items) == 1, items
        it = items[0]
        assert it["key"] == key and it["state"] == "in_doubt", it
        assert it["tenant"] == "acme" and it["env"] == "prod", it
        assert it["tool"] == "hang" and it["run_id"] == "k1", it
        assert it["args_hash"] == args_hash(args), it
        rc, out, err = d.ctl("ledger")
        assert rc == 0 and key in out, (rc, out, err)
        assert d.ctl_json("status")["in_doubt"] == 1

        # Asked again (any run): refused, and the tool does not run.
        c = d.client()
        for run in ("k2", "k3"):
            expect_in_doubt_refusal(c.call("hang", args, run_id=run), key)
        assert count_lines(d.hang_log) == 1
        # Other writes go on meanwhile.
        assert c.call("rec", {"x": 1}, run_id="k4")["status"] == "ok"

        # Not an operator: refused, nothing changes.
        rc, out, err = d.ctl("resolve", key, "done", uid=AGENT_UID)
        assert rc == 1, (rc, out, err)
        assert d.ctl_json("status")["in_doubt"] == 1

        rc, out, err = d.ctl("resolve", key, "done")
        assert rc == 0, (rc, out, err)
        assert in_doubt_items(d) == []
        assert d.ctl_json("status")["in_doubt"] == 0
        r = c.call("hang", args, run_id="k5")
        assert r["status"] == "ok" and r["replayed"] is True, r
        assert r["result"] is None, r
        assert r["idempotency_key"] == key and r["args_hash"] == args_hash(args), r
        assert count_lines(d.hang_log) == 1

        # Settled keys are not in doubt: resolving again is refused.
        rc, out, err = d.ctl("resolve", key, "failed")
        assert rc == 1, (rc, out, err)
        rc, out, err = d.ctl("resolve", key_of("rec", {"x": 1}), "done")
        assert rc == 1, (rc, out, err)
        rc, out, err = d.ctl("resolve", "acme:nope:000000000000000000000000", "done")
        assert rc == 1, (rc, out, err)
        rc, out, err = d.ctl("resolve", key, "maybe")
        assert rc == 2, (rc, out, err)

        ev = [a for a in read_audit(d) if a.get("event") == "resolve"]
        assert len(ev) == 1, ev
        assert ev[0]["approver"] == "uid 0 (root)", ev
        assert ev[0]["idempotency_key"] == key and ev[0]["decision"] == "done", ev
        d.stop()
    finally:
        kill_pid_group(d.hang_log + ".pid")
        d.cleanup()


@test
def in_doubt_resolved_failed_runs_again():
    d = ledger_daemon()
    try:
        d.start()
        args = {"ticket": "L-2"}
        key = key_of("hang", args)
        kill_executor_mid_write(d, args, "f1")
        assert [i["key"] for i in in_doubt_items(d)] == [key]
        rc, out, err = d.ctl("--json", "resolve", key, "failed")
        assert rc == 0, (rc, out, err)
        assert json.loads(out)["state"] == "failed", out
        # The hang file is gone: this time the tool answers.
        r = d.client().call("hang", args, run_id="f2")
        assert r["status"] == "ok" and r["replayed"] is False, r
        assert r["result"] == {"recorded": True}, r
        assert count_lines(d.hang_log) == 2
        r = d.client().call("hang", args, run_id="f3")
        assert r["status"] == "ok" and r["replayed"] is True, r
        assert count_lines(d.hang_log) == 2
        ev = [a for a in read_audit(d) if a.get("event") == "resolve"]
        assert [(e["decision"], e["approver"]) for e in ev] == [("failed", "uid 0 (root)")], ev
        d.stop()
    finally:
        kill_pid_group(d.hang_log + ".pid")
        d.cleanup()


@test
def write_timeout_is_in_doubt():
    d = ledger_daemon(hang_timeout_ms=500)
    with d:
        open(d.hang_log + ".hang", "w").close()
        args = {"ticket": "L-3"}
        key = key_of("hang", args)
        r = d.client().call("hang", args, run_id="t1")
        assert r["status"] == "error" and r["error"] == "tool_timeout", r
        assert count_lines(d.hang_log) == 1
        items = in_doubt_items(d)
        assert [i["key"] for i in items] == [key], items
        assert items[0]["note"], items
        os.unlink(d.hang_log + ".hang")
        expect_in_doubt_refusal(d.client().call("hang", args, run_id="t2"), key)
        assert count_lines(d.hang_log) == 1
        assert d.ctl("resolve", key, "failed")[0] == 0
        r = d.client().call("hang", args, run_id="t3")
        assert r["status"] == "ok" and r["replayed"] is False, r
        assert count_lines(d.hang_log) == 2


@test
def retention_sweeps_done_keys():
    d = ledger_daemon(writes={"enabled": True, "require_approval": False,
                              "retention_s": 1})
    with d:
        args = {"ticket": "L-4"}
        c = d.client()
        r = c.call("rec", args, run_id="p0")
        assert r["status"] == "ok" and r["replayed"] is False, r
        r = c.call("rec", args, run_id="p1")
        assert r["status"] == "ok" and r["replayed"] is True, r
        assert count_lines(d.rec) == 1
        deadline = time.time() + 6
        n = 2
        while True:
            r = c.call("rec", args, run_id="p%d" % n)
            n += 1
            assert r["status"] == "ok", r
            if r["replayed"] is False:
                break
            assert time.time() < deadline, "the done key was never swept"
            time.sleep(0.25)
        assert count_lines(d.rec) == 2


@test
def full_map_refuses_writes_before_running_them():
    # The executor keeps room for the outcome of every write it starts
    # (twice max_output each), so max_output must leave room for a few.
    d = ledger_daemon(store={"map_size": 1048576, "max_map_size": 2097152},
                      limits={"max_output": 400000},
                      tools={"big": lambda d: {"mode": "write", "exec": [
                          tool("record-big"), os.path.join(d.dir, "big.log")]}})
    big_log = os.path.join(d.dir, "big.log")
    with d:
        c = d.client()
        oks, unrecorded = [], []
        refused = None
        for i in range(20):
            before = count_lines(big_log)
            r = c.call("big", {"i": i, "n": 300000}, run_id="m%d" % i)
            if r["status"] != "ok":
                refused = (i, r, before)
                break
            assert r["replayed"] is False and len(r["result"]) == 300000 - 2, \
                {k: v for k, v in r.items() if k != "result"}
            assert count_lines(big_log) == before + 1
            oks.append(i)
            # Answered ok: its outcome must be in the ledger, to be replayed.
            r2 = c.call("big", {"i": i, "n": 300000}, run_id="again%d" % i)
            if not (r2["status"] == "ok" and r2["replayed"] is True):
                unrecorded.append((i, r2))
        listed = [x["key"] for x in in_doubt_items(d)]
        assert refused is not None and not unrecorded, (
            "no write was refused in %d tries; %d answered ok but were never"
            " recorded (in doubt, %d listed by gatewayctl ledger): %s" %
            (len(oks), len(unrecorded), len(listed), unrecorded[:2]))
        i, r, before = refused
        assert r["status"] == "error" and r["error"] == "unavailable", r
        assert "full" in r["message"] and "ledger" in r["message"], r
        assert count_lines(big_log) == before, "the tool ran for a refused write"
        assert len(oks) >= 2, oks
        assert "map grown" in d.read_log()
        assert count_lines(big_log) == len(oks)
        # Reads are still served, and the operator still gets answers.
        r = c.call("echo", {"still": "here"}, run_id="read")
        assert r["status"] == "ok", r
        assert d.ctl_json("status")["writes_enabled"] is True


# The executor with the test as its gatewayd: the executor's own checks.

def link_conf(path, **over):
    return writes_config({"rec": {"mode": "write", "exec": [tool("record"), path]}},
                         **over)


def standin(extra=None, **over):
    """extra: more write tools, name -> function(dir) -> catalog entry."""
    ex = ExecutorLink(link_conf("/dev/null"), name="exl")
    ex.rec = os.path.join(ex.dir, "rec.log")
    conf = link_conf(ex.rec, **over)
    for name, fn in (extra or {}).items():
        conf["catalog"][name] = fn(ex.dir)
        conf["tools"]["allow"].append(name)
    ex.configure(conf)
    return ex


@test
def executor_stops_duplicate_write_in_a_run():
    need_root()
    with standin() as ex:
        args = {"ticket": "X-1"}
        r = ex.call("rec", args, "run-a")
        assert r["status"] == "ok" and r["replayed"] is False, r
        r = ex.call("rec", args, "run-a")
        assert r["status"] == "stopped" and r["stop_reason"] == "duplicate_write", r
        assert count_lines(ex.rec) == 1
        r = ex.call("rec", args, "run-b")
        assert r["status"] == "ok" and r["replayed"] is True, r
        assert r["idempotency_key"] == key_of("rec", args), r
        assert count_lines(ex.rec) == 1


@test
def executor_ignores_injected_key():
    need_root()
    with standin() as ex:
        args = {"ticket": "X-2", "idempotency_key": "attacker-key"}
        r = ex.call("rec", args, "run-a")
        assert r["status"] == "ok", r
        assert r["idempotency_key"] == key_of("rec", {"ticket": "X-2"}), r
        assert "attacker" not in r["idempotency_key"]
        r = ex.call("rec", {"ticket": "X-2", "idempotency_key": "other"}, "run-b")
        assert r["status"] == "ok" and r["replayed"] is True, r
        assert count_lines(ex.rec) == 1


@test
def executor_enforces_max_writes_per_run():
    need_root()
    with standin(budgets={"max_writes_per_run": 2}) as ex:
        for i in range(2):
            r = ex.call("rec", {"n": i}, "run-a")
            assert r["status"] == "ok" and r["replayed"] is False, r
        r = ex.call("rec", {"n": 2}, "run-a")
        assert r["status"] == "stopped" and r["stop_reason"] == "budget_exceeded", r
        assert count_lines(ex.rec) == 2
        r = ex.call("rec", {"n": 2}, "run-b")
        assert r["status"] == "ok" and r["replayed"] is False, r
        assert count_lines(ex.rec) == 3


@test
def executor_stops_concurrent_duplicates_in_a_run():
    """Two identical writes of one run sent at once: one runs, the other is
    a duplicate, however the executor interleaves them."""
    need_root()
    slow = {"slow": lambda dir_: {"mode": "write", "exec": [
        tool("slow-record"), os.path.join(dir_, "slow.log"), "0.5"]}}
    with standin(slow) as ex:
        slow_log = os.path.join(ex.dir, "slow.log")
        args = {"ticket": "X-3"}
        ids = [ex.send("MSG_CALL", ex.call_body("slow", args, "run-a")) for _ in range(2)]
        answers = {}
        while len(answers) < 2:
            m = ex.recv()
            answers[m[1]] = m[2]["response"]
        rs = [answers[i] for i in ids]
        statuses = sorted((r["status"], r.get("stop_reason")) for r in rs)
        assert statuses == [("ok", None), ("stopped", "duplicate_write")], rs
        assert count_lines(slow_log) == 1


if __name__ == "__main__":
    main()
