"""Privilege separation: gatewayd unprivileged, jailed and in a network
namespace of its own, the executor privileged, each one's death handled
by the other; development mode."""
import os
import signal
import stat
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

NOBODY = 65534
SECRET = "s3cret-token-for-acme-prod\n"


def nap_conf():
    c = base_config()
    c["catalog"]["nap"] = {"mode": "read", "exec": [tool("nap")], "timeout_ms": 10000}
    c["catalog"]["argv.env"] = {"mode": "read", "exec": [tool("argv-env")]}
    c["tools"]["allow"] += ["nap", "argv.env"]
    return c


def ids(status, key):
    return [int(x) for x in status[key].split()]


def as_uid(uid, fn):
    """Run fn() in a child as uid (and gid); returns what it returns (a str)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            out = fn()
        except BaseException as e:  # noqa: B902
            out = "raised %s" % type(e).__name__
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return data.decode()


@test
def gatewayd_is_unprivileged_and_jailed():
    need_root()
    with Daemon(nap_conf()) as d:
        gw = d.proc.pid
        st = proc_status(gw)
        assert ids(st, "Uid") == [NOBODY] * 4, st["Uid"]
        assert ids(st, "Gid") == [NOBODY] * 4, st["Gid"]
        assert 0 not in ids(st, "Groups"), st["Groups"]
        assert st["NoNewPrivs"] == "1", st["NoNewPrivs"]
        assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, st
        root = os.readlink("/proc/%d/root" % gw)
        assert root == os.path.realpath(os.path.join(d.state, "empty")), root
        assert os.listdir(os.path.join(d.state, "empty")) == []
        ex = d.executor_pid()
        est = proc_status(ex)
        assert ids(est, "Uid") == [0] * 4, est["Uid"]
        assert os.readlink("/proc/%d/root" % ex) == "/"
        # Still serving after all that.
        assert d.client().call("echo", {})["status"] == "ok"


@test
def state_and_credentials_are_out_of_gatewayds_reach():
    need_root()
    d = Daemon(nap_conf())
    cdir = os.path.join(d.creds, "acme", "prod")
    os.makedirs(cdir)
    cred = os.path.join(cdir, "argv.env")
    with open(cred, "w") as f:
        f.write(SECRET)
    os.chmod(cred, 0o600)
    with d:
        st = os.stat(d.state)
        assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
        for name in os.listdir(d.state):
            if name == "empty":
                continue
            p = os.path.join(d.state, name)
            s = os.stat(p)
            assert s.st_uid == 0 and s.st_mode & 0o077 == 0, (p, oct(s.st_mode))
        # What gatewayd's uid could do, were it not even jailed.
        out = as_uid(NOBODY, lambda: repr(os.listdir(d.state)))
        assert out == "raised PermissionError", out
        out = as_uid(NOBODY, lambda: open(cred).read())
        assert out == "raised PermissionError", out
        out = as_uid(NOBODY, lambda: open(os.path.join(d.state, "audit.log")).read())
        assert out == "raised PermissionError", out

        # The credential reaches the tool on fd 3, and nowhere else.
        r = d.client(uid=AGENT_UID).call("argv.env", {"q": 1}, run_id="cred")
        assert r["status"] == "ok", r
        res = r["result"]
        assert res["credential"] == SECRET, res
        assert res["env"].get("TOOLGATE_CREDENTIAL_FD") == "3", res["env"]
        assert res["argv"] == [tool("argv-env")], res["argv"]
        for k, v in res["env"].items():
            assert "s3cret" not in k and "s3cret" not in v, (k, v)
        # Scoped: another tenant's call to the same tool gets none.
        r = d.client(uid=OTHER_UID).call("argv.env", {"q": 1}, run_id="cred")
        assert r["status"] == "ok", r
        assert r["result"]["credential"] is None, r
        assert "TOOLGATE_CREDENTIAL_FD" not in r["result"]["env"], r
        # And another tool of the same tenant gets none.
        r = d.client(uid=AGENT_UID).call("env.dump", {}, run_id="cred")
        assert r["result"]["credential"] is None, r
        assert "s3cret" not in d.read_log()


@test
def development_mode_runs_both_as_the_user():
    need_root()
    d = Daemon(nap_conf())
    try:
        start_as(d, AGENT_UID)
        gw, ex = d.proc.pid, d.executor_pid()
        for pid in (gw, ex):
            st = proc_status(pid)
            assert ids(st, "Uid") == [AGENT_UID] * 4, (pid, st["Uid"])
            assert ids(st, "Gid") == [AGENT_UID] * 4, (pid, st["Gid"])
        log = d.read_log()
        assert "privileges are NOT separated" in log, log
        c = d.client(uid=AGENT_UID)
        r = c.hello()
        assert (r["status"], r["tenant"]) == ("ok", "acme"), r
        r = c.call("env.dump", {}, run_id="dev")
        assert r["status"] == "ok", r
        r = c.call("argv.env", {}, run_id="dev")
        assert r["status"] == "ok", r
        rc, out, err = d.ctl("status")
        assert rc == 0, (rc, out, err)
        d.stop()
    finally:
        d.cleanup()


@test
def missing_user_is_fatal():
    need_root()
    c = base_config(user="no-such-user-tg")
    d = Daemon(c)
    try:
        d.start(wait=False)
        try:
            rc = d.proc.wait(15)
        except subprocess.TimeoutExpired:
            raise AssertionError("gatewayd keeps running with a missing user:\n" +
                                 d.read_log())
        assert rc != 0, rc
        log = d.read_log()
        assert "no-such-user-tg" in log, log
        # Nothing is left behind: the executor follows gatewayd out.
        wait_for(lambda: group_pids(d.proc.pid) == [], 10, "the executor to exit")
        assert not os.path.exists(d.agent_sock) or \
            connect_refused(d.agent_sock), "agent socket still served"
    finally:
        d.cleanup()


def connect_refused(path):
    try:
        connect_as(path).close()
    except OSError:
        return True
    return False


@test
def executor_death_ends_gatewayd():
    need_root()
    d = Daemon(nap_conf())
    try:
        d.start()
        ex = d.executor_pid()
        os.kill(ex, signal.SIGKILL)
        try:
            rc = d.proc.wait(10)
        except subprocess.TimeoutExpired:
            raise AssertionError("gatewayd outlived the executor:\n" + d.read_log())
        assert rc != 0, (rc, d.read_log())
        assert "executor" in d.read_log()
    finally:
        d.cleanup()


@test
def gatewayd_death_ends_executor_after_running_tools():
    need_root()
    become_subreaper()
    d = Daemon(nap_conf())
    try:
        d.start()
        mark = os.path.join(d.dir, "nap.pid")
        c = d.client()
        c.send({"op": "call", "id": 1, "run_id": "drain", "tool": "nap",
                "args": {"ms": 1500, "mark": mark}})
        wait_for(lambda: os.path.exists(mark), 5, "the tool to start")
        ex = d.executor_pid()
        t0 = time.time()
        d.proc.kill()
        d.proc.wait()
        time.sleep(0.4)
        assert pid_alive(ex), "the executor did not wait for its running tool"
        status = wait_exit(ex, 10)
        assert status is not None, "the executor did not exit after gatewayd died"
        elapsed = time.time() - t0
        assert elapsed >= 1.0, elapsed
        if status != -1:
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        recs = [x for x in read_audit(d) if x.get("run_id") == "drain"]
        assert len(recs) == 1 and recs[0]["decision"] == "ok" and recs[0]["tool"] == "nap", recs
        # The control socket went with it.
        assert not os.path.exists(d.control_sock) or connect_refused(d.control_sock)
    finally:
        d.cleanup()


@test
def gatewayd_sigterm_stops_both_cleanly():
    need_root()
    d = Daemon(nap_conf())
    try:
        d.start()
        ex = d.executor_pid()
        pg = d.proc.pid
        d.stop()                    # SIGTERM, exit status 0
        wait_for(lambda: not pid_alive(ex), 10, "the executor to exit")
        assert group_pids(pg) == []
    finally:
        d.cleanup()


@test
def gatewayd_has_a_network_namespace_of_its_own():
    """gatewayd cannot reach an abstract socket of another process: it lives
    in a network namespace of its own (the executor does not)."""
    need_root()
    name = "tg-netns-%d-%d" % (os.getpid(), time.monotonic_ns())
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(b"\0" + name.encode())
    lst.listen(4)
    probe = ("import socket,sys\n"
             "s=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM)\n"
             "try:\n s.connect(b'\\0'+sys.argv[1].encode())\n"
             "except OSError:\n sys.exit(3)\n")
    try:
        with Daemon() as d:
            mine = os.stat("/proc/self/ns/net").st_ino
            gw = os.stat("/proc/%d/ns/net" % d.proc.pid).st_ino
            ex = os.stat("/proc/%d/ns/net" % d.executor_pid()).st_ino
            assert gw != mine, (gw, mine)
            assert ex == mine, (ex, mine)
            # From here the abstract socket answers; from gatewayd's it does not.
            p = subprocess.run(["/usr/bin/python3", "-c", probe, name])
            assert p.returncode == 0, p
            p = subprocess.run(["nsenter", "--net=/proc/%d/ns/net" % d.proc.pid,
                                "/usr/bin/python3", "-c", probe, name])
            assert p.returncode == 3, p
            assert d.client().call("echo", {"x": 1})["status"] == "ok"
    finally:
        lst.close()


if __name__ == "__main__":
    main()
