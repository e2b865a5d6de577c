"""The mcp backend against real MCP servers from npm: the reference
server-memory and server-filesystem (tests/npm, pinned; make deps installs
them into .cache/npm), run by the executor with this machine's node.

Reads answer with the server's CallToolResult; a write runs once however
often it is asked again (replayed, and the server's own state shows it was
not sent again); a write that needs approval runs once, after the
approval.  Without node or the packages every test prints SKIP, except
under CI=true, where that is a failure (CI must run them)."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

NPM_DIR = os.environ.get("TG_NPM_DIR", os.path.join(ROOT, ".cache", "npm"))
SERVERS = os.path.join(NPM_DIR, "node_modules", "@modelcontextprotocol")
MEMORY_JS = os.path.join(SERVERS, "server-memory", "dist", "index.js")
FS_JS = os.path.join(SERVERS, "server-filesystem", "dist", "index.js")
# The server's own start: long under ASan's slower executor and a busy box.
UP_S = 30


def need_servers():
    """node and both servers, or SKIP (a failure under CI=true)."""
    return need_node((MEMORY_JS, FS_JS))


def mcp_daemon(require=("fs.write",), name="mcpnpm"):
    """The daemon pair with both servers: server-memory on d.memfile,
    server-filesystem allowed d.allowed (a temp dir) only."""
    node = need_servers()
    d = Daemon(writes_config(), name=name)
    d.memfile = os.path.join(d.dir, "memory.jsonl")
    d.allowed = os.path.join(d.dir, "allowed")
    os.mkdir(d.allowed)
    servers = {
        "memory": {"command": [node, MEMORY_JS],
                   "env": {"MEMORY_FILE_PATH": d.memfile}},
        "files": {"command": [node, FS_JS, d.allowed]},
    }
    tools = {
        "memory.graph": {"mode": "read", "mcp": {"server": "memory", "tool": "read_graph"}},
        "memory.search": {"mode": "read", "mcp": {"server": "memory", "tool": "search_nodes"},
                          "timeout_ms": 5000},
        "memory.create": {"mode": "write",
                          "mcp": {"server": "memory", "tool": "create_entities"}},
        "memory.observe": {"mode": "write",
                           "mcp": {"server": "memory", "tool": "add_observations"}},
        "fs.read": {"mode": "read", "mcp": {"server": "files", "tool": "read_text_file"}},
        "fs.list": {"mode": "read", "mcp": {"server": "files", "tool": "list_directory"}},
        "fs.write": {"mode": "write", "mcp": {"server": "files", "tool": "write_file"}},
    }
    d.conf = writes_config(tools, mcp_servers=servers,
                           writes={"require_approval": list(require)})
    d.conf.setdefault("paths", {})["credentials_dir"] = d.creds
    write_config(d.config_path, d.conf)
    return d


_runs = [0]


def fresh_run(prefix="run"):
    _runs[0] += 1
    return "%s-%d" % (prefix, _runs[0])


def wait_up(d, tool_name, args):
    """A read of the server behind tool_name, asked again while the
    executor says the server is still starting (error/unavailable)."""
    c = d.client()
    deadline = time.time() + UP_S
    while True:
        r = c.call(tool_name, args, run_id=fresh_run("up"))
        if not (r["status"] == "error" and r.get("error") == "unavailable"):
            return r
        assert time.time() < deadline, ("server behind %s not up" % tool_name, r,
                                         d.read_log()[-3000:])
        time.sleep(0.1)


def structured(r):
    """The CallToolResult of an ok answer: content and structuredContent."""
    assert r["status"] == "ok", r
    res = r["result"]
    assert isinstance(res, dict), r
    assert isinstance(res.get("content"), list) and res["content"], r
    assert res["content"][0]["type"] == "text", r
    assert "isError" not in res or res["isError"] is False, r
    return res.get("structuredContent")


def graph_file(d):
    """server-memory's file: one JSON object a line."""
    try:
        with open(d.memfile) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def expect_write(r, tool_name, args, replayed):
    assert r["status"] == "ok", r
    assert r["replayed"] is replayed, r
    assert r["args_hash"] == args_hash(args), r
    assert r["idempotency_key"] == "acme:%s:%s" % (tool_name, args_hash(args)), r


def expect_failed(r, text):
    assert r["status"] == "error" and r.get("error") == "tool_failed", r
    assert text in r.get("message", ""), r


# -- server-memory --------------------------------------------------------------

