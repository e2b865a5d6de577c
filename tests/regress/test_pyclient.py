"""The Python client (clients/python/toolgate) against the real daemon
pair: each exception class provoked for real, results and replays, usage,
the approval helper with an operator approving through gatewayctl from
another thread, answers out of order on one connection, and the
connection's own errors.  The mapping of every reason, without a daemon,
is test_pyclient_unit.py."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
from tg import *  # noqa: F401,F403

import toolgate  # noqa: E402

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def rec_daemon(name="pyc", **over):
    """Writes enabled, no approvals; "rec" appends a line per execution
    to d.rec."""
    d = Daemon(writes_config(), name=name)
    d.rec = os.path.join(d.dir, "rec.log")
    conf = writes_config({"rec": {"mode": "write", "exec": [tool("record"), d.rec]}}, **over)
    reconfigure(d, conf)
    return d


def gw(d, run_id="run-1", **kw):
    return toolgate.Gateway(d.agent_sock, run_id=run_id, timeout=30, **kw)


def raises(cls, fn, *a, **kw):
    """fn(*a, **kw) must raise exactly cls; returns the exception."""
    try:
        r = fn(*a, **kw)
    except toolgate.ToolgateError as e:
        assert type(e) is cls, "raised %s (%r), expected %s" % (type(e).__name__, e, cls.__name__)
        return e
    raise AssertionError("returned %r, expected %s" % (r, cls.__name__))


# -- ok answers ----------------------------------------------------------------

@test
def hello_and_a_read():
    with Daemon() as d, gw(d) as g:
        h = g.hello()
        assert (h.v, h.tenant, h.env, h.writes_enabled) == (1, "acme", "prod", False), h
        r = g.call("echo", {"q": "caf\u00e9", "n": 1}, step_id=3, traceparent=TP)
        assert isinstance(r, toolgate.Result), r
        assert r.result["args"] == {"q": "caf\u00e9", "n": 1}, r
        assert r.args_hash == args_hash({"q": "caf\u00e9", "n": 1}), r
        assert r.idempotency_key is None and r.replayed is False and not r.is_write, r
        assert r.response["status"] == "ok", r.response
        # The run and step reached the tool.
        env = g.call("env.dump", {}, run_id="run-env", step_id=7).result["env"]
        assert env.get("TOOLGATE_RUN_ID") == "run-env" and env.get("TOOLGATE_STEP_ID") == "7", env
    # Usable without `with`: connects on the first request.
    with Daemon() as d:
        g = toolgate.Gateway(d.agent_sock)
        assert g.closed
        assert g.call("echo", {}, run_id="r").result["args"] == {}
        assert not g.closed
        g.close()
        assert g.closed
        e = raises(toolgate.ConnectionClosed, g.hello)
        assert "closed" in str(e), e
        g.connect()
        assert g.hello().tenant == "acme"
        g.close()


@test
def a_write_and_its_replay():
    with rec_daemon() as d, gw(d) as g:
        a = {"ticket": "T-1"}
        r = g.call("rec", a, run_id="w1")
        key = "acme:rec:" + args_hash(a)
        assert r.is_write and r.idempotency_key == key and r.replayed is False, r
        assert r.result == {"recorded": True}, r
        # Another run (a retrying agent): the stored result, nothing runs.
        r2 = g.call("rec", a, run_id="w2")
        assert r2.replayed is True and r2.idempotency_key == key, r2
        assert r2.result == r.result
        assert count_lines(d.rec) == 1


@test
def usage_within_and_over_budget():
    with rec_daemon(budgets={"max_tokens_per_run": 100, "max_cost_per_run": 1.0}) as d, gw(d, "u") as g:
        assert g.usage(None, 60) is None
        assert g.usage("u", 40, cost=0.5) is None
        e = raises(toolgate.BudgetExceeded, g.usage, "u", 1)
        assert "max_tokens_per_run" in e.message and e.stop_reason == "budget_exceeded", e
        assert isinstance(e, toolgate.Stopped)
        # The run is over for calls too, with its first reason.
        raises(toolgate.BudgetExceeded, g.call, "echo", {})
        e = raises(toolgate.BudgetExceeded, g.usage, "c", 0, 2)
        assert "max_cost_per_run" in e.message, e
        assert g.call("echo", {}, run_id="other").result["args"] == {}


@test
def tools_lists_what_the_principal_may_call():
    schema = {"type": "object", "properties": {"t": {"type": "string"}}, "required": ["t"]}
    conf = writes_config({"rec": {"mode": "write", "exec": [tool("record"), "/dev/null"],
                                  "description": "Record one line", "input_schema": schema}})
    conf["catalog"]["hidden"] = {"mode": "read", "exec": [tool("echo-args")]}   # not allowed
    with Daemon(conf) as d, gw(d) as g:
        ts = g.tools()
        assert all(isinstance(t, toolgate.Tool) for t in ts), ts
        assert [t.name for t in ts] == sorted(conf["tools"]["allow"]), ts
        by = {t.name: t for t in ts}
        assert "hidden" not in by
        assert (by["rec"].mode, by["rec"].description, by["rec"].input_schema) == \
            ("write", "Record one line", schema), by["rec"].entry
        assert by["rec"].is_write and not by["echo"].is_write
        assert (by["echo"].mode, by["echo"].description, by["echo"].input_schema) == \
            ("read", "", {"type": "object"}), by["echo"].entry
        assert by["nomode"].mode == "write", by["nomode"].entry   # no mode: a write
    # Writes are listed when writes are off too: the list says what a tool is.
    with Daemon() as d, gw(d) as g:
        by = {t.name: t for t in g.tools()}
        assert by["ticket.close"].mode == "write", by


# -- denied ----------------------------------------------------------------------

@test
def not_allowed():
    with Daemon() as d, gw(d) as g:
        e = raises(toolgate.NotAllowed, g.call, "rm.rf", {"path": "/"})
        assert isinstance(e, toolgate.Denied) and e.status == "denied", e
        assert e.stop_reason == "not_allowed" and "rm.rf" in e.message, e
        # Denied does not stop the run.
        assert g.call("echo", {"q": 1}).result["args"] == {"q": 1}


@test
def unknown_principal():
    need_root()
    with Daemon() as d:
        g = toolgate.Gateway.from_socket(connect_as(d.agent_sock, STRANGER_UID), timeout=30)
        e = raises(toolgate.UnknownPrincipal, g.hello)
        assert isinstance(e, toolgate.Denied), e
        # Answered once, then closed.
        e = raises(toolgate.ConnectionClosed, g.call, "echo", {}, run_id="r")
        g.close()


@test
def writes_disabled():
    with Daemon() as d, gw(d) as g:
        for t in ("ticket.close", "nomode"):
            e = raises(toolgate.WritesDisabled, g.call, t, {"ticket_id": "T-1"})
            assert e.stop_reason == "writes_disabled", e
    # The kill switch reads the same.
    with rec_daemon() as d, gw(d) as g:
        assert g.call("rec", {"n": 1}).replayed is False
        assert d.ctl("writes", "disable")[0] == 0
        assert g.hello().writes_enabled is False
        raises(toolgate.WritesDisabled, g.call, "rec", {"n": 2})
        assert count_lines(d.rec) == 1


@test
def tool_changed():
    f_dir = tempfile.mkdtemp(prefix="pyc-mcp-")
    os.chmod(f_dir, 0o755)
    log, effects, state = (os.path.join(f_dir, n) for n in ("log", "effects", "state"))
    srv = {"command": [tool("mcp-server"), "--log", log, "--effects", effects, "--state", state],
           "init_timeout_ms": 2000}
    conf = writes_config({"m.echo": {"mode": "read", "mcp": {"server": "t", "tool": "echo"}},
                          "m.change": {"mode": "read", "mcp": {"server": "t", "tool": "change"}}})
    conf["mcp_servers"] = {"t": srv}
    try:
        with Daemon(conf) as d, gw(d) as g:
            deadline = time.time() + 15
            n = 0
            while True:      # unavailable until the server has listed its tools
                n += 1
                try:
                    g.call("m.echo", {"ping": n}, run_id="ready-%d" % n)
                    break
                except toolgate.Unavailable:
                    assert time.time() < deadline, d.read_log()[-2000:]
                    time.sleep(0.05)
            g.call("m.change", {}, run_id="ch")
            wait_for(lambda: {t["name"]: t for t in d.ctl_json("tools")}["m.echo"]["state"]
                     == "changed", what="m.echo changed")
            e = raises(toolgate.ToolChanged, g.call, "m.echo", {"x": 1}, run_id="ch2")
            assert "gatewayctl tools accept m.echo" in e.message, e
            # A denial: the run goes on.
            assert g.call("m.change", {"again": 1}, run_id="ch2").result is not None
    finally:
        shutil.rmtree(f_dir, ignore_errors=True)


@test
def rate_limited():
    # A token per 4 s: a loaded machine cannot earn one back between the calls.
    conf = writes_config(rate_limits={"per_tool": {"echo": {"rate": 0.25, "burst": 2}}},
                         budgets={"repeat_limit": 0})
    with Daemon(conf) as d, gw(d, "rl") as g:
        g.call("echo", {"i": 1})
        g.call("echo", {"i": 2})
        e = raises(toolgate.RateLimited, g.call, "echo", {"i": 3})
        assert isinstance(e, toolgate.Denied) and e.stop_reason == "rate_limited", e
        assert isinstance(e.retry_after_ms, int) and 1 <= e.retry_after_ms <= 4000, vars(e)
        # Another tool has no bucket; after the wait the tool runs again.
        assert g.call("env.dump", {}).result
        time.sleep(e.retry_after_ms / 1000.0 + 0.05)
        assert g.call("echo", {"i": 4}).result["args"] == {"i": 4}


@test
def retryable_tool_failed_and_circuit_open():
    with Api("--plain") as api:
        conf = writes_config({"api.busy": {"mode": "read",
                                           "http": {"url": api.url("/status/503?retry_after=2")}}},
                             breaker={"window_s": 30, "min_calls": 2, "failure_ratio": 0.5,
                                      "open_s": 2},
                             budgets={"repeat_limit": 0})
        with Daemon(conf) as d, gw(d, "cb") as g:
            for i in range(2):
                e = raises(toolgate.ToolFailed, g.call, "api.busy", {"i": i})
                assert e.retryable is True and e.retry_after_ms == 2000, vars(e)
                assert "503" in e.message, e
            e = raises(toolgate.CircuitOpen, g.call, "api.busy", {"i": 2})
            assert isinstance(e, toolgate.Denied) and e.stop_reason == "circuit_open", e
            assert isinstance(e.retry_after_ms, int) and 1 <= e.retry_after_ms <= 2000, vars(e)
            assert len(api.requests()) == 2    # refused without reaching the API


# -- stopped -----------------------------------------------------------------------

@test
def duplicate_write():
    with rec_daemon() as d, gw(d, "dup") as g:
        g.call("rec", {"t": "D-1"})
        e = raises(toolgate.DuplicateWrite, g.call, "rec", {"t": "D-1"})
        assert isinstance(e, toolgate.Stopped) and e.stop_reason == "duplicate_write", e
        # Every later call of the run, reads too, gets the first reason.
        raises(toolgate.DuplicateWrite, g.call, "echo", {})
        assert count_lines(d.rec) == 1


@test
def loop_detected():
    with rec_daemon(budgets={"repeat_limit": 2}) as d, gw(d, "loop") as g:
        for _ in range(2):
            g.call("echo", {"q": 1})
        e = raises(toolgate.LoopDetected, g.call, "echo", {"q": 1})
        assert "repeat_limit" in e.message, e
        raises(toolgate.LoopDetected, g.call, "echo", {"q": 2})


@test
def budget_exceeded_steps():
    with rec_daemon(budgets={"max_steps_per_run": 2}) as d, gw(d, "steps") as g:
        g.call("echo", {"i": 0})
        g.call("echo", {"i": 1})
        e = raises(toolgate.BudgetExceeded, g.call, "echo", {"i": 2})
        assert "max_steps_per_run" in e.message, e


@test
def invalid_tool_output():
    with Daemon() as d, gw(d, "bad-out") as g:
        e = raises(toolgate.InvalidToolOutput, g.call, "not.json", {})
        assert isinstance(e, toolgate.Stopped), e
        raises(toolgate.InvalidToolOutput, g.call, "echo", {})


# -- errors ------------------------------------------------------------------------

@test
def tool_failed():
    with Daemon() as d, gw(d) as g:
        e = raises(toolgate.ToolFailed, g.call, "fail", {})
        assert isinstance(e, toolgate.ToolError) and e.error == "tool_failed", e
        assert e.message and e.retryable is False and e.retry_after_ms is None, vars(e)
        # Not a stop: the run goes on.
        assert g.call("echo", {}).result["args"] == {}


@test
def tool_timeout():
    with Daemon() as d, gw(d) as g:
        t0 = time.time()
        e = raises(toolgate.ToolTimeout, g.call, "sleep", {})
        assert e.error == "tool_timeout" and time.time() - t0 < 10, e


@test
def bad_request():
    with Daemon() as d, gw(d) as g:
        e = raises(toolgate.BadRequest, g.call, "echo", {"b": b"\x00"})
        assert e.error == "bad_request", e
        raises(toolgate.BadRequest, g.call, "echo", {}, traceparent=TP.upper())
        raises(toolgate.BadRequest, g.wait, "0" * 32, 10)
        # The connection stays open after a bad request.
        assert g.hello().tenant == "acme"


@test
def unavailable():
    # An MCP server that never comes up: its tools are unavailable and
    # nothing is sent.
    conf = writes_config({"m.dead": {"mode": "read", "mcp": {"server": "dead", "tool": "x"}}})
    conf["mcp_servers"] = {"dead": {"command": [tool("exit-quiet")]}}
    with Daemon(conf) as d, gw(d) as g:
        e = raises(toolgate.Unavailable, g.call, "m.dead", {})
        assert e.error == "unavailable" and e.message, e


@test
def bad_frame():
    with Daemon() as d, gw(d) as g:
        deep = {}
        for _ in range(40):
            deep = {"a": deep}
        e = raises(toolgate.BadFrame, g.call, "echo", deep)
        assert isinstance(e, toolgate.ProtocolError) and isinstance(e, toolgate.ToolError), e
        assert e.error == "bad_frame" and e.response["id"] is None, e.response
        # The gate closed the connection: later requests say so.
        e = raises(toolgate.ConnectionClosed, g.hello)
        assert isinstance(e.cause, toolgate.BadFrame), e.cause
        # A new connection is fine.
        g.connect()
        assert g.hello().tenant == "acme"


@test
def frame_too_large():
    conf = base_config(limits={"max_frame": 4096})
    with Daemon(conf) as d, gw(d) as g:
        e = raises(toolgate.FrameTooLarge, g.call, "echo", {"x": "y" * 100000})
        assert "4096" in e.message, e
        raises(toolgate.ConnectionClosed, g.hello)
        g.connect()
        assert g.call("echo", {"x": "y" * 100}).result["args"] == {"x": "y" * 100}


@test
def a_gate_hanging_up_mid_send_is_no_sigpipe():
    """A request far over max_frame: the gate answers at the header and
    closes while the client still sends.  A program that left SIGPIPE at
    its default still gets FrameTooLarge, not death by signal."""
    conf = base_config(limits={"max_frame": 4096})
    prog = ("import signal, sys, toolgate\n"
            "signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n"
            "g = toolgate.Gateway(sys.argv[1], run_id='r', timeout=30)\n"
            "try:\n"
            "    g.call('echo', {'x': 'y' * (8 << 20)})\n"
            "except toolgate.FrameTooLarge as e:\n"
            "    print('FrameTooLarge', e.message)\n")
    with Daemon(conf) as d:
        p = subprocess.run(["/usr/bin/python3", "-c", prog, d.agent_sock], capture_output=True,
                           text=True, timeout=60,
                           env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "clients", "python")))
        assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
        assert p.stdout.startswith("FrameTooLarge") and "4096" in p.stdout, p.stdout


# -- approvals ---------------------------------------------------------------------

def approver(d, delay=0.3, note=None, verb="approve"):
    """An on_pending callback: an operator decides with gatewayctl from
    another thread after delay seconds.  .out holds gatewayctl's answer."""
    def on_pending(na):
        def run():
            time.sleep(delay)
            args = [verb, na.approval_id] + (["--note", note] if note else [])
            on_pending.out = d.ctl(*args)
        on_pending.thread = threading.Thread(target=run)
        on_pending.thread.start()
        on_pending.seen = na
    on_pending.out = None
    return on_pending


