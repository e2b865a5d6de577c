"""Runs and their stops: duplicate writes, loops, budgets, usage, the
first stop reason standing, per-tenant runs, idle runs and max_runs."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def daemon(name="st", **over):
    """Writes enabled; "rec" appends one line per execution to d.rec."""
    d = Daemon(writes_config(), name=name)
    d.rec = os.path.join(d.dir, "rec.log")
    d.conf = writes_config({"rec": {"mode": "write", "exec": [tool("record"), d.rec]}},
                           **over)
    d.conf.setdefault("paths", {})["credentials_dir"] = d.creds
    write_config(d.config_path, d.conf)
    return d


def is_stopped(r, reason):
    return r["status"] == "stopped" and r["stop_reason"] == reason


@test
def duplicate_write_stops_the_run():
    with daemon() as d:
        c = d.client()
        a = {"ticket": "D-1"}
        assert c.call("rec", a, run_id="r")["status"] == "ok"
        r = c.call("rec", a, run_id="r")
        assert is_stopped(r, "duplicate_write"), r
        assert r["message"], r
        # Every later call in the run, reads too, other writes too.
        for t, args in (("echo", {}), ("rec", {"ticket": "D-2"}), ("rec", a)):
            r = c.call(t, args, run_id="r")
            assert is_stopped(r, "duplicate_write"), (t, r)
        r = c.rpc({"op": "usage", "run_id": "r", "tokens": 1})
        assert is_stopped(r, "duplicate_write"), r
        assert count_lines(d.rec) == 1
        # Another run is not affected; there the write is a replay.
        assert c.call("echo", {}, run_id="r2")["status"] == "ok"
        r = c.call("rec", a, run_id="r2")
        assert r["status"] == "ok" and r["replayed"] is True, r
        assert count_lines(d.rec) == 1


@test
def loop_detected_after_repeat_limit():
    with daemon(budgets={"repeat_limit": 3}) as d:
        c = d.client()
        for _ in range(3):
            assert c.call("echo", {"q": 1}, run_id="r")["status"] == "ok"
        r = c.call("echo", {"q": 1}, run_id="r")
        assert is_stopped(r, "loop_detected"), r
        assert "repeat_limit" in r["message"], r
        assert is_stopped(c.call("echo", {"q": 99}, run_id="r"), "loop_detected")
        # Different args count separately and reset nothing.
        for _ in range(3):
            assert c.call("echo", {"q": 1}, run_id="r2")["status"] == "ok"
            assert c.call("echo", {"q": 2}, run_id="r2")["status"] == "ok"
            assert c.call("env.dump", {"q": 1}, run_id="r2")["status"] == "ok"
        r = c.call("echo", {"q": 2}, run_id="r2")
        assert is_stopped(r, "loop_detected"), r
        assert is_stopped(c.call("echo", {"q": 1}, run_id="r2"), "loop_detected")
        # Injected top-level keys do not dodge the count (same args hash).
        for i in range(3):
            r = c.call("echo", {"q": 5, "idempotency_key": str(i)}, run_id="r3")
            assert r["status"] == "ok", r
        assert is_stopped(c.call("echo", {"q": 5}, run_id="r3"), "loop_detected")


@test
def max_steps_per_run():
    with daemon(budgets={"max_steps_per_run": 5}) as d:
        c = d.client()
        for i in range(5):
            assert c.call("echo", {"i": i}, run_id="r")["status"] == "ok"
        r = c.call("echo", {"i": 5}, run_id="r")
        assert is_stopped(r, "budget_exceeded"), r
        assert "max_steps_per_run" in r["message"], r
        assert is_stopped(c.call("echo", {"i": 6}, run_id="r"), "budget_exceeded")
        # Writes are steps too; another run has its own count.
        for i in range(5):
            t = "rec" if i % 2 else "echo"
            assert c.call(t, {"i": i}, run_id="r2")["status"] == "ok"
        assert is_stopped(c.call("rec", {"i": 9}, run_id="r2"), "budget_exceeded")
        assert count_lines(d.rec) == 2
        assert c.call("echo", {}, run_id="r3")["status"] == "ok"


@test
def max_writes_per_run():
    with daemon(budgets={"max_writes_per_run": 2}) as d:
        c = d.client()
        for i in range(2):
            r = c.call("rec", {"n": i}, run_id="r")
            assert r["status"] == "ok" and r["replayed"] is False, r
        r = c.call("rec", {"n": 2}, run_id="r")
        assert is_stopped(r, "budget_exceeded"), r
        assert "max_writes_per_run" in r["message"], r
        assert count_lines(d.rec) == 2
        assert is_stopped(c.call("echo", {}, run_id="r"), "budget_exceeded")
        # Reads do not count as writes; another run has its own count.
        c2 = d.client()
        for i in range(4):
            assert c2.call("echo", {"i": i}, run_id="r2")["status"] == "ok"
        assert c2.call("rec", {"n": 6}, run_id="r2")["status"] == "ok"
        assert c2.call("rec", {"n": 7}, run_id="r2")["status"] == "ok"
        assert is_stopped(c2.call("rec", {"n": 8}, run_id="r2"), "budget_exceeded")
        assert count_lines(d.rec) == 4


@test
def usage_tokens_over_budget():
    with daemon(budgets={"max_tokens_per_run": 1000}) as d:
        c = d.client()
        r = c.rpc({"op": "usage", "run_id": "r", "tokens": 600})
        assert r == {"id": r["id"], "status": "ok"}, r
        assert c.rpc({"op": "usage", "run_id": "r", "tokens": 400})["status"] == "ok"
        r = c.rpc({"op": "usage", "run_id": "r", "tokens": 1})
        assert is_stopped(r, "budget_exceeded"), r
        assert "max_tokens_per_run" in r["message"], r
        assert is_stopped(c.call("echo", {}, run_id="r"), "budget_exceeded")
        assert is_stopped(c.call("rec", {"x": 1}, run_id="r"), "budget_exceeded")
        assert is_stopped(c.rpc({"op": "usage", "run_id": "r", "tokens": 0}),
                          "budget_exceeded")
        assert count_lines(d.rec) == 0
        # Huge counts saturate rather than wrap.
        assert c.rpc({"op": "usage", "run_id": "h", "tokens": 2**64 - 1})["status"] == "stopped"
        c.rpc({"op": "usage", "run_id": "h2", "tokens": 999})
        r = c.rpc({"op": "usage", "run_id": "h2", "tokens": 2**64 - 1})
        assert is_stopped(r, "budget_exceeded"), r
        assert c.call("echo", {}, run_id="r2")["status"] == "ok"


@test
def usage_cost_over_budget():
    with daemon(budgets={"max_cost_per_run": 1.0}) as d:
        c = d.client()
        assert c.rpc({"op": "usage", "run_id": "r", "tokens": 0, "cost": 0.6})["status"] == "ok"
        assert c.rpc({"op": "usage", "run_id": "r", "tokens": 0, "cost": 0.4})["status"] == "ok"
        r = c.rpc({"op": "usage", "run_id": "r", "tokens": 10, "cost": 0.01})
        assert is_stopped(r, "budget_exceeded"), r
        assert "max_cost_per_run" in r["message"], r
        assert is_stopped(c.call("echo", {}, run_id="r"), "budget_exceeded")
        # An integer cost is a number too.
        r = c.rpc({"op": "usage", "run_id": "r2", "tokens": 0, "cost": 2})
        assert is_stopped(r, "budget_exceeded"), r


@test
def usage_bad_types():
    with daemon(budgets={"max_tokens_per_run": 100}) as d:
        c = d.client()
        bad = [
            {"run_id": "r", "tokens": "5"},
            {"run_id": "r", "tokens": -1},
            {"run_id": "r", "tokens": 1.5},
            {"run_id": "r", "tokens": None},
            {"run_id": "r", "tokens": True},
            {"run_id": "r"},
            {"run_id": "r", "tokens": 1, "cost": "0.1"},
            {"run_id": "r", "tokens": 1, "cost": -0.5},
            {"run_id": "r", "tokens": 1, "cost": -1},
            {"run_id": "r", "tokens": 1, "cost": float("nan")},
            {"run_id": "r", "tokens": 1, "cost": float("inf")},
            {"run_id": "r", "tokens": 1, "cost": None},
            {"run_id": "r", "tokens": 1, "cost": [1]},
            {"run_id": "", "tokens": 1},
            {"run_id": 5, "tokens": 1},
            {"tokens": 1},
            {"run_id": "x" * 257, "tokens": 1},
            {"run_id": "r", "tokens": 500, "cost": b"\x01"},
        ]
        for req in bad:
            r = c.rpc(dict(req, op="usage"))
            assert r["status"] == "error" and r["error"] == "bad_request", (req, r)
        # None of them counted: the run is fresh.
        assert c.rpc({"op": "usage", "run_id": "r", "tokens": 100})["status"] == "ok"
        assert c.call("echo", {}, run_id="r")["status"] == "ok"


@test
def runs_are_per_tenant():
    need_root()
    with daemon(budgets={"max_tokens_per_run": 10}) as d:
        a = d.client()
        r = a.rpc({"op": "usage", "run_id": "r", "tokens": 11})
        assert is_stopped(r, "budget_exceeded"), r
        assert is_stopped(a.call("echo", {}, run_id="r"), "budget_exceeded")
        g = d.client(OTHER_UID, OTHER_UID)
        assert g.hello()["tenant"] == "globex"
        r = g.call("echo", {}, run_id="r")
        assert r["status"] == "ok", r
        assert g.rpc({"op": "usage", "run_id": "r", "tokens": 10})["status"] == "ok"
        # A second connection of the first tenant shares its run.
        assert is_stopped(d.client().call("echo", {}, run_id="r"), "budget_exceeded")


@test
def first_stop_reason_stands():
    with daemon(budgets={"repeat_limit": 1, "max_tokens_per_run": 10,
                         "max_steps_per_run": 3}) as d:
        c = d.client()
        assert c.call("echo", {}, run_id="r")["status"] == "ok"
        first = c.call("echo", {}, run_id="r")
        assert is_stopped(first, "loop_detected"), first
        later = [c.rpc({"op": "usage", "run_id": "r", "tokens": 1000}),
                 c.call("echo", {"a": 1}, run_id="r"),
                 c.call("echo", {"a": 2}, run_id="r"),
                 c.call("echo", {"a": 3}, run_id="r"),
                 c.call("rec", {"a": 1}, run_id="r"),
                 c.call("rec", {"a": 1}, run_id="r")]
        for r in later:
            assert is_stopped(r, "loop_detected"), r
            assert r["message"] == first["message"], (r, first)
        assert count_lines(d.rec) == 0


@test
def idle_runs_are_forgotten():
    with daemon(runs={"idle_s": 1}, budgets={"repeat_limit": 1}) as d:
        c = d.client()
        assert c.call("echo", {}, run_id="r")["status"] == "ok"
        assert is_stopped(c.call("echo", {}, run_id="r"), "loop_detected")
        # Used again before the sweep: still stopped, the timer starts over.
        assert is_stopped(c.call("echo", {}, run_id="r"), "loop_detected")
        time.sleep(2.6)
        r = c.call("echo", {}, run_id="r")
        assert r["status"] == "ok", r
        assert is_stopped(c.call("echo", {}, run_id="r"), "loop_detected")


@test
def max_runs_refuses_new_runs():
    with daemon(runs={"max_runs": 3}) as d:
        c = d.client()
        for i in range(3):
            assert c.call("echo", {}, run_id="r%d" % i)["status"] == "ok"
        r = c.call("echo", {}, run_id="r3")
        assert r["status"] == "error" and r["error"] == "unavailable", r
        assert "max_runs" in r["message"], r
        r = c.rpc({"op": "usage", "run_id": "r4", "tokens": 1})
        assert r["status"] == "error" and r["error"] == "unavailable", r
        # Live runs go on; writes too.
        assert c.call("echo", {"x": 1}, run_id="r0")["status"] == "ok"
        assert c.call("rec", {"x": 1}, run_id="r1")["status"] == "ok"
        assert count_lines(d.rec) == 1


if __name__ == "__main__":
    main()
