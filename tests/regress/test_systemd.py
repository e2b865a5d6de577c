"""systemd (issue 14): the real gatewayd under systemd-socket-activate, as
toolgate.socket would start it, with a NOTIFY_SOCKET this test binds and
reads; the unit files as systemd-analyze judges them; credentials from a
$CREDENTIALS_DIRECTORY laid out as LoadCredential= lays it out.

systemd is not running here (nor in CI): systemd-socket-activate passes
the socket exactly as the service manager does (LISTEN_FDS, LISTEN_PID,
LISTEN_FDNAMES, fd 3), and the analysis is offline.  Without the tools
each test prints SKIP, and fails under CI=true (Debian's `systemd`
package has both: make deps).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

UNITS = os.path.join(ROOT, "systemd")
SERVICE = os.path.join(UNITS, "toolgate.service")
SOCKET = os.path.join(UNITS, "toolgate.socket")
# The most systemd-analyze security may score the service (issue 14).
MAX_EXPOSURE = 2.0
# Small, so pings come often: gatewayd PINGs the executor every quarter.
WATCHDOG_USEC = 400000


def need_tool(name):
    path = shutil.which(name) or (os.path.exists("/usr/bin/" + name) and "/usr/bin/" + name)
    if path:
        return path
    missing_peer("%s is not installed (Debian's systemd package: make deps)" % name)


class Notify:
    """The service manager's end of NOTIFY_SOCKET: a datagram socket in
    the temp dir; each message with the pid that sent it."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.got = []           # (time, pid, state line)

    def poll(self, timeout):
        """Read what comes for timeout seconds."""
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                return
            self.sock.settimeout(left)
            try:
                msg, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except (socket.timeout, BlockingIOError):
                return
            pid = None
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", data[:12])[0]
            for line in msg.decode().split("\n"):
                if line:
                    self.got.append((time.time(), pid, line))

    def wait_for(self, state, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for t, pid, line in self.got:
                if line == state:
                    return t, pid
            self.poll(0.1)
        raise AssertionError("no %s within %ss; got %r" % (state, timeout, self.got))

    def count(self, state, since=0.0):
        return sum(1 for t, _, line in self.got if line == state and t >= since)

    def close(self):
        self.sock.close()


class Activated(Daemon):
    """gatewayd as toolgate.socket starts it: systemd-socket-activate
    binds the agent socket and execs gatewayd on the first connection."""

    def __init__(self, conf=None, listen=None, fdname="agent", watchdog=True):
        Daemon.__init__(self, conf, name="tg-sd")
        self.listen = listen or self.agent_sock
        self.fdname = fdname
        self.watchdog = watchdog
        self.notify = Notify(os.path.join(self.dir, "notify.sock"))

    def start(self, extra_args=(), wait=True):
        activate = need_tool("systemd-socket-activate")
        sets = ["NOTIFY_SOCKET=" + self.notify.path]
        if self.watchdog:
            sets.append("WATCHDOG_USEC=%d" % WATCHDOG_USEC)
        # It passes on only what -E names.
        for k, v in self.env().items():
            if k.startswith(("ASAN_", "UBSAN_", "LSAN_")):
                sets.append("%s=%s" % (k, v))
        argv = [activate, "-l", self.listen, "--fdname=" + self.fdname]
        for s in sets:
            argv += ["-E", s]
        argv += [GATEWAYD, "-c", self.config_path, "-f", "-v",
                 "--agent-socket", self.agent_sock,
                 "--control-socket", self.control_sock,
                 "--state-dir", self.state] + list(extra_args)
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log,
                                     env=self.env(), start_new_session=True)
        # Bound by systemd-socket-activate before it execs anything.
        deadline = time.time() + 10
        while not os.path.exists(self.listen):
            if self.proc.poll() is not None or time.time() > deadline:
                raise AssertionError("no socket at %s:\n%s" % (self.listen, self.read_log()))
            time.sleep(0.02)
        if wait:
            self.wait_ready()
        return self

    def cleanup(self):
        self.notify.close()
        Daemon.cleanup(self)


