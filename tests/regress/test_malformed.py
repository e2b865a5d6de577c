"""Every message type, malformed: a clear error, and it costs nothing else.

Agent ops answer error/bad_request and the connection goes on; control ops
answer ok: false and the executor keeps serving; socketpair messages from
a (compromised) gatewayd are fatal for that peer and run nothing.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


# Agent ops: each with requests that are well-formed frames but bad requests.
BAD_AGENT = {
    "hello": [{"op": "hello", "id": {"a": 1}}, {"op": "hello", "id": 1.5}],
    "call": [
        {"op": "call"},
        {"op": "call", "run_id": "r", "tool": "echo"},
        {"op": "call", "run_id": "", "tool": "echo", "args": {}},
        {"op": "call", "run_id": 5, "tool": "echo", "args": {}},
        {"op": "call", "run_id": "r", "tool": ["echo"], "args": {}},
        {"op": "call", "run_id": "r", "tool": "echo", "args": "x"},
        {"op": "call", "run_id": "r", "tool": "echo", "args": {}, "step_id": [1]},
        {"op": "call", "run_id": "r" * 257, "tool": "echo", "args": {}},
        {"op": "call", "run_id": "r", "tool": "echo", "args": {"b": b"\x00"}},
    ],
    "resume": [
        {"op": "resume"},
        {"op": "resume", "checkpoint": 7},
        {"op": "resume", "checkpoint": ""},
        {"op": "resume", "checkpoint": "tgc1.a\x00b"},
    ],
    "wait": [
        {"op": "wait"},
        {"op": "wait", "approval_id": "x"},
        {"op": "wait", "approval_id": 1, "timeout_ms": 10},
        {"op": "wait", "approval_id": "x", "timeout_ms": -1},
        {"op": "wait", "approval_id": "x", "timeout_ms": "soon"},
    ],
    "usage": [
        {"op": "usage"},
        {"op": "usage", "run_id": "r"},
        {"op": "usage", "run_id": "r", "tokens": -5},
        {"op": "usage", "run_id": "r", "tokens": "many"},
        {"op": "usage", "run_id": "r", "tokens": 1, "cost": "free"},
        {"op": "usage", "run_id": "r", "tokens": 1, "cost": -1.0},
    ],
    "unknown": [{"op": "teleport"}, {"op": 7}, {}],
}


@test
def every_agent_op_malformed_is_bad_request():
    with Daemon() as d:
        c = d.client()
        n = 0
        for op, reqs in BAD_AGENT.items():
            for req in reqs:
                req = dict(req)
                if "id" not in req:
                    req["id"] = n
                r = c.rpc(req)
                assert r["status"] == "error" and r["error"] == "bad_request", (op, req, r)
                assert r["message"], (op, r)
                n += 1
        # The connection and the daemon are still fine.
        assert c.hello()["status"] == "ok"
        assert c.call("echo", {"after": n}, run_id="fine")["status"] == "ok"


# Control ops with missing or mistyped fields.
BAD_CONTROL = [
    {"op": "approve"},
    {"op": "approve", "approval_id": 5},
    {"op": "approve", "approval_id": "0" * 32, "note": 3},
    {"op": "deny"},
    {"op": "deny", "approval_id": ["x"]},
    {"op": "resolve"},
    {"op": "resolve", "key": "k"},
    {"op": "resolve", "key": "k", "outcome": "maybe"},
    {"op": "resolve", "key": 1, "outcome": "done"},
    {"op": "nope"},
    {"op": 1},
    {},
]


@test
def every_control_op_malformed_is_refused():
    with Daemon() as d:
        for req in BAD_CONTROL:
            ans = ctl_raw(d.control_sock, req)
            assert ans.get("ok") is False and ans.get("error"), (req, ans)
        # Still serving, and nothing changed.
        st = d.ctl_json("status")
        assert st["pending_approvals"] == 0 and st["in_doubt"] == 0, st
        assert d.client().hello()["status"] == "ok"


def socketpair_case(type_name, body, want_in_log):
    """The executor alone; one bad message from its gatewayd; it must exit."""
    link = ExecutorLink(base_config(), name="tg-malformed")
    try:
        link.start()
        assert link.peer(AGENT_UID, AGENT_GID) == 1
        link.send(type_name, body)
        link.expect_exit("%s %r" % (type_name, body), (want_in_log,))
        link.proc = None
    finally:
        link.cleanup()


def good_bodies():
    return {
        "MSG_HELLO": {"version": proto_version()},
        "MSG_CALL": {"conn": 1, "uid": AGENT_UID, "gid": AGENT_GID, "pid": 1, "tenant": "acme",
                     "env": "prod", "run_id": "r", "tool": "echo", "args": {}},
        "MSG_RESUME": {"conn": 1, "uid": AGENT_UID, "gid": AGENT_GID, "pid": 1, "tenant": "acme",
                       "env": "prod", "checkpoint": "tgc1.x.y"},
        "MSG_WAIT": {"conn": 1, "uid": AGENT_UID, "gid": AGENT_GID, "tenant": "acme", "env": "prod",
                     "approval_id": "0" * 32, "timeout_ms": 10},
        "MSG_TOOLS": {"conn": 1, "uid": AGENT_UID, "gid": AGENT_GID, "tenant": "acme",
                      "env": "prod"},
        "MSG_WRITES_OFF": {},
        "MSG_CONN_GONE": {"conn": 1},
        "MSG_AUDIT": {"conn": 1, "uid": STRANGER_UID, "gid": STRANGER_UID, "decision": "denied",
                      "reason": "unknown_principal", "message": "no principal"},
        # The summary of the uids not told apart; uid and gid are optional.
        "MSG_AUDIT_SUMMARY": {"count": 1, "first_ms": 1, "last_ms": 2},
    }


@test
def every_socketpair_message_malformed_is_fatal_for_the_peer():
    need_root()
    for name, body in good_bodies().items():
        if name == "MSG_HELLO":
            # A second HELLO, even a good one, is out of turn.
            socketpair_case(name, body, "HELLO twice")
            continue
        # An extra field.
        socketpair_case(name, dict(body, extra=1), "bad message")
        for key in body:
            # Each field missing, and each with the wrong type.
            socketpair_case(name, {k: v for k, v in body.items() if k != key},
                            "missing")
            socketpair_case(name, dict(body, **{key: [1]}), "wrong type")


def raw_call(run_id, step_id=None):
    req = {b"op": b"call", b"id": 1, b"run_id": run_id, b"tool": b"rec",
           b"args": {b"n": 1}}
    if step_id is not None:
        req[b"step_id"] = step_id
    # use_bin_type=False packs bytes as msgpack str, whatever they hold.
    return raw_frame(msgpack.packb(req, use_bin_type=False))

@test
def invalid_utf8_in_run_or_step_id_is_a_bad_request():
    """Before, such a write ran and its audit record had no run id."""
    with approvals_daemon(require=False) as d:
        for data in (raw_call(b"run-\xff"), raw_call(b"run-1", b"step-\xc3\x28")):
            c = d.client()
            c.send_raw(data)
            r = c.recv()
            assert r["status"] == "error" and r["error"] == "bad_request", r
            c.close()
        assert count_lines(d.effects) == 0
        # The daemon goes on serving.
        assert d.client().call("rec", {"n": 2}, run_id="run-ok")["status"] == "ok"

@test
def invalid_utf8_from_gatewayd_is_a_protocol_violation():
    need_root()
    link = ExecutorLink(writes_config(), name="tg-utf8")
    effects = os.path.join(link.dir, "effects")
    conf = writes_config(tools={"rec": {"mode": "write", "exec": [tool("record"), effects]}})
    link.configure(conf)
    link.start()
    try:
        body = link.call_body("rec", {"n": 1}, "run-x")
        body = {k.encode(): (v.encode() if isinstance(v, str) else v)
                for k, v in body.items()}
        body[b"run_id"] = b"run-\xff"
        link.sock.sendall(raw_frame(msgpack.packb(
            [link.types["MSG_CALL"], 7, body], use_bin_type=False)))
        link.expect_exit("a run_id not UTF-8", ("bad message",))
        assert count_lines(effects) == 0
    finally:
        link.cleanup()


if __name__ == "__main__":
    main()
