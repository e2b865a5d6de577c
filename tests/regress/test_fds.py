"""No agent or tenant can take the gate down by using up tools or
descriptors (issue 8, "Descriptor exhaustion"): running tools are capped
globally (limits.max_tools) and per tenant (limits.max_tools_per_tenant),
past a cap a call is error/unavailable and nothing runs or is recorded;
a full descriptor table refuses one connection, never ends the pair."""
import os
import resource
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def conf(**limits):
    c = base_config(writes={"enabled": True, "require_approval": False},
                    tools={"default_mode": "read_write"},
                    limits=limits)
    c["catalog"]["hold"] = {"mode": "read", "exec": [tool("hold")],
                            "timeout_ms": 120000}
    c["catalog"]["hold.write"] = {"mode": "write", "exec": [tool("hold")],
                                  "timeout_ms": 120000}
    c["tools"]["allow"] += ["hold", "hold.write"]
    return c


class Holds:
    """Tool runs of tests/tools/hold, let go all at once."""

    def __init__(self, d):
        self.dir = d.dir
        self.release = os.path.join(d.dir, "release")
        self.n = 0

    def args(self):
        self.n += 1
        return {"mark": os.path.join(self.dir, "mark%d" % self.n),
                "release": self.release}

    def send(self, client, tool_name="hold", run_id="run-1"):
        """Pipelines a hold call; returns (its request id, its mark)."""
        a = self.args()
        rid = client.next_id
        client.next_id += 1
        client.send({"op": "call", "id": rid, "run_id": run_id,
                     "tool": tool_name, "args": a})
        return rid, a["mark"]

    def running(self, mark):
        wait_for(lambda: os.path.exists(mark), 60, "tool %s running" % mark)

    def let_go(self):
        open(self.release, "w").close()


def answers(client, n):
    """The next n answers of client, by request id."""
    got = {}
    while len(got) < n:
        r = client.recv()
        got[r["id"]] = r
    return got


def unavailable(r, why):
    assert r["status"] == "error" and r["error"] == "unavailable", r
    assert why in r["message"], r


@test
def one_agent_cannot_take_its_tenants_share_by_default():
    """With the default limits, one connection with every request it may
    have in flight (limits.max_inflight) running a slow tool still leaves
    room for another agent of its tenant: the per-tenant default is more
    than max_inflight."""
    c = conf()
    c.pop("limits", None)
    with Daemon(c) as d:
        h = Holds(d)
        hog = d.client()                        # root: tenant acme
        sibling = d.client()                    # acme too
        inflight = 64                           # limits.max_inflight default
        held = [h.send(hog, run_id="hog-%d" % i) for i in range(inflight)]
        for _, mark in held:
            h.running(mark)
        r = sibling.call("echo", {"x": 1}, run_id="sib")
        assert r["status"] == "ok", r
        h.let_go()
        got = answers(hog, inflight)
        assert all(a["status"] == "ok" for a in got.values()), got


@test
def a_slow_tenant_cannot_starve_the_others():
    with Daemon(conf(max_tools=3, max_tools_per_tenant=2)) as d:
        h = Holds(d)
        acme = d.client()                       # root: tenant acme
        globex = d.client(OTHER_UID, OTHER_GID)
        held = [h.send(acme), h.send(acme)]
        for _, mark in held:
            h.running(mark)
        # acme's third tool: past its share, answered at once.
        extra = acme.call("hold", h.args(), run_id="run-2")
        unavailable(extra, "limits.max_tools_per_tenant")
        assert not os.path.exists(os.path.join(d.dir, "mark%d" % h.n))
        # A write past the cap: refused before its intent is recorded.
        w = {"ticket": 7}
        r = acme.call("ticket.close", w, run_id="run-w")
        unavailable(r, "limits.max_tools_per_tenant")
        assert d.ctl_json("ledger") == [], d.ctl_json("ledger")
        # Another tenant's calls still run...
        r = globex.call("echo", {"x": 1})
        assert r["status"] == "ok", r
        gh = h.send(globex, run_id="g-1")
        h.running(gh[1])
        # ...until all of max_tools run.
        r = globex.call("hold", h.args(), run_id="g-2")
        unavailable(r, "limits.max_tools ")
        status = d.ctl_json("status")
        assert status["running_tools"] == 3, status
        h.let_go()
        got = answers(acme, 2)
        for rid, _ in held:
            assert got[rid]["status"] == "ok", got
        assert answers(globex, 1)[gh[0]]["status"] == "ok"
        # Retried in its run, the refused write runs normally, once: the
        # refusal counted as no write of the run, here or in gatewayd.
        r = acme.call("ticket.close", w, run_id="run-w")
        assert r["status"] == "ok" and r["replayed"] is False, r
        recs = [a for a in read_audit(d) if a.get("tool") == "ticket.close"]
        calls = [a for a in recs if a["event"] == "call"]
        assert [a["decision"] for a in calls] == ["error", "ok"], recs
        # One intent, the retry's: the refusal recorded none.
        intents = [a for a in recs if a["event"] != "call"]
        assert len(intents) <= 1, recs
        assert all(a["seq"] > calls[0]["seq"] for a in intents), recs


def low_nofile(n):
    def pre():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return pre


