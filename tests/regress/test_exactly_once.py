"""Exactly once, whatever the clock or a reused approval does: writes that
ran twice, or ran when they should not have, before these were fixed.
Each test here failed on the code before its fix."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

import msgpack

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


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


# -- clock steps -----------------------------------------------------------------

class FakeClock:
    """The executor's wall clock, steppable: Debian's libfaketime preloaded
    into the executor alone (through gatewayd's --executor), reading its
    offset from a file on every call; CLOCK_MONOTONIC is left alone."""

    def __init__(self, d):
        if not os.path.exists(FAKETIME_LIB):
            raise AssertionError("libfaketime is not installed (%s): make deps"
                                 " installs it; this test cannot run without it"
                                 % FAKETIME_LIB)
        self.file = os.path.join(d.dir, "faketime")
        self.set("+0")
        self.wrapper = os.path.join(d.dir, "executor-faketime")
        with open(self.wrapper, "w") as f:
            # ASan wants to be first among the libraries; libfaketime
            # intercepts nothing ASan does, so the order check is waived.
            f.write("#!/bin/sh\n"
                    "ASAN_OPTIONS=$ASAN_OPTIONS:verify_asan_link_order=0 "
                    "LD_PRELOAD=%s FAKETIME_TIMESTAMP_FILE=%s FAKETIME_NO_CACHE=1 "
                    "FAKETIME_DONT_FAKE_MONOTONIC=1 exec %s \"$@\"\n"
                    % (FAKETIME_LIB, self.file, EXECUTOR))
        os.chmod(self.wrapper, 0o755)

    def set(self, offset):
        with open(self.file + ".tmp", "w") as f:
            f.write(offset + "\n")
        os.rename(self.file + ".tmp", self.file)

    def args(self):
        return ["--executor", self.wrapper]


def executor_clock_ms(d):
    """The wall clock as the executor sees it, from its newest audit record."""
    return read_audit(d)[-1]["ts_ms"]


@test
def a_clock_step_forward_does_not_sweep_live_keys():
    """The wall clock jumps 2 h forward with writes.retention_s 1 h: before,
    the sweeper deleted the keys and a retry ran the write again."""
    need_root()
    d = approvals_daemon(require=False)
    conf = dict(d.conf)
    conf["writes"] = dict(conf["writes"], retention_s=3600)
    reconfigure(d, conf)
    clock = FakeClock(d)
    d.start(extra_args=clock.args())
    try:
        c = d.client()
        r = c.call("rec", {"ticket_id": "T-3"}, run_id="run-a")
        assert r["status"] == "ok" and r["replayed"] is False, r
        t0 = executor_clock_ms(d)
        clock.set("+2h")
        time.sleep(2.5)     # the sweeper runs every second
        e = c.call("echo", {}, run_id="run-b")
        assert e["status"] == "ok", e
        assert executor_clock_ms(d) - t0 > 7000 * 1000, "the clock did not step"
        r2 = c.call("rec", {"ticket_id": "T-3"}, run_id="run-b")
        assert r2["status"] == "ok" and r2["replayed"] is True, r2
        clock.set("-2h")
        time.sleep(1.5)
        r3 = c.call("rec", {"ticket_id": "T-3"}, run_id="run-c")
        assert r3["status"] == "ok" and r3["replayed"] is True, r3
        assert count_lines(d.effects) == 1
        d.stop()
    finally:
        d.cleanup()


@test
def audit_seq_never_goes_back_after_a_restart_with_the_clock_behind():
    need_root()
    d = approvals_daemon(require=False)
    clock = FakeClock(d)
    d.start(extra_args=clock.args())
    try:
        c = d.client()
        for i in range(3):
            assert c.call("rec", {"i": i}, run_id="run-q")["status"] == "ok"
        c.close()
        d.stop()
        clock.set("-1h")
        d.start(extra_args=clock.args())
        c = d.client()
        for i in range(3):
            assert c.call("rec", {"i": i + 10}, run_id="run-q2")["status"] == "ok"
        c.close()
        d.stop()
        seqs = [rec["seq"] for rec in read_audit(d)]
        assert len(seqs) >= 6, seqs
        assert all(b > a for a, b in zip(seqs, seqs[1:])), seqs
    finally:
        d.cleanup()


# -- strings and waits -----------------------------------------------------------

def raw_call(run_id, step_id=None):
    req = {b"op": b"call", b"id": 1, b"run_id": run_id, b"tool": b"rec",
           b"args": {b"n": 1}}
    if step_id is not None:
        req[b"step_id"] = step_id
    # use_bin_type=False packs bytes as msgpack str, whatever they hold.
    return raw_frame(msgpack.packb(req, use_bin_type=False))


@test
def invalid_utf8_in_run_or_step_id_is_a_bad_request():
    """Before, such a write ran and its audit record had no run id."""
    with approvals_daemon(require=False) as d:
        for data in (raw_call(b"run-\xff"), raw_call(b"run-1", b"step-\xc3\x28")):
            c = d.client()
            c.send_raw(data)
            r = c.recv()
            assert r["status"] == "error" and r["error"] == "bad_request", r
            c.close()
        assert count_lines(d.effects) == 0
        # The daemon goes on serving.
        assert d.client().call("rec", {"n": 2}, run_id="run-ok")["status"] == "ok"


@test
def invalid_utf8_from_gatewayd_is_a_protocol_violation():
    need_root()
    link = ExecutorLink(writes_config(), name="tg-utf8")
    effects = os.path.join(link.dir, "effects")
    conf = writes_config(tools={"rec": {"mode": "write", "exec": [tool("record"), effects]}})
    link.configure(conf)
    link.start()
    try:
        body = link.call_body("rec", {"n": 1}, "run-x")
        body = {k.encode(): (v.encode() if isinstance(v, str) else v)
                for k, v in body.items()}
        body[b"run_id"] = b"run-\xff"
        link.sock.sendall(raw_frame(msgpack.packb(
            [link.types["MSG_CALL"], 7, body], use_bin_type=False)))
        link.expect_exit("a run_id not UTF-8", ("bad message",))
        assert count_lines(effects) == 0
    finally:
        link.cleanup()


@test
def wait_checks_the_env_as_well_as_the_tenant():
    """acme/staging must not learn the state of an acme/prod approval."""
    need_root()
    d = approvals_daemon()
    conf = dict(d.conf)
    conf["principals"] = conf["principals"] + [
        {"uid": STRANGER_UID, "tenant": "acme", "env": "staging"}]
    reconfigure(d, conf)
    with d:
        r = d.client().call("rec", {"n": 1})
        assert r["status"] == "needs_approval", r
        w = d.client(STRANGER_UID).wait(r["approval_id"], 0)
        assert w["status"] == "error" and w["error"] == "bad_request", w
        w = d.client(AGENT_UID).wait(r["approval_id"], 0)
        assert w["status"] == "ok" and w["state"] == "pending", w


if __name__ == "__main__":
    main()
