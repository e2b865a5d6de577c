"""A compromised gatewayd: the test speaks the socketpair protocol to the
executor itself.  The executor must take none of gatewayd's word for
policy, and must treat any deviation from the protocol as fatal."""
import os
import shutil
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

import msgpack

T = msg_types()


class Executor(ExecutorLink):
    """The executor alone (tglib's ExecutorLink, the test as its gatewayd)
    with these tests' record tools, started without HELLO, and connection
    1 an agent of AGENT_UID passed as gatewayd would pass it."""

    def __init__(self, conf_over=None):
        super().__init__(base_config(), name="tg-ex")
        self.rec = os.path.join(self.dir, "record.out")
        self.rec_denied = os.path.join(self.dir, "record-denied.out")
        self.rec_write = os.path.join(self.dir, "record-write.out")
        c = base_config()
        c["catalog"].update({
            "record": {"mode": "read", "exec": [tool("record"), self.rec]},
            "record.denied": {"mode": "read", "exec": [tool("record"), self.rec_denied]},
            "record.write": {"mode": "write", "exec": [tool("record"), self.rec_write]},
        })
        c["tools"]["allow"] += ["record", "record.write"]
        if conf_over:
            conf_over(c)
        self.configure(c)
        self.start(hello=False)
        # Connection 1 is an agent of AGENT_UID: call_body() names it.
        assert self.peer(AGENT_UID, AGENT_GID) == 1

    def recorded(self):
        out = {}
        for p in (self.rec, self.rec_denied, self.rec_write):
            if os.path.exists(p):
                out[os.path.basename(p)] = open(p).read()
        return out


def call(e, **over):
    """A CALL of call_body(**over); returns the agent-facing response."""
    body = e.answer_body("MSG_CALL", call_body(**over), "MSG_CALL_ANS")
    assert set(body) == {"response"}, body
    return body["response"]


DEFAULTS = {"F_UINT": 0, "F_STR": "x", "F_MAP": {}, "F_BOOL": False, "F_DOUBLE": 0.0}


def call_body(**over):
    """A CALL body holding every required field of the schema."""
    known = {"conn": 1, "uid": AGENT_UID, "gid": AGENT_GID, "pid": 4242, "tenant": "acme",
             "env": "prod", "run_id": "evil", "tool": "record", "args": {"k": "v"}}
    body = {}
    for key, ftype, optional in schema("f_call"):
        if not optional:
            body[key] = known.get(key, DEFAULTS[ftype])
    assert set(known) <= set(body), (known, body)
    for k, v in over.items():
        if v is DROP:
            body.pop(k, None)
        else:
            body[k] = v
    return body


DROP = object()


def call_with_field_twice():
    """[CALL, 5, body] where body has tool twice."""
    fields = call_body()
    n = len(fields) + 1
    assert n <= 15
    body = bytes([0x80 | n]) + msgpack.packb(fields)[1:] + msgpack.packb("tool") + \
        msgpack.packb("record")
    return b"\x93" + msgpack.packb(T["MSG_CALL"]) + b"\x05" + body


def with_executor(fn, conf_over=None):
    e = Executor(conf_over)
    try:
        fn(e)
    finally:
        e.close()


@test
def the_harness_can_run_a_tool():
    """Control: a proper CALL does run the record tool."""
    def go(e):
        h = e.hello()
        assert h["writes_enabled"] is False, h
        r = call(e)
        assert r["status"] == "ok", r
        assert r["args_hash"] == args_hash({"k": "v"}), r
        assert e.recorded() == {"record.out": '{"k":"v"}\n'}, e.recorded()
    with_executor(go)