class LowFdDaemon(Daemon):
    """The pair under a small RLIMIT_NOFILE (soft and hard).  gatewayd
    runs as a user of its own here: the kernel caps the descriptors in
    flight on Unix sockets per user at the sender's RLIMIT_NOFILE, and
    other tests' gatewayds run as nobody."""

    nofile = 128

    def __init__(self, conf, **kw):
        conf["user"] = "daemon"
        super().__init__(conf, **kw)

    def preexec(self):
        return low_nofile(self.nofile)


RUNS = iter(range(1 << 30))


def echo_or_refused(c):
    """'ok' when an echo call on c runs, 'refused' when the gateway says
    unavailable and closes c (a full table costs that connection only)."""
    try:
        c.send({"op": "call", "id": 1, "run_id": "r%d" % next(RUNS),
                "tool": "echo", "args": {}})
        r = c.recv()
    except (EOFError, ConnectionResetError, BrokenPipeError):
        return "closed"
    if r["status"] == "ok":
        return "ok"
    if r["status"] != "error" or r["error"] != "unavailable":
        return "other: %r" % r
    if r["id"] == 1:
        return "busy"   # this call refused; the connection goes on
    # The connection refused (id nil): the call's answer may follow.
    while True:
        try:
            r = c.recv()
        except (EOFError, ConnectionResetError, BrokenPipeError):
            return "refused"
        assert r["status"] == "error" and r["error"] == "unavailable", r


def both_alive(d):
    """The executor's pid, once both processes are seen running."""
    assert d.proc.poll() is None, d.read_log()[-2000:]
    try:
        ex = d.executor_pid()
    except AssertionError:
        raise AssertionError("no executor:\n" + d.read_log()[-2000:])
    assert pid_alive(ex), d.read_log()[-2000:]
    return ex


@test
def a_full_descriptor_table_is_unavailable_not_fatal():
    with LowFdDaemon(conf(max_tools=4, max_tools_per_tenant=2,
                          control_idle_s=3600)) as d:
        ex = both_alive(d)
        h = Holds(d)
        slow = d.client(OTHER_UID, OTHER_GID)      # globex's slow tools
        held = [h.send(slow), h.send(slow)]
        for _, mark in held:
            h.running(mark)
        # Idle control connections: root's (an operator: 8 per uid, one
        # left for gatewayctl below) and other users' (closed at accept).
        ctl = [connect_as(d.control_sock) for _ in range(7)]
        ctl += [connect_as(d.control_sock, uid) for uid in range(1001, 1009)]
        conns = []
        outcomes = []
        for _ in range(LowFdDaemon.nofile + 20):
            try:
                c = d.client()
            except OSError:
                outcomes.append("connect failed")
                continue
            conns.append(c)
            outcomes.append(echo_or_refused(c))
        assert both_alive(d) == ex
        assert "ok" in outcomes, outcomes
        assert "refused" in outcomes, outcomes
        # "closed": refused before the gateway read the call, whose
        # unread bytes turn the close into a reset.
        assert set(outcomes) <= {"ok", "busy", "refused", "closed"}, outcomes
        assert both_alive(d) == ex
        # Operators still get in and are answered.
        assert d.ctl_json("status")["running_tools"] == 2
        # Once the load goes, connections work again.
        for c in conns:
            c.close()
        for s in ctl:
            s.close()
        h.let_go()
        assert all(r["status"] == "ok" for r in answers(slow, 2).values())

        def works():
            c = d.client()
            try:
                return echo_or_refused(c) == "ok"
            finally:
                c.close()
        wait_for(works, 60, "a new connection served")
        for _ in range(20):
            assert works()
        assert both_alive(d) == ex
        log = d.read_log()
        assert "no descriptor left" in log or "out of descriptors" in log, log


@test
def a_socket_lost_to_emfile_costs_one_connection():
    # The executor's table fills behind its back (prlimit): the agent's
    # socket comes with MSG_CTRUNC and no descriptor.  Not gatewayd's
    # doing, so not fatal: that connection is refused and closed.
    with Daemon(conf()) as d:
        ex = both_alive(d)
        keep = d.client()
        assert keep.call("echo", {})["status"] == "ok"
        old = resource.prlimit(ex, resource.RLIMIT_NOFILE)
        # Its fds 0-4 are always open (stdio, the socketpair, the peer
        # channel): under a limit of 5 no descriptor can be had at all.
        resource.prlimit(ex, resource.RLIMIT_NOFILE, (5, old[1]))
        try:
            for _ in range(3):
                c = d.client()
                c.s.settimeout(60)
                r = c.recv()            # unasked: the refusal
                assert r["id"] is None and r["status"] == "error" and \
                    r["error"] == "unavailable", r
                assert "descriptors" in r["message"], r
                assert c.closed(60)
                c.close()
            assert both_alive(d) == ex
        finally:
            resource.prlimit(ex, resource.RLIMIT_NOFILE, old)
        # A connection kept before goes on, and new ones work again.
        assert keep.call("echo", {})["status"] == "ok"
        c = d.client()
        assert c.call("echo", {})["status"] == "ok"
        c.close()
        assert both_alive(d) == ex
        assert "no descriptor left" in d.read_log()


if __name__ == "__main__":
    main()
