"""The Python client (clients/python/toolgate) without a daemon: every
status, stop_reason and error the contract lists maps to its own
exception class, unknown ones to the base of their status, and the frame
reader cuts a byte stream into answers however it arrives.  The client
against the real pair is test_pyclient.py."""
import os
import re
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
from tg import *  # noqa: F401,F403

import toolgate  # noqa: E402
from toolgate.wire import FrameBuffer, encode  # noqa: E402


def contract_names(label):
    """The backquoted names after `LABEL` is one of / gains in CONTRACT.md
    (stop_reason, error), so a reason added to the contract without a
    class here fails this test."""
    with open(os.path.join(SHARED, "spec", "CONTRACT.md")) as f:
        text = f.read()
    names = set()
    for m in re.finditer(r"`%s` is one of(.*?)(?:\.\s|;)" % label, text, re.S):
        names.update(re.findall(r"`([a-z_]+)`", m.group(1)))
    # "`stop_reason` gains `tool_changed`" (a list right after "gains";
    # "`error` gains the optional fields ..." adds fields, not codes).
    for m in re.finditer(r"`%s` gains ((?:`[a-z_]+`(?:,? and |, )?)+)" % label, text):
        names.update(re.findall(r"`([a-z_]+)`", m.group(1)))
    assert names, "no %s list found in CONTRACT.md" % label
    return names


def status_of(reason):
    """The status a stop_reason comes with, by the contract's text."""
    return "stopped" if reason in ("duplicate_write", "loop_detected", "budget_exceeded",
                                   "invalid_tool_output") else "denied"


@test
def every_contract_stop_reason_has_its_class():
    reasons = contract_names("stop_reason")
    assert {"not_allowed", "loop_detected", "tool_changed", "circuit_open"} <= reasons, reasons
    seen = set()
    for reason in sorted(reasons):
        if reason == "approval_required":
            e = toolgate.error_for({"id": 1, "status": "needs_approval",
                                    "stop_reason": reason, "approval_id": "a" * 32,
                                    "checkpoint": "tgc1.x.y", "args_hash": "h" * 24,
                                    "expires_at": 5, "message": "m"})
            assert type(e) is toolgate.NeedsApproval and e.stop_reason == reason, e
            assert (e.approval_id, e.checkpoint, e.args_hash, e.expires_at) == \
                ("a" * 32, "tgc1.x.y", "h" * 24, 5), vars(e)
            assert toolgate.ApprovalRequired is toolgate.NeedsApproval
            continue
        status = status_of(reason)
        e = toolgate.error_for({"id": 1, "status": status, "stop_reason": reason,
                                "message": "why " + reason})
        base = toolgate.Denied if status == "denied" else toolgate.Stopped
        assert isinstance(e, base) and type(e) is not base, (reason, type(e))
        assert e.stop_reason == reason and e.message == "why " + reason, vars(e)
        assert e.status == status and e.response["id"] == 1, vars(e)
        assert reason in str(e) and "why" in str(e), str(e)
        assert type(e) not in seen, (reason, type(e))
        seen.add(type(e))
        # The class is exported under a CamelCase name of its reason.
        name = "".join(w.capitalize() for w in reason.split("_"))
        assert getattr(toolgate, name) is type(e), (reason, name)


@test
def every_contract_error_has_its_class():
    codes = contract_names("error")
    assert {"bad_frame", "frame_too_large", "tool_failed", "internal"} <= codes, codes
    seen = set()
    for code in sorted(codes):
        e = toolgate.error_for({"id": 2, "status": "error", "error": code, "message": "m"})
        assert isinstance(e, toolgate.ToolError) and type(e) is not toolgate.ToolError, (code, e)
        assert e.error == code and e.status == "error" and e.message == "m", vars(e)
        assert e.retryable is False and e.retry_after_ms is None, vars(e)
        assert type(e) not in seen, code
        seen.add(type(e))
        # Frames the gate refused end the connection: protocol errors too.
        assert isinstance(e, toolgate.ProtocolError) == (code in ("bad_frame", "frame_too_large")), code


@test
def retryable_and_retry_after():
    e = toolgate.error_for({"id": 1, "status": "error", "error": "tool_failed",
                            "message": "HTTP 503", "retryable": True, "retry_after_ms": 2000})
    assert type(e) is toolgate.ToolFailed and e.retryable is True and e.retry_after_ms == 2000, vars(e)
    # Only a real true is retryable.
    e = toolgate.error_for({"id": 1, "status": "error", "error": "tool_failed", "retryable": 1})
    assert e.retryable is False, vars(e)
    for reason, cls in (("rate_limited", toolgate.RateLimited),
                        ("circuit_open", toolgate.CircuitOpen)):
        e = toolgate.error_for({"id": 1, "status": "denied", "stop_reason": reason,
                                "message": "later", "retry_after_ms": 750})
        assert type(e) is cls and e.retry_after_ms == 750, vars(e)
        assert isinstance(e, toolgate.Denied)