@test
def policy_is_the_executors_own():
    def go(e):
        e.hello()
        # Not in tools.allow (but in the catalog).
        r = call(e, tool="record.denied")
        assert r["status"] == "denied" and r["stop_reason"] == "not_allowed", r
        # Not in the catalog at all.
        r = call(e, tool="rm.rf")
        assert r["status"] == "denied" and r["stop_reason"] == "not_allowed", r
        # A write while the executor's config disables writes.
        r = call(e, tool="record.write")
        assert r["status"] == "denied" and r["stop_reason"] == "writes_disabled", r
        r = call(e, tool="nomode")
        assert r["status"] == "denied" and r["stop_reason"] == "writes_disabled", r
        # A principal the config does not give: uid 1001 is acme/prod.
        r = call(e, tenant="globex", env="staging")
        assert r["status"] == "denied" and r["stop_reason"] == "unknown_principal", r
        r = call(e, env="staging")
        assert r["status"] == "denied" and r["stop_reason"] == "unknown_principal", r
        r = call(e, uid=STRANGER_UID, gid=STRANGER_UID)
        assert r["status"] == "denied" and r["stop_reason"] == "unknown_principal", r
        r = call(e, uid=OTHER_UID, gid=OTHER_GID, tenant="acme", env="prod")
        assert r["status"] == "denied" and r["stop_reason"] == "unknown_principal", r
        # Args the agent socket would refuse are refused here too.
        body = call_body()
        raw = msgpack.packb([T["MSG_CALL"], 900, dict(body, args={"b": b"\x00"})],
                            use_bin_type=True)
        e.send_raw(raw)
        m = e.recv_type(T["MSG_CALL_ANS"])
        r = m[2]["response"]
        assert r["status"] == "error" and r["error"] == "bad_request", r
        assert e.recorded() == {}, e.recorded()
        # Still serving (refusals are not fatal).
        r = call(e)
        assert r["status"] == "ok", r
        assert list(e.recorded()) == ["record.out"], e.recorded()
    with_executor(go)


@test
def idempotency_key_is_the_executors():
    """With writes on, the key comes from the executor's own mapping and
    hash, whatever gatewayd puts in args."""
    def over(c):
        c["writes"] = {"enabled": True, "require_approval": False}
        c["tools"]["default_mode"] = "read_write"

    def go(e):
        assert e.hello()["writes_enabled"] is True
        args = {"t": 1, "idempotency_key": "globex:record.write:0000"}
        r = call(e, tool="record.write", args=args)
        assert r["status"] == "ok", r
        assert r["idempotency_key"] == "acme:record.write:" + args_hash(args), r
        # Tenant claimed by gatewayd differs from the config: refused.
        r = call(e, tool="record.write", args={"t": 2}, tenant="globex")
        assert r["status"] == "denied" and r["stop_reason"] == "unknown_principal", r
    with_executor(go, over)


def expect_fatal(e, send, what, log_words=()):
    """After send(e): the executor exits non-zero, logs why, runs nothing."""
    send(e)
    log = e.expect_exit(what, log_words)
    assert "gatewayd" in log, (what, log)
    time.sleep(0.1)
    assert e.recorded() == {}, (what, e.recorded())


def fatal_case(what, send, log_words=(), hello=True):
    def go(e):
        if hello:
            e.hello()
        expect_fatal(e, send, what, log_words)
    with_executor(go)


@test
def call_before_hello_is_fatal():
    fatal_case("CALL before HELLO",
               lambda e: e.send(T["MSG_CALL"], call_body()), ("before HELLO",), hello=False)


@test
def writes_off_before_hello_is_fatal():
    fatal_case("WRITES_OFF before HELLO",
               lambda e: e.send(T["MSG_WRITES_OFF"], {}), ("before HELLO",), hello=False)


@test
def hello_twice_or_wrong_version_is_fatal():
    fatal_case("HELLO twice", lambda e: e.send(T["MSG_HELLO"], {"version": proto_version()}))
    fatal_case("HELLO of another version", lambda e: e.send(T["MSG_HELLO"], {"version": proto_version() + 1}),
               hello=False)