@test
def memory_read_graph_and_search():
    with mcp_daemon() as d:
        r = wait_up(d, "memory.graph", {})
        assert structured(r) == {"entities": [], "relations": []}, r
        assert "idempotency_key" not in r and "replayed" not in r, r
        # What the server keeps, the gate's read shows.
        with open(d.memfile, "w") as f:
            f.write(json.dumps({"type": "entity", "name": "Ada", "entityType": "person",
                                "observations": ["likes tea"]}) + "\n")
        c = d.client()
        r = c.call("memory.search", {"query": "tea"}, run_id=fresh_run())
        s = structured(r)
        assert [e["name"] for e in s["entities"]] == ["Ada"], r
        assert s["entities"][0]["observations"] == ["likes tea"], r
        r = c.call("memory.search", {"query": "coffee"}, run_id=fresh_run())
        assert structured(r)["entities"] == [], r
        # The server's isError (its input validation): tool_failed, its text.
        r = c.call("memory.search", {"q": "tea"}, run_id=fresh_run())
        expect_failed(r, "query")


@test
def memory_create_runs_once_under_replay():
    with mcp_daemon() as d:
        wait_up(d, "memory.graph", {})
        c = d.client()
        args = {"entities": [{"name": "Ada", "entityType": "person",
                              "observations": ["likes tea"]}]}
        r1 = c.call("memory.create", args, run_id="w-1")
        expect_write(r1, "memory.create", args, replayed=False)
        assert structured(r1)["entities"] == args["entities"], r1
        assert graph_file(d) == [dict(type="entity", **args["entities"][0])], graph_file(d)
        # The server's state changed by hand: Ada gone, Bob there.  Sent
        # again, create_entities would put Ada back.
        bob = {"type": "entity", "name": "Bob", "entityType": "person", "observations": []}
        with open(d.memfile, "w") as f:
            f.write(json.dumps(bob) + "\n")
        before = os.stat(d.memfile).st_mtime_ns
        time.sleep(0.05)
        for run in ("w-2", "w-3"):
            r = d.client().call("memory.create", args, run_id=run)
            expect_write(r, "memory.create", args, replayed=True)
            assert r["result"] == r1["result"], (r1, r)
        assert graph_file(d) == [bob], graph_file(d)
        assert os.stat(d.memfile).st_mtime_ns == before
        # The server does see the file: a read through the gate shows Bob
        # and no Ada.
        s = structured(c.call("memory.graph", {}, run_id=fresh_run()))
        assert [e["name"] for e in s["entities"]] == ["Bob"], s
        # Other args are another write, sent.
        args2 = {"entities": [{"name": "Cy", "entityType": "person", "observations": []}]}
        r = c.call("memory.create", args2, run_id="w-4")
        expect_write(r, "memory.create", args2, replayed=False)
        assert [e["name"] for e in graph_file(d)] == ["Bob", "Cy"], graph_file(d)


@test
def memory_observation_added_once():
    with mcp_daemon() as d:
        wait_up(d, "memory.graph", {})
        c = d.client()
        r = c.call("memory.create", {"entities": [{"name": "Bob", "entityType": "person",
                                                   "observations": []}]}, run_id="o-0")
        assert r["status"] == "ok", r
        args = {"observations": [{"entityName": "Bob", "contents": ["plays chess"]}]}
        r1 = c.call("memory.observe", args, run_id="o-1")
        expect_write(r1, "memory.observe", args, replayed=False)
        assert structured(r1)["results"] == [{"entityName": "Bob",
                                              "addedObservations": ["plays chess"]}], r1
        assert graph_file(d)[0]["observations"] == ["plays chess"], graph_file(d)
        # Taken out by hand: sent again, the server would add it back.
        g = graph_file(d)
        g[0]["observations"] = []
        with open(d.memfile, "w") as f:
            f.write("".join(json.dumps(e) + "\n" for e in g))
        r2 = d.client().call("memory.observe", args, run_id="o-2")
        expect_write(r2, "memory.observe", args, replayed=True)
        assert r2["result"] == r1["result"], (r1, r2)
        assert graph_file(d)[0]["observations"] == [], graph_file(d)
        s = structured(c.call("memory.search", {"query": "Bob"}, run_id=fresh_run()))
        assert s["entities"][0]["observations"] == [], s


@test
def memory_failed_write_is_not_in_doubt_and_runs_again():
    with mcp_daemon() as d:
        wait_up(d, "memory.graph", {})
        c = d.client()
        # isError from the server (no such entity): tool_failed, its text.
        args = {"observations": [{"entityName": "Eve", "contents": ["x"]}]}
        r = c.call("memory.observe", args, run_id="e-1")
        expect_failed(r, "Eve")
        assert d.ctl_json("ledger") == []
        # It said it failed: asked again (once Eve exists), it is sent again.
        r = c.call("memory.create", {"entities": [{"name": "Eve", "entityType": "person",
                                                   "observations": []}]}, run_id="e-2")
        assert r["status"] == "ok", r
        r = c.call("memory.observe", args, run_id="e-3")
        expect_write(r, "memory.observe", args, replayed=False)
        assert graph_file(d)[0]["observations"] == ["x"], graph_file(d)


