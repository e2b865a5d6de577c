"""toolgate-mcp driven by real MCP clients from npm: the official
TypeScript SDK's Client (tests/mcpclient/sdk-client.mjs) and the MCP
inspector's CLI, against the real daemon pair with real MCP servers
upstream: server-memory from npm and tests/tools/mcp-server.

What an MCP client sees: the gate's tools under names model APIs accept,
with the gate's annotations; reads and writes; a write held for approval
and approved by gatewayctl while the SDK's call waits (with progress); an
approval that outlasts --approval-wait-ms, resumed by the same call with
one side effect; a duplicate write; an unknown tool; a read the client
cancels, cancelled upstream; malformed JSON-RPC lines.  Then the
conformance suite's server scenarios, where they can reach toolgate-mcp.

Without node or the npm packages every test prints SKIP, except under
CI=true, where that is a failure.  A missing toolgate-mcp is a failure:
the build makes it."""
import json
import os
import queue
import select
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

BRIDGE = os.path.join(BUILD, "toolgate-mcp")
NPM_DIR = os.environ.get("TG_NPM_DIR", os.path.join(ROOT, ".cache", "npm"))
PKGS = os.path.join(NPM_DIR, "node_modules", "@modelcontextprotocol")
MEMORY_JS = os.path.join(PKGS, "server-memory", "dist", "index.js")
SDK_JS = os.path.join(PKGS, "sdk", "dist", "esm", "client", "index.js")
INSPECTOR_DIR = os.path.join(PKGS, "inspector-cli", "build")
CONFORMANCE_JS = os.path.join(PKGS, "conformance", "dist", "index.js")
SDK_CLIENT = os.path.join(ROOT, "tests", "mcpclient", "sdk-client.mjs")
HTTP_RELAY = os.path.join(ROOT, "tests", "mcpclient", "http-relay.mjs")
# A server's own start, and a call's answer: long under ASan's slower
# daemons on a busy box.
UP_S = 30
ANSWER_S = 30

# Gate name -> catalog entry.  The t.* tools are tests/tools/mcp-server's,
# whose own annotations say the opposite of the gate's now and then
# (record: not destructive; shout: a title of its own).
MCP_TOOLS = {
    "memory.graph": {"mode": "read", "mcp": {"server": "memory", "tool": "read_graph"}},
    "memory.search": {"mode": "read", "mcp": {"server": "memory", "tool": "search_nodes"}},
    "memory.create": {"mode": "write", "mcp": {"server": "memory", "tool": "create_entities"}},
    "memory.observe": {"mode": "write", "mcp": {"server": "memory", "tool": "add_observations"}},
    "t.echo": {"mode": "read", "mcp": {"server": "t", "tool": "echo"}},
    # echo's server calls it read-only; the catalog makes this one a write.
    "t.echo.w": {"mode": "write", "mcp": {"server": "t", "tool": "echo"}},
    "t.shout": {"mode": "read", "mcp": {"server": "t", "tool": "shout"}},
    "t.hang": {"mode": "read", "mcp": {"server": "t", "tool": "hang"}, "timeout_ms": 120000},
    "t.record": {"mode": "write", "mcp": {"server": "t", "tool": "record"}},
}
KB_SCHEMA = {"type": "object", "properties": {"topic": {"type": "string"}},
             "required": ["topic"]}
APPROVED = ["memory.observe", "t.record"]       # require_approval
READS = {"memory.graph", "memory.search", "t.echo", "t.shout", "t.hang", "kb.lookup",
         "echo", "env.dump", "fail", "sleep", "not.json", "big.output"}
WRITES = {"memory.create", "memory.observe", "t.record", "t.echo.w", "ticket.close", "nomode"}


def shown(name):
    """The name tools/list shows for a gate name (CONTRACT.md)."""
    return "".join(c if c.isalnum() and c.isascii() or c in "_-" else "_" for c in name)


def need_clients():
    """node and the npm packages, or SKIP (a failure under CI=true); the
    bridge itself, or a failure."""
    assert os.access(BRIDGE, os.X_OK), "%s is not built (make)" % BRIDGE
    return need_node((MEMORY_JS, SDK_JS, os.path.join(INSPECTOR_DIR, "cli.js"),
                      CONFORMANCE_JS))