@test
def unknown_reasons_fall_back_to_their_status():
    e = toolgate.error_for({"id": 1, "status": "denied", "stop_reason": "solar_flare", "message": "m"})
    assert type(e) is toolgate.Denied and e.stop_reason == "solar_flare", vars(e)
    e = toolgate.error_for({"id": 1, "status": "stopped", "stop_reason": "tired"})
    assert type(e) is toolgate.Stopped and e.stop_reason == "tired" and e.message == "", vars(e)
    e = toolgate.error_for({"id": 1, "status": "error", "error": "gremlins", "message": "m"})
    assert type(e) is toolgate.ToolError and e.error == "gremlins", vars(e)
    # A known reason under a status it does not belong to is not dressed
    # up as its class: "denied" is not a stop of the run.
    e = toolgate.error_for({"id": 1, "status": "denied", "stop_reason": "loop_detected"})
    assert type(e) is toolgate.Denied and e.stop_reason == "loop_detected", vars(e)
    e = toolgate.error_for({"id": 1, "status": "stopped", "stop_reason": "not_allowed"})
    assert type(e) is toolgate.Stopped and e.stop_reason == "not_allowed", vars(e)
    # Missing or mistyped fields never crash the mapping.
    for ans in ({"id": 1, "status": "denied"}, {"id": 1, "status": "stopped", "stop_reason": 7},
                {"id": 1, "status": "error", "error": None, "message": b"x"},
                {"id": 1, "status": "needs_approval"}, {"id": 1, "status": "pending"}):
        e = toolgate.error_for(ans)
        assert isinstance(e, toolgate.ToolgateError), ans
        str(e)
    e = toolgate.error_for({"id": 1, "status": "weird", "message": "m"})
    assert type(e) is toolgate.ToolgateError and e.status == "weird", vars(e)
    e = toolgate.error_for([1, 2])
    assert type(e) is toolgate.MalformedAnswer, e


@test
def exception_tree():
    T = toolgate
    assert issubclass(T.Pending, T.ToolgateError) and not issubclass(T.Pending, T.Denied)
    assert not issubclass(T.NeedsApproval, T.Denied)
    assert issubclass(T.ApprovalTimeout, TimeoutError) and issubclass(T.AnswerTimeout, TimeoutError)
    assert issubclass(T.ConnectionClosed, T.ProtocolError)
    for cls in (T.Denied, T.Stopped, T.NeedsApproval, T.Pending, T.ToolError, T.ProtocolError):
        assert issubclass(cls, T.ToolgateError), cls
    e = T.error_for({"id": 9, "status": "pending", "approval_id": "p" * 32, "message": "wait"})
    assert type(e) is T.Pending and e.approval_id == "p" * 32, vars(e)
    na = T.error_for({"id": 1, "status": "needs_approval", "approval_id": "a", "checkpoint": "c"})
    t = T.ApprovalTimeout("nobody decided", na)
    assert t.approval_id == "a" and t.checkpoint == "c" and t.needs_approval is na, vars(t)
    assert str(t) == "nobody decided", str(t)


@test
def frames_in_any_pieces():
    answers = [{"id": 1, "status": "ok", "v": 1}, {"id": "x", "status": "error", "error": "internal"},
               {"id": 3, "status": "ok", "result": {"a": [1, 2.5, None, "caf\u00e9"]}}]
    stream = b"".join(encode(a) for a in answers)
    assert stream[:4] == struct.pack(">I", len(encode(answers[0])) - 4)   # big-endian length
    for step in (1, 3, 7, len(stream)):
        fb = FrameBuffer()
        got = []
        for i in range(0, len(stream), step):
            fb.feed(stream[i:i + step])
            while True:
                a = fb.next()
                if a is None:
                    break
                got.append(a)
        assert got == answers, (step, got)
        assert not fb.partial()


@test
def frames_that_are_not_answers():
    for body in (b"", b"\xc1", msgpack.packb([1, 2]), msgpack.packb("x")):
        fb = FrameBuffer()
        fb.feed(struct.pack(">I", len(body)) + body)
        try:
            fb.next()
        except toolgate.MalformedAnswer:
            continue
        raise AssertionError("accepted %r" % body)
    fb = FrameBuffer(max_answer=100)
    fb.feed(struct.pack(">I", 101))
    try:
        fb.next()
        raise AssertionError("a frame over the limit was accepted")
    except toolgate.MalformedAnswer as e:
        assert "101" in str(e), e


@test
def requests_need_a_run():
    gw = toolgate.Gateway("/nonexistent/agent.sock")
    try:
        gw.call("echo", {})
        raise AssertionError("a call without a run_id went out")
    except ValueError as e:
        assert "run_id" in str(e), e
    try:
        gw.call("echo", {}, run_id="r")
        raise AssertionError("connected to nothing")
    except toolgate.ConnectionClosed as e:
        assert "/nonexistent/agent.sock" in str(e), e


@test
def example_mcp_client_config():
    """examples/mcp-client.json: the usual mcpServers entry, starting
    toolgate-mcp on the agent socket CONFIG.md names as the default."""
    with open(os.path.join(ROOT, "examples", "mcp-client.json")) as f:
        conf = json.load(f)
    srv = conf["mcpServers"]["toolgate"]
    with open(os.path.join(ROOT, "proto", "CONFIG.md")) as f:
        m = re.search(r"\| `agent_socket` \|[^|]*\| `([^`]+)` \|", f.read())
    assert m, "no agent_socket default in CONFIG.md"
    assert srv == {"command": "toolgate-mcp", "args": ["-s", m.group(1)]}, srv
    assert toolgate.DEFAULT_SOCKET == m.group(1), toolgate.DEFAULT_SOCKET


if __name__ == "__main__":
    main()
