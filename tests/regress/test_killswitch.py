"""The kill switch: SIGUSR1 to either process disables writes at once, the
state survives restarts, and only `gatewayctl writes enable` undoes it."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def writes_conf():
    return base_config(writes={"enabled": True, "require_approval": False},
                       tools={"default_mode": "read_write"})


_n = [0]


def write(c, tool_name="ticket.close"):
    """A write with args never used before (no replay, no duplicate)."""
    _n[0] += 1
    args = {"ticket_id": "T-%d" % _n[0]}
    return args, c.call(tool_name, args, run_id="ks-%d" % _n[0])


def assert_write_runs(c, tool_name="ticket.close"):
    args, r = write(c, tool_name)
    assert r["status"] == "ok", r
    assert r["idempotency_key"] == "acme:%s:%s" % (tool_name, args_hash(args)), r
    assert r["args_hash"] == args_hash(args), r
    assert r["replayed"] is False, r
    assert r["result"]["args"] == args, r


def assert_write_denied(c, tool_name="ticket.close"):
    _, r = write(c, tool_name)
    assert r["status"] == "denied" and r["stop_reason"] == "writes_disabled", r
    assert "kill switch" in r["message"], r


def status(d):
    return d.ctl_json("status")


def hello_writes(d):
    return d.client().hello()["writes_enabled"]


def assert_off(d, c):
    assert_write_denied(c)
    assert_write_denied(c, "nomode")
    assert c.hello()["writes_enabled"] is False
    s = status(d)
    assert s["writes_enabled"] is False, s
    # Reads go on.
    _n[0] += 1
    r = c.call("echo", {"read": _n[0]}, run_id="reads-%d" % _n[0])
    assert r["status"] == "ok" and "idempotency_key" not in r, r


def disabled_by(d, pid):
    """SIGUSR1 to pid; gatewayd must say writes are off within a second."""
    t0 = time.time()
    os.kill(pid, signal.SIGUSR1)
    wait_for(lambda: hello_writes(d) is False, 5, "hello to say writes are off")
    assert time.time() - t0 < 1.0, time.time() - t0


@test
def write_runs_and_tool_without_mode_is_a_write():
    with Daemon(writes_conf()) as d:
        c = d.client()
        assert c.hello()["writes_enabled"] is True
        assert status(d)["writes_enabled"] is True
        assert_write_runs(c)
        # No mode: a write, with an idempotency key.
        assert_write_runs(c, "nomode")


@test
def sigusr1_to_gatewayd():
    with Daemon(writes_conf()) as d:
        c = d.client()
        assert_write_runs(c)
        # At once: the next write on a connection already open.  (Waiting
        # for hello to agree avoids racing the signal with the request.)
        disabled_by(d, d.proc.pid)
        assert_write_denied(c)
        assert_off(d, c)
        # The executor stored it: SIGUSR1 again changes nothing, a
        # restart keeps it.
        os.kill(d.proc.pid, signal.SIGUSR1)
        d.stop()
        d.start()
        c = d.client()
        assert_off(d, c)
        s = status(d)
        assert s["writes_enabled"] is False, s
        rc, out, err = d.ctl("writes", "enable")
        assert rc == 0, (rc, out, err)
        wait_for(lambda: hello_writes(d) is True, 5, "hello to say writes are on")
        assert status(d)["writes_enabled"] is True
        assert_write_runs(c)
        assert_write_runs(c, "nomode")


@test
def sigusr1_to_executor():
    with Daemon(writes_conf()) as d:
        c = d.client()
        assert_write_runs(c)
        os.kill(d.executor_pid(), signal.SIGUSR1)
        wait_for(lambda: status(d)["writes_enabled"] is False, 5, "status off")
        # The executor refuses even before gatewayd has heard of it; and
        # gatewayd is told promptly.
        assert_write_denied(c)
        disabled_by(d, d.executor_pid())
        assert_off(d, c)
        d.stop()
        d.start()
        c = d.client()
        assert_off(d, c)
        # A second SIGUSR1 toggles nothing back on.
        os.kill(d.executor_pid(), signal.SIGUSR1)
        os.kill(d.proc.pid, signal.SIGUSR1)
        assert_off(d, c)
        rc, out, err = d.ctl("writes", "enable")
        assert rc == 0, (rc, out, err)
        wait_for(lambda: hello_writes(d) is True, 5, "hello to say writes are on")
        assert_write_runs(c)
        # And the enabled state survives a restart too.
        d.stop()
        d.start()
        c = d.client()
        assert c.hello()["writes_enabled"] is True
        assert_write_runs(c)


@test
def kill_switch_survives_a_crash():
    """Once status says off, the state is on disk: SIGKILL to both
    processes and a new start keep writes off."""
    with Daemon(writes_conf()) as d:
        c = d.client()
        assert_write_runs(c)
        disabled_by(d, d.proc.pid)
        wait_for(lambda: status(d)["writes_enabled"] is False, 5, "status off")
        ex = d.executor_pid()
        os.killpg(d.proc.pid, signal.SIGKILL)
        d.stop(expect_rc=None)
        wait_for(lambda: not pid_alive(ex), 5, "the executor to die")
        d.start()
        c = d.client()
        assert_off(d, c)


@test
def restart_keeps_state_dir_and_sockets_working():
    """Daemon.start() after stop() reuses the same paths."""
    with Daemon(writes_conf()) as d:
        state = d.state
        d.client().call("echo", {}, run_id="first")
        d.stop()
        d.start()
        assert d.state == state
        assert d.client().call("echo", {}, run_id="second")["status"] == "ok"
        assert status(d)["writes_enabled"] is True
        runs = {x.get("run_id") for x in read_audit(d)}
        assert {"first", "second"} <= runs, runs


@test
def enable_refused_when_config_disables_writes():
    with Daemon() as d:
        rc, out, err = d.ctl("writes", "enable")
        assert rc == 1, (rc, out, err)
        assert "writes.enabled" in err, err
        assert status(d)["writes_enabled"] is False
        c = d.client()
        assert c.hello()["writes_enabled"] is False
        _, r = write(c)
        assert r["status"] == "denied" and r["stop_reason"] == "writes_disabled", r
        rc, out, err = d.ctl("--json", "writes", "enable")
        assert rc == 1, (rc, out, err)


if __name__ == "__main__":
    main()
