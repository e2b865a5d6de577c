#!/usr/bin/python3
"""An example agent for the demo: speaks the agent protocol of
proto/PROTOCOL.md over the agent socket, and plays the operator with
gatewayctl where the demo needs one.

    agent.py AGENT_SOCKET CONTROL_SOCKET GATEWAYCTL GATEWAYD_PID
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

import msgpack

agent_sock, control_sock, gatewayctl, gatewayd_pid = sys.argv[1:5]


class Agent:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.next_id = 1

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.s.recv(n - len(data))
            if not chunk:
                raise EOFError("the gateway closed the connection")
            data += chunk
        return data

    def rpc(self, **req):
        req["id"] = self.next_id
        self.next_id += 1
        body = msgpack.packb(req)
        self.s.sendall(struct.pack(">I", len(body)) + body)
        (n,) = struct.unpack(">I", self._read(4))
        return msgpack.unpackb(self._read(n), raw=False)


def show(what, resp):
    brief = {k: v for k, v in resp.items() if k != "checkpoint"}
    if "checkpoint" in resp:
        brief["checkpoint"] = resp["checkpoint"][:24] + "..."
    print("  %-44s -> %s" % (what, json.dumps(brief)))


def ctl(*args):
    p = subprocess.run([gatewayctl, "-s", control_sock] + list(args),
                       capture_output=True, text=True)
    out = (p.stdout + p.stderr).strip().replace("\n", "\n      ")
    print("  $ gatewayctl %s   (exit %d)\n      %s" % (" ".join(args), p.returncode, out))
    return p


def section(title):
    print("\n== " + title)


a = Agent(agent_sock)
section("who am I (identity comes from SO_PEERCRED, never from the request)")
show("hello", a.rpc(op="hello"))

section("allowed reads run; everything else is refused with a reason")
show("call kb.read {q: password}", a.rpc(op="call", run_id="run-1", step_id=1,
                                         tool="kb.read", args={"q": "password"}))
show("call email.send (not in tools.allow)", a.rpc(op="call", run_id="run-1", step_id=2,
                                                   tool="email.send", args={"to": "all@example.com"}))
show("call db.drop (unknown tool)", a.rpc(op="call", run_id="run-1", tool="db.drop", args={}))
show("call with args that are not a map", a.rpc(op="call", run_id="run-1", tool="kb.read", args=[1]))

section("a write that needs a human: checkpoint, approval, resume exactly once")
r = a.rpc(op="call", run_id="run-2", step_id=1, tool="ticket.close", args={"ticket_id": "T-1042"})
show("call ticket.close {ticket_id: T-1042}", r)
show("resume before anyone decided", a.rpc(op="resume", checkpoint=r["checkpoint"]))
ctl("approvals")
ctl("approve", r["approval_id"], "--note", "customer confirmed")
show("wait for the decision", a.rpc(op="wait", approval_id=r["approval_id"], timeout_ms=1000))
show("resume", a.rpc(op="resume", checkpoint=r["checkpoint"]))
show("resume again (the agent retried)", a.rpc(op="resume", checkpoint=r["checkpoint"]))
show("a forged checkpoint", a.rpc(op="resume", checkpoint=r["checkpoint"][:-4] + "AAAA"))

section("idempotency: the gateway owns the key; a repeat never writes twice")
show("call ticket.reopen {ticket_id: T-7} in run-3", a.rpc(op="call", run_id="run-3", tool="ticket.reopen",
                                                          args={"ticket_id": "T-7"}))
show("same write from run-4 (a retrying agent)", a.rpc(op="call", run_id="run-4", tool="ticket.reopen",
                                                      args={"ticket_id": "T-7"}))
show("same write again in run-3", a.rpc(op="call", run_id="run-3", tool="ticket.reopen",
                                        args={"ticket_id": "T-7"}))
show("any later call in run-3", a.rpc(op="call", run_id="run-3", tool="kb.read", args={"q": "x"}))

section("a looping agent is stopped")
for i in range(4):
    show("call kb.read {q: same} #%d in run-5" % (i + 1),
         a.rpc(op="call", run_id="run-5", tool="kb.read", args={"q": "same"}))

section("the kill switch: SIGUSR1 disables writes at once, and it sticks")
os.kill(int(gatewayd_pid), signal.SIGUSR1)
time.sleep(0.2)
show("call ticket.reopen {ticket_id: T-8}", a.rpc(op="call", run_id="run-6", tool="ticket.reopen",
                                                 args={"ticket_id": "T-8"}))
show("reads still work", a.rpc(op="call", run_id="run-6", tool="kb.read", args={"q": "status"}))
ctl("status")
ctl("writes", "enable")
time.sleep(0.1)
show("call ticket.reopen {ticket_id: T-8} again", a.rpc(op="call", run_id="run-7", tool="ticket.reopen",
                                                       args={"ticket_id": "T-8"}))

def mcp_show(what, resp):
    """show(), with each text item of an MCP result cut short: the
    structuredContent beside it says the same."""
    res = resp.get("result")
    if isinstance(res, dict) and isinstance(res.get("content"), list):
        res = dict(res, content=[dict(c, text=c["text"][:24] + "...") if len(c.get("text", "")) > 24
                                 else c for c in res["content"]])
        resp = dict(resp, result=res)
    show(what, resp)


section("an MCP server behind the gate (the reference server-memory from npm)")
if os.environ.get("DEMO_MCP") != "1":
    print("  skipped: no node or no server-memory in .cache/npm (make deps installs them)")
    sys.exit(0)
# The executor starts the server and keeps it running; until it has
# answered initialize and tools/list, calls are error/unavailable.
for i in range(100):
    r = a.rpc(op="call", run_id="run-mcp-%d" % i, tool="memory.search", args={"query": "T-1042"})
    if r.get("error") != "unavailable":
        break
    time.sleep(0.1)
mcp_show("call memory.search {query: T-1042}", r)
remember = {"entities": [{"name": "T-1042", "entityType": "ticket",
                          "observations": ["closed after the customer confirmed"]}]}
mcp_show("call memory.remember (create_entities) in run-8", a.rpc(op="call", run_id="run-8", tool="memory.remember",
                                                              args=remember))
mcp_show("same write from run-9 (a retrying agent)", a.rpc(op="call", run_id="run-9", tool="memory.remember",
                                                      args=remember))
r = a.rpc(op="call", run_id="run-10", tool="memory.search", args={"query": "T-1042"})
mcp_show("call memory.search {query: T-1042}", r)
show("call memory.forget (a server tool the catalog does not name)",
     a.rpc(op="call", run_id="run-10", tool="memory.forget", args={"entityNames": ["T-1042"]}))
ctl("tools")
