"""A compromised gatewayd: the test speaks the socketpair protocol to the
executor itself.  The executor must take none of gatewayd's word for
policy, and must treat any deviation from the protocol as fatal."""
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

import msgpack

T = msg_types()


class Executor:
    """The executor binary on a socketpair whose other end is ours."""

    def __init__(self, conf_over=None):
        self.dir = tempfile.mkdtemp(prefix="tg-ex-")
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
        c.setdefault("paths", {})["credentials_dir"] = os.path.join(self.dir, "creds")
        self.config = os.path.join(self.dir, "toolgate.yaml")
        write_config(self.config, c)
        self.errpath = os.path.join(self.dir, "executor.log")
        self.control = os.path.join(self.dir, "control.sock")
        mine, theirs = socket.socketpair()
        chan, chan_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s = mine
        self.s.settimeout(10)

        def pre():
            # The socketpair on fd 3, the peer channel on fd 4.
            a, b = os.dup(theirs.fileno()), os.dup(chan_theirs.fileno())
            os.dup2(a, 3)
            os.dup2(b, 4)
        with open(self.errpath, "wb") as err:
            self.proc = subprocess.Popen(
                [EXECUTOR, "-c", self.config, "-f", "-v",
                 "--control-socket", self.control,
                 "--state-dir", os.path.join(self.dir, "state")],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                close_fds=False, preexec_fn=pre, start_new_session=True)
        theirs.close()
        chan_theirs.close()
        self.chan = chan
        self.next_id = 1
        # Connection 1 is an agent of AGENT_UID, as gatewayd would pass it:
        # call_body() names it.
        server, self.client_end = peer_socket(AGENT_UID, AGENT_GID)
        pass_peer(chan, 1, server)
        server.close()

    def send_raw(self, body):
        self.s.sendall(struct.pack(">I", len(body)) + body)

    def send(self, mtype, body, mid=None):
        if mid is None:
            mid = self.next_id
            self.next_id += 1
        self.send_raw(msgpack.packb([mtype, mid, body], use_bin_type=True))
        return mid

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.s.recv(n - len(data))
            if not chunk:
                raise EOFError("executor closed the socketpair")
            data += chunk
        return data

    def recv(self):
        (n,) = struct.unpack(">I", self._read(4))
        return msgpack.unpackb(self._read(n), raw=False, strict_map_key=False)

    def recv_type(self, mtype):
        """The next message of mtype, skipping WRITES_STATE notices."""
        while True:
            m = self.recv()
            if m[0] != T["MSG_WRITES_STATE"] or mtype == T["MSG_WRITES_STATE"]:
                return m

    def hello(self):
        mid = self.send(T["MSG_HELLO"], {"version": proto_version()})
        m = self.recv_type(T["MSG_HELLO_ANS"])
        assert m[0] == T["MSG_HELLO_ANS"] and m[1] == mid, m
        assert m[2]["version"] == proto_version(), m
        return m[2]

    def call(self, **over):
        body = call_body(**over)
        mid = self.send(T["MSG_CALL"], body)
        m = self.recv_type(T["MSG_CALL_ANS"])
        assert m[0] == T["MSG_CALL_ANS"] and m[1] == mid, m
        assert set(m[2]) == {"response"}, m
        return m[2]["response"]

    def log(self):
        with open(self.errpath, errors="replace") as f:
            return f.read()

    def wait(self, timeout=10):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def recorded(self):
        out = {}
        for p in (self.rec, self.rec_denied, self.rec_write):
            if os.path.exists(p):
                out[os.path.basename(p)] = open(p).read()
        return out

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def schema(var):
    """A socketpair message's fields, read from proto/proto.c (the one place
    that defines them): [(key, type, optional)]."""
    text = open(os.path.join(ROOT, "proto", "proto.c")).read()
    body = re.search(r"struct field %s\[\] = \{(.*?)\};" % var, text, re.S).group(1)
    return [(k, t, o == "1") for k, t, o in
            re.findall(r'\{\s*"(\w+)",\s*(F_\w+),\s*(\d)\s*\}', body)]


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
        r = e.call()
        assert r["status"] == "ok", r
        assert r["args_hash"] == args_hash({"k": "v"}), r
        assert e.recorded() == {"record.out": '{"k":"v"}\n'}, e.recorded()
    with_executor(go)


@test
def policy_is_the_executors_own():
    def go(e):
        e.hello()
        # Not in tools.allow (but in the catalog).
        r = e.call(tool="record.denied")
        assert r["status"] == "denied" and r["stop_reason"] == "not_allowed", r
        # Not in the catalog at all.
        r = e.call(tool="rm.rf")
        assert r["status"] == "denied" and r["stop_reason"] == "not_allowed", r
        # A write while the executor's config disables writes.
        r = e.call(tool="record.write")
        assert r["status"] == "denied" and r["stop_reason"] == "writes_disabled", r
        r = e.call(tool="nomode")
        assert r["status"] == "denied" and r["stop_reason"] == "writes_disabled", r
        # A principal the config does not give: uid 1001 is acme/prod.
        r = e.call(tenant="globex", env="staging")
        assert r["status"] == "denied" and r["stop_reason"] == "unknown_principal", r
        r = e.call(env="staging")
        assert r["status"] == "denied" and r["stop_reason"] == "unknown_principal", r
        r = e.call(uid=STRANGER_UID, gid=STRANGER_UID)
        assert r["status"] == "denied" and r["stop_reason"] == "unknown_principal", r
        r = e.call(uid=OTHER_UID, gid=OTHER_GID, tenant="acme", env="prod")
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
        r = e.call()
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
        r = e.call(tool="record.write", args=args)
        assert r["status"] == "ok", r
        assert r["idempotency_key"] == "acme:record.write:" + args_hash(args), r
        # Tenant claimed by gatewayd differs from the config: refused.
        r = e.call(tool="record.write", args={"t": 2}, tenant="globex")
        assert r["status"] == "denied" and r["stop_reason"] == "unknown_principal", r
    with_executor(go, over)


def expect_fatal(e, send, what, log_words=()):
    """After send(e): the executor exits non-zero, logs why, runs nothing."""
    send(e)
    rc = e.wait(10)
    assert rc is not None, "%s: the executor is still running:\n%s" % (what, e.log())
    assert rc != 0, "%s: exit status %s" % (what, rc)
    log = e.log()
    for w in log_words:
        assert w in log, "%s: %r not in the log:\n%s" % (what, w, log)
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
        ("empty frame", lambda e: e.s.sendall(b"\0\0\0\0"), ()),
        ("huge frame", lambda e: e.s.sendall(b"\xff\xff\xff\xff"), ()),
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
        r = e.call(tool="record.write", args={"w": 1})
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
        server, keep = peer_socket(STRANGER_UID, STRANGER_UID)
        pass_peer(e.chan, 2, server)
        server.close()
        # conn 2's peer is a uid with no principal, whatever gatewayd claims.
        r = e.call(conn=2)
        assert r["status"] == "denied" and r["stop_reason"] == "unknown_principal", r
        assert e.recorded() == {}, e.recorded()
        assert "its peer is uid %d" % STRANGER_UID in e.log(), e.log()[-600:]
        # conn 1 (the real agent) still works.
        assert e.call()["status"] == "ok"
        keep.close()
    with_executor(go)
    fatal_case("a connection never passed",
               lambda e: e.send(T["MSG_CALL"], call_body(conn=77)), ("never passed",))
    fatal_case("a peer message without a socket",
               lambda e: e.chan.send(b"\0" * 8), ("peer channel",))


if __name__ == "__main__":
    main()
