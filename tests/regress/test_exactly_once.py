"""Exactly once, whatever a reused approval or the kill switch does:
writes that ran twice, or ran when they should not have, before these
were fixed.  Each test here failed on the code before its fix.  Clock
steps are in test_clock_steps.py, invalid UTF-8 in test_malformed.py,
a wait by another env in test_principals.py."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def approved(d, c, args, run_id="run-1", tool_name="rec"):
    r = c.call(tool_name, args, run_id=run_id)
    assert r["status"] == "needs_approval", r
    assert d.ctl("approve", r["approval_id"])[0] == 0
    return r


# -- approvals are single use ----------------------------------------------------

@test
def a_used_approval_never_runs_again_after_retention():
    """Approve, resume, wait past writes.retention_s (the ledger record is
    swept), resume the same checkpoint: before, the write ran again."""
    d = approvals_daemon()
    conf = dict(d.conf)
    conf["writes"] = dict(conf["writes"], retention_s=1)
    reconfigure(d, conf)
    with d:
        c = d.client()
        r = approved(d, c, {"ticket_id": "T-1"})
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        assert count_lines(d.effects) == 1
        time.sleep(3)       # the sweeper runs every second
        for _ in range(2):
            y = d.client().resume(r["checkpoint"])
            assert y["status"] == "denied" and y["stop_reason"] == "approval_expired", y
            assert "was used" in y["message"], y
        assert count_lines(d.effects) == 1


@test
def an_approved_write_that_failed_cleanly_may_be_retried():
    """The rule: a tool that exits non-zero changed nothing, so the same
    approval may start its write again (until the checkpoint expires);
    once it succeeded, resumes replay.  Before, the retry was
    stopped/duplicate_write while gatewayd left the run going."""
    d = approvals_daemon()
    conf = dict(d.conf)
    conf["catalog"] = dict(conf["catalog"], **{
        "flaky": {"mode": "write", "exec": [tool("fail-once"), d.effects]}})
    conf["tools"] = dict(conf["tools"], allow=conf["tools"]["allow"] + ["flaky"])
    conf["writes"] = dict(conf["writes"], require_approval=["flaky"])
    reconfigure(d, conf)
    with d:
        c = d.client()
        r = approved(d, c, {"ticket_id": "T-2"}, tool_name="flaky")
        x = c.resume(r["checkpoint"])
        assert x["status"] == "error" and x["error"] == "tool_failed", x
        y = c.resume(r["checkpoint"])
        assert y["status"] == "ok" and y["replayed"] is False, y
        z = d.client().resume(r["checkpoint"])
        assert z["status"] == "ok" and z["replayed"] is True, z
        assert count_lines(d.effects) == 1
        # The run goes on: nothing stopped it.
        e = c.call("echo", {"x": 1}, run_id="run-1")
        assert e["status"] == "ok", e


@test
def a_resume_the_executor_stops_stops_gatewayds_run_too():
    """gatewayd cannot read a checkpoint's run: the executor names it, so
    a stop in a resume stops the run in both processes."""
    d = approvals_daemon()
    conf = dict(d.conf)
    conf["catalog"] = dict(conf["catalog"], **{
        "bad.write": {"mode": "write", "exec": [tool("not-json")]}})
    conf["tools"] = dict(conf["tools"], allow=conf["tools"]["allow"] + ["bad.write"])
    conf["writes"] = dict(conf["writes"], require_approval=["bad.write"])
    reconfigure(d, conf)
    with d:
        c = d.client()
        r = approved(d, c, {"n": 1}, run_id="run-s", tool_name="bad.write")
        x = c.resume(r["checkpoint"])
        assert x["status"] == "stopped" and x["stop_reason"] == "invalid_tool_output", x
        e = c.call("echo", {"x": 1}, run_id="run-s")
        assert e["status"] == "stopped" and e["stop_reason"] == "invalid_tool_output", e


# -- the kill switch window ------------------------------------------------------

@test
def no_write_starts_after_the_switch_is_recorded():
    """A write gatewayd admitted before SIGUSR1 reached it, but whose intent
    was not yet committed when WRITES_OFF arrived, must not start: the
    executor reads the switch in the intent's transaction.  Before, it ran."""
    need_root()
    link = ExecutorLink(writes_config(tools={
        "rec": {"mode": "write", "exec": [tool("record"), "/dev/null"]}}), name="tg-ks")
    effects = os.path.join(link.dir, "effects")
    conf = writes_config(tools={"rec": {"mode": "write", "exec": [tool("record"), effects]}})
    link.configure(conf)
    with link:
        T = link.types
        body = link.call_body("rec", {"n": 1}, "run-k")
        data = frame([T["MSG_CALL"], 100, body]) + frame([T["MSG_WRITES_OFF"], 101, {}])
        link.sock.sendall(data)
        msg = link.recv()
        assert msg[1] == 100, msg
        resp = msg[2]["response"]
        assert resp["status"] == "denied" and resp["stop_reason"] == "writes_disabled", resp
        time.sleep(0.3)
        assert count_lines(effects) == 0


@test
def writes_sent_after_sigusr1_returned_never_run():
    """kill(gatewayd, SIGUSR1) has returned; writes sent after that are
    refused, all of them, whatever the order of events in the loop."""
    need_root()
    d = approvals_daemon(require=False)
    with d:
        clients = [d.client() for _ in range(4)]
        os.kill(d.proc.pid, signal.SIGUSR1)
        n = 0
        for i, c in enumerate(clients):
            for j in range(5):
                c.send({"op": "call", "id": j + 1, "run_id": "r-%d-%d" % (i, j),
                        "tool": "rec", "args": {"i": i, "j": j}})
                n += 1
        answers = [c.recv() for c in clients for _ in range(5)]
        assert all(a["status"] == "denied" and a["stop_reason"] == "writes_disabled"
                   for a in answers), answers
        time.sleep(0.3)
        assert count_lines(d.effects) == 0

if __name__ == "__main__":
    main()
