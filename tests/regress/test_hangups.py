"""Hang-ups cancel what the agent owned (issue 8): when an agent connection
closes, its parked waits end and its reads still running are cancelled
(their tools killed and reaped); its admitted writes finish and are
recorded, so a retry replays them and nothing runs twice."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

LOOPS = 40
WAITS = 4       # wait ops parked per connection
READS = 3       # reads that never finish on their own, per connection


def hangup_daemon(name="tg-hup", limits=None):
    """approvals_daemon with "linger" (a read only a kill ends, well within
    its timeout) and "held" (hold-record: a write that finishes when the
    test removes d.held + ".hold")."""
    d = approvals_daemon(name=name)
    d.held = os.path.join(d.dir, "held")
    conf = dict(d.conf)
    conf["catalog"] = dict(conf["catalog"],
                           linger={"mode": "read", "exec": [tool("linger")],
                                   "timeout_ms": 120000},
                           held={"mode": "write", "exec": [tool("hold-record"), d.held],
                                 "timeout_ms": 120000})
    conf["tools"] = dict(conf["tools"], allow=conf["tools"]["allow"] + ["linger", "held"])
    if limits:
        conf["limits"] = dict(conf.get("limits", {}), **limits)
    reconfigure(d, conf)
    return d


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def rss_kb(pid):
    return int(proc_status(pid)["VmRSS"].split()[0])


def gatewayd_rss_kb(d):
    return rss_kb(d.proc.pid)


def pending_approval(d, c):
    r = c.call("rec", {"ticket_id": "T-hup"}, run_id="hup-approval")
    assert r["status"] == "needs_approval", r
    return r["approval_id"]


def park_and_hang_up(d, aid, i):
    """One connection: WAITS waits on a pending approval and READS reads
    that never end, all taken by the executor, then a hang-up."""
    c = d.client()
    n = 0
    for _ in range(WAITS):
        n += 1
        c.send({"op": "wait", "id": n, "approval_id": aid, "timeout_ms": 300000})
    for j in range(READS):
        n += 1
        c.send({"op": "call", "id": n, "run_id": "hup-%d" % i, "tool": "linger",
                "args": {"n": j}})
    # The executor takes requests in order: once this read is answered,
    # every wait is parked and every linger has started.
    n += 1
    c.send({"op": "call", "id": n, "run_id": "hup-%d" % i, "tool": "echo", "args": {"i": i}})
    r = c.recv()
    assert r["id"] == n and r["status"] == "ok", r
    c.close()


def all_ended(d, ex, seen):
    """No tool process of the executor, no wait parked, one agent (the
    test's own) connected; seen gets what was last found."""
    st = d.ctl_json("status")
    seen.update(children=len(children(ex)), waits=st.get("waits"),
                running_tools=st["running_tools"], agents=st["agent_connections"])
    return seen == {"children": 0, "waits": 0, "running_tools": 0, "agents": 1}


@test
def hangups_end_waits_and_cancel_reads():
    with hangup_daemon() as d:
        ex = d.executor_pid()
        keep = d.client()
        aid = pending_approval(d, keep)
        for i in range(5):
            park_and_hang_up(d, aid, -1 - i)
        seen = {}
        try:
            wait_for(lambda: all_ended(d, ex, seen), 30, "the warm-up's waits and tools")
        except AssertionError:
            raise AssertionError("the warm-up's waits and tools did not end: %s" % seen)
        rss0, grss0 = rss_kb(ex), gatewayd_rss_kb(d)
        for i in range(LOOPS):
            park_and_hang_up(d, aid, i)
        # Nothing of the agents that left is kept: no tool process, no
        # parked wait (a generous deadline: they would last minutes).
        try:
            wait_for(lambda: all_ended(d, ex, seen), 30, "the hung-up agents' waits and tools")
        except AssertionError:
            raise AssertionError("the hung-up agents' waits and tools did not end: %s" % seen)
        rss1, grss1 = rss_kb(ex), gatewayd_rss_kb(d)
        print("hangups: RSS kB executor %d -> %d, gatewayd %d -> %d"
              % (rss0, rss1, grss0, grss1))
        # ASan's quarantine holds freed memory: RSS says nothing there.
        if not SAN:
            assert rss1 - rss0 < 16 * 1024, (rss0, rss1)
            assert grss1 - grss0 < 16 * 1024, (grss0, grss1)
        # Every cancelled read is recorded as such, once.
        recs = [a for a in read_audit(d) if a.get("tool") == "linger" and a["event"] == "call"]
        assert len(recs) == (LOOPS + 5) * READS, len(recs)
        for a in recs:
            assert a["decision"] == "error" and a["error"] == "unavailable", a
            assert "cancelled" in a["note"], a
        # The approval itself is untouched: still pending, and a wait of a
        # connection that stays is answered.
        w = keep.wait(aid, 50)
        assert w["status"] == "ok" and w["state"] == "pending", w
        assert d.ctl("approve", aid)[0] == 0
        keep.close()


@test
def hangup_behind_backpressure_ends_waits():
    # gatewayd stops reading a connection with max_inflight requests out,
    # so it does not see that agent hang up: the executor sees it itself.
    with hangup_daemon(name="tg-hup-bp", limits={"max_inflight": 2}) as d:
        keep = d.client()
        aid = pending_approval(d, keep)
        c = d.client()
        for n in range(1, 7):
            c.send({"op": "wait", "id": n, "approval_id": aid, "timeout_ms": 300000})
        wait_for(lambda: d.ctl_json("status")["waits"] == 2, 10, "two waits parked")
        c.close()
        wait_for(lambda: d.ctl_json("status")["waits"] == 0 and
                 d.ctl_json("status")["agent_connections"] == 1, 30,
                 "the waits of the agent that hung up to end")
        keep.close()


@test
def admitted_write_finishes_and_replays_after_hangup():
    with hangup_daemon(name="tg-hup-w") as d:
        hold = d.held + ".hold"
        open(hold, "w").close()
        args = {"ticket_id": "T-held"}
        c = d.client()
        c.send({"op": "call", "id": 1, "run_id": "w-1", "tool": "held", "args": args})
        # It started, so its intent is recorded.
        wait_for(lambda: os.path.exists(d.held + ".pid"), 10, "the write to start")
        pid = int(open(d.held + ".pid").read())
        # An identical call of another agent joins it, then hangs up too.
        j = d.client()
        j.send({"op": "call", "id": 1, "run_id": "w-2", "tool": "held", "args": args})
        r = j.rpc({"op": "call", "id": 2, "run_id": "w-2", "tool": "echo", "args": {}})
        assert r["status"] == "ok", r
        c.close()
        j.close()
        wait_for(lambda: d.ctl_json("status")["agent_connections"] == 0, 10,
                 "both connections closed")
        # The write was not cancelled: it runs on, and ends when let.
        assert pid_alive(pid) and count_lines(d.held) == 0
        assert d.ctl_json("status")["running_tools"] == 1
        os.unlink(hold)
        wait_for(lambda: d.ctl_json("status")["running_tools"] == 0, 30, "the write to end")
        assert count_lines(d.held) == 1
        # Its outcome was recorded: a retry replays it, nothing runs again.
        r = d.client().call("held", args, run_id="w-3")
        assert r["status"] == "ok" and r["replayed"] is True, r
        assert r["result"] == {"recorded": True}, r
        assert count_lines(d.held) == 1
        recs = [a for a in read_audit(d) if a.get("tool") == "held" and a["event"] == "call"]
        ran = [a for a in recs if a["run_id"] == "w-1"]
        assert len(ran) == 1 and ran[0]["decision"] == "ok", recs
        joined = [a for a in recs if a["run_id"] == "w-2"]
        assert len(joined) == 1 and joined[0]["error"] == "unavailable", recs


@test
def write_then_hangup_runs_at_most_once():
    # Sent and hung up at once: refused unstarted (a retry runs it) or
    # admitted (a retry replays it); either way exactly one side effect.
    # Every other one is surely admitted first: a read sent after it is
    # answered before the hang-up, so the write's intent was recorded.
    with hangup_daemon(name="tg-hup-w1") as d:
        n = 12
        for i in range(n):
            c = d.client()
            c.send({"op": "call", "id": 1, "run_id": "x-%d" % i, "tool": "rec.slow",
                    "args": {"i": i}})
            if i % 2:
                r = c.rpc({"op": "call", "id": 2, "run_id": "x-%d" % i, "tool": "echo",
                           "args": {}})
                assert r["id"] == 2 and r["status"] == "ok", r
            c.close()
        wait_for(lambda: d.ctl_json("status")["agent_connections"] == 0 and
                 d.ctl_json("status")["running_tools"] == 0, 30, "the hang-ups")
        before = count_lines(d.effects + ".slow")
        assert n // 2 <= before <= n, before
        replayed = 0
        c = d.client()
        for i in range(n):
            r = c.call("rec.slow", {"i": i}, run_id="y-%d" % i)
            assert r["status"] == "ok", r
            replayed += r["replayed"]
        assert replayed == before, (replayed, before)
        print("write_then_hangup: %d of %d admitted before the hang-up" % (before, n))
        assert count_lines(d.effects + ".slow") == n
        c.close()


@test
def write_not_admitted_at_conn_gone_is_refused_unstarted():
    # The test plays gatewayd: a write and its connection's CONN_GONE,
    # read in one turn, so the connection goes before the write's intent
    # is recorded (its agent, still connected, is not seen to hang up).
    # Nothing runs; the answer, which gatewayd would drop, says why; a
    # retry on a new connection runs it.
    need_root()
    link = ExecutorLink(writes_config(), name="tg-hup-ex")
    effects = os.path.join(link.dir, "effects")
    conf = writes_config(tools={"rec": {"mode": "write", "exec": [tool("record"), effects]}})
    link.configure(conf)
    with link:
        T = link.types
        body = link.call_body("rec", {"n": 1}, "run-g")
        link.sock.sendall(frame([T["MSG_CALL"], 100, body]) +
                          frame([T["MSG_CONN_GONE"], 0, {"conn": body["conn"]}]))
        msg = link.recv()
        assert msg[1] == 100, msg
        resp = msg[2]["response"]
        assert resp["status"] == "error" and resp["error"] == "unavailable", resp
        assert "not started" in resp["message"], resp
        server, client = peer_socket(link.agent, AGENT_UID, AGENT_GID)
        pass_peer(link.chan, 99, server)
        server.close()
        link.kept.append(client)
        msg = link.request("MSG_CALL", dict(body, conn=99, run_id="run-g2"))
        resp = msg[2]["response"]
        assert resp["status"] == "ok" and resp["replayed"] is False, resp
        assert count_lines(effects) == 1


if __name__ == "__main__":
    main()
