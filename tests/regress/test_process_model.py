"""The process model (issue 9, item 5): SIGHUP ends neither process, and
shutdown never blocks.  Once gatewayd goes (or on SIGTERM) the executor
gives running tools limits.shutdown_s, then kills them as a timeout would
(a write so killed is in doubt in the ledger) and exits; gatewayd, which
after the privilege drop may not signal the root executor, waits a bounded
time for it and exits whatever the executor does.  See "Processes" in
proto/PROTOCOL.md."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

SHUTDOWN_S = 2
REAP_MARGIN_S = 15      # GW_REAP_MARGIN_S in gatewayd/gatewayd.c
# Generous: how long gatewayd may wait for its executor, and 20 s more.
BOUND = SHUTDOWN_S + REAP_MARGIN_S + 20


def stubborn_daemon(name):
    """A pair with "stubborn" (a write that ignores SIGTERM and sleeps
    120 s once its side effect is done, d.rec) and shutdown_s shrunk."""
    d = Daemon(writes_config(), name=name)
    d.rec = os.path.join(d.dir, "stubborn.log")
    tools = {"stubborn": {"mode": "write",
                          "exec": [tool("stubborn-record"), d.rec],
                          "timeout_ms": 300000}}
    d.conf = writes_config(tools, limits={"shutdown_s": SHUTDOWN_S})
    d.conf.setdefault("paths", {})["credentials_dir"] = d.creds
    write_config(d.config_path, d.conf)
    return d


def gatewayd_exits(d, what):
    """Wait (BOUND at most) for gatewayd to exit; its exit status."""
    try:
        return d.proc.wait(BOUND)
    except subprocess.TimeoutExpired:
        raise AssertionError("gatewayd did not exit within %d s of %s:\n%s"
                             % (BOUND, what, d.read_log()))


def uid_of(pid):
    return int(proc_status(pid)["Uid"].split()[0])


@test
def sighup_keeps_both_serving():
    with Daemon(name="pm-hup") as d:
        gpid, xpid = d.proc.pid, d.executor_pid()
        for pid in (gpid, xpid, gpid):
            os.kill(pid, signal.SIGHUP)
        wait_for(lambda: "SIGHUP: the executor reopens the audit log" in d.read_log()
                 or d.proc.poll() is not None, 15, "gatewayd to log the SIGHUP")
        assert d.proc.poll() is None, \
            "gatewayd died of SIGHUP (status %s):\n%s" % (d.proc.returncode, d.read_log())
        assert pid_alive(xpid) and d.executor_pid() == xpid, d.read_log()
        # Both still serve: an agent's call (gatewayd and the executor,
        # whose audit log, reopened, records it) and the control socket.
        r = d.client().call("echo", {"after": "hup"}, run_id="hup-1")
        assert r["status"] == "ok", r
        wait_for(lambda: any(a.get("run_id") == "hup-1" for a in read_audit(d)),
                 15, "the call in the reopened audit log")
        assert d.ctl_json("status")["gatewayd_connected"] is True


@test
def sigterm_ends_a_stubborn_write_in_doubt():
    need_root()
    d = stubborn_daemon("pm-term")
    try:
        d.start()
        gpid, xpid = d.proc.pid, d.executor_pid()
        # The privileged pair: gatewayd dropped to nobody, the executor is root.
        assert uid_of(gpid) != 0 and uid_of(xpid) == 0, (uid_of(gpid), uid_of(xpid))
        args = {"ticket": "P-1"}
        c = d.client()
        c.send({"op": "call", "id": 1, "run_id": "pm-1", "tool": "stubborn",
                "args": args})
        wait_for(lambda: os.path.exists(d.rec + ".pid"), 15, "the write's side effect")
        tpid = int(open(d.rec + ".pid").read())
        d.proc.send_signal(signal.SIGTERM)
        rc = gatewayd_exits(d, "SIGTERM with a write running")
        log = d.read_log()
        assert rc == 0, (rc, log)
        assert not pid_alive(xpid), "the executor outlived gatewayd:\n" + log
        assert not pid_alive(tpid), "the tool outlived the executor:\n" + log
        assert "tools still running after %d s" % SHUTDOWN_S in log, log
        c.close()
        d.stop(expect_rc=0)
        d.start()
        items = d.ctl_json("ledger")
        key = "acme:stubborn:%s" % args_hash(args)
        assert [i["key"] for i in items] == [key], items
        assert items[0]["state"] == "in_doubt", items
        assert "shutdown" in items[0]["note"], items
        assert count_lines(d.rec) == 1
        d.stop()
    finally:
        kill_pid_group(d.rec + ".pid")
        d.cleanup()


@test
def stopped_executor_does_not_block_gatewayd():
    """A stopped root executor: the unprivileged gatewayd can neither
    reap nor kill it, and exits anyway.  The executor is left stopped (under
    systemd, KillMode=mixed kills it at TimeoutStopSec); here, continued, it
    reads end of file on the socketpair and exits by itself."""
    need_root()
    become_subreaper()      # the executor becomes ours once gatewayd exits
    d = Daemon(base_config(limits={"shutdown_s": SHUTDOWN_S}), name="pm-stop")
    xpid = None
    try:
        d.start()
        xpid = d.executor_pid()
        assert uid_of(d.proc.pid) != 0 and uid_of(xpid) == 0
        os.kill(xpid, signal.SIGSTOP)
        wait_for(lambda: proc_status(xpid)["State"].startswith("T"), 15,
                 "the executor to stop")
        d.proc.send_signal(signal.SIGTERM)
        rc = gatewayd_exits(d, "SIGTERM with the executor stopped")
        log = d.read_log()
        assert rc != 0, (rc, log)
        assert "did not exit in %d s" % (SHUTDOWN_S + REAP_MARGIN_S) in log, log
        assert "cannot kill the executor" in log, log
        assert pid_alive(xpid), "the stopped executor is gone:\n" + log
        os.kill(xpid, signal.SIGCONT)
        st = wait_exit(xpid, BOUND)
        assert st is not None and os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, \
            (st, d.read_log())
        xpid = None
        d.stop(expect_rc=None)
    finally:
        if xpid is not None:
            try:
                os.kill(xpid, signal.SIGKILL)
                wait_exit(xpid, 10)
            except OSError:
                pass
        d.cleanup()


@test
def stopped_executor_is_killed_in_development_mode():
    """Same uid for both (no privilege separation): gatewayd kills and
    reaps an executor that does not exit in time."""
    need_root()
    d = Daemon(base_config(limits={"shutdown_s": SHUTDOWN_S}), name="pm-dev")
    try:
        start_as(d, AGENT_UID)
        xpid = d.executor_pid()
        os.kill(xpid, signal.SIGSTOP)
        wait_for(lambda: proc_status(xpid)["State"].startswith("T"), 15,
                 "the executor to stop")
        d.proc.send_signal(signal.SIGTERM)
        rc = gatewayd_exits(d, "SIGTERM with the executor stopped")
        log = d.read_log()
        assert rc != 0, (rc, log)
        assert "did not exit in" in log and "cannot kill" not in log, log
        assert not pid_alive(xpid), "gatewayd did not kill its executor:\n" + log
        d.stop(expect_rc=None)
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