@test
def needs_approval_and_pending():
    a = {"ticket_id": "T-9", "n": 3}
    with approvals_daemon(ttl_s=600) as d, gw(d, "ap") as g:
        t0 = time.time()
        na = raises(toolgate.NeedsApproval, g.call, "rec", a, step_id=1)
        assert na.stop_reason == "approval_required" and na.status == "needs_approval", na
        assert len(na.approval_id) == 32 and na.checkpoint.startswith("tgc1."), vars(na)
        assert na.args_hash == args_hash(a), na.args_hash
        assert t0 + 590 <= na.expires_at <= time.time() + 610, na.expires_at
        assert [x["approval_id"] for x in d.ctl_json("approvals")] == [na.approval_id]
        p = raises(toolgate.Pending, g.resume, na.checkpoint)
        assert p.approval_id == na.approval_id, vars(p)
        assert g.wait(na.approval_id, 50) == "pending"
        assert count_lines(d.effects) == 0


@test
def helper_resumes_once_an_operator_approves():
    a = {"ticket_id": "T-2"}
    with approvals_daemon(ttl_s=600) as d, gw(d, "help") as g:
        on_pending = approver(d, delay=0.8)
        t0 = time.time()
        # Slices of 0.2 s: several waits answer pending before the decision.
        r = g.call_with_approval("rec", a, timeout_s=20, on_pending=on_pending, slice_s=0.2)
        on_pending.thread.join()
        assert on_pending.out[0] == 0, on_pending.out
        assert 0.7 <= time.time() - t0 < 10, time.time() - t0
        assert isinstance(r, toolgate.Result) and r.replayed is False, r
        assert r.idempotency_key == "acme:rec:" + args_hash(a), r
        assert count_lines(d.effects) == 1
        # The helper again on the same approval (an agent retrying): the
        # one stored result, nothing runs twice.
        r2 = g.wait_and_resume(on_pending.seen, timeout_s=5)
        assert r2.replayed is True and r2.result == r.result, r2
        assert count_lines(d.effects) == 1
        # Reads and uncovered writes go straight through the helper.
        assert g.call_with_approval("echo", {"q": 1}, timeout_s=1).result["args"] == {"q": 1}


