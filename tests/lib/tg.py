"""The regression test harness: starts the real daemon pair on private
sockets in a temp dir, speaks the agent protocol, runs gatewayctl.

Each test script registers functions with @test and calls main(); every
test prints "PASS: name" or "FAIL: name" (or "SKIP: name: why"), which
tests/run counts.  Runs with Debian's /usr/bin/python3 (python3-msgpack).
"""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

import msgpack

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
SHARED = os.path.abspath(os.environ.get("TG_SHARED", os.path.join(ROOT, "..", "shared")))
TOOLS = os.path.join(ROOT, "tests", "tools")
GATEWAYD = os.path.join(BUILD, "gatewayd")
EXECUTOR = os.path.join(BUILD, "executor")
GATEWAYCTL = os.path.join(BUILD, "gatewayctl")
IS_ROOT = os.geteuid() == 0
SAN = os.environ.get("SAN", "0") == "1"

# Unprivileged ids for agents in tests (no passwd entry needed).
AGENT_UID, AGENT_GID = 1001, 1001
OTHER_UID, OTHER_GID = 1002, 2000
STRANGER_UID = 1003


class Skip(Exception):
    pass


def need_root():
    if not IS_ROOT:
        raise Skip("needs root")


def msg_types():
    """The socketpair message types, read from the one place that defines them."""
    text = open(os.path.join(ROOT, "proto", "proto.h")).read()
    body = re.search(r"enum msg_type \{(.*?)\};", text, re.S).group(1)
    names = re.findall(r"^\s*(MSG_[A-Z_]+)", body, re.M)
    return {n: i for i, n in enumerate(names)}


def proto_version():
    """PROTO_VERSION, read from proto/proto.h like the message types."""
    text = open(os.path.join(ROOT, "proto", "proto.h")).read()
    return int(re.search(r"#define PROTO_VERSION\s+(\d+)", text).group(1))


def tool(name):
    return os.path.join(TOOLS, name)


def base_config(**over):
    """A config with three principals, a few read and write tools."""
    conf = {
        "user": "nobody",
        "principals": [
            {"uid": 0, "tenant": "acme", "env": "prod"},
            {"uid": AGENT_UID, "tenant": "acme", "env": "prod"},
            {"uid": OTHER_UID, "tenant": "globex", "env": "staging"},
        ],
        # Root is both an agent and an operator here, and the record tools
        # write into the root-owned test dir: both need the opt-in.
        "operators": {"uids": [0], "gids": [], "allow_self_approval": True},
        "tool_user": "root",
        "catalog": {
            "echo": {"mode": "read", "exec": [tool("echo-args")]},
            "env.dump": {"mode": "read", "exec": [tool("env-dump")]},
            "fail": {"mode": "read", "exec": [tool("fail")]},
            "sleep": {"mode": "read", "exec": [tool("sleep")], "timeout_ms": 500},
            "not.json": {"mode": "read", "exec": [tool("not-json")]},
            "big.output": {"mode": "read", "exec": [tool("big-output")]},
            "ticket.close": {"mode": "write", "exec": [tool("echo-args")]},
            "nomode": {"exec": [tool("echo-args")]},
        },
        "tools": {"default_mode": "read_only",
                  "allow": ["echo", "env.dump", "fail", "sleep", "not.json",
                            "big.output", "ticket.close", "nomode"]},
        "writes": {"enabled": False, "require_approval": False},
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(conf.get(k), dict):
            conf[k] = dict(conf[k], **v)
        else:
            conf[k] = v
    return conf


def canonical_json(args):
    """The reference definition of CONTRACT.md."""
    args = {k: v for k, v in args.items() if k not in ("idempotency_key", "approval_token")}
    return json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def args_hash(args):
    return hashlib.sha256(canonical_json(args)).hexdigest()[:24]


def frame(obj):
    b = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(b)) + b