@test
def passed_socket_serves_and_ready_comes_from_gatewayd():
    need_root()
    d = Activated()
    with d:
        ino = os.stat(d.agent_sock).st_ino
        c = d.client()
        r = c.hello()
        assert r["status"] == "ok" and r["tenant"] == "acme", r
        r = c.call("echo", {"q": "socket-activated"})
        assert r["status"] == "ok" and r["result"]["args"] == {"q": "socket-activated"}, r
        # The socket systemd bound, not one gatewayd made in its place.
        assert os.stat(d.agent_sock).st_ino == ino
        assert "from the service manager" in d.read_log(), d.read_log()
        t, pid = d.notify.wait_for("READY=1", 15)
        # From the main process (NotifyAccess=main), not the executor.
        assert pid == d.proc.pid, (pid, d.proc.pid)
        assert d.notify.count("READY=1") == 1, d.notify.got
        # The executor inherits none of it.
        with open("/proc/%d/environ" % d.executor_pid(), "rb") as f:
            env = f.read().split(b"\0")
        for k in (b"NOTIFY_SOCKET=", b"LISTEN_FDS=", b"LISTEN_PID=", b"WATCHDOG_USEC="):
            assert not any(e.startswith(k) for e in env), env


@test
def watchdog_pings_only_while_the_executor_answers():
    need_root()
    d = Activated()
    with d:
        t0, _ = d.notify.wait_for("READY=1", 15)
        d.notify.poll(1.5)
        n = d.notify.count("WATCHDOG=1", t0)
        # Every 100 ms; a busy box may lose a few.
        assert n >= 4, (n, d.notify.got)
        pids = {pid for _, pid, line in d.notify.got if line == "WATCHDOG=1"}
        assert pids == {d.proc.pid}, pids

        # A stopped executor answers no PING: the pings stop, and
        # systemd would restart the pair after WatchdogSec.
        ex = d.executor_pid()
        os.kill(ex, signal.SIGSTOP)
        try:
            d.notify.poll(0.3)          # one in flight may still land
            stopped = time.time()
            d.notify.poll(1.2)
            late = d.notify.count("WATCHDOG=1", stopped)
            assert late == 0, (late, d.notify.got)
        finally:
            os.kill(ex, signal.SIGCONT)
        resumed = time.time()
        d.notify.poll(1.0)
        assert d.notify.count("WATCHDOG=1", resumed) >= 2, d.notify.got


@test
def no_watchdog_pings_unless_asked():
    need_root()
    d = Activated(watchdog=False)
    with d:
        d.notify.wait_for("READY=1", 15)
        d.notify.poll(1.0)
        assert d.notify.count("WATCHDOG=1") == 0, d.notify.got


@test
def sigterm_sends_stopping():
    need_root()
    d = Activated()
    with d:
        d.notify.wait_for("READY=1", 15)
        t0 = time.time()
        d.proc.send_signal(signal.SIGTERM)
        t, pid = d.notify.wait_for("STOPPING=1", 15)
        assert t >= t0 and pid == d.proc.pid, (t, t0, pid)
        d.proc.wait(30)
        assert d.proc.returncode == 0, (d.proc.returncode, d.read_log())
        d.proc = None
        d.log.close()


def refused(d, why):
    """gatewayd, activated by one connection, refuses the socket it got."""
    d.start(wait=False)
    try:
        # systemd-socket-activate listens a moment after it starts: a busy
        # machine may get here first.
        deadline = time.time() + 15
        while True:
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(d.listen)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                assert time.time() < deadline, "the activator never listened"
                time.sleep(0.05)
            finally:
                s.close()
        d.proc.wait(15)
        assert d.proc.returncode not in (0, None), d.proc.returncode
        assert why in d.read_log(), d.read_log()
        assert d.notify.count("READY=1") == 0
    finally:
        d.cleanup()


@test
def socket_bound_elsewhere_is_refused():
    """The executor takes only connections made on paths.agent_socket:
    a unit whose ListenStream= differs would refuse every agent."""
    need_root()
    d = Activated()
    d.listen = os.path.join(d.dir, "other.sock")
    refused(d, "bound elsewhere than paths.agent_socket")