@test
def helper_approval_denied():
    with approvals_daemon(ttl_s=600) as d, gw(d, "deny") as g:
        on_pending = approver(d, verb="deny", note="not on a Friday")
        e = raises(toolgate.ApprovalDenied, g.call_with_approval, "rec", {"t": 1},
                   timeout_s=20, on_pending=on_pending)
        on_pending.thread.join()
        assert isinstance(e, toolgate.Denied) and "not on a Friday" in e.message, e
        assert g.wait(on_pending.seen.approval_id, 10) == "denied"
        assert count_lines(d.effects) == 0


@test
def helper_approval_expired():
    with approvals_daemon(ttl_s=1) as d, gw(d, "exp") as g:
        seen = []
        e = raises(toolgate.ApprovalExpired, g.call_with_approval, "rec", {"t": 1},
                   timeout_s=20, on_pending=seen.append, slice_s=0.5)
        assert len(seen) == 1 and isinstance(seen[0], toolgate.NeedsApproval), seen
        assert isinstance(e, toolgate.Denied) and e.stop_reason == "approval_expired", e
        assert g.wait(seen[0].approval_id, 10) == "expired"
        assert count_lines(d.effects) == 0


@test
def helper_times_out_and_the_checkpoint_resumes_later():
    with approvals_daemon(ttl_s=600) as d, gw(d, "late") as g:
        t0 = time.time()
        e = raises(toolgate.ApprovalTimeout, g.call_with_approval, "rec", {"t": 2}, timeout_s=0.5)
        assert 0.4 <= time.time() - t0 < 5, time.time() - t0
        assert isinstance(e, TimeoutError) and e.checkpoint.startswith("tgc1."), vars(e)
        assert count_lines(d.effects) == 0
        assert d.ctl("approve", e.approval_id)[0] == 0
        r = g.resume(e.checkpoint)
        assert r.replayed is False and count_lines(d.effects) == 1, r


