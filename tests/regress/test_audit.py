"""The audit log: what is recorded, and reopening it after logrotate."""
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@test
def calls_are_audited_with_run_tool_hash_and_decision():
    with Daemon() as d:
        c = d.client()
        c.call("echo", {"q": 1}, run_id="aud", step_id=4)
        c.call("nope", {}, run_id="aud")
        recs = [r for r in records(os.path.join(d.state, "audit.log"))
                if r.get("event") == "call"]
        ok = [r for r in recs if r["tool"] == "echo"][0]
        assert ok["run_id"] == "aud" and ok["step_id"] == "4", ok
        assert ok["args_hash"] == args_hash({"q": 1}) and ok["decision"] == "ok", ok
        assert ok["tenant"] == "acme" and ok["uid"] == 0, ok
        # gatewayd refused that one on its own, and told the executor: the
        # record lands a moment after the answer.
        gw = wait_for(lambda: [r for r in records(os.path.join(d.state, "audit.log"))
                               if r.get("event") == "gatewayd"] or None,
                      what="gatewayd's record")
        assert any(r["tool"] == "nope" and r["decision"] == "denied" and
                   r["stop_reason"] == "not_allowed" and r["run_id"] == "aud"
                   for r in gw), gw
        seqs = [r["seq"] for r in records(os.path.join(d.state, "audit.log"))]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs


@test
def gatewayd_stops_and_strangers_are_audited():
    with Daemon() as d:
        c = d.client()
        for _ in range(4):
            c.call("echo", {"same": 1}, run_id="loop")
        c.call("echo", {"other": 1}, run_id="loop")
        d.client(uid=STRANGER_UID).hello()
        def gw_records():
            gw = [r for r in records(os.path.join(d.state, "audit.log"))
                  if r.get("event") == "gatewayd"]
            return gw if any(r["stop_reason"] == "unknown_principal" for r in gw) else None
        gw = wait_for(gw_records, what="gatewayd records")
        reasons = [(r.get("run_id"), r["stop_reason"]) for r in gw]
        assert reasons.count(("loop", "loop_detected")) == 2, reasons
        stranger = [r for r in gw if r["stop_reason"] == "unknown_principal"]
        assert stranger and stranger[0]["uid"] == STRANGER_UID, gw
        assert "tenant" not in stranger[0], stranger


@test
def sighup_reopens_the_audit_log():
    with Daemon() as d:
        log = os.path.join(d.state, "audit.log")
        c = d.client()
        c.call("echo", {"before": 1}, run_id="rot")
        os.rename(log, log + ".1")
        os.kill(d.executor_pid(), signal.SIGHUP)
        wait_for(lambda: os.path.exists(log), what="a new audit.log")
        c.call("echo", {"after": 1}, run_id="rot2")
        old = [r.get("run_id") for r in records(log + ".1")]
        new = [r.get("run_id") for r in records(log)]
        assert "rot" in old and "rot2" not in old, old
        assert new == ["rot2"], new


if __name__ == "__main__":
    main()