@test
def protocol_deviations_are_fatal():
    n = len(T)      # MSG_MAX's number
    cases = [
        ("unknown type", lambda e: e.send(99, call_body()), ("unknown message type",)),
        ("type MSG_MAX", lambda e: e.send(n - 1, call_body()), ()),
        ("type 0", lambda e: e.send(0, call_body()), ()),
        ("extra field", lambda e: e.send(T["MSG_CALL"], call_body(extra=1)), ()),
        ("missing field", lambda e: e.send(T["MSG_CALL"], call_body(run_id=DROP)),
         ("run_id",)),
        ("missing tenant", lambda e: e.send(T["MSG_CALL"], call_body(tenant=DROP)), ()),
        ("uid as string", lambda e: e.send(T["MSG_CALL"], call_body(uid="1001")), ("uid",)),
        ("negative uid", lambda e: e.send(T["MSG_CALL"], call_body(uid=-1)), ()),
        ("args not a map", lambda e: e.send(T["MSG_CALL"], call_body(args=[1])), ()),
        ("tool with NUL", lambda e: e.send(T["MSG_CALL"], call_body(tool="record\0x")), ()),
        ("step_id int", lambda e: e.send(T["MSG_CALL"], call_body(step_id=7)), ()),
        ("field twice", lambda e: e.send_raw(call_with_field_twice()), ("twice",)),
        ("trailing bytes", lambda e: e.send_raw(
            msgpack.packb([T["MSG_CALL"], 5, call_body()]) + b"\xc0"), ()),
        ("two messages in one frame", lambda e: e.send_raw(
            msgpack.packb([T["MSG_CALL"], 5, call_body()]) * 2), ()),
        ("array of 4", lambda e: e.send_raw(
            msgpack.packb([T["MSG_CALL"], 5, call_body(), 1])), ()),
        ("body not a map", lambda e: e.send_raw(
            msgpack.packb([T["MSG_CALL"], 5, [1]])), ()),
        ("map instead of array", lambda e: e.send_raw(
            msgpack.packb({"type": T["MSG_CALL"]})), ()),
        ("not msgpack", lambda e: e.send_raw(b"\xc1"), ()),
        ("empty frame", lambda e: e.sock.sendall(b"\0\0\0\0"), ()),
        ("huge frame", lambda e: e.sock.sendall(b"\xff\xff\xff\xff"), ()),
        ("CALL_ANS from gatewayd", lambda e: e.send(
            T["MSG_CALL_ANS"], {"response": {"status": "ok"}}), ("CALL_ANS",)),
        ("HELLO_ANS from gatewayd", lambda e: e.send(
            T["MSG_HELLO_ANS"], {"version": proto_version(), "writes_enabled": True,
                                 "config_hash": "x"}), ()),
        ("WRITES_STATE from gatewayd", lambda e: e.send(
            T["MSG_WRITES_STATE"], {"writes_enabled": True}), ()),
    ]
    for what, send, words in cases:
        fatal_case(what, send, words)


@test
def writes_off_from_gatewayd_is_obeyed():
    """WRITES_OFF (gatewayd got SIGUSR1) turns the executor's writes off and
    it says so; an empty body is required."""
    def over(c):
        c["writes"] = {"enabled": True, "require_approval": False}
        c["tools"]["default_mode"] = "read_write"

    def go(e):
        assert e.hello()["writes_enabled"] is True
        e.send(T["MSG_WRITES_OFF"], {})
        m = e.recv_type(T["MSG_WRITES_STATE"])
        assert m[0] == T["MSG_WRITES_STATE"] and m[2] == {"writes_enabled": False}, m
        r = call(e, tool="record.write", args={"w": 1})
        assert r["status"] == "denied" and r["stop_reason"] == "writes_disabled", r
        assert e.recorded() == {}, e.recorded()
        expect_fatal(e, lambda e: e.send(T["MSG_WRITES_OFF"], {"writes_enabled": True}),
                     "WRITES_OFF with a body")
    with_executor(go, over)