@test
def bad_checkpoint_signature():
    with approvals_daemon(ttl_s=600) as d, gw(d, "sig") as g:
        na = raises(toolgate.NeedsApproval, g.call, "rec", {"t": 3})
        forged = na.checkpoint[:-4] + ("AAAA" if not na.checkpoint.endswith("AAAA") else "BBBB")
        e = raises(toolgate.BadCheckpointSignature, g.resume, forged)
        assert isinstance(e, toolgate.Denied), e


# -- one connection, many requests ---------------------------------------------------

@test
def answers_out_of_order_reach_their_callers():
    with approvals_daemon(ttl_s=600) as d, gw(d, "pipe") as g:
        na = raises(toolgate.NeedsApproval, g.call, "rec", {"t": 4})
        # Raw pipelining: a parked wait, then a hello answered first.
        w = g.send("wait", approval_id=na.approval_id, timeout_ms=1500)
        h = g.send("hello")
        t0 = time.time()
        ans = g.receive(h)
        assert ans["status"] == "ok" and ans["tenant"] == "acme", ans
        assert time.time() - t0 < 1, time.time() - t0
        assert g.receive(w)["state"] == "pending"
        # Threads sharing the Gateway: one parked in a wait, others calling.
        out, errs = {}, []

        def waiter():
            try:
                out["wait"] = (g.wait(na.approval_id, 3000), time.time())
            except Exception as e:   # noqa: BLE001 - reported below
                errs.append(e)

        def caller(i):
            try:
                out[i] = g.call("echo", {"i": i}, run_id="pipe-%d" % i).result["args"]
            except Exception as e:   # noqa: BLE001
                errs.append(e)
        ths = [threading.Thread(target=waiter)] + \
            [threading.Thread(target=caller, args=(i,)) for i in range(8)]
        t0 = time.time()
        for th in ths:
            th.start()
            time.sleep(0.01)
        for th in ths[1:]:
            th.join()
        assert not errs, errs
        assert all(out[i] == {"i": i} for i in range(8)), out
        assert time.time() - t0 < 2.5, "calls waited behind the parked wait"
        assert d.ctl("approve", na.approval_id)[0] == 0
        ths[0].join()
        assert out["wait"][0] == "approved", out


