"""The agent socket's framing: a bad frame costs only its own connection;
a well-formed map holding a bad request costs only that request."""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

import msgpack

MAX_FRAME = 4096


def conf(d_dir=None):
    c = base_config(limits={"max_frame": MAX_FRAME})
    return c


def with_record(c, path):
    c["catalog"]["record"] = {"mode": "read", "exec": [tool("record"), path]}
    c["tools"]["allow"].append("record")
    return c


def nested(depth, inner):
    """depth arrays, one inside the other, around inner."""
    v = inner
    for _ in range(depth):
        v = [v]
    return v


def expect_bad_frame(d, bystander, data, errors=("bad_frame",), what=""):
    """Send data on a fresh connection: one error answer, then closed;
    the bystander and a fresh client still work."""
    c = d.client()
    c.send_raw(data)
    r = c.recv()
    assert r.get("status") == "error", (what, r)
    assert r.get("error") in errors, (what, r)
    assert isinstance(r.get("message"), str) and r["message"], (what, r)
    assert c.closed(), "%s: connection not closed after a bad frame" % what
    c.close()
    assert d.proc.poll() is None, "%s: gatewayd died:\n%s" % (what, d.read_log())
    r = bystander.call("echo", {"after": what}, run_id="by-" + what)
    assert r["status"] == "ok" and r["result"]["args"] == {"after": what}, (what, r)
    f = d.client()
    r = f.hello()
    assert r["status"] == "ok", (what, r)
    r = f.call("echo", {"fresh": what}, run_id="fresh-" + what)
    assert r["status"] == "ok", (what, r)
    f.close()


@test
def bad_frames_cost_only_their_connection():
    with Daemon(conf()) as d:
        by = d.client()
        assert by.hello()["status"] == "ok"
        good = msgpack.packb({"op": "hello", "id": 1})
        cases = [
            ("zero length", b"\0\0\0\0", ("bad_frame",)),
            ("max_frame + 1 header only", struct.pack(">I", MAX_FRAME + 1),
             ("frame_too_large",)),
            ("max_frame + 1 with body",
             struct.pack(">I", MAX_FRAME + 1) + b"\x80" * (MAX_FRAME + 1),
             ("frame_too_large",)),
            ("length 2^32-1", b"\xff\xff\xff\xff", ("frame_too_large",)),
            ("0xc1", raw_frame(b"\xc1"), ("bad_frame",)),
            ("0xc1 inside a map", raw_frame(b"\x81\xa2id\xc1"), ("bad_frame",)),
            ("array", raw_frame(msgpack.packb([1, 2])), ("bad_frame",)),
            ("int", raw_frame(msgpack.packb(5)), ("bad_frame",)),
            ("str", raw_frame(msgpack.packb("hello")), ("bad_frame",)),
            ("nil", raw_frame(b"\xc0"), ("bad_frame",)),
            ("truncated map", raw_frame(good[:-2]), ("bad_frame",)),
            ("map header only", raw_frame(b"\x82"), ("bad_frame",)),
            ("extra bytes after the map", raw_frame(good + b"\xc0"), ("bad_frame",)),
            ("two maps in one frame", raw_frame(good + good), ("bad_frame",)),
            ("33 nested containers",
             raw_frame(msgpack.packb({"op": "hello", "id": 1,
                                      "x": nested(32, 1)})), ("bad_frame",)),
            ("1000 nested arrays",
             raw_frame(b"\x81\xa1x" + b"\x91" * 1000 + b"\x01"), ("bad_frame",)),
            ("map of 2^32-1 entries",
             raw_frame(b"\xdf\xff\xff\xff\xff\xa1a\x01"), ("bad_frame",)),
            ("array of 2^32-1 in a map",
             raw_frame(b"\x81\xa1a\xdd\xff\xff\xff\xff\x01"), ("bad_frame",)),
            ("str of 2^32-1 bytes in a map",
             raw_frame(b"\x81\xa1a\xdb\xff\xff\xff\xffabc"), ("bad_frame",)),
        ]
        for what, data, errors in cases:
            expect_bad_frame(d, by, data, errors, what)
        # The bystander's connection was never touched.
        r = by.hello()
        assert r["status"] == "ok", r