class Client:
    def __init__(self, sock):
        self.s = sock
        self.s.settimeout(30)
        self.next_id = 1

    def close(self):
        self.s.close()

    def send_raw(self, data):
        self.s.sendall(data)

    def send(self, obj):
        self.s.sendall(frame(obj))

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.s.recv(n - len(data))
            if not chunk:
                raise EOFError("connection closed after %d of %d bytes" % (len(data), n))
            data += chunk
        return data

    def recv(self):
        (n,) = struct.unpack(">I", self._read(4))
        return msgpack.unpackb(self._read(n), raw=False, strict_map_key=False)

    def closed(self, timeout=5):
        """True once the server has closed the connection."""
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.s.settimeout(30)

    def rpc(self, req):
        if "id" not in req:
            req = dict(req, id=self.next_id)
            self.next_id += 1
        self.send(req)
        return self.recv()

    def hello(self):
        return self.rpc({"op": "hello"})

    def call(self, tool_name, args=None, run_id="run-1", **kw):
        req = {"op": "call", "run_id": run_id, "tool": tool_name,
               "args": {} if args is None else args}
        req.update(kw)
        return self.rpc(req)


def connect_as(path, uid=None, gid=None):
    """A connection to path made by uid/gid: the child connects, hands the fd back."""
    if uid is None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        return s
    need_root()
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(gid if gid is not None else uid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            socket.send_fds(b, [b"x"], [s.fileno()])
            code = 0
        finally:
            os._exit(code)
    _, fds, _, _ = socket.recv_fds(a, 1, 1)
    os.waitpid(pid, 0)
    a.close()
    b.close()
    if not fds:
        raise RuntimeError("could not connect as uid %s" % uid)
    return socket.socket(fileno=fds[0])


class AgentListener:
    """A listening socket at an agent socket path, as gatewayd binds it.
    The executor takes only sockets accepted on the path it is given as
    --agent-socket, so a test playing gatewayd makes its peers here."""

    def __init__(self, path):
        d = os.path.dirname(path)
        os.chmod(d, os.stat(d).st_mode | 0o711)    # agents of other uids must reach it
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.listen(64)

    def close(self):
        self.sock.close()


def peer_socket(listener, uid=None, gid=None):
    """A connected socket whose peer (SO_PEERCRED) is uid/gid (the test's
    own ids when None), accepted on listener (an AgentListener): what
    gatewayd hands the executor for an agent connection.  Returns (ours,
    the client end to keep open)."""
    client = connect_as(listener.path, uid, gid)
    server, _ = listener.sock.accept()
    return server, client


def pass_peer(chan, conn, sock):
    """Send sock under conn on the executor's peer channel (EXECUTOR_PEER_FD)."""
    socket.send_fds(chan, [struct.pack(">Q", conn)], [sock.fileno()])


def write_config(path, conf):
    # JSON is YAML (flow style); one key per line keeps line numbers useful.
    with open(path, "w") as f:
        f.write(json.dumps(conf, indent=1) + "\n")


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
            start_new_session=True)
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


