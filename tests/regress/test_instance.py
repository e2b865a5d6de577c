"""One instance: a second gatewayd on the same paths, or a second executor
on the same state dir, refuses to start and leaves the first one serving."""
import os
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

ANSWERING = "a server is answering on it (another gatewayd?)"


def rec_daemon(name="tg-inst"):
    d = Daemon(base_config(), name=name)
    d.effects = os.path.join(d.dir, "effects")
    reconfigure(d, writes_config(tools={"rec": {"mode": "write",
                                                "exec": [tool("record"), d.effects]}}))
    return d


def run_until_exit(argv, logpath, timeout=15, pass_fds=False):
    """Run argv (a daemon that should refuse to start); returns (exit
    status, its log).  One that keeps running is killed and fails the test.
    With pass_fds, it gets socketpairs on fds 3 and 4, as gatewayd gives
    the executor, so that it fails for no other reason."""
    log = open(logpath, "ab")
    sock = chan = None
    if pass_fds:
        p, sock, chan = spawn_on_socketpair(argv, log)
        # Say HELLO as gatewayd would: an executor that is up answers it.
        try:
            sock.sendall(hello_frame())
        except OSError:
            pass    # it refused to start already
    else:
        p = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise AssertionError("%s kept running:\n%s" % (argv[0], open(logpath, errors="replace").read()))
    finally:
        log.close()
        for s in (sock, chan):
            if s is not None:
                s.close()
    return rc, open(logpath, errors="replace").read()


def write_works(d, n):
    r = d.client().call("rec", {"n": n}, run_id="run-%d" % n)
    assert r["status"] == "ok" and r["replayed"] is False, r


@test
def second_gatewayd_refuses_and_the_first_keeps_serving():
    need_root()
    d = rec_daemon()
    try:
        d.start()
        before = os.stat(d.agent_sock)
        cbefore = os.stat(d.control_sock)
        write_works(d, 1)
        rc, log = run_until_exit(
            [GATEWAYD, "-c", d.config_path, "-f",
             "--agent-socket", d.agent_sock, "--control-socket", d.control_sock,
             "--state-dir", d.state], os.path.join(d.dir, "second.log"))
        assert rc != 0, log
        assert "%s: %s" % (d.agent_sock, ANSWERING) in log, log
        # The first one's sockets are where they were, and it still serves.
        after = os.stat(d.agent_sock)
        assert (after.st_ino, after.st_dev) == (before.st_ino, before.st_dev)
        cafter = os.stat(d.control_sock)
        assert (cafter.st_ino, cafter.st_dev) == (cbefore.st_ino, cbefore.st_dev)
        write_works(d, 2)
        assert count_lines(d.effects) == 2
        assert d.ctl("status")[0] == 0
        d.stop()
    finally:
        d.cleanup()


@test
def second_executor_on_the_state_dir_names_the_first():
    need_root()
    d = rec_daemon(name="tg-inst-ex")
    try:
        d.start()
        first = d.executor_pid()
        write_works(d, 1)
        rc, log = run_until_exit(
            [EXECUTOR, "-c", d.config_path, "-f",
             "--control-socket", os.path.join(d.dir, "control2.sock"),
             "--state-dir", d.state], os.path.join(d.dir, "second.log"),
            pass_fds=True)
        assert rc != 0, log
        assert "pid %d" % first in log, log
        assert os.path.join(d.state, "lock") in log, log
        assert not os.path.exists(os.path.join(d.dir, "control2.sock")), log
        write_works(d, 2)
        assert count_lines(d.effects) == 2
        d.stop()
    finally:
        d.cleanup()


@test
def executor_refuses_a_control_socket_that_answers():
    """Another pair's live control socket is not taken over."""
    need_root()
    d = rec_daemon(name="tg-inst-ctl")
    other = Daemon(base_config(), name="tg-inst-ctl2")
    try:
        d.start()
        before = os.stat(d.control_sock)
        other.control_sock = d.control_sock
        other.start(wait=False)
        try:
            rc = other.proc.wait(15)
        except subprocess.TimeoutExpired:
            raise AssertionError("the second pair kept running:\n" + other.read_log())
        assert rc != 0, other.read_log()
        assert "%s: %s" % (d.control_sock, ANSWERING) in other.read_log(), other.read_log()
        after = os.stat(d.control_sock)
        assert (after.st_ino, after.st_dev) == (before.st_ino, before.st_dev)
        assert d.ctl("status")[0] == 0
        write_works(d, 1)
        d.stop()
    finally:
        other.cleanup()
        d.cleanup()


@test
def stale_sockets_are_replaced():
    """A socket file nobody answers on (a crash) does not stop a start."""
    need_root()
    d = rec_daemon(name="tg-inst-stale")
    try:
        for path in (d.agent_sock, d.control_sock):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(path)
            s.close()
            assert os.path.exists(path)
        d.start()
        write_works(d, 1)
        assert d.ctl("status")[0] == 0
        d.stop()
    finally:
        d.cleanup()


@test
def a_path_that_is_not_a_socket_is_never_unlinked():
    need_root()
    d = rec_daemon(name="tg-inst-file")
    try:
        with open(d.agent_sock, "w") as f:
            f.write("keep me\n")
        d.start(wait=False)
        try:
            rc = d.proc.wait(15)
        except subprocess.TimeoutExpired:
            raise AssertionError("gatewayd started over a file:\n" + d.read_log())
        assert rc != 0
        assert "not a socket" in d.read_log(), d.read_log()
        assert open(d.agent_sock).read() == "keep me\n"
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