@test
def bad_frame_after_good_requests_answers_them_first():
    """Requests before the bad frame on the same connection are answered;
    the connection ends after the one error."""
    with Daemon(conf()) as d:
        c = d.client()
        c.send_raw(frame({"op": "hello", "id": 1}) + raw_frame(b"\xc1"))
        got = [c.recv(), c.recv()]
        assert got[0]["id"] == 1 and got[0]["status"] == "ok", got
        assert got[1]["status"] == "error" and got[1]["error"] == "bad_frame", got
        assert c.closed()


@test
def nesting_deeper_than_32_with_empty_innermost():
    """33 nested containers are too deep even when the innermost is empty."""
    with Daemon(conf()) as d:
        by = d.client()
        assert by.hello()["status"] == "ok"
        # map > args map > 31 arrays, the last one empty: 33 containers.
        req = {"op": "call", "id": 1, "run_id": "r", "tool": "echo",
               "args": {"x": nested(30, [])}}
        expect_bad_frame(d, by, frame(req), ("bad_frame",), "33 deep, empty inside")


@test
def exactly_max_frame_is_accepted():
    with Daemon(conf()) as d:
        c = d.client()
        base = {"op": "call", "id": 7, "run_id": "r", "tool": "echo"}
        n = MAX_FRAME - 200
        while len(msgpack.packb(dict(base, args={"pad": "x" * n}))) < MAX_FRAME:
            n += 1
        body = msgpack.packb(dict(base, args={"pad": "x" * n}))
        assert len(body) == MAX_FRAME, len(body)
        c.send_raw(raw_frame(body))
        r = c.recv()
        assert r["id"] == 7 and r["status"] == "ok", r
        assert r["result"]["args"]["pad"] == "x" * n
        assert c.hello()["status"] == "ok"


@test
def nesting_up_to_32_is_accepted_and_never_kills_the_pair():
    """A frame nesting 32 containers (the request map, args, 30 arrays) is
    a good frame: it is answered (ok, or bad_request if the args are too
    deep for the project), never with bad_frame, and nothing dies of it --
    not even when the answer (args echoed back inside result inside the
    socketpair message) nests deeper than the frame did."""
    with Daemon(conf()) as d:
        c = d.client()
        for k in range(0, 31):
            args = {"x": nested(k, 1)}
            try:
                r = c.call("echo", args, run_id="deep-%d" % k)
            except (EOFError, OSError) as e:
                try:
                    d.proc.wait(2)
                except subprocess.TimeoutExpired:
                    pass
                raise AssertionError("args nested %d deep (%d containers in the frame):"
                                     " connection lost (%s); gatewayd %s:\n%s" %
                                     (k + 1, k + 2, e, "exited %s" % d.proc.poll()
                                      if d.proc.poll() is not None else "alive",
                                      d.read_log()[-1500:]))
            # Args deeper than 24 levels are bad_request; a result that
            # wraps its args one level deeper than 24 is invalid output.
            assert r["status"] in ("ok", "error", "stopped"), (k, r)
            if r["status"] == "error":
                assert r["error"] == "bad_request" and k + 1 > 24, (k, r)
            if r["status"] == "stopped":
                assert r["stop_reason"] == "invalid_tool_output", (k, r)
                assert "deeper than 24" in r["message"], (k, r)
            if k <= 20 or r["status"] == "ok":
                assert r["status"] == "ok" and r["result"]["args"] == args, (k, r)
            assert d.proc.poll() is None, (k, d.read_log()[-1500:])
            assert c.hello()["status"] == "ok", k


