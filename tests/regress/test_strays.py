"""Strays: a tool's descendants that outlive it (a setsid'd, double-forked
daemon escapes its process group) are killed and reaped by the executor,
which is their subreaper: after the tool ends, on a timeout, every second,
and when the pair stops."""
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def stray_daemon(name="tg-stray", timeout_ms=10000, sleep=None, hold=False):
    """A Daemon whose read tool "stray" leaves a sleeper behind, its pid in
    d.pidfile."""
    d = Daemon(base_config(), name=name)
    d.pidfile = os.path.join(d.dir, "stray.pid")
    argv = [tool("stray-daemon"), d.pidfile]
    if sleep is not None or hold:
        argv.append(str(sleep or 0))
    if hold:
        argv.append("hold")
    conf = base_config()
    conf["catalog"] = dict(conf["catalog"],
                           stray={"mode": "read", "exec": argv, "timeout_ms": timeout_ms})
    conf["tools"] = dict(conf["tools"], allow=conf["tools"]["allow"] + ["stray"])
    reconfigure(d, conf)
    return d


def stray_pid(d):
    return int(wait_for(lambda: os.path.exists(d.pidfile) and open(d.pidfile).read().strip(),
                        10, "the stray's pid file"))


def gone(pid):
    """Not running and reaped: no /proc entry (a zombie still has one)."""
    return not os.path.exists("/proc/%d" % pid)


def kill_stray(d):
    """The test's own cleanup, whatever the executor did."""
    try:
        os.kill(int(open(d.pidfile).read().strip()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


@test
def stray_is_killed_after_the_tool_ends():
    need_root()
    d = stray_daemon()
    try:
        d.start()
        ex = d.executor_pid()
        r = d.client().call("stray", {})
        assert r["status"] == "ok", r
        pid = stray_pid(d)
        wait_for(lambda: gone(pid), 10, "the stray to be killed and reaped")
        # Nothing is left under the executor: no zombies pile up.
        wait_for(lambda: children(ex) == [], 10, "the executor's children to go")
        d.stop()
    finally:
        kill_stray(d)
        d.cleanup()


@test
def stray_is_killed_after_a_timeout():
    need_root()
    d = stray_daemon(name="tg-stray-to", timeout_ms=500, sleep=30)
    try:
        d.start()
        r = d.client().call("stray", {})
        assert r["status"] == "error" and r["error"] == "tool_timeout", r
        pid = stray_pid(d)
        wait_for(lambda: gone(pid), 10, "the stray to be killed and reaped")
        d.stop()
    finally:
        kill_stray(d)
        d.cleanup()


@test
def stray_holding_stdout_does_not_hold_the_call():
    """The tool exits, its daemon keeps stdout open: the stray is killed,
    stdout reaches end of file, and the call is answered with the tool's
    result rather than a timeout."""
    need_root()
    d = stray_daemon(name="tg-stray-hold", timeout_ms=20000, hold=True)
    try:
        d.start()
        r = d.client().call("stray", {})
        assert r["status"] == "ok", r
        pid = stray_pid(d)
        wait_for(lambda: gone(pid), 10, "the stray to be killed and reaped")
        d.stop()
    finally:
        kill_stray(d)
        d.cleanup()


@test
def stray_is_killed_when_the_pair_stops():
    """The tool is still running when the pair is told to stop: the executor
    finishes it, then kills what it left behind before exiting."""
    need_root()
    d = stray_daemon(name="tg-stray-stop", sleep=1)
    try:
        d.start()
        c = d.client()
        c.send({"op": "call", "id": 1, "run_id": "r", "tool": "stray", "args": {}})
        pid = stray_pid(d)
        d.stop()
        wait_for(lambda: not pid_alive(pid), 10, "the stray to be killed")
    finally:
        kill_stray(d)
        d.cleanup()


if __name__ == "__main__":
    main()