class Upstream:
    """tests/tools/mcp-server's files: its log and its side effects."""

    def __init__(self, d):
        self.log = os.path.join(d.dir, "mcp-server.log")
        self.effects = os.path.join(d.dir, "effects")

    def _lines(self, path):
        try:
            with open(path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def events(self, kind):
        return [e for e in self._lines(self.log) if e.get("event") == kind]

    def received(self, method):
        return [e["msg"] for e in self.events("recv") if e["msg"].get("method") == method]

    def effect_lines(self):
        return self._lines(self.effects)


def bridge_daemon(name="bridgesdk", describe_all=False):
    """The daemon pair with server-memory (on d.memfile) and mcp-server (d.up)
    upstream, the base config's exec tools, one exec tool with a catalog
    description and input schema, and one catalogued but not allowed.
    describe_all: every exec tool gets a catalog description."""
    node = need_clients()
    d = Daemon(writes_config(), name=name)
    d.memfile = os.path.join(d.dir, "memory.jsonl")
    d.up = Upstream(d)
    servers = {
        "memory": {"command": [node, MEMORY_JS], "env": {"MEMORY_FILE_PATH": d.memfile}},
        "t": {"command": [tool("mcp-server"), "--log", d.up.log, "--effects", d.up.effects]},
    }
    tools = dict(MCP_TOOLS)
    tools["kb.lookup"] = {"mode": "read", "exec": [tool("echo-args")],
                          "description": "Look a topic up in the knowledge base",
                          "input_schema": KB_SCHEMA}
    tools["secret.tool"] = {"mode": "read", "exec": [tool("echo-args")]}
    d.conf = writes_config(tools, mcp_servers=servers,
                           writes={"require_approval": list(APPROVED)})
    d.conf["tools"]["allow"] = [t for t in d.conf["tools"]["allow"] if t != "secret.tool"]
    if describe_all:
        for name, entry in d.conf["catalog"].items():
            if "exec" in entry:
                entry.setdefault("description", "The %s tool" % name)
    d.conf.setdefault("paths", {})["credentials_dir"] = d.creds
    write_config(d.config_path, d.conf)
    return d


_runs = [0]


def wait_up(d):
    """Both servers answering through the gate (the executor says
    unavailable while one is still starting), so that tools/list has
    their descriptions and schemas."""
    c = d.client()
    for tool_name, args in (("memory.graph", {}), ("t.echo", {})):
        deadline = time.time() + UP_S
        while True:
            _runs[0] += 1
            r = c.call(tool_name, args, run_id="up-%d" % _runs[0])
            if r["status"] == "ok":
                break
            assert r["status"] == "error" and r.get("error") == "unavailable", r
            assert time.time() < deadline, ("%s not up" % tool_name, d.read_log()[-3000:])
            time.sleep(0.1)
    c.close()


def graph_file(d):
    try:
        with open(d.memfile) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def client_env():
    env = dict(os.environ, TG_NPM_DIR=NPM_DIR)
    if SAN:
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    return env


class Session:
    """One SDK client session: sdk-client.mjs in `session` mode, which
    starts toolgate-mcp -s the daemon's agent socket plus extra_args.
    Commands go to its stdin; what it prints is read by a thread."""

    def __init__(self, d, extra_args=(), scenario="session"):
        self.errpath = tempfile.mktemp(prefix="sdk-client-", suffix=".err", dir=d.dir)
        self.err = open(self.errpath, "wb")
        self.p = subprocess.Popen(
            ["node", SDK_CLIENT, scenario, BRIDGE, "-s", d.agent_sock] + list(extra_args),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
            env=client_env(), text=True, bufsize=1)
        self.q = queue.Queue()
        self.backlog = []
        self.tags = 0
        threading.Thread(target=self._read, daemon=True).start()
        self.init = self.expect(lambda e: e["event"] in ("initialized", "fatal"))
        assert self.init["event"] == "initialized", (self.init, self.stderr())

    def _read(self):
        for line in self.p.stdout:
            self.q.put(json.loads(line))
        self.q.put(None)

    def stderr(self):
        if not self.err.closed:
            self.err.flush()
        with open(self.errpath, errors="replace") as f:
            return f.read()[-4000:]

    def send(self, cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()

    def expect(self, pred, timeout=ANSWER_S, what="an event"):
        """The first event that pred accepts; others wait in the backlog."""
        for i, e in enumerate(self.backlog):
            if pred(e):
                return self.backlog.pop(i)
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            assert left > 0, ("timed out waiting for %s" % what, self.backlog, self.stderr())
            try:
                e = self.q.get(timeout=left)
            except queue.Empty:
                continue
            assert e is not None, ("the client ended waiting for %s" % what,
                                   self.backlog, self.stderr())
            if pred(e):
                return e
            self.backlog.append(e)

    def events(self, tag, kind):
        """Events of a call seen so far (and taken out of the backlog)."""
        out = [e for e in self.backlog if e.get("tag") == tag and e["event"] == kind]
        self.backlog = [e for e in self.backlog if e not in out]
        return out

    def list(self):
        self.send({"op": "list"})
        e = self.expect(lambda e: e["event"] in ("tools", "error"), what="tools")
        assert e["event"] == "tools", e
        return e["tools"]

    def start(self, name, args=None, **kw):
        """A tools/call in the background; returns its tag."""
        self.tags += 1
        tag = "c%d" % self.tags
        self.send(dict({"op": "call", "tag": tag, "name": name, "args": args or {}}, **kw))
        return tag

    def answer(self, tag, timeout=ANSWER_S):
        return self.expect(lambda e: e.get("tag") == tag and e["event"] in ("result", "error"),
                           timeout, "the answer to " + tag)

    def call(self, name, args=None, **kw):
        return self.answer(self.start(name, args, **kw))

    def ok(self, name, args=None, **kw):
        """A call's CallToolResult, which must not be isError."""
        e = self.call(name, args, **kw)
        assert e["event"] == "result", e
        assert e["result"].get("isError") is not True, e
        return e["result"]

    def tool_error(self, name, args=None, **kw):
        """A call answered isError: its text."""
        e = self.call(name, args, **kw)
        assert e["event"] == "result" and e["result"].get("isError") is True, e
        return text_of(e["result"])

    def close(self):
        if self.p.poll() is None:
            try:
                self.send({"op": "close"})
                self.p.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.err.close()
        err = self.stderr()
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            assert bad not in err, "sanitizer report from toolgate-mcp:\n" + err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        elif self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def text_of(result):
    return "\n".join(c.get("text", "") for c in result.get("content", [])
                     if c.get("type") == "text")


def only_approval(d, tool_name):
    """The one pending approval, which must be for tool_name."""
    items = wait_for(lambda: d.ctl_json("approvals"), timeout=ANSWER_S,
                     what="an approval of %s" % tool_name)
    assert len(items) == 1 and items[0]["tool"] == tool_name, items
    return items[0]


# -- tools/list -----------------------------------------------------------------

@test
def lists_the_gates_tools_with_the_gates_annotations():
    with bridge_daemon() as d:
        wait_up(d)
        upstream = {t["name"]: t for t in d.ctl_json("mcp", "tools", "memory")}
        with Session(d) as s:
            # The SDK asks for 2025-11-25, and the bridge takes it.
            assert s.init["protocolVersion"] == "2025-11-25", s.init
            assert "tools" in s.init["capabilities"], s.init
            tools = {t["name"]: t for t in s.list()}
            s.close()
        gate = READS | WRITES
        assert sorted(tools) == sorted(shown(n) for n in gate), sorted(tools)
        assert "secret_tool" not in tools and "memory_graph" in tools, sorted(tools)
        for name in gate:
            t = tools[shown(name)]
            assert t["title"] == name, t
            a = t["annotations"]
            assert a.get("idempotentHint") is True, t
            if name in READS:
                assert a.get("readOnlyHint") is True and a.get("destructiveHint") is not True, t
            else:
                assert a.get("destructiveHint") is True and a.get("readOnlyHint") is not True, t
            assert t["inputSchema"].get("type") == "object", t
        # Never an upstream's: record says it is not destructive, shout has
        # a title of its own, and echo's readOnlyHint is not copied onto
        # the catalog's write of it.
        assert tools["t_record"]["annotations"]["destructiveHint"] is True, tools["t_record"]
        assert tools["t_echo_w"]["annotations"].get("readOnlyHint") is not True, tools["t_echo_w"]
        assert tools["t_echo_w"]["title"] == "t.echo.w", tools["t_echo_w"]
        assert tools["t_shout"]["title"] == "t.shout", tools["t_shout"]
        assert "title" not in tools["t_shout"]["annotations"], tools["t_shout"]
        # Schemas and descriptions: an mcp tool's from its server, an exec
        # tool's from the catalog, {"type": "object"} when it has none.
        assert tools["memory_search"]["inputSchema"] == upstream["search_nodes"]["input_schema"], \
            (tools["memory_search"], upstream["search_nodes"])
        assert "query" in tools["memory_search"]["inputSchema"]["properties"], tools["memory_search"]
        assert tools["memory_search"]["description"] == upstream["search_nodes"]["description"], \
            tools["memory_search"]
        assert tools["kb_lookup"]["inputSchema"] == KB_SCHEMA, tools["kb_lookup"]
        assert tools["kb_lookup"]["description"] == "Look a topic up in the knowledge base", \
            tools["kb_lookup"]
        assert tools["echo"]["inputSchema"] == {"type": "object"}, tools["echo"]


@test
def raw_names_show_and_take_the_gate_names():
    with bridge_daemon() as d:
        wait_up(d)
        with Session(d, ["--raw-names"]) as s:
            tools = {t["name"]: t for t in s.list()}
            assert sorted(tools) == sorted(READS | WRITES), sorted(tools)
            assert tools["memory.graph"]["title"] == "memory.graph", tools["memory.graph"]
            r = s.ok("memory.graph")
            assert r["structuredContent"] == {"entities": [], "relations": []}, r
            s.close()


@test
def names_that_would_clash_or_run_long_stop_the_bridge_at_start():
    long_name = "x." + "y" * 63
    for names, named in ((["ticket.close", "ticket_close"], ["ticket.close", "ticket_close"]),
                         ([long_name], [long_name])):
        need_clients()
        conf = writes_config({n: {"mode": "read", "exec": [tool("echo-args")]} for n in names})
        with Daemon(conf, name="bridgeclash") as d:
            p = subprocess.run([BRIDGE, "-s", d.agent_sock], input=b"", capture_output=True,
                               timeout=ANSWER_S, env=client_env())
            err = p.stderr.decode(errors="replace")
            assert p.returncode != 0 and p.stdout == b"", (names, p.returncode, p.stdout, err)
            for n in named:
                assert n in err, (n, err)


# -- reads and writes -------------------------------------------------------------

@test
def reads_and_writes_through_the_sdk_in_the_bridges_run():
    with bridge_daemon() as d:
        wait_up(d)
        with Session(d, ["--run-id", "sdk-rw"]) as s:
            r = s.ok("memory_graph")
            assert r["structuredContent"] == {"entities": [], "relations": []}, r
            assert json.loads(text_of(r)) == {"entities": [], "relations": []}, r
            ada = {"name": "Ada", "entityType": "person", "observations": ["likes tea"]}
            r = s.ok("memory_create", {"entities": [ada]})
            assert r["structuredContent"]["entities"] == [ada], r
            assert graph_file(d) == [dict(type="entity", **ada)], graph_file(d)
            r = s.ok("memory_search", {"query": "tea"})
            assert [e["name"] for e in r["structuredContent"]["entities"]] == ["Ada"], r
            # An exec tool: a text copy of its result, and the object as
            # structuredContent.
            r = s.ok("echo", {"x": 1, "s": "caf\u00e9"})
            assert r["structuredContent"]["args"] == {"x": 1, "s": "caf\u00e9"}, r
            assert json.loads(text_of(r)) == r["structuredContent"], r
            # The upstream got the call with the gate's _meta: the bridge's run.
            r = s.ok("t_echo", {"q": "hi"})
            assert r["structuredContent"]["args"] == {"q": "hi"}, r
            assert r["structuredContent"]["meta"]["io.toolgate/run_id"] == "sdk-rw", r
            s.close()
        calls = [e for e in read_audit(d) if e.get("event") == "call"
                 and not e.get("run_id", "").startswith("up-")]
        assert sorted(e["tool"] for e in calls) == \
            ["echo", "memory.create", "memory.graph", "memory.search", "t.echo"], calls
        assert all(e.get("run_id") == "sdk-rw" for e in calls), calls


@test
def a_duplicate_write_is_stopped_and_another_session_replays_it():
    with bridge_daemon() as d:
        wait_up(d)
        bob = {"entities": [{"name": "Bob", "entityType": "person", "observations": []}]}
        with Session(d) as s:
            first = s.ok("memory_create", bob)
            text = s.tool_error("memory_create", bob)
            assert "duplicate_write" in text, text
            # Stopped: the run takes nothing more, reads included.
            text = s.tool_error("memory_graph")
            assert "duplicate_write" in text or "stopped" in text, text
            s.close()
        assert [e["name"] for e in graph_file(d)] == ["Bob"], graph_file(d)
        # Bob taken out by hand: sent again, create_entities would put him back.
        with open(d.memfile, "w") as f:
            f.write("")
        # A new bridge process is a new run: the same write is replayed.
        with Session(d) as s:
            again = s.ok("memory_create", bob)
            assert again["structuredContent"] == first["structuredContent"], (first, again)
            assert s.ok("memory_graph")["structuredContent"]["entities"] == [], graph_file(d)
            s.close()
        assert graph_file(d) == [], graph_file(d)
        replays = [e for e in read_audit(d) if e.get("event") == "call" and
                   e.get("tool") == "memory.create" and e.get("replayed") is True]
        assert len(replays) == 1, replays


# -- approvals --------------------------------------------------------------------

@test
def a_write_held_for_approval_is_approved_during_the_call():
    with bridge_daemon() as d:
        wait_up(d)
        with Session(d) as s:
            s.ok("memory_create", {"entities": [{"name": "Cy", "entityType": "person",
                                                 "observations": []}]})
            args = {"observations": [{"entityName": "Cy", "contents": ["plays go"]}]}
            tag = s.start("memory_observe", args, progress=True, timeout_ms=120000)
            a = only_approval(d, "memory.observe")
            assert a["args_hash"] == args_hash(args), a
            # The call waits, telling the client so, and nothing ran.
            s.expect(lambda e: e.get("tag") == tag and e["event"] == "progress",
                     what="a progress notification")
            assert not s.events(tag, "result") and not s.events(tag, "error")
            assert graph_file(d)[0]["observations"] == [], graph_file(d)
            rc, out, err = d.ctl("approve", a["approval_id"], "--note", "from the test")
            assert rc == 0, (rc, out, err)
            e = s.answer(tag)
            assert e["event"] == "result" and e["result"].get("isError") is not True, e
            assert e["result"]["structuredContent"]["results"] == \
                [{"entityName": "Cy", "addedObservations": ["plays go"]}], e
            progress = [p["progress"] for p in s.events(tag, "progress")]
            assert progress == sorted(set(progress)), progress   # it only grows
            assert graph_file(d)[0]["observations"] == ["plays go"], graph_file(d)
            # Without a progressToken the call waits all the same.
            tag = s.start("t_record", {"n": 7}, timeout_ms=120000)
            a = only_approval(d, "t.record")
            time.sleep(0.3)
            assert d.up.effect_lines() == [], d.up.effect_lines()
            rc, out, err = d.ctl("approve", a["approval_id"])
            assert rc == 0, (rc, out, err)
            e = s.answer(tag)
            assert e["event"] == "result" and e["result"].get("isError") is not True, e
            assert s.events(tag, "progress") == []
            s.close()
        effects = d.up.effect_lines()
        assert [x["args"] for x in effects] == [{"n": 7}], effects
        assert effects[0]["meta"]["io.toolgate/idempotency_key"] == \
            "acme:t.record:%s" % args_hash({"n": 7}), effects


@test
def an_approval_that_outlasts_the_wait_is_resumed_by_the_same_call():
    with bridge_daemon() as d:
        wait_up(d)
        args = {"n": 1, "what": "once"}
        with Session(d, ["--approval-wait-ms", "1500"]) as s:
            e = s.call("t_record", args, progress=True)
            assert e["event"] == "result" and e["result"].get("isError") is True, e
            assert e["ms"] >= 1400, e
            a = only_approval(d, "t.record")
            text = text_of(e["result"])
            assert a["approval_id"] in text and "again" in text.lower(), (a, text)
            assert d.up.effect_lines() == []
            # Called again before anyone decided: the same approval, still
            # waiting; nothing new is asked.
            text = s.tool_error("t_record", args)
            assert a["approval_id"] in text, (a, text)
            assert [x["approval_id"] for x in d.ctl_json("approvals")] == [a["approval_id"]]
            rc, out, err = d.ctl("approve", a["approval_id"])
            assert rc == 0, (rc, out, err)
            r = s.ok("t_record", args)
            assert r["structuredContent"] == {"recorded": args}, r
            assert [x["args"] for x in d.up.effect_lines()] == [args]
            # However the client retries, one side effect.
            for _ in range(2):
                e = s.call("t_record", args)
                assert e["event"] == "result", e
            s.close()
        assert [x["args"] for x in d.up.effect_lines()] == [args], d.up.effect_lines()
        assert d.ctl_json("approvals") == []


# -- refusals ---------------------------------------------------------------------

@test
def unknown_tools_are_invalid_params_and_refusals_are_tool_errors():
    with bridge_daemon() as d:
        wait_up(d)
        with Session(d) as s:
            for name in ("no_such_tool", "secret_tool", "secret.tool"):
                e = s.call(name, {})
                assert e["event"] == "error" and e["code"] == -32602, (name, e)
            # A tool's failure, with the reason, for the model to read.
            text = s.tool_error("fail", {})
            assert "tool_failed" in text, text
            # The kill switch: a write is refused, a read still runs.
            rc, out, err = d.ctl("writes", "disable")
            assert rc == 0, (rc, out, err)
            text = s.tool_error("ticket_close", {"id": 1})
            assert "writes_disabled" in text, text
            assert s.ok("echo", {"after": 1})["structuredContent"]["args"] == {"after": 1}
            s.send({"op": "ping"})
            s.expect(lambda e: e["event"] == "pong", what="pong")
            s.close()


# -- cancellation -----------------------------------------------------------------

@test
def a_cancelled_read_is_cancelled_upstream():
    with bridge_daemon() as d:
        wait_up(d)
        with Session(d) as s:
            tag = s.start("t_hang", {"i": 1})
            call = wait_for(lambda: [c for c in d.up.events("call") if c["name"] == "hang"],
                            timeout=ANSWER_S, what="the hang call upstream")[0]
            s.send({"op": "cancel", "tag": tag})
            e = s.answer(tag)
            assert e["event"] == "error" and "cancelled by the test" in e["message"], e
            got = wait_for(lambda: [m for m in d.up.received("notifications/cancelled")
                                    if m["params"]["requestId"] == call["id"]],
                           timeout=ANSWER_S, what="notifications/cancelled upstream")
            assert got[0]["params"].get("reason") != "timeout", got
            # The session goes on.
            assert s.ok("t_echo", {"after": "cancel"})["structuredContent"]["args"] == \
                {"after": "cancel"}
            s.close()
        # Audited as a call that did not finish.
        cancelled = wait_for(lambda: [e for e in read_audit(d) if e.get("event") == "call"
                                      and e.get("tool") == "t.hang"],
                             timeout=ANSWER_S, what="the cancelled read's audit record")
        assert [e.get("decision") for e in cancelled] == ["error"], cancelled


# -- raw lines ---------------------------------------------------------------------

class Raw:
    """toolgate-mcp on pipes, fed raw lines."""

    def __init__(self, d, extra_args=()):
        self.p = subprocess.Popen([BRIDGE, "-s", d.agent_sock] + list(extra_args),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=client_env())
        self.buf = b""

    def line(self, data):
        self.p.stdin.write(data if data.endswith(b"\n") else data + b"\n")
        self.p.stdin.flush()

    def rpc(self, obj):
        self.line(json.dumps(obj).encode())
        return self.read()

    def read(self, timeout=ANSWER_S):
        """The next message the bridge writes (one line of JSON)."""
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            assert left > 0 and self.p.poll() is None, \
                ("no answer from toolgate-mcp", self.p.poll(), self.buf)
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                assert chunk, ("toolgate-mcp closed stdout", self.p.stderr.read())
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def close(self):
        self.p.stdin.close()
        try:
            rc = self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("toolgate-mcp did not end at its stdin's end")
        err = self.p.stderr.read().decode(errors="replace")
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            assert bad not in err, "sanitizer report from toolgate-mcp:\n" + err
        return rc


def initialize(raw, version, mid=1):
    return raw.rpc({"jsonrpc": "2.0", "id": mid, "method": "initialize",
                    "params": {"protocolVersion": version, "capabilities": {},
                               "clientInfo": {"name": "raw-test", "version": "0"}}})


@test
def malformed_lines_get_jsonrpc_errors_and_the_bridge_serves_on():
    with bridge_daemon() as d:
        wait_up(d)
        raw = Raw(d)
        r = initialize(raw, "2025-11-25")
        assert r["id"] == 1 and r["result"]["protocolVersion"] == "2025-11-25", r
        raw.line(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
        for line, code, mid in (
                (b"this is not JSON", -32700, None),
                (b'{"jsonrpc":"2.0","id":5,"method":"ping"', -32700, None),
                (b'{"jsonrpc":"2.0","id":6}', -32600, 6),
                (b'{"jsonrpc":"1.0","id":7,"method":"ping"}', -32600, 7),
                (b'{"jsonrpc":"2.0","id":8,"method":42}', -32600, 8),
                # JSON, but no request object: JSON-RPC 2.0 says -32600.
                (b'"a string"', -32600, None),
                (b'[]', -32600, None),
                (b'{"jsonrpc":"2.0","id":9,"method":"no/such/method"}', -32601, 9),
                (b'{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"arguments":{}}}',
                 -32602, 10),
                (b'{"jsonrpc":"2.0","id":11,"method":"tools/call",'
                 b'"params":{"name":"nope","arguments":{}}}', -32602, 11),
                (b'\xff\xfe not utf-8', -32700, None)):
            raw.line(line)
            r = raw.read()
            assert r.get("jsonrpc") == "2.0" and "result" not in r, (line, r)
            assert r["error"]["code"] == code and r.get("id") == mid, (line, r)
        # A notification it does not know gets no answer (the next
        # message is the ping's), and it is still serving, on the same process.
        raw.line(b'{"jsonrpc":"2.0","method":"notifications/no-such-thing"}')
        r = raw.rpc({"jsonrpc": "2.0", "id": 20, "method": "ping"})
        assert r == {"jsonrpc": "2.0", "id": 20, "result": {}}, r
        r = raw.rpc({"jsonrpc": "2.0", "id": 21, "method": "tools/list"})
        assert "memory_graph" in [t["name"] for t in r["result"]["tools"]], r
        r = raw.rpc({"jsonrpc": "2.0", "id": "s", "method": "tools/call",
                     "params": {"name": "echo", "arguments": {"k": "v"}}})
        assert r["id"] == "s" and r["result"]["structuredContent"]["args"] == {"k": "v"}, r
        assert raw.close() == 0


@test
def older_protocol_versions_when_asked():
    with bridge_daemon() as d:
        wait_up(d)
        for asked, got in (("2025-06-18", "2025-06-18"), ("2025-03-26", "2025-03-26"),
                           ("1999-01-01", "2025-11-25")):
            raw = Raw(d)
            r = initialize(raw, asked)
            assert r["result"]["protocolVersion"] == got, (asked, r)
            assert r["result"]["serverInfo"]["name"], r
            raw.line(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
            r = raw.rpc({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
            assert len(r["result"]["tools"]) == len(READS | WRITES), (asked, r)
            assert raw.close() == 0


# -- the MCP inspector's CLI --------------------------------------------------------

def inspector(d, config, *args):
    """The inspector's CLI (its bin, --cli) with an mcpServers config that
    starts toolgate-mcp; its JSON output.  It finds its own package.json
    relative to the working directory, hence cwd."""
    env = dict(client_env())
    p = subprocess.run(["node", os.path.join(INSPECTOR_DIR, "cli.js"), "--cli",
                        "--config", config, "--server", "toolgate"] + list(args),
                       cwd=INSPECTOR_DIR, capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
        assert bad not in p.stderr, "sanitizer report from toolgate-mcp:\n" + p.stderr
    return json.loads(p.stdout)


@test
def the_inspector_cli_lists_and_calls():
    with bridge_daemon() as d:
        wait_up(d)
        with open(d.memfile, "w") as f:
            f.write(json.dumps({"type": "entity", "name": "Ada", "entityType": "person",
                                "observations": ["likes tea"]}) + "\n")
        # The usual MCP client configuration, as an agent's would start it.
        config = os.path.join(d.dir, "mcp.json")
        server = {"command": BRIDGE, "args": ["-s", d.agent_sock, "--run-id", "inspector"]}
        if SAN:
            server["env"] = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0"}
        with open(config, "w") as f:
            json.dump({"mcpServers": {"toolgate": server}}, f)
        out = inspector(d, config, "--method", "tools/list")
        tools = {t["name"]: t for t in out["tools"]}
        assert sorted(tools) == sorted(shown(n) for n in READS | WRITES), sorted(tools)
        assert tools["memory_search"]["title"] == "memory.search", tools["memory_search"]
        out = inspector(d, config, "--method", "tools/call", "--tool-name", "memory_search",
                        "--tool-arg", "query=tea")
        assert out.get("isError") is not True, out
        assert [e["name"] for e in out["structuredContent"]["entities"]] == ["Ada"], out
        out = inspector(d, config, "--method", "tools/call", "--tool-name", "t_echo",
                        "--tool-arg", "n=3", "s=x")
        assert out["structuredContent"]["args"] == {"n": 3, "s": "x"}, out
        assert out["structuredContent"]["meta"]["io.toolgate/run_id"] == "inspector", out


# -- the MCP conformance suite --------------------------------------------------------

# What the contract asks of toolgate-mcp among the suite's server
# scenarios; the others test what it does not offer (resources, prompts,
# logging, completion, sampling) or call tools of the suite's own test
# server (test_simple_text, ...) that no gate lists.
CONFORMANCE_REQUIRED = ("server-initialize", "ping", "tools-list")


@test
def conformance_server_scenarios_through_an_http_relay():
    """The suite reaches servers only by URL (Streamable HTTP): each of its
    sessions gets a toolgate-mcp of its own behind tests/mcpclient's relay,
    which passes messages through unchanged.  Prints which scenarios
    pass; fails when the suite cannot run or a scenario the contract
    requires fails.  The suite wants a description on every tool (MCP
    makes it optional), so every tool here has one."""
    with bridge_daemon(describe_all=True) as d:
        wait_up(d)
        relay_err = os.path.join(d.dir, "relay.err")
        with open(relay_err, "wb") as err:
            relay = subprocess.Popen(["node", HTTP_RELAY, BRIDGE, "-s", d.agent_sock],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=err, env=client_env(), text=True)
        try:
            url = json.loads(relay.stdout.readline())["url"]
            out = os.path.join(d.dir, "conformance")
            p = subprocess.run(["node", CONFORMANCE_JS, "server", "--url", url, "-o", out],
                               cwd=d.dir, capture_output=True, text=True, timeout=400,
                               env=client_env())
        finally:
            relay.stdin.close()
            try:
                relay.wait(10)
            except subprocess.TimeoutExpired:
                relay.kill()
                relay.wait()
        results = {}
        for name in sorted(os.listdir(out)) if os.path.isdir(out) else []:
            with open(os.path.join(out, name, "checks.json")) as f:
                checks = json.load(f)
            scenario = re.sub(r"^server-|-\d{4}-\d\d-\d\dT.*$", "", name)
            bad = [c for c in checks if c.get("status") == "FAILURE"]
            results[scenario] = (len(checks) - len(bad), bad)
        with open(relay_err, errors="replace") as f:
            err = f.read()
        assert len(results) >= 10, ("the conformance suite did not run", p.returncode,
                                    p.stdout[-3000:], p.stderr[-3000:], err[-3000:])
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            assert bad not in err, "sanitizer report from toolgate-mcp:\n" + err
        for scenario, (good, bad) in sorted(results.items()):
            print("conformance: %-32s %s" % (
                scenario, "pass" if not bad else "fail: " + "; ".join(
                    "%s: %s" % (c["id"], (c.get("errorMessage") or "")[:120]) for c in bad)),
                flush=True)
        print("conformance: %d of %d server scenarios pass" %
              (sum(1 for g, b in results.values() if not b), len(results)), flush=True)
        for scenario in CONFORMANCE_REQUIRED:
            assert scenario in results and not results[scenario][1], (scenario, results.get(scenario))


if __name__ == "__main__":
    main()