@test
def a_timed_out_request_leaves_the_connection_usable():
    with approvals_daemon(ttl_s=600) as d, gw(d, "to") as g:
        na = raises(toolgate.NeedsApproval, g.call, "rec", {"t": 5})
        rid = g.send("wait", approval_id=na.approval_id, timeout_ms=600)
        e = raises(toolgate.AnswerTimeout, g.receive, rid, 0.1)
        assert isinstance(e, TimeoutError), e
        # The late answer comes and is dropped; the next ones are right.
        time.sleep(0.8)
        assert g.hello().tenant == "acme"
        assert g.wait(na.approval_id, 10) == "pending"


@test
def reconnecting_ends_the_requests_of_the_old_connection():
    with approvals_daemon(ttl_s=600) as d, gw(d, "re") as g:
        na = raises(toolgate.NeedsApproval, g.call, "rec", {"t": 6})
        out = []

        def waiter():
            try:
                out.append(g.wait(na.approval_id, 20000))
            except toolgate.ToolgateError as e:
                out.append(e)
        th = threading.Thread(target=waiter)
        th.start()
        time.sleep(0.3)
        t0 = time.time()
        g.close()
        th.join(5)
        assert not th.is_alive() and time.time() - t0 < 2, "the waiter was not woken"
        assert type(out[0]) is toolgate.ConnectionClosed, out
        g.connect()
        assert g.wait(na.approval_id, 10) == "pending"
        assert g.hello().tenant == "acme"
    # A Gateway that could not connect tries again on the next request.
    d = Daemon()
    try:
        g = toolgate.Gateway(d.agent_sock, run_id="r")
        raises(toolgate.ConnectionClosed, g.hello)
        d.start()
        assert g.hello().tenant == "acme"
        g.close()
        d.stop()
    finally:
        d.cleanup()