@test
def gatewayd_cannot_lend_one_agent_anothers_uid():
    """The executor reads the caller from the socket gatewayd passed: a
    stranger's connection claimed to be an agent's is refused, and a
    connection never passed is fatal."""
    need_root()

    def go(e):
        e.hello()
        server, keep = peer_socket(e.agent, STRANGER_UID, STRANGER_UID)
        pass_peer(e.chan, 2, server)
        server.close()
        # conn 2's peer is a uid with no principal, whatever gatewayd claims.
        r = call(e, conn=2)
        assert r["status"] == "denied" and r["stop_reason"] == "unknown_principal", r
        assert e.recorded() == {}, e.recorded()
        assert "its peer is uid %d" % STRANGER_UID in e.read_log(), e.read_log()[-600:]
        # conn 1 (the real agent) still works.
        assert call(e)["status"] == "ok"
        keep.close()
    with_executor(go)
    fatal_case("a connection never passed",
               lambda e: e.send(T["MSG_CALL"], call_body(conn=77)), ("never passed",))
    fatal_case("a peer message without a socket",
               lambda e: e.chan.send(b"\0" * 8), ("peer channel",))


# -- connections that never came through the agent socket ----------------------

def send_late(e, mtype, body):
    """Send, unless the executor already exited over the peer channel."""
    try:
        e.send(mtype, body)
    except (BrokenPipeError, ConnectionResetError):
        pass


def writes_on(c):
    c["writes"] = {"enabled": True, "require_approval": False}
    c["tools"]["default_mode"] = "read_write"


def write_call(e, conn, args, run_id="evil"):
    return call(e, conn=conn, tool="record.write", args=args, run_id=run_id)


@test
def a_hung_up_agents_socket_runs_nothing():
    """An agent that hung up: its socket passed again under a new id after
    CONN_GONE, or named by its own id, gets no write; and the same socket
    under two ids at once is fatal (the next test)."""
    need_root()

    def go(e):
        assert e.hello()["writes_enabled"] is True
        server, client = peer_socket(e.agent, AGENT_UID, AGENT_GID)
        pass_peer(e.chan, 2, server)
        assert write_call(e, 2, {"w": "live"})["status"] == "ok"
        client.close()
        # The agent is gone, gatewayd has not said so: conn 2 gets nothing.
        r = write_call(e, 2, {"w": "gone"})
        assert r["status"] == "error" and r["error"] == "unavailable", r
        assert r["message"] == "the agent has hung up", r
        # gatewayd says so, then passes the dead socket as a new connection.
        e.send(T["MSG_CONN_GONE"], {"conn": 2})
        pass_peer(e.chan, 3, server)
        r = write_call(e, 3, {"w": "again"})
        assert r["status"] == "error" and r["error"] == "unavailable", r
        assert e.recorded() == {"record-write.out": '{"w":"live"}\n'}, e.recorded()
        assert "hung up" in e.read_log(), e.read_log()[-800:]
        # The live agent (conn 1) still works.
        assert write_call(e, 1, {"w": "one"})["status"] == "ok"
        server.close()
    with_executor(go, writes_on)


@test
def conn_gone_releases_the_agents_socket():
    """CONN_GONE may be read before the socket it names (two channels): the
    executor still lets go of its copy, so the agent sees the close."""
    need_root()

    def go(e):
        e.hello()
        clients = []
        # Stopped, the executor finds the socketpair ready first (a CALL),
        # then the channel: it reads CONN_GONE before the socket it names.
        os.kill(e.proc.pid, signal.SIGSTOP)
        try:
            mid = e.send(T["MSG_CALL"], call_body())
            for conn in range(2, 12):
                server, client = peer_socket(e.agent, AGENT_UID, AGENT_GID)
                pass_peer(e.chan, conn, server)
                e.send(T["MSG_CONN_GONE"], {"conn": conn})
                server.close()
                clients.append(client)
        finally:
            os.kill(e.proc.pid, signal.SIGCONT)
        m = e.recv_type(T["MSG_CALL_ANS"])
        assert m[1] == mid and m[2]["response"]["status"] == "ok", m
        for c in clients:
            c.settimeout(5)
            assert c.recv(1) == b"", "the executor kept a socket after CONN_GONE"
            c.close()
    with_executor(go)


