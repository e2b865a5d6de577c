#!/usr/bin/python3
"""An agent loop on the Python client (clients/python/toolgate).

    agent_loop.py [-s AGENT_SOCKET] [--run-id ID] [--approval-timeout SECONDS]

It asks the gate who it is and which tools it may call, then works
through a plan one step at a time, as an agent does with its model: each
step is a tool call whose answer (a result, or why there is none) is the
next observation.  The plan here is fixed, made for the demo's catalog
(examples/toolgate.yaml): a read, a write an operator must approve
(`gatewayctl approve ID` while it waits), a tool that is not allowed, and
the same read over and over until the gate calls it a loop.  A real
agent would ask its model for the next step instead.

What it shows: the gate's answers as exceptions.  Denied (NotAllowed,
WritesDisabled, ...) refuses one call, and the agent goes on; Stopped
(LoopDetected, BudgetExceeded, ...) ends the run; ToolError is a failure
that may be retried when the gate says it is retryable (so may a call
refused by a rate limit or an open circuit breaker); an approval is
waited for and resumed by call_with_approval.
"""
import argparse
import json
import os
import sys
import time

try:
    import toolgate
except ImportError:   # run from the source tree: the client is beside us
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "clients", "python"))
    import toolgate


def plan():
    """(tool, args) steps, as a model might choose them."""
    yield "kb.read", {"q": "password reset"}
    yield "ticket.close", {"ticket_id": "T-1042", "resolution": "answered from the KB"}
    yield "email.send", {"to": "all@example.com", "body": "closed T-1042"}
    for _ in range(4):                     # a model stuck on one question
        yield "kb.read", {"q": "status"}


def tell_operator(na):
    """on_pending: say which approval a human must decide."""
    print("    waiting for an operator: gatewayctl approve %s   (expires at %s)" %
          (na.approval_id, time.strftime("%H:%M:%S", time.localtime(na.expires_at))),
          flush=True)


def step(gw, n, tool, args, approval_timeout):
    """One call; returns the observation for the model, or raises Stopped."""
    for attempt in (1, 2):
        try:
            r = gw.call_with_approval(tool, args, step_id=n, timeout_s=approval_timeout,
                                      on_pending=tell_operator)
        except toolgate.ApprovalTimeout as e:
            # Nothing ran.  The checkpoint stays good until the approval
            # expires: a later gw.resume(e.checkpoint) runs it once decided.
            return "approval %s not decided yet; nothing ran" % e.approval_id
        except (toolgate.RateLimited, toolgate.CircuitOpen) as e:
            # Refused for now, and the gate says for how long.
            if attempt == 1 and e.retry_after_ms is not None:
                time.sleep(e.retry_after_ms / 1000.0)
                continue
            return "refused (%s): %s" % (e.stop_reason, e.message)
        except toolgate.Denied as e:
            # This call is refused (NotAllowed, WritesDisabled,
            # ApprovalDenied, ...); the run goes on and the model learns why.
            return "refused (%s): %s" % (e.stop_reason, e.message)
        except toolgate.ToolError as e:
            if e.retryable and attempt == 1:
                time.sleep((e.retry_after_ms or 1000) / 1000.0)
                continue
            return "failed (%s): %s" % (e.error, e.message)
        what = "replayed" if r.replayed else ("written" if r.is_write else "read")
        return "%s: %s" % (what, json.dumps(r.result)[:100])
    raise AssertionError("not reached")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-s", "--socket", default=toolgate.DEFAULT_SOCKET)
    ap.add_argument("--run-id", default="agent-%d-%d" % (os.getpid(), int(time.time())))
    ap.add_argument("--approval-timeout", type=float, default=120.0)
    opts = ap.parse_args()

    with toolgate.Gateway(opts.socket, run_id=opts.run_id) as gw:
        me = gw.hello()
        print("tenant %s, env %s, writes %s, run %s" % (
            me.tenant, me.env, "enabled" if me.writes_enabled else "disabled", opts.run_id))
        try:
            for t in gw.tools():
                print("  tool %-16s %-5s %s" % (t.name, t.mode, t.description or ""))
        except toolgate.BadRequest:
            print("  (this gate has no tools op yet)")

        for n, (tool, args) in enumerate(plan(), 1):
            print("step %d: %s %s" % (n, tool, json.dumps(args)), flush=True)
            try:
                obs = step(gw, n, tool, args, opts.approval_timeout)
                # What the model spent on this step, for the run's budgets.
                gw.usage(None, tokens=250, cost=0.001)
            except toolgate.Stopped as e:
                # The run is over: every later call of it would be refused.
                print("    the gate stopped the run (%s): %s" % (e.stop_reason, e.message))
                return 0
            print("    " + obs, flush=True)
        print("plan done")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except toolgate.ConnectionClosed as e:
        sys.exit("agent_loop: %s" % e)
