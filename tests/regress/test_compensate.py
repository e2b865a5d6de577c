"""gatewayctl compensate RUN_ID: the compensating call of every write of
the run that succeeded, through the normal path (policy, approvals,
ledger, audit), once per write however often or concurrently it is
asked.  The side effects are counted by real record tools."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

NOTE = "Reopened by compensation (run ${run_id})"


def comp_daemon(name="tg-comp", require=(), slow=False):
    """tk.close (map form: tk.reopen with ticket_id and a note), tk.tag
    (the name alone: tk.untag, the same args), tk.bad (a field the
    original lacks), tk.fail (fails cleanly).  Each tool appends to its
    own effects file, d.fx[TOOL]."""
    d = Daemon(base_config(), name=name)
    d.fx = {t: os.path.join(d.dir, t) for t in
            ("tk.close", "tk.reopen", "tk.tag", "tk.untag", "tk.fail")}
    # slow: the compensating tool takes that long (True: 0.7 s).
    reopen = ([tool("slow-record"), d.fx["tk.reopen"],
               "0.7" if slow is True else str(slow)] if slow else
              [tool("record"), d.fx["tk.reopen"]])
    conf = writes_config(tools={
        "tk.close": {"mode": "write", "exec": [tool("record"), d.fx["tk.close"]],
                     "entity": ["ticket_id"],
                     "compensate": {"tool": "tk.reopen",
                                    "args": {"ticket_id": "$.ticket_id",
                                             "note": NOTE}}},
        "tk.reopen": {"mode": "write", "exec": reopen},
        "tk.tag": {"mode": "write", "exec": [tool("record"), d.fx["tk.tag"]],
                   "compensate": "tk.untag"},
        "tk.untag": {"mode": "write", "exec": [tool("record"), d.fx["tk.untag"]]},
        "tk.bad": {"mode": "write", "exec": [tool("record"), d.fx["tk.close"]],
                   "compensate": {"tool": "tk.reopen",
                                  "args": {"ticket_id": "$.nope"}}},
        "tk.fail": {"mode": "write", "exec": [tool("record-fail"), d.fx["tk.fail"]],
                    "compensate": "tk.untag"},
    })
    conf["writes"] = dict(conf["writes"], require_approval=list(require) or False)
    reconfigure(d, conf)
    return d


def lines(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def compensate(d, run_id, *extra, rc_ok=(0,)):
    rc, out, err = d.ctl("--json", "compensate", run_id, *extra)
    assert rc in rc_ok, (rc, out, err)
    return json.loads(out)


def close_two(d, run_id="run-a"):
    c = d.client()
    for t in ("T-1", "T-2"):
        r = c.call("tk.close", {"ticket_id": t, "reason": "spam"}, run_id=run_id)
        assert r["status"] == "ok", r
    return c


@test
def map_form_runs_once_per_write_and_is_audited():
    with comp_daemon() as d:
        close_two(d)
        a = compensate(d, "run-a")
        assert a["count"] == 2 and a["dry_run"] is False, a
        assert [w["status"] for w in a["writes"]] == ["done", "done"], a
        w = a["writes"][0]
        assert w["tool"] == "tk.close" and w["compensating_tool"] == "tk.reopen", w
        assert w["args_hash"] == args_hash({"ticket_id": "T-1", "reason": "spam"}), w
        assert w["compensation_key"] == w["idempotency_key"] + ":compensate", w
        want = [{"ticket_id": t, "note": "Reopened by compensation (run run-a)"}
                for t in ("T-1", "T-2")]
        # The two compensations run at once: their tools end in any order.
        got = sorted(lines(d.fx["tk.reopen"]), key=lambda x: x["ticket_id"])
        assert got == want, got
        assert w["compensation_args_hash"] == args_hash(want[0]), w
        # Asked again: replayed, nothing runs.
        b = compensate(d, "run-a")
        assert [w["status"] for w in b["writes"]] == ["replayed", "replayed"], b
        assert len(lines(d.fx["tk.reopen"])) == 2
        # The audit log names what each compensation undoes.
        recs = [r for r in read_audit(d) if r.get("compensates")]
        keys = {x["idempotency_key"] for x in a["writes"]}
        assert {r["compensates"] for r in recs} == keys, recs
        intents = [r for r in recs if r.get("event") == "intent"]
        assert len(intents) == 2, recs
        assert all(r["tool"] == "tk.reopen" and
                   r["idempotency_key"].endswith(":compensate") for r in intents), intents
        # Forensics shows each write compensated.
        rc, out, err = d.ctl("--json", "forensics", "run-a")
        f = json.loads(out)
        assert [x["compensation"]["state"] for x in f["writes"]] == ["done", "done"], f


@test
def concurrent_asks_compensate_once():
    with comp_daemon(slow=True) as d:
        close_two(d)
        ps = [subprocess.Popen([GATEWAYCTL, "-s", d.control_sock, "--json",
                                "compensate", "run-a"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=d.env()) for _ in range(4)]
        outs = [p.communicate(timeout=60) for p in ps]
        assert all(p.returncode == 0 for p in ps), outs
        statuses = sorted(w["status"] for o, _ in outs
                          for w in json.loads(o)["writes"])
        assert statuses.count("done") == 2, statuses
        assert set(statuses) <= {"done", "replayed"}, statuses
        assert len(lines(d.fx["tk.reopen"])) == 2, lines(d.fx["tk.reopen"])
        # And once more, after.
        assert len(lines(d.fx["tk.reopen"])) == 2


@test
def a_compensation_still_running_at_the_wait_goes_on():
    """The answer comes after wait_ms at most (--wait S): a compensation
    still running then is shown running, goes on and runs once, and the
    next compensate of the run shows it replayed."""
    with comp_daemon(slow=4) as d:
        close_two(d)
        a = compensate(d, "run-a", "--wait", "1")
        assert [w["status"] for w in a["writes"]] == ["running", "running"], a
        assert all("compensate run-a again" in w["reason"] for w in a["writes"]), a
        wait_for(lambda: len(lines(d.fx["tk.reopen"])) == 2, 30,
                 "the compensations to run")
        b = compensate(d, "run-a")
        assert [w["status"] for w in b["writes"]] == ["replayed", "replayed"], b
        assert len(lines(d.fx["tk.reopen"])) == 2
        for bad in ("0", "3601", "x", "-1"):
            rc, out, err = d.ctl("compensate", "run-a", "--wait", bad)
            assert rc == 2, (bad, rc, out, err)
        for bad in (0, 3600001, "1000", -5):
            r = ctl_raw(d.control_sock, {"op": "compensate", "run_id": "run-a",
                                         "wait_ms": bad})
            assert r.get("ok") is False and "wait_ms" in r["error"], (bad, r)
        assert len(lines(d.fx["tk.reopen"])) == 2


@test
def compensation_needing_approval_is_held_then_resumed():
    with comp_daemon(require=["tk.reopen"]) as d:
        c = d.client()
        assert c.call("tk.close", {"ticket_id": "T-7"}, run_id="run-p")["status"] == "ok"
        a = compensate(d, "run-p")
        w = a["writes"][0]
        assert w["status"] == "pending_approval", w
        aid = w["approval_id"]
        assert len(aid) == 32, w
        assert lines(d.fx["tk.reopen"]) == []
        items = d.ctl_json("approvals")
        assert [i["approval_id"] for i in items] == [aid], items
        assert items[0]["tool"] == "tk.reopen", items
        # Asked again before the decision: still pending, the same approval.
        b = compensate(d, "run-p")
        assert b["writes"][0]["status"] == "pending_approval", b
        assert b["writes"][0]["approval_id"] == aid, b
        assert len(d.ctl_json("approvals")) == 1
        assert d.ctl("approve", aid)[0] == 0
        x = compensate(d, "run-p")
        assert x["writes"][0]["status"] == "done", x
        assert lines(d.fx["tk.reopen"]) == [
            {"ticket_id": "T-7", "note": "Reopened by compensation (run run-p)"}]
        y = compensate(d, "run-p")
        assert y["writes"][0]["status"] == "replayed", y
        assert len(lines(d.fx["tk.reopen"])) == 1
        f = d.ctl_json("forensics", "run-p")
        assert f["writes"][0]["compensation"]["approver"] == "uid 0 (root)", f


@test
def denied_compensation_is_refused():
    with comp_daemon(require=["tk.reopen"]) as d:
        assert d.client().call("tk.close", {"ticket_id": "T-8"},
                               run_id="run-q")["status"] == "ok"
        aid = compensate(d, "run-q")["writes"][0]["approval_id"]
        assert d.ctl("deny", aid, "--note", "no")[0] == 0
        rc, out, err = d.ctl("compensate", "run-q")
        assert rc == 1 and "status: refused" in out and "denied" in out, (rc, out, err)
        assert lines(d.fx["tk.reopen"]) == []


@test
def dry_run_submits_nothing():
    with comp_daemon() as d:
        close_two(d)
        a = compensate(d, "run-a", "--dry-run")
        assert a["dry_run"] is True, a
        assert [w["status"] for w in a["writes"]] == ["would_submit"] * 2, a
        assert json.loads(a["writes"][0]["compensation_args"]) == \
            {"ticket_id": "T-1", "note": "Reopened by compensation (run run-a)"}, a
        assert lines(d.fx["tk.reopen"]) == []
        assert not [r for r in read_audit(d) if r.get("compensates")]
        # The ledger has no record of it either: a real one runs.
        b = compensate(d, "run-a")
        assert [w["status"] for w in b["writes"]] == ["done", "done"], b


@test
def shorthand_uses_the_same_args():
    with comp_daemon() as d:
        c = d.client()
        args = {"tag": "urgent", "n": 3, "nested": {"k": [1, 2]}}
        assert c.call("tk.tag", args, run_id="run-s")["status"] == "ok"
        a = compensate(d, "run-s")
        w = a["writes"][0]
        assert w["status"] == "done" and w["compensating_tool"] == "tk.untag", w
        assert lines(d.fx["tk.untag"]) == [args], lines(d.fx["tk.untag"])
        assert w["compensation_args_hash"] == args_hash(args) == w["args_hash"], w


@test
def missing_field_fails_closed_and_failed_writes_are_skipped():
    with comp_daemon() as d:
        c = d.client()
        assert c.call("tk.bad", {"ticket_id": "T-3"}, run_id="run-m")["status"] == "ok"
        r = c.call("tk.fail", {"x": 1}, run_id="run-m")
        assert r["status"] == "error", r
        rc, out, err = d.ctl("--json", "compensate", "run-m")
        assert rc == 1, (rc, out, err)
        a = json.loads(out)
        bad, failed = a["writes"]
        assert bad["status"] == "refused" and 'no field "nope"' in bad["reason"], bad
        assert failed["status"] == "skipped" and "failed" in failed["reason"], failed
        assert lines(d.fx["tk.reopen"]) == [] and lines(d.fx["tk.untag"]) == []
        assert not [r for r in read_audit(d) if r.get("compensates")]
        # The person's form exits 1: a compensation was refused.
        assert d.ctl("compensate", "run-m")[0] == 1


@test
def tool_filter_and_other_runs_untouched():
    with comp_daemon() as d:
        c = close_two(d)
        assert c.call("tk.tag", {"tag": "x"}, run_id="run-a")["status"] == "ok"
        assert c.call("tk.tag", {"tag": "y"}, run_id="run-b")["status"] == "ok"
        a = compensate(d, "run-a", "--tool", "tk.tag")
        assert [w["tool"] for w in a["writes"]] == ["tk.tag"], a
        assert a["writes"][0]["status"] == "done", a
        assert lines(d.fx["tk.untag"]) == [{"tag": "x"}]
        assert lines(d.fx["tk.reopen"]) == []


@test
def non_operators_are_refused():
    with comp_daemon() as d:
        close_two(d)
        rc, out, err = ctl_as(d, AGENT_UID, AGENT_UID, "compensate", "run-a")
        assert rc == 1 and "not an operator" in err, (rc, out, err)
        assert lines(d.fx["tk.reopen"]) == []
        assert d.ctl("compensate")[0] == 2
        assert d.ctl("compensate", "run-a", "--dry-run", "--dry-run")[0] == 2


if __name__ == "__main__":
    main()