@test
def socket_of_another_name_is_refused():
    need_root()
    refused(Activated(fdname="metrics"), 'LISTEN_FDNAMES=metrics; expected "agent"')


SLEEPER = """#!/bin/sh
# A tool that outlives its timeout, with a second process in its group.
sleep 29.%s &
exec sleep 29.%s
"""


class NoKillDaemon(Daemon):
    """gatewayd started as the unit starts it: root without CAP_KILL in
    its bounding set (nor the executor's, nor the tools')."""

    def start(self, extra_args=(), wait=True):
        setpriv = need_tool("setpriv")
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            [setpriv, "--bounding-set=-kill", "--inh-caps=-kill", GATEWAYD,
             "-c", self.config_path, "-f", "-v",
             "--agent-socket", self.agent_sock,
             "--control-socket", self.control_sock,
             "--state-dir", self.state] + list(extra_args),
            stdout=self.log, stderr=self.log, env=self.env(),
            start_new_session=True)
        if wait:
            self.wait_ready()
        return self


def sleepers(mark):
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if ("29.%s" % mark).encode() in f.read():
                        found.append(int(pid))
            except OSError:
                pass
    return found


@test
def tools_of_another_user_are_killed_without_cap_kill():
    """The unit gives no CAP_KILL: a tool running as nobody that overruns
    its timeout is still killed, group and all (the executor signals it
    as its own uid)."""
    need_root()
    mark = "%06d" % (os.getpid() % 1000000)
    d = NoKillDaemon(base_config())
    path = os.path.join(d.dir, "sleeper")
    with open(path, "w") as f:
        f.write(SLEEPER % (mark, mark))
    os.chmod(path, 0o755)
    d.conf["catalog"]["sleeper"] = {"mode": "read", "exec": [path],
                                    "user": "nobody", "timeout_ms": 300}
    d.conf["tools"]["allow"].append("sleeper")
    write_config(d.config_path, d.conf)
    with d:
        with open("/proc/%d/status" % d.executor_pid()) as f:
            bnd = int([l for l in f if l.startswith("CapBnd:")][0].split()[1], 16)
        assert not bnd & (1 << 5), "CAP_KILL is in the bounding set: %x" % bnd
        t0 = time.time()
        r = d.client().call("sleeper", {})
        took = time.time() - t0
        assert r["status"] == "error" and r.get("error") == "tool_timeout", r
        assert took < 10, took
        deadline = time.time() + 5
        while sleepers(mark) and time.time() < deadline:
            time.sleep(0.05)
        left = sleepers(mark)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, "still running: %s" % left


def argv_env_conf():
    c = base_config()
    c["catalog"]["argv.env"] = {"mode": "read", "exec": [tool("argv-env")]}
    c["tools"]["allow"] += ["argv.env"]
    c["paths"] = {"credentials_dir": "$CREDENTIALS_DIRECTORY/toolgate"}
    return c


class CredsDaemon(Daemon):
    """Started with $CREDENTIALS_DIRECTORY set, as systemd does."""

    def __init__(self, conf):
        Daemon.__init__(self, conf, name="tg-cred")
        # Daemon put its own path there: keep the config's.
        self.conf["paths"]["credentials_dir"] = "$CREDENTIALS_DIRECTORY/toolgate"
        write_config(self.config_path, self.conf)
        self.credsdir = os.path.join(self.dir, "credentials")
        os.mkdir(self.credsdir, 0o700)

    def env(self):
        e = Daemon.env(self)
        e["CREDENTIALS_DIRECTORY"] = self.credsdir
        return e


