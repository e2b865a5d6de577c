"""The mcp backend, through the daemon pair, against a real MCP server of
our own (tests/tools/mcp-server): the handshake, calls in flight side by
side, writes once, a crash mid-call, a hang, a changed definition,
isError, a server's own requests, junk on stdout, tenant_env servers with
their credential, and _meta as sent."""
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

MAX_OUTPUT = 100000
TOOLS = {
    # catalog name: (server's tool, mode, extra)
    "m.echo": ("echo", "read", {}),
    "m.rec": ("record", "write", {}),
    "m.rec.crash": ("record.crash", "write", {}),
    "m.slow": ("slow", "read", {"timeout_ms": 10000}),
    "m.crash": ("crash", "read", {}),
    "m.hang": ("hang", "read", {"timeout_ms": 400}),
    "m.hang.w": ("hang", "write", {"timeout_ms": 400}),
    "m.fail": ("fail", "read", {}),
    "m.fail.w": ("fail", "write", {}),
    "m.rpcerror": ("rpcerror", "read", {}),
    "m.ask": ("ask", "read", {}),
    "m.junk": ("junk", "read", {}),
    "m.change": ("change", "read", {}),
    "m.big": ("big", "read", {}),
    "m.env": ("env", "read", {}),
    "m.missing": ("no-such-tool", "read", {}),
}


class Files:
    """The server's side files, in a dir of their own."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mcp-")
        os.chmod(self.dir, 0o755)
        self.log = os.path.join(self.dir, "server.log")
        self.effects = os.path.join(self.dir, "effects")
        self.state = os.path.join(self.dir, "state")

    def events(self, kind=None):
        try:
            with open(self.log) as f:
                evs = [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []
        return [e for e in evs if kind is None or e.get("event") == kind]

    def received(self, method):
        return [e["msg"] for e in self.events("recv") if e["msg"].get("method") == method]

    def effects_lines(self):
        try:
            with open(self.effects) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []


def mcp_conf(files, server=None, extra_args=(), tools=TOOLS, **over):
    srv = {"command": [tool("mcp-server"), "--log", files.log, "--effects", files.effects,
                       "--state", files.state] + list(extra_args),
           "max_inflight": 8, "init_timeout_ms": 2000}
    srv.update(server or {})
    entries = {}
    for name, (mt, mode, extra) in tools.items():
        entries[name] = dict({"mode": mode, "mcp": {"server": "t", "tool": mt}}, **extra)
    conf = writes_config(entries, limits={"max_output": MAX_OUTPUT}, **over)
    conf["mcp_servers"] = {"t": srv}
    return conf


def wait_ready(d, tool_name="m.echo", uid=None, timeout=15):
    """Calls are unavailable until the server has answered initialize and
    tools/list: call until one goes through."""
    deadline = time.time() + timeout
    while True:
        r = d.client(uid=uid).call(tool_name, {"ping": 1}, run_id="ready")
        if r["status"] == "ok":
            return r
        assert r["status"] == "error" and r["error"] == "unavailable", r
        if time.time() > deadline:
            raise AssertionError("server never ready: %s\n%s" % (r, d.read_log()[-3000:]))
        time.sleep(0.05)


@test
def handshake_and_a_read():
    f = Files()
    with Daemon(mcp_conf(f)) as d:
        r = wait_ready(d)
        init = f.received("initialize")
        assert len(init) == 1, init
        p = init[0]["params"]
        assert p["protocolVersion"] == "2025-11-25", p
        assert p["capabilities"] == {}, p
        assert p["clientInfo"]["name"] == "toolgate", p
        assert len(f.received("notifications/initialized")) == 1
        # Both pages of tools/list were read: a tool of the second works.
        lists = f.received("tools/list")
        assert [m.get("params", {}).get("cursor") for m in lists[:2]] == [None, "page2"], lists
        args = {"q": "hello", "n": [1, 2]}
        r = d.client().call("m.echo", args, run_id="run-r")
        assert r["status"] == "ok", r
        res = r["result"]
        # content and structuredContent, nothing else the server added.
        assert set(res) == {"content", "structuredContent"}, res
        assert res["structuredContent"]["args"] == args, res
        meta = res["structuredContent"]["meta"]
        assert meta == {"io.toolgate/run_id": "run-r", "io.toolgate/tenant": "acme"}, meta
        assert json.loads(res["content"][0]["text"])["args"] == args, res
        # Our request ids are integers, each used once.
        calls = f.received("tools/call")
        ids = [m["id"] for m in calls]
        assert all(isinstance(i, int) for i in ids) and len(set(ids)) == len(ids), ids
        assert calls[-1]["params"]["name"] == "echo", calls[-1]
        # The server's environment: PATH and the configured env only.
        r = d.client().call("m.env", {}, run_id="run-r")
        env = r["result"]["structuredContent"]["env"]
        assert set(env) - {"LC_CTYPE"} == {"PATH"}, env


if __name__ == "__main__":
    main()
