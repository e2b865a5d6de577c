"""The test as gatewayd: the executor started on its own with a
socketpair on fd 3 and the peer channel on fd 4, and agent connections
passed to it as gatewayd passes them."""
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile

from .client import connect_as
from .config import write_config
from .env import AGENT_GID, AGENT_UID, EXECUTOR
from .proto import msg_types, proto_version
from .wire import frame, raw_frame, read_frame


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



def spawn_on_socketpair(argv, log, **popen_kw):
    """Start argv (the executor) as gatewayd starts it: a socketpair on its
    fd 3, the peer channel (SOCK_SEQPACKET) on its fd 4.  Returns (the
    process, our end of the socketpair, our end of the channel)."""
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
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                close_fds=False, preexec_fn=pre, start_new_session=True,
                                **popen_kw)
    finally:
        theirs.close()
        chan_theirs.close()
    return proc, mine, chan


def hello_frame():
    """The HELLO gatewayd says first, as one frame."""
    return frame([msg_types()["MSG_HELLO"], 1, {"version": proto_version()}])


class ExecutorLink:
    """The executor started on its own, with the test as its gatewayd: a
    socketpair on the executor's fd 3 speaking [type, id, body] frames,
    the peer channel on its fd 4.  The one stand-in for gatewayd."""

    def __init__(self, conf, name="ex"):
        self.dir = tempfile.mkdtemp(prefix=name + "-")
        self.state = os.path.join(self.dir, "state")
        self.control_sock = os.path.join(self.dir, "control.sock")
        self.config_path = os.path.join(self.dir, "toolgate.yaml")
        self.logpath = os.path.join(self.dir, "executor.log")
        self.agent_sock = os.path.join(self.dir, "agent.sock")
        self.agent = None
        self.configure(conf)
        self.types = msg_types()
        self.next_id = 1
        self.proc = None
        self.sock = None
        self.chan = None
        self.peers = {}         # (uid, gid) -> conn id
        self.kept = []          # the client ends of passed peers

    def configure(self, conf):
        """Write conf as the executor's config (before start), with the
        credentials dir in the link's own dir."""
        conf.setdefault("paths", {})["credentials_dir"] = os.path.join(self.dir, "creds")
        self.conf = conf
        write_config(self.config_path, conf)

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

    def start(self, hello=True):
        """Start the executor; with hello, say HELLO and check its answer."""
        if self.agent is None:
            self.agent = AgentListener(self.agent_sock)
        self.log = open(self.logpath, "ab")
        self.proc, self.sock, self.chan = spawn_on_socketpair(
            [EXECUTOR, "-c", self.config_path, "-f", "-v",
             "--agent-socket", self.agent_sock,
             "--control-socket", self.control_sock, "--state-dir", self.state],
            self.log)
        self.peers = {}
        self.sock.settimeout(30)
        if hello:
            self.hello()
        return self

    def hello(self):
        """HELLO of this protocol version; returns the answer's body."""
        msg = self.request("MSG_HELLO", {"version": proto_version()})
        assert msg[0] == self.types["MSG_HELLO_ANS"], msg
        assert msg[2]["version"] == proto_version(), msg
        return msg[2]

    def read_log(self):
        try:
            return open(self.logpath, errors="replace").read()
        except OSError:
            return ""

    def send_raw(self, body):
        """A frame around body bytes, whatever they hold."""
        self.sock.sendall(raw_frame(body))

    def send(self, mtype, body, msg_id=None):
        """[mtype, id, body]; mtype a name ("MSG_CALL") or a number."""
        if msg_id is None:
            msg_id = self.next_id
            self.next_id += 1
        if isinstance(mtype, str):
            mtype = self.types[mtype]
        self.sock.sendall(frame([mtype, msg_id, body]))
        return msg_id

    def recv_any(self):
        """The next message, whatever it is."""
        try:
            return read_frame(self.sock, "the executor's socketpair")
        except EOFError as e:
            raise EOFError("%s:\n%s" % (e, self.read_log()))

    def recv_type(self, mtype):
        """The next message of mtype (a name or a number), skipping
        WRITES_STATE notices; a message of another type is returned too,
        for the caller to judge."""
        if isinstance(mtype, str):
            mtype = self.types[mtype]
        while True:
            m = self.recv_any()
            if m[0] != self.types["MSG_WRITES_STATE"] or mtype == m[0]:
                return m

    def recv(self):
        """The next message that answers a request ([type, id, body]);
        unsolicited ones (WRITES_STATE) are skipped."""
        return self.recv_type(-1)

    def request(self, type_name, body):
        msg_id = self.send(type_name, body)
        msg = self.recv()
        assert msg[1] == msg_id, (msg, msg_id)
        return msg

    def answer(self, type_name, body, answer_name):
        """The agent-facing response of a request whose answer must be
        answer_name, with the request's id."""
        return self.answer_body(type_name, body, answer_name)["response"]

    def answer_body(self, type_name, body, answer_name):
        """The body of the answer (of type answer_name) to a request."""
        msg = self.request(type_name, body)
        assert msg[0] == self.types[answer_name], msg
        return msg[2]

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
        return self.answer("MSG_CALL", self.call_body(tool_name, args, run_id, **kw),
                           "MSG_CALL_ANS")

    def wait(self, timeout=10):
        """The executor's exit status, or None while it still runs after timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def expect_exit(self, what, words=(), timeout=10):
        """The executor exits non-zero within timeout (after what), saying
        each of words in its log; returns the log."""
        rc = self.wait(timeout)
        log = self.read_log()
        assert rc is not None, "%s: the executor is still running:\n%s" % (what, log[-800:])
        assert rc != 0, "%s: exit status %s" % (what, rc)
        for w in words:
            assert w in log, "%s: %r not in the log:\n%s" % (what, w, log[-800:])
        return log

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

    def close(self):
        """Hang up, let the executor exit (whatever its status), clean up."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None and self.wait(10) is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.cleanup()

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
        if self.sock is not None:
            self.sock.close()
        if getattr(self, "log", None) is not None:
            self.log.close()
        if self.chan is not None:
            self.chan.close()
            self.chan = None
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