@test
def credentials_come_from_the_credentials_directory():
    need_root()
    d = CredsDaemon(argv_env_conf())
    # LoadCredential=toolgate:/etc/toolgate/credentials, with
    # acme/prod/argv.env and checkpoint.key in it, gives these two.
    with open(os.path.join(d.credsdir, "toolgate_acme_prod_argv.env"), "w") as f:
        f.write("s3cret-from-systemd")
    with d:
        r = d.client().call("argv.env", {})
        assert r["status"] == "ok", r
        assert r["result"]["credential"] == "s3cret-from-systemd", r
        # No checkpoint key among the credentials: one of the state dir's.
        assert "created in %s/checkpoint.key" % d.state in d.read_log(), d.read_log()


@test
def checkpoint_key_comes_from_the_credentials_directory():
    need_root()
    d = CredsDaemon(argv_env_conf())
    key = os.path.join(d.credsdir, "toolgate_checkpoint.key")
    # A checkpoint key file: the 64-byte Ed25519 secret key.
    seed = os.urandom(32)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization
    pk = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    with open(key, "wb") as f:
        f.write(seed + pk)
    os.chmod(key, 0o400)
    with d:
        d.client().hello()
        assert "from " + key in d.read_log(), d.read_log()
        assert not os.path.exists(os.path.join(d.state, "checkpoint.key")), os.listdir(d.state)