@test
def truncated_frame_then_close():
    with Daemon(conf()) as d:
        by = d.client()
        assert by.hello()["status"] == "ok"
        # Half a frame, then the connection goes away entirely.
        s = connect_as(d.agent_sock)
        s.sendall(struct.pack(">I", 100) + b"\x85" + b"x" * 9)
        s.close()
        # Half a header.
        s = connect_as(d.agent_sock)
        s.sendall(b"\0\0")
        s.close()
        # Half a frame, then end of input: the server must close too.
        s = connect_as(d.agent_sock)
        s.sendall(struct.pack(">I", 100) + b"\x85" + b"x" * 9)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(5)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        if data:
            # At most one error answer.
            answers = decode_frames(data)
            assert len(answers) == 1, data
            assert answers[0]["status"] == "error", answers
        assert d.proc.poll() is None, d.read_log()
        r = by.call("echo", {"still": "here"})
        assert r["status"] == "ok", r
        assert d.client().hello()["status"] == "ok"


@test
def bad_requests_keep_the_connection():
    with Daemon(conf()) as d:
        c = d.client()
        cases = [
            ({"id": 1}, 1),
            ({"id": 2, "op": "frobnicate"}, 2),
            ({"id": 3, "op": 5}, 3),
            ({"id": 4, "op": ""}, 4),
            ({"op": "hello"}, None),
            ({"id": {"a": 1}, "op": "hello"}, None),
            ({"id": [1], "op": "hello"}, None),
            ({"id": None, "op": "hello"}, None),
            ({"id": 10, "op": "call", "tool": "echo", "args": {}}, 10),
            ({"id": 11, "op": "call", "run_id": 5, "tool": "echo", "args": {}}, 11),
            ({"id": 12, "op": "call", "run_id": "", "tool": "echo", "args": {}}, 12),
            ({"id": 13, "op": "call", "run_id": ["r"], "tool": "echo", "args": {}}, 13),
            ({"id": 14, "op": "call", "run_id": "r", "args": {}}, 14),
            ({"id": 15, "op": "call", "run_id": "r", "tool": 5, "args": {}}, 15),
            ({"id": 16, "op": "call", "run_id": "r", "tool": {"t": 1}, "args": {}}, 16),
            ({"id": 17, "op": "call", "run_id": "r", "tool": "echo"}, 17),
            ({"id": 18, "op": "call", "run_id": "r", "tool": "echo", "args": "x"}, 18),
            ({"id": 19, "op": "call", "run_id": "r", "tool": "echo", "args": [1]}, 19),
            ({"id": 20, "op": "call", "run_id": "r", "tool": "echo", "args": None}, 20),
            ({"id": 21, "op": "call", "run_id": "r", "tool": "echo", "args": {},
              "step_id": {"s": 1}}, 21),
            ({"id": 22, "op": "call", "run_id": "r", "tool": "echo", "args": {},
              "step_id": 1.5}, 22),
            ({"id": 23, "op": "call", "run_id": "r", "tool": "echo", "args": {},
              "step_id": [1]}, 23),
        ]
        for req, want_id in cases:
            c.send(req)     # as it is: rpc() would add a missing id
            r = c.recv()
            assert r.get("status") == "error" and r.get("error") == "bad_request", (req, r)
            assert r.get("id") == want_id, (req, r)
            assert isinstance(r.get("message"), str) and r["message"], (req, r)
            # Still open, still served.
            h = c.rpc({"op": "hello", "id": "after"})
            assert h["status"] == "ok" and h["id"] == "after", (req, h)
        assert d.proc.poll() is None


@test
def ids_come_back_as_sent():
    with Daemon(conf()) as d:
        c = d.client()
        for i in (0, -5, 2 ** 64 - 1, -2 ** 63, "", "abc", "é" * 10):
            r = c.rpc({"op": "hello", "id": i})
            assert r["status"] == "ok" and r["id"] == i and type(r["id"]) is type(i), (i, r)
            r = c.call("echo", {"i": repr(i)}, run_id="ids-%r" % (i,), id=i)
            assert r["status"] == "ok" and r["id"] == i, (i, r)


