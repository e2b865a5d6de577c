"""An agent's side of the agent socket: connecting as a uid, a Client
speaking the agent protocol, and the control socket's one-shot request."""
import os
import socket

from .env import need_root
from .wire import frame, read_frame


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

    def recv(self):
        return read_frame(self.s)

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

    def resume(self, checkpoint, **kw):
        """The write an approval held, resumed with its checkpoint."""
        return self.rpc(dict({"op": "resume", "checkpoint": checkpoint}, **kw))

    def wait(self, approval_id, timeout_ms, **kw):
        """An approval's state, waited for up to timeout_ms."""
        return self.rpc(dict({"op": "wait", "approval_id": approval_id,
                              "timeout_ms": timeout_ms}, **kw))


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


def ctl_raw(control_sock, req, timeout=30):
    """One request on the control socket, as gatewayctl sends it (a frame
    holding a msgpack map with "op"); returns the answer map."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(control_sock)
        s.sendall(frame(req))
        return read_frame(s)
    finally:
        s.close()