@test
def memory_pipelined_reads_get_their_own_answers():
    with mcp_daemon() as d:
        wait_up(d, "memory.graph", {})
        names = ["Ann", "Ben", "Cat", "Dan", "Eli"]
        with open(d.memfile, "w") as f:
            for n in names:
                f.write(json.dumps({"type": "entity", "name": n, "entityType": "person",
                                    "observations": ["is %s" % n.lower()]}) + "\n")
        # Many calls in flight on one connection; server-memory answers
        # them in its own order, the gate each with its own id.
        c = d.client()
        for i in range(40):
            c.send({"op": "call", "id": 100 + i, "run_id": "p-%d" % i,
                    "tool": "memory.search", "args": {"query": "is " + names[i % 5].lower()}})
        got = {}
        for _ in range(40):
            a = c.recv()
            got[a["id"]] = a
        assert sorted(got) == list(range(100, 140)), sorted(got)
        for i in range(40):
            s = structured(got[100 + i])
            assert [e["name"] for e in s["entities"]] == [names[i % 5]], (i, got[100 + i])


# -- server-filesystem ------------------------------------------------------------

@test
def files_read_text_file_inside_allowed_only():
    with mcp_daemon() as d:
        path = os.path.join(d.allowed, "notes.txt")
        with open(path, "w") as f:
            f.write("caf\u00e9 line one\nline two\n")
        r = wait_up(d, "fs.read", {"path": path})
        assert structured(r) == {"content": "caf\u00e9 line one\nline two\n"}, r
        assert r["result"]["content"][0]["text"] == "caf\u00e9 line one\nline two\n", r
        c = d.client()
        r = c.call("fs.read", {"path": path, "head": 1}, run_id=fresh_run())
        assert structured(r) == {"content": "caf\u00e9 line one"}, r
        s = structured(c.call("fs.list", {"path": d.allowed}, run_id=fresh_run()))
        assert s == {"content": "[FILE] notes.txt"}, s
        # Outside the allowed dir the server refuses: tool_failed.
        secret = os.path.join(d.dir, "secret.txt")
        with open(secret, "w") as f:
            f.write("no\n")
        r = c.call("fs.read", {"path": secret}, run_id=fresh_run())
        expect_failed(r, "Access denied")


@test
def files_write_needs_approval_and_runs_once():
    with mcp_daemon() as d:
        wait_up(d, "fs.list", {"path": d.allowed})
        c = d.client()
        path = os.path.join(d.allowed, "out.txt")
        args = {"path": path, "content": "approved text\n"}
        r = c.call("fs.write", args, run_id="fw-1", step_id=1)
        assert r["status"] == "needs_approval", r
        assert r["stop_reason"] == "approval_required", r
        assert r["args_hash"] == args_hash(args), r
        assert not os.path.exists(path)
        p = c.resume(r["checkpoint"])
        assert p["status"] == "pending" and p["approval_id"] == r["approval_id"], p
        assert not os.path.exists(path)
        items = d.ctl_json("approvals")
        assert [a["approval_id"] for a in items] == [r["approval_id"]], items
        assert items[0]["tool"] == "fs.write", items
        rc, out, err = d.ctl("approve", r["approval_id"], "--note", "ok to write")
        assert rc == 0, (rc, out, err)
        x1 = c.resume(r["checkpoint"])
        expect_write(x1, "fs.write", args, replayed=False)
        assert "Successfully wrote" in x1["result"]["content"][0]["text"], x1
        assert open(path).read() == "approved text\n"
        # Changed by hand: a second send would write it back.
        with open(path, "w") as f:
            f.write("changed by hand\n")
        x2 = d.client().resume(r["checkpoint"])
        expect_write(x2, "fs.write", args, replayed=True)
        assert x2["result"] == x1["result"], (x1, x2)
        assert open(path).read() == "changed by hand\n"
        # After a restart of the pair (and so of the server): still replayed.
        d.stop()
        d.start()
        x3 = d.client().resume(r["checkpoint"])
        expect_write(x3, "fs.write", args, replayed=True)
        assert open(path).read() == "changed by hand\n"
        # The audit log has the one write, with its approver, and the two
        # replays as replays.
        calls = [e for e in read_audit(d) if e.get("event") == "call" and
                 e.get("tool") == "fs.write" and e.get("decision") == "ok"]
        assert [e.get("replayed") for e in calls] == [False, True, True], calls
        assert all(e.get("approver") == ROOT_WHO for e in calls), calls


@test
def files_write_denied_writes_nothing():
    with mcp_daemon() as d:
        wait_up(d, "fs.list", {"path": d.allowed})
        c = d.client()
        path = os.path.join(d.allowed, "never.txt")
        r = c.call("fs.write", {"path": path, "content": "no\n"}, run_id="fd-1")
        assert r["status"] == "needs_approval", r
        rc, out, err = d.ctl("deny", r["approval_id"])
        assert rc == 0, (rc, out, err)
        x = c.resume(r["checkpoint"])
        assert_denied(x, "approval_denied")
        time.sleep(0.2)
        assert not os.path.exists(path)


