"""The agent's connection to the gate: Gateway, and what its ok answers
become (Hello, Tool, Result).

Thread safety: a Gateway may be shared by threads.  Sends are serialized
by a lock; one waiting thread at a time reads the socket and files every
answer under its id, the others sleep until theirs is filed.  So calls
from several threads are pipelined on one connection and each gets its
own answer, whatever order the gate answers in.  One Gateway per thread
is just as good (a connection is cheap) and keeps the threads' failures
apart: an error of the connection (a bad frame, a closed socket) ends it
for every thread using it.
"""
import select
import socket
import threading
import time

from . import approvals
from .approvals import WAIT_CAP_MS
from .errors import AnswerTimeout, ConnectionClosed, MalformedAnswer, NeedsApproval, error_for
from .wire import DEFAULT_MAX_ANSWER, FrameBuffer, encode

DEFAULT_SOCKET = "/run/toolgate/agent.sock"   # proto/CONFIG.md, paths.agent_socket

_UNSET = object()


def _send_all(sock, data):
    """sendall() with MSG_NOSIGNAL: a gate that hung up is an EPIPE here,
    never a SIGPIPE that kills a program which left SIGPIPE at its default
    (Python ignores it, a program embedding Python may not)."""
    view = memoryview(data)
    while view:
        n = sock.send(view, socket.MSG_NOSIGNAL)
        view = view[n:]


class Hello:
    """`hello`'s answer: protocol `v`, the caller's `tenant` and `env` as
    the gate maps its uid, and whether `writes_enabled` right now."""

    def __init__(self, response):
        self.response = response
        self.v = response.get("v")
        self.tenant = response.get("tenant")
        self.env = response.get("env")
        self.writes_enabled = response.get("writes_enabled")

    def __repr__(self):
        return "Hello(v=%r, tenant=%r, env=%r, writes_enabled=%r)" % (
            self.v, self.tenant, self.env, self.writes_enabled)


class Tool:
    """One tool of the `tools` op: `name`, `mode` (read or write),
    `description` and `input_schema` (a JSON Schema object)."""

    def __init__(self, entry):
        self.entry = entry
        self.name = entry.get("name")
        self.mode = entry.get("mode")
        self.description = entry.get("description")
        self.input_schema = entry.get("input_schema", {"type": "object"})

    @property
    def is_write(self):
        return self.mode != "read"

    def __repr__(self):
        return "Tool(%r, mode=%r)" % (self.name, self.mode)


class Result:
    """An `ok` answer to `call` or `resume`: the tool's `result`, the
    `args_hash`, and for writes the `idempotency_key` and `replayed`
    (True when the stored result of an earlier execution came back
    instead of a new one).  For reads those two are None and False."""

    def __init__(self, response):
        self.response = response
        self.result = response.get("result")
        self.args_hash = response.get("args_hash")
        self.idempotency_key = response.get("idempotency_key")
        self.replayed = response.get("replayed") is True

    @property
    def is_write(self):
        return self.idempotency_key is not None

    def __repr__(self):
        return "Result(%r, args_hash=%r, idempotency_key=%r, replayed=%r)" % (
            self.result, self.args_hash, self.idempotency_key, self.replayed)


class _Conn:
    """One connection's state.  Fields change under the Gateway's
    condition lock; the socket is read only by the thread that set
    `reading`."""

    def __init__(self, sock, first_id, max_answer):
        self.sock = sock
        self.first_id = first_id  # the first request id sent on it
        self.frames = FrameBuffer(max_answer)
        self.answers = {}         # id -> answer not yet collected
        self.abandoned = set()    # ids whose caller timed out: answers dropped
        self.reading = False      # a thread is reading the socket
        self.fatal = None         # an answer with id nil: why the gate hangs up
        self.dead = None          # () -> the exception its requests get now

    def file(self, ans):
        rid = ans.get("id")
        if rid is None:
            # Not the answer to one request: the gate refused the
            # connection or a frame, and is closing it.
            self.fatal = ans
        elif rid in self.abandoned:
            self.abandoned.discard(rid)
        else:
            self.answers[rid] = ans

    def close(self):
        # shutdown() first: it wakes a thread polling the socket, which a
        # bare close() from another thread would leave asleep.
        for fn in (lambda: self.sock.shutdown(socket.SHUT_RDWR), self.sock.close):
            try:
                fn()
            except OSError:
                pass


