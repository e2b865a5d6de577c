"""The agents' tools op against the real pair: the allowlist in name
order with modes, the catalog's description and input_schema (and the
default schema), an mcp tool's description and inputSchema as its server
(tests/tools/mcp-server) shows them, a changed definition never shown,
a server not ready, a peer with no principal, bad requests, and a list
too big for limits.max_frame."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

DEFAULT_SCHEMA = {"type": "object"}
TICKET_SCHEMA = {
    "type": "object",
    "properties": {"ticket": {"type": "string", "maxLength": 32},
                   "force": {"type": "boolean", "default": False},
                   "ratio": {"type": "number", "minimum": 0.5},
                   "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["ticket"],
    "additionalProperties": False,
}
MCP_TOOLS = {
    "m.echo": ("echo", "read", {}),
    "m.note": ("note", "write", {"description": "the catalog's words, not shown"}),
    "m.shout": ("shout", "read", {}),
    "m.change": ("change", "read", {}),
    "m.missing": ("no-such-tool", "read", {"description": "Missing, says the catalog",
                                           "input_schema": {"type": "object",
                                                            "properties": {"a": {}}}}),
}


def mcp_conf(files, tools):
    return mcp_server_conf(files, tools)


def wait_ready(d, timeout=15):
    """Calls are unavailable until the server has listed its tools."""
    n = [0]

    def ready():
        n[0] += 1
        r = d.client().call("m.echo", {"ping": n[0]}, run_id="ready-%d" % n[0])
        assert r["status"] in ("ok", "error"), r
        return r["status"] == "ok"
    wait_for(ready, timeout=timeout, what="the MCP server")


def tools_conf(f):
    conf = mcp_conf(f, MCP_TOOLS)
    conf["catalog"]["ticket.close"] = dict(conf["catalog"]["ticket.close"],
                                           description="Close a ticket",
                                           input_schema=TICKET_SCHEMA)
    # In the catalog, not in the allowlist: never listed.
    conf["catalog"]["hidden"] = {"mode": "read", "exec": [tool("echo-args")],
                                 "description": "not for agents"}
    return conf


def tools_of(c, **kw):
    r = c.rpc(dict({"op": "tools"}, **kw))
    assert r["status"] == "ok", r
    assert set(r) == {"id", "status", "tools"}, r
    for t in r["tools"]:
        assert set(t) == {"name", "mode", "description", "input_schema"}, t
    return r["tools"]


@test
def the_allowlist_in_name_order_for_two_principals():
    f = Files()
    conf = tools_conf(f)
    with Daemon(conf) as d:
        wait_ready(d)
        want = sorted(conf["tools"]["allow"])
        lists = []
        for uid in (None, OTHER_UID):
            ts = tools_of(d.client(uid=uid))
            names = [t["name"] for t in ts]
            assert names == want, (uid, names, want)
            assert "hidden" not in names
            lists.append(ts)
        # The allowlist is the config's, the same for every principal.
        assert lists[0] == lists[1], lists
        by = {t["name"]: t for t in lists[0]}
        assert by["echo"]["mode"] == "read", by["echo"]
        assert by["ticket.close"]["mode"] == "write", by["ticket.close"]
        # A tool without a mode is a write.
        assert by["nomode"]["mode"] == "write", by["nomode"]
        assert by["m.note"]["mode"] == "write" and by["m.echo"]["mode"] == "read"
        # The catalog's description and input_schema, exactly.
        assert by["ticket.close"]["description"] == "Close a ticket"
        assert by["ticket.close"]["input_schema"] == TICKET_SCHEMA, by["ticket.close"]
        # Neither given: no description and the default schema.
        assert by["echo"]["description"] == "" and by["echo"]["input_schema"] == DEFAULT_SCHEMA


@test
def an_mcp_tool_is_described_by_its_server():
    f = Files()
    with Daemon(tools_conf(f)) as d:
        wait_ready(d)
        by = {t["name"]: t for t in tools_of(d.client())}
        assert by["m.echo"]["description"] == "Echo the arguments", by["m.echo"]
        assert by["m.echo"]["input_schema"] == {"type": "object"}, by["m.echo"]
        # The server's words win over the catalog's for an mcp tool.
        assert by["m.note"]["description"] == "Note the arguments", by["m.note"]
        # Passed as the server wrote it (escapes and all: an agent is no
        # terminal), with its schema.
        assert by["m.shout"]["description"] == "Shout\x1b[2J\x1b]0;owned\x07 loud", by["m.shout"]
        assert by["m.shout"]["input_schema"] == {
            "type": "object", "properties": {"q": {"type": "string"}}}, by["m.shout"]
        # The server offers no such tool: the catalog describes it.
        assert by["m.missing"]["description"] == "Missing, says the catalog", by["m.missing"]
        assert by["m.missing"]["input_schema"] == {"type": "object", "properties": {"a": {}}}


@test
def an_mcp_tool_of_a_server_that_never_listed_falls_back_to_the_catalog():
    f = Files()
    conf = tools_conf(f)
    # A server that exits at once: it never gets to tools/list.
    conf["mcp_servers"]["down"] = {"command": [tool("exit-quiet")], "init_timeout_ms": 200}
    conf["catalog"]["d.tool"] = {"mode": "read", "mcp": {"server": "down", "tool": "x"},
                                 "description": "Down, says the catalog"}
    conf["catalog"]["d.bare"] = {"mode": "write", "mcp": {"server": "down", "tool": "y"}}
    conf["tools"]["allow"] += ["d.tool", "d.bare"]
    with Daemon(conf) as d:
        wait_ready(d)
        state = {t["name"]: t["state"] for t in d.ctl_json("tools")}
        assert state["d.tool"] in ("server down", "starting"), state
        by = {t["name"]: t for t in tools_of(d.client())}
        assert by["d.tool"] == {"name": "d.tool", "mode": "read",
                                "description": "Down, says the catalog",
                                "input_schema": DEFAULT_SCHEMA}, by["d.tool"]
        assert by["d.bare"] == {"name": "d.bare", "mode": "write", "description": "",
                                "input_schema": DEFAULT_SCHEMA}, by["d.bare"]


@test
def a_changed_definition_is_never_shown():
    f = Files()
    with Daemon(tools_conf(f)) as d:
        wait_ready(d)
        before = [t["name"] for t in tools_of(d.client())]
        assert "m.echo" in before and "m.note" in before, before
        assert d.client().call("m.change", {}, run_id="ch")["status"] == "ok"
        wait_for(lambda: {t["name"]: t for t in d.ctl_json("tools")}["m.echo"]["state"] == "changed",
                 what="state changed")
        c = d.client()
        c.send({"op": "tools", "id": 7})
        raw = read_frame_bytes(c)
        # Not in any form: neither the tools nor the new words.
        assert b"changed" not in raw, raw
        r = msgpack.unpackb(raw, raw=False)
        names = [t["name"] for t in r["tools"]]
        assert names == [n for n in before if n not in ("m.echo", "m.note")], names
        # Accepted by an operator: shown again, with what was accepted.
        rc, out, err = d.ctl("tools", "accept", "m.echo")
        assert rc == 0, (rc, out, err)
        by = {t["name"]: t for t in tools_of(d.client())}
        assert by["m.echo"]["description"] == "Echo, changed", by["m.echo"]
        assert "m.note" not in by, by


def read_frame_bytes(c):
    hdr = b""
    while len(hdr) < 4:
        hdr += c.s.recv(4 - len(hdr))
    n = struct.unpack(">I", hdr)[0]
    body = b""
    while len(body) < n:
        body += c.s.recv(n - len(body))
    return body


@test
def a_peer_with_no_principal_is_denied():
    need_root()
    with Daemon(base_config()) as d:
        r = d.client(uid=STRANGER_UID).rpc({"op": "tools"})
        assert r["status"] == "denied" and r["stop_reason"] == "unknown_principal", r
        assert "tools" not in r, r


@test
def bad_and_odd_requests():
    with Daemon(base_config()) as d:
        c = d.client()
        # No id: refused, and the connection goes on.
        c.send({"op": "tools"})
        r = c.recv()
        assert r["status"] == "error" and r["error"] == "bad_request" and r["id"] is None, r
        # Fields an op does not name are ignored, as for every op.
        ts = tools_of(c, junk=[1, 2], tool="ticket.close")
        assert [t["name"] for t in ts] == sorted(base_config()["tools"]["allow"]), ts
        # A string id comes back as it was.
        r = c.rpc({"op": "tools", "id": "list-1"})
        assert r["id"] == "list-1" and r["status"] == "ok", r
        # An op name is exact.
        r = c.rpc({"op": "Tools"})
        assert r["status"] == "error" and r["error"] == "bad_request", r
        assert "tools" in r["message"], r
        # Pipelined with calls, every answer carries its own id.
        c.send({"op": "tools", "id": 100})
        c.send({"op": "call", "id": 101, "run_id": "p", "tool": "echo", "args": {"a": 1}})
        c.send({"op": "tools", "id": 102})
        got = {}
        for _ in range(3):
            r = c.recv()
            got[r["id"]] = r
        assert set(got) == {100, 101, 102}, got
        assert got[100]["tools"] == got[102]["tools"] and got[101]["status"] == "ok", got


@test
def a_list_over_max_frame_is_an_error_not_a_cut():
    conf = base_config(limits={"max_frame": 4096})
    for i in range(3):
        conf["catalog"]["long%d" % i] = {"mode": "read", "exec": [tool("echo-args")],
                                         "description": "x" * 2000}
        conf["tools"]["allow"].append("long%d" % i)
    with Daemon(conf) as d:
        r = d.client().rpc({"op": "tools"})
        assert r["status"] == "error" and r["error"] == "internal", r
        assert "limits.max_frame" in r["message"], r
        assert "tools" not in r, r
        # The connection and the pair go on.
        assert d.client().call("echo", {"a": 1})["status"] == "ok"
    # Room for it: listed whole.
    conf["limits"]["max_frame"] = 16384
    with Daemon(conf) as d:
        ts = tools_of(d.client())
        assert sum(1 for t in ts if t["name"].startswith("long")) == 3, ts


if __name__ == "__main__":
    main()