# -- what the operator sees -------------------------------------------------------

MEMORY_TOOLS = ["add_observations", "create_entities", "create_relations", "delete_entities",
                "delete_observations", "delete_relations", "open_nodes", "read_graph",
                "search_nodes"]


@test
def catalog_lists_the_servers_tools_ok():
    with mcp_daemon() as d:
        wait_up(d, "memory.graph", {})
        wait_up(d, "fs.list", {"path": d.allowed})
        items = {t["name"]: t for t in d.ctl_json("tools")}
        for name, server, mtool, mode in (
                ("memory.graph", "memory", "read_graph", "read"),
                ("memory.create", "memory", "create_entities", "write"),
                ("fs.read", "files", "read_text_file", "read"),
                ("fs.write", "files", "write_file", "write")):
            t = items[name]
            assert (t["backend"], t["state"], t["mode"], t["allowed"]) == \
                ("mcp", "ok", mode, True), t
            assert (t["server"], t["mcp_tool"]) == (server, mtool), t
        assert items["echo"]["backend"] == "exec", items["echo"]


@test
def mcp_tools_shows_what_the_server_offers():
    with mcp_daemon() as d:
        wait_up(d, "memory.graph", {})
        wait_up(d, "fs.list", {"path": d.allowed})
        rc, out, err = d.ctl("--json", "mcp", "tools", "memory")
        assert rc == 0, ("gatewayctl mcp tools memory", rc, out, err)
        # --json prints the items, as for every list gatewayctl shows.
        items = {t["name"]: t for t in json.loads(out)}
        assert sorted(items) == MEMORY_TOOLS, sorted(items)
        # The server's annotations suggest; the catalog decides.
        g = items["read_graph"]
        assert g["annotations"]["readOnlyHint"] is True and g["suggested_mode"] == "read", g
        assert g["catalog_name"] == "memory.read_graph" and g["catalogued_as"] == "memory.graph", g
        c = items["create_entities"]
        assert c["annotations"]["readOnlyHint"] is False and c["suggested_mode"] == "write", c
        assert c["catalogued_as"] == "memory.create", c
        assert "catalogued_as" not in items["delete_entities"], items["delete_entities"]
        assert items["delete_entities"]["annotations"]["destructiveHint"] is True, items
        q = items["search_nodes"]["input_schema"]
        assert q["type"] == "object" and "query" in q["properties"], q
        assert isinstance(items["search_nodes"]["description"], str), items["search_nodes"]
        items = {t["name"]: t for t in d.ctl_json("mcp", "tools", "files")}
        assert {"read_text_file", "write_file", "list_directory", "edit_file",
                "move_file"} <= set(items), sorted(items)
        assert items["write_file"]["suggested_mode"] == "write", items["write_file"]
        assert items["read_text_file"]["suggested_mode"] == "read", items["read_text_file"]
        # The table for a person: a catalog line to paste per tool.
        rc, out, err = d.ctl("mcp", "tools", "memory")
        assert rc == 0 and "memory.search_nodes" in out, (rc, out, err)


# -- the server process -------------------------------------------------------------

def server_pids(d):
    """The processes running server-memory with this daemon's memory file."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if MEMORY_JS.encode() in argv and \
                ("MEMORY_FILE_PATH=" + d.memfile).encode() in env:
            out.append(int(pid))
    return out


@test
def killed_server_is_restarted():
    with mcp_daemon() as d:
        wait_up(d, "memory.graph", {})
        c = d.client()
        args = {"entities": [{"name": "Dee", "entityType": "person", "observations": []}]}
        assert c.call("memory.create", args, run_id="k-1")["status"] == "ok"
        pids = server_pids(d)
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGKILL)
        # Once the executor has reaped it: unavailable (nothing sent) until
        # the new process is ready, then ok; never anything else.
        deadline = time.time() + 10
        while os.path.exists("/proc/%d" % pids[0]):
            assert time.time() < deadline, "server %d never reaped" % pids[0]
            time.sleep(0.01)
        r = wait_up(d, "memory.search", {"query": "Dee"})
        s = structured(r)
        assert [e["name"] for e in s["entities"]] == ["Dee"], r
        new = server_pids(d)
        assert len(new) == 1 and new != pids, (pids, new)
        # The write is still replayed, not sent to the new process.
        with open(d.memfile, "w") as f:
            f.write("")
        r = c.call("memory.create", args, run_id="k-2")
        expect_write(r, "memory.create", args, replayed=True)
        assert graph_file(d) == [], graph_file(d)


if __name__ == "__main__":
    main()