def wait_for(pred, timeout=10, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


_tests = []


def test(fn):
    _tests.append(fn)
    return fn


def main():
    failed = 0
    only = sys.argv[1:]
    for fn in _tests:
        if only and fn.__name__ not in only:
            continue
        name = "%s.%s" % (os.path.basename(sys.argv[0]).replace(".py", ""), fn.__name__)
        t0 = time.time()
        try:
            fn()
        except Skip as e:
            print("SKIP: %s: %s" % (name, e), flush=True)
            continue
        except Exception:
            failed += 1
            traceback.print_exc()
            print("FAIL: %s" % name, flush=True)
            continue
        print("PASS: %s (%.1fs)" % (name, time.time() - t0), flush=True)
    sys.exit(1 if failed else 0)


# ---------------------------------------------------------------------------
# Helpers for the daemon-pair tests (frames, principals, privsep, ...).

def read_audit(daemon):
    """The executor's audit log: a list of dicts, one per line."""
    path = os.path.join(daemon.state, "audit.log")
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def proc_status(pid):
    """/proc/PID/status as a dict of field -> value string."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def group_pids(pgid):
    """The live (not zombie) processes of process group pgid."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(name))
    return pids


def become_subreaper():
    """Orphans of our children (an executor whose gatewayd died) become ours."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:     # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "PR_SET_CHILD_SUBREAPER")


def wait_exit(pid, timeout=10):
    """Reap pid (our child or orphan); returns its wait status or None on timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            p, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None if pid_alive(pid) else -1
        if p == pid:
            return status
        time.sleep(0.02)
    return None


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


def raw_frame(body):
    """A frame around body bytes, whatever they hold."""
    return struct.pack(">I", len(body)) + body


# ---------------------------------------------------------------------------
# Helpers for the write-path tests (writes, stops, ledger).

def writes_config(tools=None, **over):
    """base_config with writes enabled (no approvals), read_write, and the
    catalog entries in tools (name -> entry) added and allowed."""
    writes = dict({"enabled": True, "require_approval": False},
                  **over.pop("writes", {}))
    conf = base_config(writes=writes, **over)
    conf["tools"] = dict(conf["tools"], default_mode="read_write")
    conf["tools"]["allow"] = list(conf["tools"]["allow"])
    conf["catalog"] = dict(conf["catalog"])
    for name, entry in (tools or {}).items():
        conf["catalog"][name] = entry
        if name not in conf["tools"]["allow"]:
            conf["tools"]["allow"].append(name)
    return conf


def count_lines(path):
    """Lines in a file (a record tool's side effects); 0 when missing."""
    try:
        with open(path) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def kill_pid_group(pidfile):
    """SIGKILL the process group whose leader's pid is in pidfile, if any
    (a tool left behind by an executor that died)."""
    try:
        pid = int(open(pidfile).read().strip())
    except (OSError, ValueError):
        return
    for fn in (lambda: os.killpg(pid, signal.SIGKILL),
               lambda: os.kill(pid, signal.SIGKILL)):
        try:
            fn()
        except OSError:
            pass


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


class ExecutorLink:
    """The executor started on its own, with the test as its gatewayd: a
    socketpair on the executor's fd 3 speaking [type, id, body] frames."""

    def __init__(self, conf, name="ex"):
        self.dir = tempfile.mkdtemp(prefix=name + "-")
        self.state = os.path.join(self.dir, "state")
        self.control_sock = os.path.join(self.dir, "control.sock")
        self.config_path = os.path.join(self.dir, "toolgate.yaml")
        self.logpath = os.path.join(self.dir, "executor.log")
        self.agent_sock = os.path.join(self.dir, "agent.sock")
        self.agent = None
        conf.setdefault("paths", {})["credentials_dir"] = os.path.join(self.dir, "creds")
        write_config(self.config_path, conf)
        self.types = msg_types()
        self.next_id = 1
        self.proc = None
        self.sock = None
        self.peers = {}         # (uid, gid) -> conn id
        self.kept = []          # the client ends of passed peers

    def peer(self, uid, gid):
        """The conn id of a connection whose peer is uid/gid, passed to the
        executor the first time it is asked for."""
        if (uid, gid) not in self.peers:
            conn = len(self.peers) + 1
            server, client = peer_socket(self.agent, uid, gid)
            pass_peer(self.chan, conn, server)
            server.close()
            self.kept.append(client)
            self.peers[(uid, gid)] = conn
        return self.peers[(uid, gid)]

    def start(self):
        mine, theirs = socket.socketpair()
        chan, chan_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fd, cfd = theirs.fileno(), chan_theirs.fileno()

        def pre():
            a = os.dup(fd)
            b = os.dup(cfd)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)
        if self.agent is None:
            self.agent = AgentListener(self.agent_sock)
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            [EXECUTOR, "-c", self.config_path, "-f", "-v",
             "--agent-socket", self.agent_sock,
             "--control-socket", self.control_sock, "--state-dir", self.state],
            stdout=self.log, stderr=self.log, close_fds=False, preexec_fn=pre,
            start_new_session=True)
        theirs.close()
        chan_theirs.close()
        self.chan = chan
        self.peers = {}
        self.sock = mine
        self.sock.settimeout(30)
        ans = self.request("MSG_HELLO", {"version": proto_version()})
        assert ans[0] == self.types["MSG_HELLO_ANS"], ans
        return self

    def read_log(self):
        try:
            return open(self.logpath, errors="replace").read()
        except OSError:
            return ""

    def send(self, type_name, body, msg_id=None):
        if msg_id is None:
            msg_id = self.next_id
            self.next_id += 1
        self.sock.sendall(frame([self.types[type_name], msg_id, body]))
        return msg_id

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("the executor closed the socketpair:\n" + self.read_log())
            data += chunk
        return data

    def recv(self):
        """The next message that answers a request ([type, id, body]);
        unsolicited ones (WRITES_STATE) are skipped."""
        while True:
            (n,) = struct.unpack(">I", self._read(4))
            msg = msgpack.unpackb(self._read(n), raw=False, strict_map_key=False)
            if msg[0] != self.types["MSG_WRITES_STATE"]:
                return msg

    def request(self, type_name, body):
        msg_id = self.send(type_name, body)
        msg = self.recv()
        assert msg[1] == msg_id, (msg, msg_id)
        return msg

    def call_body(self, tool_name, args, run_id, uid=AGENT_UID, gid=AGENT_GID,
                  tenant="acme", env="prod", step_id=None):
        body = {"conn": self.peer(uid, gid), "uid": uid, "gid": gid,
                "pid": os.getpid(), "tenant": tenant,
                "env": env, "run_id": run_id, "tool": tool_name, "args": args}
        if step_id is not None:
            body["step_id"] = step_id
        return body

    def call(self, tool_name, args, run_id, **kw):
        """A CALL; returns the agent-facing response map."""
        msg = self.request("MSG_CALL", self.call_body(tool_name, args, run_id, **kw))
        assert msg[0] == self.types["MSG_CALL_ANS"], msg
        return msg[2]["response"]

    def stop(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            try:
                rc = self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError("the executor did not exit when its peer closed")
            self.proc = None
            self.log.close()
            return rc

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
        if self.sock is not None:
            self.sock.close()
        if self.agent is not None:
            self.agent.close()
            self.agent = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                rc = self.stop()
                assert rc == 0, "executor exited %s:\n%s" % (rc, self.read_log())
        finally:
            self.cleanup()


# ---------------------------------------------------------------------------
# Helpers for the approval tests.

def approvals_config(effects, require=("rec",), ttl_s=600, allow_rec=True):
    """writes_config with the record tool "rec" (appending to effects) and
    "rec.slow" (slow-record, to effects + ".slow"), require_approval set
    to require (a list of names, or True/False), approvals.ttl_s."""
    conf = writes_config(
        tools={"rec": {"mode": "write", "exec": [tool("record"), effects]},
               "rec.slow": {"mode": "write",
                            "exec": [tool("slow-record"), effects + ".slow", "0.5"]}},
        approvals={"ttl_s": ttl_s})
    conf["writes"] = dict(conf["writes"],
                          require_approval=list(require) if isinstance(require, (list, tuple))
                          else require)
    if not allow_rec:
        conf["tools"]["allow"] = [t for t in conf["tools"]["allow"] if t != "rec"]
    return conf


def reconfigure(daemon, conf):
    """Replace a (stopped or not yet started) daemon's config, keeping its paths."""
    conf = dict(conf)
    conf["paths"] = dict(conf.get("paths", {}), **daemon.conf.get("paths", {}))
    daemon.conf = conf
    write_config(daemon.config_path, conf)


def approvals_daemon(name="tg-appr", **kw):
    """A Daemon (not started) with approvals_config; its effects file,
    daemon.effects, lives in its dir.  kw go to approvals_config."""
    d = Daemon(base_config(), name=name)
    d.effects = os.path.join(d.dir, "effects")
    reconfigure(d, approvals_config(d.effects, **kw))
    return d


def ctl_raw(control_sock, req, timeout=30):
    """One request on the control socket, as gatewayctl sends it (a frame
    holding a msgpack map with "op"); returns the answer map."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(control_sock)
        s.sendall(frame(req))
        c = Client(s)
        c.s.settimeout(timeout)
        return c.recv()
    finally:
        s.close()


def b64url_decode(s):
    import base64
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_encode(b):
    import base64
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def checkpoint_split(cp):
    """A checkpoint "tgc1.PAYLOAD.SIG" -> (payload dict, payload bytes, sig bytes)."""
    prefix, p, s = cp.split(".")
    assert prefix == "tgc1", cp
    raw = b64url_decode(p)
    return msgpack.unpackb(raw, raw=False), raw, b64url_decode(s)


def checkpoint_join(payload, sig):
    """payload (a dict, or bytes as they are) and sig bytes -> a checkpoint string."""
    if isinstance(payload, dict):
        payload = msgpack.packb(payload, use_bin_type=True)
    return "tgc1." + b64url_encode(payload) + "." + b64url_encode(sig)


CHECKPOINT_DOMAIN = b"toolgate checkpoint v1\0"


def checkpoint_sign_with(payload, seed):
    """Sign payload (dict or bytes) the way the executor does, with the
    Ed25519 key of 32-byte seed (python3-cryptography); a checkpoint string."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    if isinstance(payload, dict):
        payload = msgpack.packb(payload, use_bin_type=True)
    sig = Ed25519PrivateKey.from_private_bytes(seed).sign(CHECKPOINT_DOMAIN + payload)
    return checkpoint_join(payload, sig)


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
