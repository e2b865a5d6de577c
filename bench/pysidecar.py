#!/usr/bin/python3
"""
pysidecar: the baseline `make bench` measures gatewayd's deny path against.

A plain Python asyncio gate on a Unix socket, speaking the agent framing of
the contract (4-byte big-endian length, one msgpack map), doing for a call
what the seed gate did before answering a denial: the caller's identity
from SO_PEERCRED (once per connection, as gatewayd does), the request
parsed and its fields validated, the args hash (canonical JSON, SHA-256,
first 24 hex digits), the run looked up in a table of runs, the allowlist
checked; then `denied`/`not_allowed` with the fields and the message
gatewayd sends.  It is written to be fast in plain Python (an
asyncio.Protocol, every complete frame of a read answered, one write per
read) and has no privileged half: no audit record leaves it, where
gatewayd sends one to the executor for each denial (`make bench` shows the
executor's CPU apart).  Allowed tools are not run: it only decides
denials, which is all the bench asks of it.

    pysidecar.py --socket PATH --uid UID --tenant T --env E --allow a,b
"""
import argparse
import asyncio
import hashlib
import json
import os
import signal
import socket
import struct
import sys

import msgpack

MAX_FRAME = 1 << 20
MAX_ID = 256
MAX_RUN_ID = 256
MAX_STEP_ID = 256
MAX_TOOL = 128
STRIPPED = ("idempotency_key", "approval_token")
PEERCRED = struct.Struct("3i")


def frame(resp):
    body = msgpack.packb(resp)
    return len(body).to_bytes(4, "big") + body


def refuse(rid, status, reason, message):
    key = "error" if status == "error" else "stop_reason"
    return frame({"id": rid, "status": status, key: reason,
                  "message": message})


def args_hash(args):
    """The contract's hash; TypeError/ValueError for what JSON can't hold."""
    if any(not isinstance(k, str) for k in args):
        raise TypeError("args keys must be strings")
    if any(k in args for k in STRIPPED):
        args = {k: v for k, v in args.items() if k not in STRIPPED}
    canon = json.dumps(args, sort_keys=True, separators=(",", ":"),
                       ensure_ascii=False, allow_nan=True)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:24]


def short_str(v, limit):
    return isinstance(v, str) and 0 < len(v.encode("utf-8")) <= limit


class Gate:
    def __init__(self, principals, allow):
        self.principals = principals  # uid -> (tenant, env)
        self.allow = frozenset(allow)
        self.runs = {}  # (tenant, run_id) -> stop reason or None

    def answer(self, pr, who, req):
        rid = req.get("id")
        if not (isinstance(rid, int) or (isinstance(rid, str) and
                                         len(rid.encode()) <= MAX_ID)):
            return refuse(None, "error", "bad_request",
                          "id must be an integer or a string of at most"
                          " 256 bytes")
        if pr is None:
            return refuse(rid, "denied", "unknown_principal",
                          who + " has no principal")
        op = req.get("op")
        if op == "call":
            return self.call(pr, rid, req)
        if op == "hello":
            return frame({"id": rid, "status": "ok", "v": 1,
                          "tenant": pr[0], "env": pr[1],
                          "writes_enabled": False})
        return refuse(rid, "error", "bad_request",
                      "op must be one of hello, call, resume, wait, usage")

    def call(self, pr, rid, req):
        run_id, tool = req.get("run_id"), req.get("tool")
        step_id, args = req.get("step_id"), req.get("args")
        if not short_str(run_id, MAX_RUN_ID):
            return refuse(rid, "error", "bad_request", "run_id must be a"
                          " non-empty string of at most 256 bytes")
        if not short_str(tool, MAX_TOOL):
            return refuse(rid, "error", "bad_request", "tool must be a"
                          " non-empty string of at most 128 bytes")
        if not (step_id is None or isinstance(step_id, int) or
                (isinstance(step_id, str) and
                 len(step_id.encode()) <= MAX_STEP_ID)):
            return refuse(rid, "error", "bad_request",
                          "step_id must be an integer or a string")
        if not isinstance(args, dict):
            return refuse(rid, "error", "bad_request", "args must be a map")
        try:
            args_hash(args)
        except (TypeError, ValueError) as e:
            return refuse(rid, "error", "bad_request", str(e))
        key = (pr[0], run_id)
        stopped = self.runs.get(key)
        if stopped is None:
            self.runs[key] = None
        else:
            return refuse(rid, "stopped", stopped, "the run is stopped")
        if tool not in self.allow:
            return refuse(rid, "denied", "not_allowed",
                          "tool %s is not allowed (tools.allow)" % tool)
        return refuse(rid, "error", "unavailable",
                      "this baseline only decides denials")


class Conn(asyncio.Protocol):
    def __init__(self, gate):
        self.gate = gate
        self.buf = bytearray()
        self.tr = None
        self.pr = None
        self.who = None

    def connection_made(self, transport):
        self.tr = transport
        sock = transport.get_extra_info("socket")
        _pid, uid, gid = PEERCRED.unpack(sock.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED.size))
        self.pr = self.gate.principals.get(uid)
        self.who = "uid %u gid %u" % (uid, gid)

    def data_received(self, data):
        # The common case first: one whole frame, as one read brought it.
        if not self.buf and len(data) > 4 and \
                int.from_bytes(data[:4], "big") == len(data) - 4 <= MAX_FRAME:
            ans, ok = self.one(memoryview(data)[4:])
            self.tr.write(ans)
            if not ok:
                self.tr.close()
            return
        buf = self.buf
        buf += data
        out, off, ok = [], 0, True
        while ok and len(buf) - off >= 4:
            n = int.from_bytes(buf[off:off + 4], "big")
            if n == 0 or n > MAX_FRAME:
                out.append(refuse(None, "error", "bad_frame" if n == 0 else
                                  "frame_too_large", "bad frame length"))
                ok = False
            elif len(buf) - off - 4 < n:
                break
            else:
                ans, ok = self.one(bytes(buf[off + 4:off + 4 + n]))
                out.append(ans)
                off += 4 + n
        del buf[:off]
        if out:
            self.tr.write(b"".join(out))
        if not ok:
            self.tr.close()

    def one(self, body):
        """The answer to one frame, and whether the connection goes on."""
        try:
            req = msgpack.unpackb(body, raw=False)
        except UnicodeDecodeError:
            return refuse(None, "error", "bad_request",
                          "strings must be UTF-8"), True
        except Exception:  # anything else msgpack refuses
            req = None
        if not isinstance(req, dict):
            return refuse(None, "error", "bad_frame",
                          "a frame holds one msgpack map"), False
        return self.gate.answer(self.pr, self.who, req), True


async def serve(path, gate):
    loop = asyncio.get_running_loop()
    server = await loop.create_unix_server(lambda: Conn(gate), path)
    os.chmod(path, 0o666)
    # SIGTERM is how bench/run stops it: a clean end, status 0.
    loop.add_signal_handler(signal.SIGTERM, server.close)
    async with server:
        try:
            await server.serve_forever()
        except asyncio.CancelledError:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--uid", type=int, required=True)
    ap.add_argument("--tenant", required=True)
    ap.add_argument("--env", required=True)
    ap.add_argument("--allow", default="")
    a = ap.parse_args()
    gate = Gate({a.uid: (a.tenant, a.env)},
                [t for t in a.allow.split(",") if t])
    try:
        asyncio.run(serve(a.socket, gate))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
