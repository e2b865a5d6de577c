"""The circuit breaker (CONTRACT.md, "Rate limits and the circuit
breaker") against tests/tools/https-server (plain HTTP here): it opens on
5xx, stops calling the tool, probes after open_s and closes when the tool
recovers, opens again when the probe fails, opens on a storm of timeouts
alone, is one per tenant and tool, audits every change, and a write it
refused was never sent and runs later exactly once."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

NO_BUDGET = {"max_steps_per_run": 0, "max_writes_per_run": 0, "repeat_limit": 0}
OPEN_S = 2


def breaker_conf(api, **extra):
    tools = {
        "api.flaky": {"mode": "read", "http": {"url": api.url("/mode/flaky")}},
        "api.slow": {"mode": "read", "http": {"url": api.url("/mode/slow")},
                     "timeout_ms": 300},
        "api.put": {"mode": "write", "http": {"url": api.url("/mode/put"),
                                              "method": "PUT"}},
    }
    b = dict({"window_s": 30, "min_calls": 4, "failure_ratio": 0.5, "open_s": OPEN_S},
             **extra)
    return writes_config(tools, breaker=b, budgets=NO_BUDGET)


def set_mode(api, name, mode):
    p = os.path.join(api.dir, "mode." + name)
    if mode is None:
        if os.path.exists(p):
            os.unlink(p)
        return
    with open(p, "w") as f:
        f.write(mode)


def hits(api, name):
    return sum(1 for r in api.requests() if r["path"] == "/mode/" + name)


def is_open(r):
    assert r["status"] == "denied" and r["stop_reason"] == "circuit_open", r
    assert 1 <= r["retry_after_ms"] <= OPEN_S * 1000, r
    return r["retry_after_ms"]


def breaker_events(d, tool):
    end = time.time() + 10
    while True:
        ev = [(a["decision"], a.get("tenant")) for a in read_audit(d)
              if a.get("event") == "breaker" and a.get("tool") == tool]
        if ev or time.time() > end:
            return ev
        time.sleep(0.1)


@test
def opens_on_5xx_probes_and_closes():
    with Api("--plain") as api, Daemon(breaker_conf(api)) as d:
        c = d.client()
        set_mode(api, "flaky", "503")
        for i in range(4):
            r = c.call("api.flaky", {"i": i}, run_id="r")
            assert r["status"] == "error" and r["retryable"] is True, r
        assert hits(api, "flaky") == 4
        # Open: refused without reaching the server.
        for i in range(3):
            is_open(c.call("api.flaky", {"i": 10 + i}, run_id="r"))
        assert hits(api, "flaky") == 4
        # Another tenant's breaker is its own.
        o = d.client(uid=OTHER_UID)
        r = o.call("api.flaky", {"o": 1}, run_id="o")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert hits(api, "flaky") == 5
        # The tool recovers; after open_s one call probes, and closes it.
        set_mode(api, "flaky", None)
        time.sleep(OPEN_S + 0.2)
        r = c.call("api.flaky", {"i": 20}, run_id="r")
        assert r["status"] == "ok", r
        r = c.call("api.flaky", {"i": 21}, run_id="r")
        assert r["status"] == "ok", r
        assert hits(api, "flaky") == 7
        ev = breaker_events(d, "api.flaky")
        assert [e for e in ev if e[1] == "acme"] == [
            ("open", "acme"), ("half_open", "acme"), ("closed", "acme")], ev


@test
def failed_probe_opens_it_again():
    with Api("--plain") as api, Daemon(breaker_conf(api)) as d:
        c = d.client()
        set_mode(api, "flaky", "502")
        for i in range(4):
            c.call("api.flaky", {"i": i}, run_id="r")
        is_open(c.call("api.flaky", {"i": 5}, run_id="r"))
        time.sleep(OPEN_S + 0.2)
        # The probe reaches the server, fails: open for open_s again.
        r = c.call("api.flaky", {"i": 6}, run_id="r")
        assert r["status"] == "error" and r["retryable"] is True, r
        assert hits(api, "flaky") == 5
        wait = is_open(c.call("api.flaky", {"i": 7}, run_id="r"))
        assert wait > (OPEN_S * 1000) // 2, wait
        assert hits(api, "flaky") == 5


@test
def timeouts_alone_open_it():
    with Api("--plain") as api, Daemon(breaker_conf(api)) as d:
        c = d.client()
        set_mode(api, "slow", "slow 3")
        for i in range(4):
            r = c.call("api.slow", {"i": i}, run_id="r")
            assert r["status"] == "error" and r["error"] == "tool_timeout", r
        is_open(c.call("api.slow", {"i": 9}, run_id="r"))
        # Other tools of the tenant are not affected.
        r = c.call("api.flaky", {"i": 1}, run_id="r")
        assert r["status"] == "ok", r


@test
def fewer_than_min_calls_or_below_ratio_keep_it_closed():
    with Api("--plain") as api, Daemon(breaker_conf(api)) as d:
        c = d.client()
        # A 4xx is the tool's answer, not a failure of it.
        set_mode(api, "flaky", "404")
        for i in range(6):
            r = c.call("api.flaky", {"n": i}, run_id="r")
            assert r["status"] == "error" and "retryable" not in r, r
        # Six answers, no failure; then 3 failures of 9: under the ratio.
        set_mode(api, "flaky", "500")
        for i in range(3):
            r = c.call("api.flaky", {"i": i}, run_id="r")
            assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert hits(api, "flaky") == 9
        # 4 of 10, 5 of 11, 6 of 12: the ratio, so it opens.
        for i in range(3):
            c.call("api.flaky", {"j": i}, run_id="r")
        is_open(c.call("api.flaky", {"i": 100}, run_id="r"))
        assert hits(api, "flaky") == 12


@test
def refused_write_was_never_sent_and_runs_once_later():
    with Api("--plain") as api, Daemon(breaker_conf(api)) as d:
        c = d.client()
        set_mode(api, "put", "503")
        for i in range(4):
            r = c.call("api.put", {"i": i}, run_id="w")
            assert r["status"] == "error" and r["retryable"] is True, r
        args = {"ticket": "T-9"}
        is_open(c.call("api.put", args, run_id="w"))
        assert hits(api, "put") == 4
        set_mode(api, "put", None)
        time.sleep(OPEN_S + 0.2)
        # Same call, same run: not a duplicate, it runs now, once.
        r = c.call("api.put", args, run_id="w")
        assert r["status"] == "ok" and r["replayed"] is False, r
        r = c.call("api.put", args, run_id="w2")
        assert r["status"] == "ok" and r["replayed"] is True, r
        assert hits(api, "put") == 5


@test
def config_off_without_section():
    with Api("--plain") as api:
        conf = breaker_conf(api)
        del conf["breaker"]
        with Daemon(conf) as d:
            c = d.client()
            set_mode(api, "flaky", "503")
            for i in range(12):
                r = c.call("api.flaky", {"i": i}, run_id="r")
                assert r["status"] == "error" and r["error"] == "tool_failed", r
            assert hits(api, "flaky") == 12


if __name__ == "__main__":
    main()