# -- the example ---------------------------------------------------------------------

EXAMPLES = os.path.join(ROOT, "examples")


@test
def example_agent_loop_runs():
    """examples/agent_loop.py against the demo's catalog (without its MCP
    part); the operator approves the close when it shows up."""
    ex = lambda n: os.path.join(EXAMPLES, "tools", n)   # noqa: E731
    conf = writes_config({
        "kb.read": {"mode": "read", "exec": [ex("kb-read")], "timeout_ms": 2000},
        "ticket.close": {"mode": "write", "exec": [ex("ticket-close")]},
        "email.send": {"mode": "write", "exec": [ex("ticket-close")]},
    }, budgets={"repeat_limit": 3})
    conf["tools"]["allow"] = ["kb.read", "ticket.close"]
    conf["writes"]["require_approval"] = ["ticket.close"]
    with Daemon(conf) as d:
        approved = []

        def operator():
            deadline = time.time() + 30
            while time.time() < deadline and not approved:
                for a in d.ctl_json("approvals"):
                    if a["tool"] == "ticket.close":
                        approved.append(d.ctl("approve", a["approval_id"]))
                time.sleep(0.1)
        th = threading.Thread(target=operator)
        th.start()
        p = subprocess.run(["/usr/bin/python3", os.path.join(EXAMPLES, "agent_loop.py"),
                            "-s", d.agent_sock, "--run-id", "ex-1", "--approval-timeout", "20"],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, PYTHONPATH=""))
        th.join()
        out = p.stdout
        assert p.returncode == 0, (p.returncode, out, p.stderr)
        assert approved and approved[0][0] == 0, approved
        assert "tenant acme, env prod, writes enabled, run ex-1" in out, out
        assert re.search(r"tool kb\.read +read", out) and re.search(r"tool ticket\.close +write", out), out
        assert "email.send" not in out.split("step 1:")[0], out    # not allowed: not listed
        assert "waiting for an operator: gatewayctl approve " in out, out
        assert 'written: {"closed": true' in out, out
        assert "refused (not_allowed)" in out, out
        assert "the gate stopped the run (loop_detected)" in out, out
        calls = [e for e in read_audit(d) if e.get("event") == "call" and e.get("tool") == "ticket.close"
                 and e.get("decision") == "ok"]
        assert len(calls) == 1, calls


if __name__ == "__main__":
    main()