class Gateway:
    """A connection to the gate's agent socket.

        with Gateway("/run/toolgate/agent.sock", run_id="run-42") as gw:
            print(gw.hello().tenant)
            r = gw.call("kb.read", {"q": "vpn"})

    Connects on `with` (or `connect()`, or the first request) and closes
    on leaving it (or `close()`).  `run_id` is the default run of `call`
    and `usage`; `timeout` (seconds, None: no limit) bounds the wait for
    each answer (a `wait` gets its own timeout_ms on top).  Every answer
    that is not `ok` is raised as the exception of toolgate.errors.
    """

    def __init__(self, path=DEFAULT_SOCKET, run_id=None, timeout=None,
                 max_answer=DEFAULT_MAX_ANSWER):
        self.path = path
        self.run_id = run_id
        self.timeout = timeout
        self.max_answer = max_answer
        self._send_lock = threading.Lock()
        self._cond = threading.Condition(threading.Lock())
        # Ids are never reused, not even on a new connection, so a request
        # sent on a connection that has since been replaced is told so and
        # never takes an answer of the new one for its own.
        self._next_id = 1
        self._conn = None         # the current _Conn; None before the first

    @classmethod
    def from_socket(cls, sock, **kw):
        """A Gateway on a socket already connected to the agent socket (one
        inherited, or connected by another process as another user)."""
        gw = cls(path=None, **kw)
        gw._conn = _Conn(sock, gw._next_id, gw.max_answer)
        return gw

    # -- the connection --------------------------------------------------------

    def connect(self):
        """Connect (again, if the connection was closed).  Returns self."""
        conn = self._conn
        if conn is not None and conn.dead is None:
            return self
        if self.path is None:
            raise ConnectionClosed("no path to connect to (a Gateway made from a socket)")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.path)
        except OSError as e:
            s.close()
            raise ConnectionClosed("cannot connect to %s: %s" % (self.path, e.strerror or e))
        with self._send_lock, self._cond:
            old, self._conn = self._conn, _Conn(s, self._next_id, self.max_answer)
            self._cond.notify_all()
        if old is not None:
            old.close()
        return self

    def close(self):
        """Close the connection; requests still waiting get ConnectionClosed."""
        with self._cond:
            conn = self._conn
            if conn is None:
                return
            if conn.dead is None:
                conn.dead = lambda: ConnectionClosed("the connection was closed by the client")
            self._cond.notify_all()
        conn.close()

    @property
    def closed(self):
        return self._conn is None or self._conn.dead is not None

    def __enter__(self):
        return self.connect()

    def __exit__(self, *exc):
        self.close()

    # -- requests and answers, raw ---------------------------------------------

    def send(self, op, **fields):
        """Send one request without waiting; returns its id for receive().
        Many may be sent before any is received (pipelining)."""
        if self._conn is None:
            self.connect()
        with self._send_lock:
            conn = self._conn
            if conn.dead is not None:
                # Requests that were in flight got the reason itself; a
                # request made after it learns that the connection is gone.
                why = conn.dead()
                e = ConnectionClosed("the connection is closed (%s)" % (why,))
                e.cause = why
                raise e from why
            rid = self._next_id
            self._next_id += 1
            data = encode(dict(fields, op=op, id=rid))
            try:
                _send_all(conn.sock, data)
            except OSError:
                # The gate hung up (a frame it refused, a stranger, a gate
                # going away).  Not fatal here: its last answer, say
                # frame_too_large, may still wait in our receive queue, and
                # receive() reads it and then the end of the connection.
                pass
        return rid

    def receive(self, rid, timeout=_UNSET):
        """The answer map for request id `rid`, waiting up to `timeout`
        seconds (default: the Gateway's).  Answers to other ids read
        meanwhile are kept for their callers."""
        timeout = self.timeout if timeout is _UNSET else timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                while True:
                    conn = self._conn
                    if conn is None or rid < conn.first_id or rid >= self._next_id:
                        raise ConnectionClosed("request %d was not sent on this connection" % rid)
                    if rid in conn.answers:
                        return conn.answers.pop(rid)
                    if conn.dead is not None:
                        e = conn.dead()
                        e.request_id = rid
                        raise e
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        conn.abandoned.add(rid)
                        raise AnswerTimeout("no answer to request %d within %.3g s" % (rid, timeout))
                    if not conn.reading:
                        conn.reading = True
                        break
                    self._cond.wait(left)
            try:
                self._read_once(conn, deadline)
            finally:
                with self._cond:
                    conn.reading = False
                    self._cond.notify_all()

    def request(self, op, timeout=_UNSET, **fields):
        """Send one request and return its answer map, whatever its status."""
        return self.receive(self.send(op, **fields), timeout)

    def _read_once(self, conn, deadline):
        """Read what conn's socket has (waiting until deadline at most) and
        file every whole answer.  Only conn's reading thread calls this."""
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            p = select.poll()
            p.register(conn.sock.fileno(), select.POLLIN)
            if not p.poll(None if left is None else int(left * 1000) + 1):
                return
            data = conn.sock.recv(65536)
        except (OSError, ValueError) as e:   # ValueError: closed meanwhile
            msg = "the connection failed: %s" % (getattr(e, "strerror", None) or e)
            self._die(conn, lambda: ConnectionClosed(msg))
            return
        if not data:
            what = " in the middle of an answer" if conn.frames.partial() else ""
            self._die(conn, lambda: ConnectionClosed("the gate closed the connection" + what))
            return
        conn.frames.feed(data)
        while True:
            try:
                ans = conn.frames.next()
            except MalformedAnswer as e:
                msg = str(e)
                self._die(conn, lambda: MalformedAnswer(msg))
                return
            if ans is None:
                return
            with self._cond:
                conn.file(ans)
                self._cond.notify_all()

    def _die(self, conn, make):
        with self._cond:
            if conn.dead is None:
                fatal = conn.fatal
                conn.dead = (lambda: error_for(fatal)) if fatal is not None else make
            self._cond.notify_all()

    def _ok(self, ans):
        if ans.get("status") == "ok":
            return ans
        raise error_for(ans)

    # -- the agent protocol ----------------------------------------------------

    def hello(self):
        """Who the gate takes us for: Hello(v, tenant, env, writes_enabled)."""
        return Hello(self._ok(self.request("hello")))

    def tools(self):
        """The tools this principal may call, in name order: a list of Tool."""
        ans = self._ok(self.request("tools"))
        tools = ans.get("tools")
        if not isinstance(tools, list):
            raise MalformedAnswer("a tools answer without a tools array: %r" % (ans,))
        return [Tool(t) for t in tools if isinstance(t, dict)]

    def call(self, tool, args=None, run_id=None, step_id=None, traceparent=None,
             timeout=_UNSET):
        """Call `tool` with `args` (a dict with string keys) in run `run_id`
        (default: the Gateway's).  Returns a Result; raises Denied,
        Stopped, NeedsApproval or ToolError (each by its reason).
        `step_id` (int or str) and `traceparent` (W3C) are optional."""
        fields = {"run_id": self._run(run_id), "tool": tool,
                  "args": {} if args is None else args}
        if step_id is not None:
            fields["step_id"] = step_id
        if traceparent is not None:
            fields["traceparent"] = traceparent
        return Result(self._ok(self.request("call", timeout=timeout, **fields)))

    def resume(self, checkpoint, timeout=_UNSET):
        """Run an approved write from its checkpoint, exactly once: a Result
        (`replayed` when it ran before).  Raises Pending before the
        decision, ApprovalDenied, ApprovalExpired, BadCheckpointSignature,
        or whatever the write itself meets."""
        return Result(self._ok(self.request("resume", timeout=timeout, checkpoint=checkpoint)))

    def wait(self, approval_id, timeout_ms):
        """Wait up to timeout_ms (the gate caps it at 300000) for an
        approval's decision; returns its state: "pending", "approved",
        "denied" or "expired"."""
        timeout = self.timeout
        if timeout is not None:
            timeout = max(timeout, min(timeout_ms, WAIT_CAP_MS) / 1000.0 + 5)
        ans = self._ok(self.request("wait", timeout=timeout, approval_id=approval_id,
                                    timeout_ms=timeout_ms))
        state = ans.get("state")
        if not isinstance(state, str):
            raise MalformedAnswer("a wait answer without a state: %r" % (ans,))
        return state

    def usage(self, run_id, tokens, cost=None):
        """Report tokens (and cost) the run used; None when within budget,
        Stopped (BudgetExceeded, or the run's first reason) otherwise.
        run_id None means the Gateway's."""
        fields = {"run_id": self._run(run_id), "tokens": tokens}
        if cost is not None:
            fields["cost"] = float(cost)
        self._ok(self.request("usage", **fields))

    def _run(self, run_id):
        run_id = self.run_id if run_id is None else run_id
        if run_id is None:
            raise ValueError("a run_id is required (give one, or Gateway(run_id=...))")
        return run_id

    # -- approvals ---------------------------------------------------------------

    def wait_and_resume(self, needs_approval, timeout_s=300.0, on_pending=None,
                        slice_s=30.0):
        """See toolgate.approvals.wait_and_resume."""
        return approvals.wait_and_resume(self, needs_approval, timeout_s,
                                         on_pending=on_pending, slice_s=slice_s)

    def call_with_approval(self, tool, args=None, run_id=None, timeout_s=300.0,
                           on_pending=None, step_id=None, traceparent=None, slice_s=30.0):
        """call(), and when the write needs an approval, wait up to
        timeout_s for it and resume it (wait_and_resume).  Returns the
        Result; raises what call() raises but NeedsApproval, and
        ApprovalDenied, ApprovalExpired or ApprovalTimeout."""
        try:
            return self.call(tool, args, run_id=run_id, step_id=step_id,
                             traceparent=traceparent)
        except NeedsApproval as e:
            na = e
        # Out of the except clause: what the wait raises is no consequence
        # of the NeedsApproval, and its traceback should not say it is.
        return self.wait_and_resume(na, timeout_s, on_pending=on_pending, slice_s=slice_s)