@test
def one_socket_under_two_ids_is_fatal():
    need_root()

    def twice(e):
        server, client = peer_socket(e.agent, AGENT_UID, AGENT_GID)
        pass_peer(e.chan, 2, server)
        pass_peer(e.chan, 3, server)
        send_late(e, T["MSG_CALL"], call_body(conn=3, tool="record"))
        e.keep = (server, client)
    fatal_case("one socket under two ids", twice, ("twice",))


def listener_as(uid, gid, name):
    """A listening abstract socket (name without the leading NUL) made by
    uid/gid, so its connections' peer is that uid; returned to us."""
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(b"\0" + name.encode())
            s.listen(4)
            socket.send_fds(b, [b"x"], [s.fileno()])
            code = 0
        finally:
            os._exit(code)
    _, fds, _, _ = socket.recv_fds(a, 1, 1)
    os.waitpid(pid, 0)
    a.close()
    b.close()
    return socket.socket(fileno=fds[0])


@test
def an_abstract_socket_is_not_an_agent():
    """gatewayd connects to another uid's abstract socket and passes its end:
    its peer is that uid, but it never came through the agent socket."""
    need_root()
    name = "tg-abstract-%d-%d" % (os.getpid(), time.monotonic_ns())
    lst = listener_as(AGENT_UID, AGENT_GID, name)

    def send(e):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(b"\0" + name.encode())
        other, _ = lst.accept()
        e.keep = (s, other)
        pass_peer(e.chan, 2, s)
        send_late(e, T["MSG_CALL"], call_body(conn=2, tool="record.write", args={"a": 1}))
    try:
        def go(e):
            e.hello()
            expect_fatal(e, send, "an abstract socket", ("agent socket",))
        with_executor(go, writes_on)
    finally:
        lst.close()


@test
def a_socket_on_another_path_is_not_an_agent():
    need_root()
    d = tempfile.mkdtemp(prefix="tg-elsewhere-")
    other = AgentListener(os.path.join(d, "other.sock"))

    def send(e):
        server, client = peer_socket(other, AGENT_UID, AGENT_GID)
        e.keep = (server, client)
        pass_peer(e.chan, 2, server)
        send_late(e, T["MSG_CALL"], call_body(conn=2, tool="record.write", args={"p": 1}))
    try:
        def go(e):
            e.hello()
            expect_fatal(e, send, "another path", ("agent socket",))
        with_executor(go, writes_on)

        def pair(e):
            a, b = socket.socketpair()
            e.keep = (a, b)
            pass_peer(e.chan, 2, a)
            send_late(e, T["MSG_CALL"], call_body(conn=2, tool="record.write", args={"p": 2}))
        fatal_case("a socketpair", pair, ("agent socket",))
    finally:
        other.close()
        shutil.rmtree(d, ignore_errors=True)


@test
def the_listening_socket_is_not_an_agent():
    """The agent socket's listener has gatewayd's own (root's) credentials:
    passed as a connection, it would make gatewayd a principal."""
    need_root()

    def send(e):
        pass_peer(e.chan, 2, e.agent.sock)
        send_late(e, T["MSG_CALL"], call_body(conn=2, uid=0, gid=0, tool="record.write",
                                        args={"l": 1}))

    def go(e):
        e.hello()
        expect_fatal(e, send, "the listening socket", ("agent socket",))
    with_executor(go, writes_on)


# -- budgets the executor sees for itself ----------------------------------------

def budgets(**b):
    def over(c):
        writes_on(c)
        c["budgets"] = dict(c.get("budgets", {}), **b)
    return over