@test
def pipelined_requests_all_answered():
    c = conf()
    # All 20 may run at once: past the default max_tools_per_tenant.
    c["limits"]["max_tools_per_tenant"] = 64
    with Daemon(c) as d:
        c = d.client()
        ids = [100 + i for i in range(10)] + ["s%d" % i for i in range(10)]
        data = b"".join(
            frame({"op": "call", "id": i, "run_id": "pipe-%d" % (n % 3),
                   "tool": "echo", "args": {"n": n}})
            for n, i in enumerate(ids))
        c.send_raw(data)
        got = {}
        for _ in ids:
            r = c.recv()
            assert r["id"] not in got, r
            got[r["id"]] = r
        assert set(got) == set(ids), got.keys()
        for n, i in enumerate(ids):
            assert got[i]["status"] == "ok", got[i]
            assert got[i]["result"]["args"] == {"n": n}, got[i]


@test
def big_pipelined_requests_arrive_intact():
    """Requests far bigger than a read are parsed whole and answered with
    exactly their own args, whatever else is in the input buffer."""
    import threading
    with Daemon() as d:
        c = d.client()
        reqs = []
        for i in range(12):
            args = {"i": i, "pad": chr(ord("a") + i) * (20000 + 1000 * i),
                    "u": "é世😀" * 100}
            reqs.append({"op": "call", "id": i, "run_id": "big", "tool": "echo",
                         "args": args})
        data = b"".join(frame(r) for r in reqs)
        t = threading.Thread(target=c.send_raw, args=(data,), daemon=True)
        t.start()
        got = {}
        for _ in reqs:
            r = c.recv()
            got[r["id"]] = r
        t.join(10)
        for q in reqs:
            r = got[q["id"]]
            assert r["status"] == "ok", {k: v for k, v in r.items() if k != "result"}
            assert r["result"]["args"] == q["args"], q["id"]
            assert r["args_hash"] == args_hash(q["args"]), q["id"]


def call_bytes(req_id, args_bytes, run_id="r"):
    """A call whose args are given as raw msgpack bytes."""
    head = msgpack.packb({"op": "call", "id": req_id, "run_id": run_id,
                          "tool": "record"})
    # Turn the 4-entry fixmap into a 5-entry one and append args.
    assert head[0] == 0x84
    return raw_frame(b"\x85" + head[1:] + msgpack.packb("args") + args_bytes)


@test
def args_that_json_cannot_hold_are_bad_requests():
    d = Daemon(conf())
    rec = os.path.join(d.dir, "record.out")
    d.conf = with_record(d.conf, rec)
    write_config(d.config_path, d.conf)
    with d:
        c = d.client()
        cases = [
            ("bin", msgpack.packb({"b": b"\x01\x02"}, use_bin_type=True)),
            ("bin nested", msgpack.packb({"l": [1, {"b": b""}]}, use_bin_type=True)),
            ("ext", msgpack.packb({"e": msgpack.ExtType(5, b"xy")})),
            ("timestamp ext", b"\x81\xa1t\xd6\xff\x00\x00\x00\x01"),
            ("int key", msgpack.packb({1: "a"})),
            ("nil key", b"\x81\xc0\x01"),
            ("int key nested", msgpack.packb({"m": {2: "x"}})),
            ("bin key", msgpack.packb({b"k": 1}, use_bin_type=True)),
            ("invalid utf-8 value", b"\x81\xa1k\xa2\xff\xfe"),
            ("invalid utf-8 key", b"\x81\xa2\xc3\x28\x01"),
            ("overlong utf-8", b"\x81\xa1k\xa2\xc0\xaf"),
            ("surrogate utf-8", b"\x81\xa1k\xa3\xed\xa0\x80"),
            ("invalid utf-8 nested", b"\x81\xa1l\x91\xa1\x80"),
        ]
        for n, (what, args) in enumerate(cases):
            c.send_raw(call_bytes(n + 1, args))
            r = c.recv()
            assert r.get("id") == n + 1, (what, r)
            assert r.get("status") == "error" and r.get("error") == "bad_request", (what, r)
            assert c.hello()["status"] == "ok", what
        assert not os.path.exists(rec), open(rec).read()
        # The record tool works: the refusals above were not an accident.
        r = c.call("record", {"k": "v"})
        assert r["status"] == "ok", r
        assert open(rec).read() == '{"k":"v"}\n'


if __name__ == "__main__":
    main()
