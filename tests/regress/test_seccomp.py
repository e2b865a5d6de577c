"""gatewayd's seccomp filter (gatewayd/sandbox.c; PROTOCOL.md,
"Sandboxing"): the pair starts with the filter on (Seccomp: 2 in
/proc/PID/status) and serves agents as before: reads, a write through an
approval, a metrics scrape, hang-ups mid-call, a clean SIGTERM; a
forbidden system call (TOOLGATE_DEBUG_SECCOMP_PROBE) kills gatewayd with
SIGSYS, and the executor notices and exits on its own."""
import os
import signal
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@test
def filter_on_and_the_loop_serves_agents():
    d = approvals_daemon(name="tg-seccomp")
    port = free_port()
    d.conf["metrics"] = {"listen": "127.0.0.1:%d" % port}
    write_config(d.config_path, d.conf)
    with d:
        st = proc_status(d.proc.pid)
        assert st["Seccomp"] == "2", st
        assert st.get("NoNewPrivs") == "1", st
        # The executor is not filtered: it starts tools.
        assert proc_status(d.executor_pid())["Seccomp"] == "0"
        assert "seccomp: filter loaded" in d.read_log()
        c = d.client()
        assert c.hello()["status"] == "ok"
        r = c.call("echo", {"q": "hi", "n": 1})
        assert r["status"] == "ok", r
        # Hang-ups: mid-frame and right after a call was sent.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.agent_sock)
        s.sendall(b"\x00\x00")
        s.close()
        h = d.client()
        h.send({"op": "call", "id": 7, "run_id": "run-h", "tool": "echo",
                "args": {"q": "bye", "n": 2}})
        h.close()
        # A write through an approval.
        r = request_approval(d, c, {"ticket_id": "T-9"}, run_id="run-sc")
        rc, out, err = d.ctl("approve", r["approval_id"])
        assert rc == 0, (rc, out, err)
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok", x
        assert count_lines(d.effects) == 1
        # A scrape: evhttp on the socket bound before the drop.
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                    timeout=10) as m:
            assert m.status == 200
            assert b"toolgate_executor_up 1" in m.read()
        # Still alive and still filtered after all of it.
        assert d.client().call("echo", {"q": "again", "n": 3})["status"] == "ok"
        assert proc_status(d.proc.pid)["Seccomp"] == "2"
    # Daemon.__exit__ stopped it with SIGTERM and checked exit status 0.


@test
def forbidden_syscall_kills_gatewayd_with_sigsys():
    d = Daemon(name="tg-seccomp-probe")
    try:
        os.environ["TOOLGATE_DEBUG_SECCOMP_PROBE"] = "1"
        try:
            d.start(wait=False)
        finally:
            del os.environ["TOOLGATE_DEBUG_SECCOMP_PROBE"]
        rc = d.proc.wait(30)
        log = d.read_log()
        assert rc == -signal.SIGSYS, "gatewayd exited %s:\n%s" % (rc, log)
        assert "seccomp probe: socket(AF_INET)" in log, log
        assert "the filter did not stop it" not in log, log
        # The executor sees its socketpair close and exits by itself.
        wait_for(lambda: not group_pids(d.proc.pid), timeout=30,
                 what="the executor to exit after gatewayd died")
    finally:
        d.cleanup()


@test
def stopping_with_the_executor_stuck_exits_cleanly():
    """SIGTERM while the executor reads nothing (stopped) and gatewayd
    holds more for it than the channel takes: gatewayd's last words wait
    for it a second at most (poll) and it exits 0.  The filter once
    killed it there with SIGSYS."""
    d = Daemon(base_config(limits={"max_frame": 1 << 20}), name="tg-seccomp-drain")
    with d:
        ex = d.executor_pid()
        os.kill(ex, signal.SIGSTOP)
        try:
            cs = []
            for i in range(24):
                c = d.client()
                c.send({"id": i, "op": "call", "tool": "echo",
                        "run_id": "drain-%d" % i, "args": {"pad": "x" * 200000}})
                cs.append(c)
            # gatewayd has read them all: its queue to the executor is
            # full beyond what the socket holds.
            time.sleep(1.0)
            d.proc.send_signal(signal.SIGTERM)
            time.sleep(1.5)     # past the drain's second
            os.kill(ex, signal.SIGCONT)
            rc = d.stop(expect_rc=None)
            assert rc == 0, "gatewayd exited %s:\n%s" % (rc, d.read_log()[-2000:])
        finally:
            try:
                os.kill(ex, signal.SIGCONT)
            except OSError:
                pass


if __name__ == "__main__":
    main()