@test
def steps_are_counted_by_the_executor():
    """6 writes in a run capped at 2 steps: at most 2 run."""
    def go(e):
        e.hello()
        answers = [write_call(e, 1, {"n": i}, run_id="steps") for i in range(6)]
        assert [a["status"] for a in answers[:2]] == ["ok", "ok"], answers
        for a in answers[2:]:
            assert a["status"] == "stopped" and a["stop_reason"] == "budget_exceeded", a
        assert e.recorded()["record-write.out"].count("\n") == 2, e.recorded()
        # Reads count as steps too, and a read is still answered.
        assert call(e, run_id="steps2")["status"] == "ok"
        assert call(e, run_id="steps2", args={"k": 2})["status"] == "ok"
        r = write_call(e, 1, {"n": 9}, run_id="steps2")
        assert r["status"] == "stopped" and r["stop_reason"] == "budget_exceeded", r
        assert e.recorded()["record-write.out"].count("\n") == 2, e.recorded()
        # Another run has its own count.
        assert write_call(e, 1, {"n": 10}, run_id="other")["status"] == "ok"
    with_executor(go, budgets(max_steps_per_run=2))


def audit_body(**over):
    """An AUDIT body as the schema in proto/proto.c has it."""
    known = {"conn": 1, "uid": AGENT_UID, "gid": AGENT_GID, "tenant": "acme", "env": "prod",
             "run_id": "tok", "decision": "stopped", "reason": "budget_exceeded",
             "message": "the run used 900 tokens (budgets.max_tokens_per_run is 10)"}
    keys = [k for k, _, _ in schema("f_audit")]
    known.update(over)
    return {k: v for k, v in known.items() if k in keys}


@test
def a_run_gatewayd_reports_stopped_takes_no_writes():
    def go(e):
        e.hello()
        assert write_call(e, 1, {"t": 1}, run_id="tok")["status"] == "ok"
        e.send(T["MSG_AUDIT"], audit_body())
        for i in range(3):
            r = write_call(e, 1, {"t": 2 + i}, run_id="tok")
            assert r["status"] == "stopped" and r["stop_reason"] == "budget_exceeded", r
        # A later claim does not replace the first reason.
        e.send(T["MSG_AUDIT"], audit_body(reason="loop_detected"))
        r = write_call(e, 1, {"t": 9}, run_id="tok")
        assert r["stop_reason"] == "budget_exceeded", r
        # A denial is no stop; other runs go on.
        e.send(T["MSG_AUDIT"], audit_body(run_id="den", decision="denied",
                                          reason="not_allowed"))
        assert write_call(e, 1, {"t": 3}, run_id="den")["status"] == "ok"
        assert e.recorded()["record-write.out"] == '{"t":1}\n{"t":3}\n', e.recorded()
    with_executor(go, writes_on)


@test
def repeats_beyond_the_limit_stop_the_run():
    def go(e):
        e.hello()
        for _ in range(3):
            assert call(e, run_id="loop")["status"] == "ok"     # reads still run
        r = write_call(e, 1, {"l": 1}, run_id="loop")
        assert r["status"] == "stopped" and r["stop_reason"] == "loop_detected", r
        # The same write, again and again, in a fresh run: the ledger says
        # duplicate first, and the run stops.
        assert write_call(e, 1, {"l": 2}, run_id="loop2")["status"] == "ok"
        for _ in range(3):
            r = write_call(e, 1, {"l": 2}, run_id="loop2")
            assert r["status"] == "stopped", r
        # The run the executor answered "stopped" takes no other write either.
        r = write_call(e, 1, {"l": 3}, run_id="loop2")
        assert r["status"] == "stopped" and r["stop_reason"] == "duplicate_write", r
        assert e.recorded()["record-write.out"] == '{"l":2}\n', e.recorded()
    with_executor(go, budgets(repeat_limit=2))


def approvals_on(c):
    c["writes"] = {"enabled": True, "require_approval": True}
    c["tools"]["default_mode"] = "read_write"


