"""toolgate-mcp (issue 11), driven over its pipes with raw JSON-RPC lines
against the real daemon pair: initialize and the protocol versions, ping,
tools/list (shown names, titles, the gate's annotations, schemas), reads
and writes of exec and mcp tools, approvals decided during the wait and
after it (one side effect however the client retries), a duplicate
write, an unknown tool, a cancelled read (cancelled at the tool),
malformed lines, names that cannot be shown, --raw-names, calls in
flight side by side and past the bridge's cap, gatewayd's refusal at
accept, a gatewayd restart, and the end of stdin."""
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

BRIDGE = os.path.join(BUILD, "toolgate-mcp")

TICKET_SCHEMA = {"type": "object", "properties": {"ticket_id": {"type": "string"}},
                 "required": ["ticket_id"]}


class Files:
    """Side files: the MCP server's log and effects, the record tools'."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bridge-")
        os.chmod(self.dir, 0o755)
        self.log = os.path.join(self.dir, "server.log")
        self.mcp_effects = os.path.join(self.dir, "mcp-effects")
        self.effects = os.path.join(self.dir, "effects")
        self.free = os.path.join(self.dir, "free-effects")

    def lines(self, path):
        try:
            with open(path) as f:
                return [l for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def received(self, method):
        out = []
        for l in self.lines(self.log):
            e = json.loads(l)
            if e.get("event") == "recv" and e["msg"].get("method") == method:
                out.append(e["msg"])
        return out


def bridge_conf(f, extra=None):
    """Approvals on for "rec"; "rec.free" a write without; a described
    exec write; a hold read; mcp tools (read, write, a read that hangs)."""
    conf = approvals_config(f.effects, require=["rec"])
    cat = dict(conf["catalog"])
    cat["ticket.close"] = dict(cat["ticket.close"], description="Close a ticket",
                               input_schema=TICKET_SCHEMA)
    cat["rec.free"] = {"mode": "write", "exec": [tool("record"), f.free]}
    cat["hold"] = {"mode": "read", "exec": [tool("hold")], "timeout_ms": 60000}
    cat["nap"] = {"mode": "read", "exec": [tool("nap")], "timeout_ms": 20000}
    for name, (mt, mode, more) in {
            "m.echo": ("echo", "read", {}),
            "m.rec": ("record", "write", {}),
            "m.hang": ("hang", "read", {"timeout_ms": 60000})}.items():
        cat[name] = dict({"mode": mode, "mcp": {"server": "t", "tool": mt}}, **more)
    cat.update(extra or {})
    conf["catalog"] = cat
    conf["tools"] = dict(conf["tools"], allow=sorted(cat))
    conf["mcp_servers"] = {"t": {
        "command": [tool("mcp-server"), "--log", f.log, "--effects", f.mcp_effects],
        "init_timeout_ms": 2000}}
    return conf


def mcp_ready(d, timeout=15):
    n = [0]

    def ready():
        n[0] += 1
        r = d.client().call("m.echo", {"ready": n[0]}, run_id="ready-%d" % n[0])
        return r["status"] == "ok"
    wait_for(ready, timeout=timeout, what="the MCP server")


class Bridge:
    """toolgate-mcp on pipes: raw lines in, JSON lines out."""

    def __init__(self, d, *args, sock=None):
        self.errpath = os.path.join(d.dir if d else tempfile.mkdtemp(),
                                    "bridge-%d.err" % time.monotonic_ns())
        self.err = open(self.errpath, "wb")
        self.p = subprocess.Popen([BRIDGE, "-s", sock or d.agent_sock, "-v"] + list(args),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err)
        self.buf = b""
        self.pending = []       # messages read and not yet taken
        self.notes = []         # notifications seen
        self.next_id = 1

    def stderr(self):
        with open(self.errpath, errors="replace") as f:
            return f.read()

    def send_raw(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def _read_one(self, timeout):
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                return None
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if not r:
                return None
            chunk = os.read(self.p.stdout.fileno(), 1 << 20)
            if not chunk:
                raise EOFError("toolgate-mcp closed stdout:\n" + self.stderr())
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def recv(self, timeout=20):
        if self.pending:
            return self.pending.pop(0)
        m = self._read_one(timeout)
        if m is None:
            raise AssertionError("no message from toolgate-mcp within %ss:\n%s"
                                 % (timeout, self.stderr()[-3000:]))
        return m

    def response(self, rid, timeout=20):
        """The response to rid; notifications go to self.notes, other
        responses wait in self.pending."""
        deadline = time.time() + timeout
        for i, m in enumerate(self.pending):
            if "method" not in m and m.get("id") == rid:
                return self.pending.pop(i)
        while True:
            m = self._read_one(max(0.01, deadline - time.time()))
            if m is None:
                raise AssertionError("no response to %r within %ss:\n%s"
                                     % (rid, timeout, self.stderr()[-3000:]))
            assert m.get("jsonrpc") == "2.0", m
            if "method" in m:
                self.notes.append(m)
            elif m.get("id") == rid:
                return m
            else:
                self.pending.append(m)

    def request(self, method, params=None, rid=None, timeout=20):
        if rid is None:
            rid = self.next_id
            self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return self.response(rid, timeout)

    def initialize(self, version="2025-11-25"):
        r = self.request("initialize", {"protocolVersion": version, "capabilities": {},
                                        "clientInfo": {"name": "test", "version": "0"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return r

    def call(self, name, args, timeout=30, **params):
        r = self.request("tools/call", dict({"name": name, "arguments": args}, **params),
                         timeout=timeout)
        assert "result" in r, r
        return r["result"]

    def close(self, timeout=20):
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError("toolgate-mcp did not exit at the end of stdin")
        self.err.close()
        log = self.stderr()
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            assert bad not in log, log
        return self.p.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            assert self.close() == 0, self.stderr()
        else:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
            self.err.close()


def text_of(res):
    return " ".join(c["text"] for c in res["content"] if c.get("type") == "text")


def pending_approvals(d):
    return d.ctl_json("approvals")


@test
def initialize_versions_and_ping():
    f = Files()
    with Daemon(bridge_conf(f)) as d, Bridge(d) as b:
        r = b.initialize()["result"]
        assert r["protocolVersion"] == "2025-11-25", r
        assert r["capabilities"]["tools"] == {"listChanged": False}, r
        assert r["serverInfo"]["name"] == "toolgate-mcp", r
        for asked, got in (("2025-06-18", "2025-06-18"), ("2025-03-26", "2025-03-26"),
                           ("2024-11-05", "2025-11-25"), ("1999-01-01", "2025-11-25")):
            r = b.request("initialize", {"protocolVersion": asked, "capabilities": {},
                                         "clientInfo": {"name": "t", "version": "0"}})
            assert r["result"]["protocolVersion"] == got, (asked, r)
        r = b.request("initialize", {"capabilities": {}})
        assert r["error"]["code"] == -32602, r
        r = b.request("ping")
        assert r == {"jsonrpc": "2.0", "id": r["id"], "result": {}}, r
        r = b.request("ping", rid="a string id")
        assert r["id"] == "a string id" and r["result"] == {}, r


@test
def tools_list_names_titles_annotations_schemas():
    f = Files()
    with Daemon(bridge_conf(f)) as d, Bridge(d) as b:
        mcp_ready(d)
        b.initialize()
        tools = b.request("tools/list")["result"]["tools"]
        by = {t["title"]: t for t in tools}
        gate = [t["name"] for t in d.client().rpc({"op": "tools"})["tools"]]
        # Exactly the gate's list, in its order, each shown name mapped.
        assert [t["title"] for t in tools] == gate, (tools, gate)
        for t in tools:
            assert t["name"] == "".join(c if c.isalnum() or c in "_-" else "_"
                                        for c in t["title"]), t
            assert 1 <= len(t["name"]) <= 64, t
        assert by["ticket.close"]["name"] == "ticket_close", by["ticket.close"]
        assert by["m.echo"]["name"] == "m_echo"
        # The gate's annotations: a read, a write, a write without a mode.
        assert by["echo"]["annotations"] == {"readOnlyHint": True, "idempotentHint": True}
        w = {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": True}
        assert by["ticket.close"]["annotations"] == w, by["ticket.close"]
        assert by["nomode"]["annotations"] == w, by["nomode"]
        # Never the upstream's: its record says destructiveHint false.
        assert by["m.rec"]["annotations"] == w, by["m.rec"]
        assert by["m.echo"]["annotations"] == {"readOnlyHint": True, "idempotentHint": True}
        # Schemas and descriptions: the catalog's, the server's, the default.
        assert by["ticket.close"]["inputSchema"] == TICKET_SCHEMA, by["ticket.close"]
        assert by["ticket.close"]["description"] == "Close a ticket"
        assert by["m.echo"]["description"] == "Echo the arguments", by["m.echo"]
        assert by["m.echo"]["inputSchema"] == {"type": "object"}
        assert by["echo"]["inputSchema"] == {"type": "object"}
        assert "description" not in by["echo"], by["echo"]
        # A cursor we never gave out.
        r = b.request("tools/list", {"cursor": "x"})
        assert r["error"]["code"] == -32602, r


@test
def reads_and_writes():
    f = Files()
    with Daemon(bridge_conf(f)) as d, Bridge(d, "--run-id", "bridge-rw") as b:
        mcp_ready(d)
        b.initialize()
        args = {"q": "hello", "n": [1, 2.5], "u": "\u00fc"}
        res = b.call("echo", args)
        assert res.get("isError") is not True, res
        assert json.loads(text_of(res))["args"] == args, res
        assert res["structuredContent"]["args"] == args, res
        # A result that is not an object: text only.
        res = b.call("nap", {"ms": 1})
        assert res["structuredContent"] == {"slept_ms": 1}, res
        # An mcp tool: the CallToolResult as the server gave it (what the
        # gate keeps of it), run in this process's run.
        res = b.call("m_echo", args)
        assert set(res) == {"content", "structuredContent"}, res
        assert res["structuredContent"]["args"] == args, res
        assert res["structuredContent"]["meta"]["io.toolgate/run_id"] == "bridge-rw", res
        # Writes: exec and mcp, each ran once.
        res = b.call("rec_free", {"ticket_id": "T-1"})
        assert res.get("isError") is not True, res
        assert res["structuredContent"] == {"recorded": True}, res
        assert len(f.lines(f.free)) == 1
        res = b.call("m_rec", {"k": 1})
        assert res.get("isError") is not True, res
        assert len(f.lines(f.mcp_effects)) == 1
        # A failing tool: isError with the reason, and the bridge goes on.
        res = b.call("fail", {})
        assert res["isError"] is True and "tool_failed" in text_of(res), res
        assert res["_meta"]["io.toolgate/error"] == "tool_failed", res
        audit = [a for a in read_audit(d) if a.get("run_id") == "bridge-rw"]
        assert {a["tool"] for a in audit} >= {"echo", "m.echo", "rec.free", "m.rec"}, audit


@test
def approval_decided_during_the_wait():
    f = Files()
    with Daemon(bridge_conf(f)) as d, Bridge(d) as b:
        b.initialize()
        done = {}

        def operator():
            items = wait_for(lambda: pending_approvals(d), timeout=15, what="the approval")
            done["item"] = items[0]
            time.sleep(1.5)     # a progress notification or more first
            done["ctl"] = d.ctl("approve", items[0]["approval_id"])
        t = threading.Thread(target=operator)
        t.start()
        res = b.call("rec", {"ticket_id": "T-9"}, _meta={"progressToken": "tok-1"})
        t.join()
        assert done["ctl"][0] == 0, done
        assert res.get("isError") is not True, res
        assert res["structuredContent"] == {"recorded": True}, res
        assert len(f.lines(f.effects)) == 1
        prog = [n for n in b.notes if n["method"] == "notifications/progress"]
        assert prog and all(n["params"]["progressToken"] == "tok-1" for n in prog), b.notes
        ps = [n["params"]["progress"] for n in prog]
        assert ps == sorted(set(ps)), ps
        assert done["item"]["approval_id"] in prog[0]["params"]["message"], prog
        assert done["item"]["tool"] == "rec", done
        # No progress token, no progress.
        b.notes.clear()
        threading.Thread(target=lambda: d.ctl(
            "approve", wait_for(lambda: pending_approvals(d), timeout=15,
                                what="the approval")[0]["approval_id"])).start()
        res = b.call("rec", {"ticket_id": "T-10"})
        assert res.get("isError") is not True, res
        assert not [n for n in b.notes if n["method"] == "notifications/progress"], b.notes


@test
def approval_outlasting_the_wait_resumed_by_the_retry_once():
    f = Files()
    with Daemon(bridge_conf(f)) as d, Bridge(d, "--approval-wait-ms", "300") as b:
        b.initialize()
        args = {"ticket_id": "T-2", "n": 1}
        res = b.call("rec", args)
        assert res["isError"] is True, res
        items = pending_approvals(d)
        assert len(items) == 1, items
        aid = items[0]["approval_id"]
        txt = text_of(res)
        assert aid in txt and "same arguments" in txt, txt
        assert res["_meta"]["io.toolgate/approval_id"] == aid, res
        assert f.lines(f.effects) == []
        # Asked again, still undecided: the same approval, no new one.
        res = b.call("rec", dict(reversed(list(args.items()))))
        assert res["isError"] is True and aid in text_of(res), res
        assert [i["approval_id"] for i in pending_approvals(d)] == [aid]
        assert d.ctl("approve", aid)[0] == 0
        assert f.lines(f.effects) == []     # approving runs nothing by itself
        res = b.call("rec", args)
        assert res.get("isError") is not True, res
        assert res["structuredContent"] == {"recorded": True}, res
        assert len(f.lines(f.effects)) == 1
        # The client retries once more: the stored result, no second run.
        res = b.call("rec", args)
        assert res.get("isError") is not True, res
        assert len(f.lines(f.effects)) == 1
        approvals = [a for a in read_audit(d) if a.get("event") == "approval"]
        assert len({a.get("approval_id", a.get("args_hash")) for a in approvals}) <= 1, approvals
        # A denied approval: isError with the reason and the note.  The
        # bridge forgets it: the next try is a new call, which the gate
        # answers as it sees fit (here: the write was asked for in this
        # run already, so the run stops, duplicate_write); nothing runs.
        res = b.call("rec", {"ticket_id": "T-3"})
        aid2 = res["_meta"]["io.toolgate/approval_id"]
        assert d.ctl("deny", aid2, "--note", "not today")[0] == 0
        res = b.call("rec", {"ticket_id": "T-3"})
        assert res["isError"] is True and "approval_denied" in text_of(res), res
        assert "not today" in text_of(res), res
        res = b.call("rec", {"ticket_id": "T-3"})
        assert res["isError"] is True, res
        assert res["_meta"].get("io.toolgate/approval_id") != aid2, res
        assert len(f.lines(f.effects)) == 1


@test
def duplicate_write_and_unknown_tool():
    f = Files()
    with Daemon(bridge_conf(f)) as d, Bridge(d) as b:
        b.initialize()
        r = b.request("tools/call", {"name": "no_such_tool", "arguments": {}})
        assert r["error"]["code"] == -32602, r
        # The gate's name is not the shown one.
        r = b.request("tools/call", {"name": "ticket.close", "arguments": {}})
        assert r["error"]["code"] == -32602, r
        r = b.request("tools/call", {"arguments": {}})
        assert r["error"]["code"] == -32602, r
        r = b.request("tools/call", {"name": "echo", "arguments": [1]})
        assert r["error"]["code"] == -32602, r
        res = b.call("rec_free", {"ticket_id": "T-4"})
        assert res.get("isError") is not True, res
        res = b.call("rec_free", {"ticket_id": "T-4"})
        assert res["isError"] is True and "duplicate_write" in text_of(res), res
        assert res["_meta"]["io.toolgate/status"] == "stopped", res
        assert len(f.lines(f.free)) == 1


@test
def cancelled_read_is_cancelled_at_the_tool():
    f = Files()
    with Daemon(bridge_conf(f)) as d, Bridge(d) as b:
        mcp_ready(d)
        b.initialize()
        mark = os.path.join(f.dir, "mark")
        release = os.path.join(f.dir, "release")
        b.send({"jsonrpc": "2.0", "id": 77, "method": "tools/call",
                "params": {"name": "hold", "arguments": {"mark": mark, "release": release}}})
        pid = int(wait_for(lambda: os.path.exists(mark) and open(mark).read(),
                           timeout=15, what="the tool to start"))
        assert pid_alive(pid)
        b.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": 77, "reason": "the user changed their mind"}})
        wait_for(lambda: not pid_alive(pid), timeout=10, what="the tool to be killed")
        # An mcp read: the server is told (notifications/cancelled).
        b.send({"jsonrpc": "2.0", "id": "h", "method": "tools/call",
                "params": {"name": "m_hang", "arguments": {"x": 1}}})
        wait_for(lambda: [m for m in f.received("tools/call")
                          if m["params"]["name"] == "hang"], timeout=10,
                 what="the hang call to reach the server")
        b.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": "h"}})
        wait_for(lambda: f.received("notifications/cancelled"), timeout=10,
                 what="the server to hear of the cancellation")
        # Neither cancelled request is answered; the bridge serves on.
        r = b.request("ping")
        assert "result" in r, r
        time.sleep(0.3)
        r = b.request("ping")
        assert not [m for m in b.pending if m.get("id") in (77, "h")], b.pending
        audit = [a for a in read_audit(d) if a.get("tool") == "hold"]
        assert any("cancelled" in (a.get("note") or "") for a in audit), audit
        # Cancelling what is not in flight changes nothing.
        b.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": 12345}})
        assert "result" in b.request("ping")


@test
def cancelled_writes_are_not_cancelled():
    f = Files()
    with Daemon(bridge_conf(f)) as d, Bridge(d) as b:
        b.initialize()
        slow = f.effects + ".slow"
        # A running write: it runs to its end, its answer is dropped.
        b.send({"jsonrpc": "2.0", "id": 21, "method": "tools/call",
                "params": {"name": "rec_slow", "arguments": {"k": 1}}})
        time.sleep(0.1)
        b.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": 21}})
        wait_for(lambda: len(f.lines(slow)) == 1, timeout=10, what="the write to run")
        time.sleep(0.3)
        assert "result" in b.request("ping")
        assert not [m for m in b.pending if m.get("id") == 21], b.pending
        # A write waiting for its approval stops waiting; nothing ran, and
        # the retry waits for the same approval.
        b.send({"jsonrpc": "2.0", "id": 22, "method": "tools/call",
                "params": {"name": "rec", "arguments": {"k": 2}}})
        aid = wait_for(lambda: pending_approvals(d), timeout=10,
                       what="the approval")[0]["approval_id"]
        b.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": 22}})
        assert "result" in b.request("ping")
        threading.Timer(0.5, lambda: d.ctl("approve", aid)).start()
        res = b.call("rec", {"k": 2})
        assert res.get("isError") is not True, res
        assert len(f.lines(f.effects)) == 1
        assert not [m for m in b.pending if m.get("id") == 22], b.pending


@test
def malformed_lines_get_errors_and_the_bridge_serves_on():
    f = Files()
    with Daemon(bridge_conf(f)) as d, Bridge(d) as b:
        b.initialize()

        def err_of(raw):
            b.send_raw(raw)
            m = b.recv()
            assert "error" in m, (raw[:80], m)
            return m
        m = err_of(b"this is not json\n")
        assert m["error"]["code"] == -32700 and m["id"] is None, m
        m = err_of(b'{"jsonrpc": "2.0", "id": 5, "method": \n')
        assert m["error"]["code"] == -32700, m
        m = err_of(b'{"jsonrpc": "2.0", "id": 5}\n')
        assert m["error"]["code"] == -32600 and m["id"] == 5, m
        m = err_of(b'{"jsonrpc": "1.0", "id": "x", "method": "ping"}\n')
        assert m["error"]["code"] == -32600 and m["id"] == "x", m
        m = err_of(b'{"jsonrpc": "2.0", "id": null, "method": "ping"}\n')
        assert m["error"]["code"] == -32600 and m["id"] is None, m
        m = err_of(b'{"jsonrpc": "2.0", "id": 1.5, "method": "ping"}\n')
        assert m["error"]["code"] == -32600 and m["id"] is None, m
        m = err_of(b'{"jsonrpc": "2.0", "id": 6, "method": 7}\n')
        assert m["error"]["code"] == -32600 and m["id"] == 6, m
        m = err_of(b'"a string"\n')
        assert m["error"]["code"] == -32600, m
        m = err_of(b'{"jsonrpc": "2.0", "id": 1, "id": 2, "method": "ping"}\n')
        assert m["error"]["code"] in (-32700, -32600), m
        # A batch: one Invalid Request, nothing in it run.
        m = err_of(json.dumps([{"jsonrpc": "2.0", "id": 8, "method": "ping"},
                               {"jsonrpc": "2.0", "id": 9, "method": "ping"}]).encode() + b"\n")
        assert m["error"]["code"] == -32600 and m["id"] is None, m
        assert "batch" in m["error"]["message"], m
        m = err_of(b'{"jsonrpc": "2.0", "id": 10, "method": "resources/list"}\n')
        assert m["error"]["code"] == -32601 and m["id"] == 10, m
        m = err_of(b'{"jsonrpc": "2.0", "id": 11, "method": "tools/list", "params": [1]}\n')
        assert m["error"]["code"] == -32602 and m["id"] == 11, m
        # Too deep to be a request of ours.
        m = err_of(b'{"jsonrpc": "2.0", "id": 12, "method": "ping", "params": {"a":'
                   + b'[' * 100 + b']' * 100 + b'}}\n')
        assert m["error"]["code"] == -32600, m
        # Blank lines, a client's response and unknown notifications:
        # no answer at all.
        b.send_raw(b"\n  \r\n")
        b.send({"jsonrpc": "2.0", "id": 99, "result": {}})
        b.send({"jsonrpc": "2.0", "method": "notifications/whatever"})
        # An over-long line (5 MiB): one error, skipped in pieces.
        big = b'{"jsonrpc": "2.0", "id": 13, "method": "ping", "params": {"x": "' + \
            b"a" * (5 << 20) + b'"}}\n'
        for i in range(0, len(big), 1 << 20):
            b.send_raw(big[i:i + (1 << 20)])
        m = b.recv()
        assert m["error"]["code"] == -32600 and m["id"] is None, m
        assert "longer than" in m["error"]["message"], m
        r = b.request("ping")
        assert r["result"] == {}, r
        assert b.pending == [], b.pending
        # Its memory went with it.
        rss = int(proc_status(b.p.pid)["VmRSS"].split()[0])
        assert rss < 64 * 1024, rss
        # A call still works.
        assert b.call("echo", {"after": "junk"})["structuredContent"]["args"] == {"after": "junk"}


@test
def names_that_cannot_be_shown_refuse_the_start():
    f = Files()
    conf = bridge_conf(f, extra={"a.b": {"mode": "read", "exec": [tool("echo-args")]},
                                 "a_b": {"mode": "read", "exec": [tool("echo-args")]}})
    with Daemon(conf) as d:
        b = Bridge(d)
        rc = b.p.wait(15)
        err = b.stderr()
        assert rc != 0, rc
        assert "a.b" in err and "a_b" in err, err
        b.err.close()
        # --raw-names shows both as they are: no collision.
        with Bridge(d, "--raw-names") as b:
            b.initialize()
            names = [t["name"] for t in b.request("tools/list")["result"]["tools"]]
            assert "a.b" in names and "a_b" in names and "ticket.close" in names, names
            res = b.call("ticket.close", {"ticket_id": "T-raw"})
            assert res.get("isError") is not True, res
            r = b.request("tools/call", {"name": "ticket_close", "arguments": {}})
            assert r["error"]["code"] == -32602, r
    long_name = "x" * 65
    conf = bridge_conf(f, extra={long_name: {"mode": "read", "exec": [tool("echo-args")]}})
    with Daemon(conf) as d:
        b = Bridge(d)
        rc = b.p.wait(15)
        assert rc != 0 and long_name in b.stderr(), (rc, b.stderr())
        b.err.close()


@test
def calls_in_flight_side_by_side():
    f = Files()
    with Daemon(bridge_conf(f)) as d, Bridge(d) as b:
        b.initialize()
        ids = []
        for i, ms in enumerate((3000, 2400, 1800, 1200, 600, 1)):
            rid = "n%d" % i
            ids.append(rid)
            b.send({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                    "params": {"name": "nap", "arguments": {"ms": ms, "i": i}}})
        order = []
        for _ in ids:
            m = b.recv(timeout=60)
            assert m.get("result", {}).get("isError") is not True, m
            order.append(m["id"])
        # The last asked, the shortest, came back before the first: the
        # calls ran side by side and were answered as they ended.
        assert sorted(order) == sorted(ids), order
        assert order.index("n5") < order.index("n0"), order


@test
def calls_past_the_cap_wait_their_turn():
    # 64 calls hold a connection at once; the rest wait in order, and
    # none is lost.  Descriptors stay within the cap.
    f = Files()
    conf = bridge_conf(f)
    conf["budgets"] = dict(conf.get("budgets", {}), max_steps_per_run=0)
    with Daemon(conf) as d, Bridge(d) as b:
        b.initialize()
        n = 68
        for i in range(n):
            b.send({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                    "params": {"name": "nap", "arguments": {"ms": 200, "i": i}}})
        fds = []

        def count():
            fds.append(len(os.listdir("/proc/%d/fd" % b.p.pid)))
            return len(fds) > 20
        wait_for(count, timeout=10, what="samples")
        got = set()
        for _ in range(n):
            m = b.recv(timeout=60)
            assert m["result"].get("isError") is not True, m
            got.add(m["id"])
        assert got == set(range(n)), got
        assert max(fds) <= 64 + 12, max(fds)


@test
def the_gates_refusal_at_accept_is_an_error_result():
    f = Files()
    conf = bridge_conf(f)
    conf["limits"] = dict(conf.get("limits", {}), max_connections_per_uid=2)
    with Daemon(conf) as d, Bridge(d) as b:
        b.initialize()
        marks = []
        for i in range(3):
            mark = os.path.join(f.dir, "mark%d" % i)
            marks.append(mark)
            b.send({"jsonrpc": "2.0", "id": "h%d" % i, "method": "tools/call",
                    "params": {"name": "hold", "arguments": {
                        "mark": mark, "release": os.path.join(f.dir, "release")}}})
            if i < 2:
                wait_for(lambda: os.path.exists(mark), timeout=10, what="a hold")
        m = b.response("h2")
        res = m["result"]
        assert res["isError"] is True, res
        assert "max_connections_per_uid" in text_of(res), res
        open(os.path.join(f.dir, "release"), "w").close()
        for rid in ("h0", "h1"):
            assert b.response(rid)["result"]["structuredContent"] == {"held": True}


@test
def gateway_restart_fails_calls_in_flight_then_reconnects():
    f = Files()
    d = Daemon(bridge_conf(f))
    try:
        d.start()
        with Bridge(d) as b:
            b.initialize()
            mark = os.path.join(f.dir, "mark")
            b.send({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                    "params": {"name": "hold", "arguments": {
                        "mark": mark, "release": os.path.join(f.dir, "never")}}})
            wait_for(lambda: os.path.exists(mark), timeout=15, what="the tool")
            d.stop()
            m = b.response(5)
            assert m["result"]["isError"] is True, m
            assert "unavailable" in text_of(m["result"]), m
            res = b.call("echo", {"down": 1})
            assert res["isError"] is True and "cannot reach" in text_of(res), res
            r = b.request("tools/list")
            assert r["error"]["code"] == -32603 and "cannot reach" in r["error"]["message"], r
            d.start()
            res = b.call("echo", {"up": 1})
            assert res.get("isError") is not True, res
    finally:
        d.stop(expect_rc=None)
        d.cleanup()


@test
def end_of_stdin_finishes_what_is_in_flight():
    f = Files()
    with Daemon(bridge_conf(f)) as d:
        b = Bridge(d)
        b.initialize()
        b.send({"jsonrpc": "2.0", "id": "last", "method": "tools/call",
                "params": {"name": "nap", "arguments": {"ms": 500}}})
        b.p.stdin.close()
        m = b.response("last")
        assert m["result"]["structuredContent"] == {"slept_ms": 500}, m
        assert b.p.wait(10) == 0
        b.err.close()


if __name__ == "__main__":
    main()
