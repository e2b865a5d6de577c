"""Rate limits (CONTRACT.md, "Rate limits and the circuit breaker"):
token buckets per tenant and per tenant and tool, in the executor.  A
call past a bucket is denied/rate_limited with retry_after_ms, costs no
other bucket a token, is audited, and the bucket refills with time; one
tenant's empty bucket leaves another tenant alone."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

NO_BUDGET = {"max_steps_per_run": 0, "max_writes_per_run": 0, "repeat_limit": 0}


def limited(per_tenant=None, per_tool=None):
    rl = {}
    if per_tenant is not None:
        rl["per_tenant"] = per_tenant
    if per_tool is not None:
        rl["per_tool"] = per_tool
    return writes_config(rate_limits=rl, budgets=NO_BUDGET)


def refused(r):
    assert r["status"] == "denied" and r["stop_reason"] == "rate_limited", r
    assert isinstance(r.get("retry_after_ms"), int) and r["retry_after_ms"] >= 1, r
    return r["retry_after_ms"]


def wait_audit(d, pred, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        recs = [a for a in read_audit(d) if pred(a)]
        if recs:
            return recs
        time.sleep(0.1)
    return []


@test
def tenant_bucket_empties_and_refills():
    # Half a call a second: slow enough that a sanitizer build's three
    # calls cannot earn back the token the fourth needs.
    with Daemon(limited(per_tenant={"rate": 0.5, "burst": 3})) as d:
        c = d.client()
        for i in range(3):
            r = c.call("echo", {"i": i}, run_id="r%d" % i)
            assert r["status"] == "ok", r
        wait = refused(c.call("echo", {"i": 9}, run_id="r9"))
        # A token within two seconds.
        assert wait <= 2000, wait
        # Another tenant has a bucket of its own.
        o = d.client(uid=OTHER_UID)
        assert o.call("echo", {"i": 1}, run_id="o1")["status"] == "ok"
        time.sleep(wait / 1000.0 + 0.05)
        r = c.call("echo", {"i": 10}, run_id="r10")
        assert r["status"] == "ok", r
        recs = wait_audit(d, lambda a: a.get("stop_reason") == "rate_limited")
        assert recs and recs[0]["tool"] == "echo" and recs[0]["tenant"] == "acme", recs


@test
def tool_bucket_limits_one_tool_of_one_tenant():
    with Daemon(limited(per_tool={"ticket.close": {"rate": 0.2, "burst": 2}})) as d:
        c = d.client()
        for i in range(2):
            r = c.call("ticket.close", {"t": i}, run_id="w%d" % i)
            assert r["status"] == "ok", r
        wait = refused(c.call("ticket.close", {"t": 2}, run_id="w2"))
        # 0.2 a second: about five seconds for the next token.
        assert 3000 <= wait <= 5100, wait
        # Other tools of the tenant are not limited.
        for i in range(5):
            assert c.call("echo", {"i": i}, run_id="e")["status"] == "ok"
        # The refused write was never recorded: once the bucket has a
        # token, the same write runs, as a first execution.
        time.sleep(wait / 1000.0 + 0.05)
        r = c.call("ticket.close", {"t": 2}, run_id="w2")
        assert r["status"] == "ok" and r["replayed"] is False, r


@test
def refused_call_costs_no_other_bucket():
    # The tenant's bucket (3, refilling very slowly) and echo's (1).
    with Daemon(limited(per_tenant={"rate": 0.01, "burst": 3},
                        per_tool={"echo": {"rate": 0.01, "burst": 1}})) as d:
        c = d.client()
        assert c.call("echo", {"i": 0}, run_id="a")["status"] == "ok"
        # echo's bucket is empty: refused, and the tenant's keeps its 2.
        for i in range(3):
            refused(c.call("echo", {"i": 1 + i}, run_id="a"))
        assert c.call("env.dump", {}, run_id="b")["status"] == "ok"
        assert c.call("env.dump", {"x": 1}, run_id="b")["status"] == "ok"
        # Now the tenant's is empty too: every tool is refused.
        refused(c.call("env.dump", {"x": 2}, run_id="b"))


@test
def config_refuses_unknown_tool_and_zero_rate():
    for rl, want in (({"per_tool": {"no.such": {"rate": 1}}}, "is not a tool of the catalog"),
                     ({"per_tool": {"echo": {"burst": 3}}}, "a bucket needs a rate above 0"),
                     ({"per_tenant": {"rate": -1}}, "rate_limits.per_tenant.rate")):
        d = Daemon(writes_config(rate_limits=rl), name="tg-rl-cfg")
        try:
            d.start(wait=False)
            rc = d.proc.wait(timeout=20)
            log = d.read_log()
            assert rc != 0 and want in log, (rl, rc, log)
        finally:
            d.cleanup()


if __name__ == "__main__":
    main()
