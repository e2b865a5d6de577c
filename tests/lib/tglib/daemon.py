"""The daemon pair on private paths in a temp dir, gatewayctl against it,
and what it leaves on disk (the audit log)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from .client import Client, connect_as
from .config import approvals_config, base_config, reconfigure, write_config
from .env import GATEWAYCTL, GATEWAYD, SAN


class Daemon:
    """The daemon pair on private paths in a temp dir."""

    def __init__(self, conf=None, name="tg"):
        self.dir = tempfile.mkdtemp(prefix=name + "-")
        os.chmod(self.dir, 0o755)   # agents of other uids must reach the socket
        self.agent_sock = os.path.join(self.dir, "agent.sock")
        self.control_sock = os.path.join(self.dir, "control.sock")
        self.state = os.path.join(self.dir, "state")
        self.creds = os.path.join(self.dir, "creds")
        self.config_path = os.path.join(self.dir, "toolgate.yaml")
        self.logpath = os.path.join(self.dir, "daemon.log")
        conf = base_config() if conf is None else conf
        conf.setdefault("paths", {})["credentials_dir"] = self.creds
        self.conf = conf
        write_config(self.config_path, conf)
        self.proc = None

    def preexec(self):
        """What the daemon's child runs before exec: nothing here; a
        subclass may set limits."""
        return None

    def env(self):
        env = dict(os.environ)
        if SAN:
            # The chrooted gatewayd cannot read /proc, which LeakSanitizer needs.
            env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0"
            env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        return env

    def start(self, extra_args=(), wait=True):
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            [GATEWAYD, "-c", self.config_path, "-f", "-v",
             "--agent-socket", self.agent_sock,
             "--control-socket", self.control_sock,
             "--state-dir", self.state] + list(extra_args),
            stdout=self.log, stderr=self.log, env=self.env(),
            start_new_session=True, preexec_fn=self.preexec())
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gatewayd exited with %s:\n%s" %
                                   (self.proc.returncode, self.read_log()))
            try:
                c = self.client()
                c.hello()
                c.close()
                if os.path.exists(self.control_sock):
                    return
            except (OSError, EOFError):
                pass
            time.sleep(0.05)
        raise RuntimeError("daemon not ready:\n" + self.read_log())

    def read_log(self):
        try:
            return open(self.logpath, errors="replace").read()
        except OSError:
            return ""

    def client(self, uid=None, gid=None):
        return Client(connect_as(self.agent_sock, uid, gid))

    def executor_pid(self):
        with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
            kids = f.read().split()
        assert len(kids) == 1, kids
        return int(kids[0])

    def ctl(self, *args, uid=None, check=True):
        """Run gatewayctl; returns (exit status, stdout, stderr)."""
        pre = None
        if uid is not None:
            def pre():
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
        p = subprocess.run([GATEWAYCTL, "-s", self.control_sock] + list(args),
                           capture_output=True, text=True, preexec_fn=pre,
                           timeout=60, env=self.env())
        return p.returncode, p.stdout, p.stderr

    def ctl_json(self, *args):
        rc, out, err = self.ctl("--json", *args)
        assert rc == 0, (rc, out, err)
        return json.loads(out)

    def stop(self, sig=signal.SIGTERM, expect_rc=0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError("gatewayd did not stop on signal %d" % sig)
        rc = self.proc.returncode
        self.proc = None
        self.log.close()
        # Reap a process group left behind (an executor still draining).
        try:
            os.killpg(self.proc_pgid, 0)
        except (AttributeError, OSError):
            pass
        log = self.read_log()
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            assert bad not in log, "sanitizer report in daemon log:\n" + log
        if expect_rc is not None:
            assert rc == expect_rc, "gatewayd exited %s, expected %s:\n%s" % (rc, expect_rc, log)
        return rc

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                self.stop()
        finally:
            self.cleanup()



def read_audit(daemon):
    """The executor's audit log: a list of dicts, one per line."""
    path = os.path.join(daemon.state, "audit.log")
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []



def start_as(daemon, uid, gid=None, extra_args=(), wait=True):
    """Start the daemon pair as an unprivileged uid (development mode):
    the temp dir becomes that uid's, gatewayd is started under it."""
    gid = uid if gid is None else gid
    for top, dirs, files in os.walk(daemon.dir):
        os.chown(top, uid, gid)
        for n in files:
            os.chown(os.path.join(top, n), uid, gid)

    def pre():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    daemon.log = open(daemon.logpath, "ab")
    daemon.proc = subprocess.Popen(
        [GATEWAYD, "-c", daemon.config_path, "-f", "-v",
         "--agent-socket", daemon.agent_sock,
         "--control-socket", daemon.control_sock,
         "--state-dir", daemon.state] + list(extra_args),
        stdout=daemon.log, stderr=daemon.log, env=daemon.env(),
        start_new_session=True, preexec_fn=pre)
    if wait:
        daemon.wait_ready()
    return daemon


def ctl_as(daemon, uid, gid, *args):
    """gatewayctl run as uid/gid; returns (exit status, stdout, stderr)."""
    def pre():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    p = subprocess.run([GATEWAYCTL, "-s", daemon.control_sock] + list(args),
                       capture_output=True, text=True, preexec_fn=pre,
                       timeout=60, env=daemon.env())
    return p.returncode, p.stdout, p.stderr



def concurrent_calls(daemon, calls, uid=None, timeout=30):
    """Send every (tool, args, run_id) in calls on its own connection before
    reading any answer; returns the answers in the same order."""
    clients = [daemon.client(uid) for _ in calls]
    for i, (c, (t, a, run)) in enumerate(zip(clients, calls)):
        c.s.settimeout(timeout)
        c.send({"op": "call", "id": i + 1, "run_id": run, "tool": t, "args": a})
    out = []
    for i, c in enumerate(clients):
        r = c.recv()
        assert r["id"] == i + 1, r
        out.append(r)
        c.close()
    return out



def approvals_daemon(name="tg-appr", **kw):
    """A Daemon (not started) with approvals_config; its effects file,
    daemon.effects, lives in its dir.  kw go to approvals_config."""
    d = Daemon(base_config(), name=name)
    d.effects = os.path.join(d.dir, "effects")
    reconfigure(d, approvals_config(d.effects, **kw))
    return d



def ctl_pages(daemon, command, limit=None):
    """Every page of a list command (approvals, ledger) with --json,
    following the cursor gatewayctl prints on stderr ("next: CURSOR");
    returns the list of pages (each a list of items)."""
    pages, after = [], None
    while True:
        args = ["--json", command]
        if limit is not None:
            args += ["--limit", str(limit)]
        if after is not None:
            args += ["--after", after]
        rc, out, err = daemon.ctl(*args)
        assert rc == 0, (rc, out, err)
        pages.append(json.loads(out))
        nxt = [l[len("next: "):] for l in err.splitlines() if l.startswith("next: ")]
        if not nxt:
            return pages
        after = nxt[0]
        assert len(pages) < 100000, "the cursor never ends"


def ctl_all(daemon, command, limit=None):
    """All the items of a list command, every page."""
    return [it for page in ctl_pages(daemon, command, limit) for it in page]