@test
def ambiguous_names_are_a_config_error():
    """tenant "a" env "b_c" and tenant "a_b" env "c" would both be a_b_c:
    with credentials in the flat directory, a principal whose tenant or
    env has a '_' stops the daemon at start, with the principal named."""
    need_root()
    c = argv_env_conf()
    c["principals"].append({"uid": 1005, "tenant": "acme", "env": "prod_eu"})
    d = CredsDaemon(c)
    try:
        p = subprocess.run([GATEWAYD, "-c", d.config_path, "-f"], env=d.env(),
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0, p
        assert "principals[%d]" % (len(c["principals"]) - 1) in p.stderr, p.stderr
        assert "cannot be told apart" in p.stderr, p.stderr
        # The same config with the credentials in a tree loads.
        c["paths"]["credentials_dir"] = d.creds
        write_config(d.config_path, c)
        with d:
            d.client().hello()
    finally:
        d.cleanup()


@test
def unset_credentials_directory_is_a_config_error():
    need_root()
    d = Daemon(argv_env_conf())
    d.conf["paths"]["credentials_dir"] = "$CREDENTIALS_DIRECTORY/toolgate"
    write_config(d.config_path, d.conf)
    try:
        env = d.env()
        env.pop("CREDENTIALS_DIRECTORY", None)
        p = subprocess.run([GATEWAYD, "-c", d.config_path, "-f"], env=env,
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0, p
        assert "paths.credentials_dir" in p.stderr and "CREDENTIALS_DIRECTORY is not set" in p.stderr, p.stderr
    finally:
        d.cleanup()


@test
def logrotate_example_rotates_the_audit_log():
    """examples/logrotate.toolgate, run by logrotate against a live pair:
    the log is moved aside, SIGHUP reaches the executor alone, and the
    next record goes to the new file (systemctl is not running here: the
    main pid is put in its place)."""
    need_root()
    logrotate = need_tool("logrotate")
    with open(os.path.join(ROOT, "examples", "logrotate.toolgate")) as f:
        conf = f.read()
    d = Daemon()
    with d:
        c = d.client()
        assert c.call("echo", {"n": 1})["status"] == "ok"
        log = os.path.join(d.state, "audit.log")
        wait_for(lambda: os.path.exists(log) and os.path.getsize(log) > 0, 10, "the audit log")
        ex = d.executor_pid()
        assert "/var/lib/toolgate/audit.log" in conf and "systemctl show" in conf
        conf = conf.replace("/var/lib/toolgate/audit.log", log)
        conf = re.sub(r"pid=\$\(systemctl show[^\n]*", "pid=%d" % d.proc.pid, conf)
        path = os.path.join(d.dir, "logrotate.conf")
        with open(path, "w") as f:
            f.write(conf)
        p = subprocess.run([logrotate, "-f", "-s", os.path.join(d.dir, "lr.state"), path],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert os.path.exists(log + ".1"), os.listdir(d.state)
        wait_for(lambda: "reopened" in d.read_log(), 10, "the executor to reopen the log")
        # Both processes are still the ones we started: nothing died of it.
        assert d.executor_pid() == ex and d.proc.poll() is None
        assert c.call("echo", {"n": 2})["status"] == "ok"
        wait_for(lambda: len(read_audit(d)) >= 1, 10, "a record in the new log")
        with open(log + ".1") as f:
            old = [json.loads(l) for l in f if l.strip()]
        new = read_audit(d)
        assert old and new and new[0]["seq"] > old[-1]["seq"], (old, new)


def exposure(unit):
    analyze = need_tool("systemd-analyze")
    p = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", unit],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout + p.stderr)
    assert m, (p.returncode, p.stdout, p.stderr)
    return float(m.group(1)), p.stdout


@test
def service_scores_2_0_or_lower():
    score, out = exposure(SERVICE)
    worst = [l for l in out.splitlines() if l.startswith("\u2717")]
    print("systemd-analyze security: %.1f; costs: %s" % (
        score, "; ".join(" ".join(l.split()[1:2] + l.split()[-1:]) for l in worst)))
    assert score <= MAX_EXPOSURE, out


@test
def a_weaker_unit_scores_higher():
    """The check can fail: the same unit without its hardening does."""
    tmp = tempfile.mkdtemp(prefix="tg-unit-")
    try:
        weak = os.path.join(tmp, "toolgate.service")
        with open(SERVICE) as f, open(weak, "w") as g:
            for line in f:
                if not line.startswith(("ProtectSystem=", "SystemCallFilter=",
                                        "CapabilityBoundingSet=")):
                    g.write(line)
        score, out = exposure(weak)
        assert score > MAX_EXPOSURE, out
    finally:
        shutil.rmtree(tmp)


def verify(service_text=None):
    """systemd-analyze verify on both units, in a root holding the
    installed binary path (the units name /usr/sbin/gatewayd; make install
    rewrites it) and the host's own units (sysinit.target and friends).
    Man pages are not looked up (--man=no): they are make install's.
    Returns (exit status, the lines about our units)."""
    analyze = need_tool("systemd-analyze")
    root = tempfile.mkdtemp(prefix="tg-root-")
    try:
        unitdir = os.path.join(root, "etc", "systemd", "system")
        os.makedirs(unitdir)
        os.makedirs(os.path.join(root, "usr", "sbin"))
        shutil.copy(GATEWAYD, os.path.join(root, "usr", "sbin", "gatewayd"))
        for d in ("/usr/lib/systemd/system", "/lib/systemd/system"):
            if os.path.isdir(d):
                shutil.copytree(d, os.path.join(root, "usr", "lib", "systemd", "system"),
                                symlinks=True)
                break
        shutil.copy(SOCKET, unitdir)
        with open(SERVICE) as f:
            text = f.read() if service_text is None else service_text(f.read())
        with open(os.path.join(unitdir, "toolgate.service"), "w") as f:
            f.write(text)
        p = subprocess.run([analyze, "verify", "--man=no", "--root=" + root,
                            os.path.join(unitdir, "toolgate.socket"),
                            os.path.join(unitdir, "toolgate.service")],
                           capture_output=True, text=True, timeout=120)
        out = p.stdout + p.stderr
        return p.returncode, [l for l in out.splitlines() if "toolgate." in l]
    finally:
        shutil.rmtree(root)


@test
def units_verify():
    rc, ours = verify()
    assert rc == 0 and not ours, (rc, ours)


@test
def a_broken_unit_does_not_verify():
    """The check can fail: a misspelt directive and a missing binary."""
    rc, ours = verify(lambda t: t.replace("KillMode=mixed", "KillMode=mixed\nWatchdogSecs=5"))
    assert any("WatchdogSecs" in l for l in ours), ours
    rc, ours = verify(lambda t: t.replace("/usr/sbin/gatewayd", "/usr/sbin/no-such-gatewayd"))
    assert rc != 0 and any("no-such-gatewayd" in l for l in ours), (rc, ours)


if __name__ == "__main__":
    main()