def resume(e, cp):
    return e.answer("MSG_RESUME", {"conn": 1, "uid": AGENT_UID, "gid": AGENT_GID, "pid": 1,
                                   "tenant": "acme", "env": "prod", "checkpoint": cp},
                    "MSG_RESUME_ANS")


@test
def a_resumed_write_is_no_new_step_but_a_stop_holds():
    def go(e):
        e.hello()
        r = write_call(e, 1, {"a": 1}, run_id="appr")
        assert r["status"] == "needs_approval", r
        ans = ctl_raw(e.control_sock, {"op": "approve", "approval_id": r["approval_id"]})
        assert ans.get("ok") is True, ans
        # max_steps_per_run is 1: the resume is the same step.
        x = resume(e, r["checkpoint"])
        assert x["status"] == "ok", x
        # A run stopped (by gatewayd's report) takes no resumed write.
        r = write_call(e, 1, {"a": 2}, run_id="appr2")
        assert r["status"] == "needs_approval", r
        assert ctl_raw(e.control_sock, {"op": "approve",
                                   "approval_id": r["approval_id"]}).get("ok") is True
        e.send(T["MSG_AUDIT"], audit_body(run_id="appr2"))
        x = resume(e, r["checkpoint"])
        assert x["status"] == "stopped" and x["stop_reason"] == "budget_exceeded", x
        assert e.recorded()["record-write.out"] == '{"a":1}\n', e.recorded()
    with_executor(go, lambda c: (approvals_on(c), c.setdefault("budgets", {}).update(
        max_steps_per_run=1)))


# -- audit claims ------------------------------------------------------------------

@test
def audit_claims_are_checked_against_the_peer():
    need_root()

    def go(e):
        e.hello()
        server, keep = peer_socket(e.agent, STRANGER_UID, STRANGER_UID)
        pass_peer(e.chan, 2, server)
        server.close()
        # conn 1 is acme/prod (uid 1001); gatewayd claims another tenant.
        e.send(T["MSG_AUDIT"], audit_body(uid=OTHER_UID, gid=OTHER_GID, tenant="globex",
                                          env="staging", run_id="a1", decision="denied",
                                          reason="not_allowed", message="m1"))
        # conn 2 has no principal; gatewayd claims it is acme/prod.
        e.send(T["MSG_AUDIT"], audit_body(conn=2, uid=AGENT_UID, run_id="a2",
                                          decision="denied", reason="not_allowed",
                                          message="m2"))
        # A true claim.
        e.send(T["MSG_AUDIT"], audit_body(run_id="a3", decision="denied",
                                          reason="not_allowed", message="m3"))
        assert call(e)["status"] == "ok"       # the socketpair keeps the order
        recs = {r.get("run_id"): r for r in read_audit(e) if r.get("event") == "gatewayd"}
        a1, a2, a3 = recs["a1"], recs["a2"], recs["a3"]
        assert a1["tenant"] == "acme" and a1["env"] == "prod" and a1["uid"] == AGENT_UID, a1
        assert a1["reported_by"] == "gatewayd", a1
        assert "globex" in a1["note"] and "staging" in a1["note"], a1
        assert "tenant" not in a2 and "env" not in a2 and a2["uid"] == STRANGER_UID, a2
        assert a2["reported_by"] == "gatewayd" and "acme" in a2["note"], a2
        assert a3["tenant"] == "acme" and a3["uid"] == AGENT_UID and a3["note"] == "m3", a3
        assert a3["reported_by"] == "gatewayd", a3
        assert "globex" in e.read_log(), e.read_log()[-800:]
        keep.close()
    with_executor(go)
    if "conn" in [k for k, _, _ in schema("f_audit")]:
        fatal_case("an AUDIT naming a connection never passed",
                   lambda e: e.send(T["MSG_AUDIT"], audit_body(conn=77)), ("never passed",))


if __name__ == "__main__":
    main()
