"""gatewayctl forensics RUN_ID: every write of a run and only its writes,
from the executor's own records: tool, asks, args hash, idempotency key,
entity values (catalog.*.entity), approver, state, in doubt.  Compensation
is in test_compensate.py."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def forensics_daemon(name="tg-fx", require=("tk.close",)):
    """Writes on; tk.close (record, entity ticket_id and queue, approval
    needed), tk.tag (record, entity tag) and rec (record, no entity)."""
    d = Daemon(base_config(), name=name)
    d.effects = os.path.join(d.dir, "effects")
    conf = writes_config(tools={
        "tk.close": {"mode": "write", "exec": [tool("record"), d.effects],
                     "entity": ["ticket_id", "queue"],
                     "compensate": "tk.reopen"},
        "tk.reopen": {"mode": "write", "exec": [tool("record"), d.effects]},
        "tk.tag": {"mode": "write", "exec": [tool("record"), d.effects],
                   "entity": ["tag"]},
        "rec": {"mode": "write", "exec": [tool("record"), d.effects]},
    })
    conf["writes"] = dict(conf["writes"], require_approval=list(require) or False)
    reconfigure(d, conf)
    return d


def forensics(d, run_id, *extra):
    rc, out, err = d.ctl("--json", "forensics", run_id, *extra)
    assert rc == 0, (rc, out, err)
    return json.loads(out)


@test
def lists_exactly_the_runs_writes_and_approvers():
    with forensics_daemon() as d:
        c = d.client()
        # run-a: an approved close, two tags, a plain write; run-b: one tag.
        r = c.call("tk.close", {"ticket_id": "T-1", "queue": "billing"},
                   run_id="run-a")
        assert r["status"] == "needs_approval", r
        assert d.ctl("approve", r["approval_id"])[0] == 0
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok", x
        for tag in ("red", "blue"):
            assert c.call("tk.tag", {"tag": tag, "n": 1},
                          run_id="run-a")["status"] == "ok"
        assert c.call("rec", {"x": 1}, run_id="run-a")["status"] == "ok"
        assert c.call("tk.tag", {"tag": "green"},
                      run_id="run-b")["status"] == "ok"
        # A read is no write, and a refused repeat runs nothing.
        assert c.call("echo", {"q": 1}, run_id="run-a")["status"] == "ok"
        dup = c.call("rec", {"x": 1}, run_id="run-a")
        assert dup["status"] == "stopped", dup

        f = forensics(d, "run-a")
        assert f["run_id"] == "run-a" and f["count"] == 4, f
        assert f["in_doubt"] == 0, f
        ws = f["writes"]
        assert [w["tool"] for w in ws] == ["tk.close", "tk.tag", "tk.tag", "rec"], ws
        close = ws[0]
        assert close["state"] == "done" and close["in_doubt"] is False, close
        assert close["args_hash"] == args_hash({"ticket_id": "T-1", "queue": "billing"})
        assert close["idempotency_key"] == "acme:tk.close:" + close["args_hash"], close
        assert close["entity"] == {"ticket_id": "T-1", "queue": "billing"}, close
        assert close["approver"] == "uid 0 (root)", close
        assert close["asks"] == 1, close
        assert close["tenant"] == "acme" and close["run_id"] == "run-a", close
        assert [w["entity"] for w in ws[1:3]] == [{"tag": "red"}, {"tag": "blue"}]
        assert all(w["approver"] is None for w in ws[1:]), ws
        assert "entity" not in ws[3] and ws[3]["args_kept"] is False, ws[3]
        # Only the tool named an entity or a compensate keeps args.
        assert ws[1]["args_kept"] is True, ws[1]

        g = forensics(d, "run-b")
        assert [w["entity"] for w in g["writes"]] == [{"tag": "green"}], g
        assert forensics(d, "run-none")["count"] == 0
        # --tenant narrows; another tenant has no such run.
        assert forensics(d, "run-a", "--tenant", "acme")["count"] == 4
        assert forensics(d, "run-a", "--tenant", "globex")["count"] == 0

        # The person's form names the same.
        rc, out, err = d.ctl("forensics", "run-a")
        assert rc == 0, (rc, out, err)
        assert "4 writes, 0 in doubt" in out, out
        assert 'ticket_id="T-1"' in out and "approver: uid 0 (root)" in out, out


@test
def the_approvals_a_run_asked_for_are_listed_whatever_became_of_them():
    # Approved and run, denied, still pending: each shows, oldest first;
    # those of another run, or of another tenant when one is named, do not.
    with forensics_daemon() as d:
        c = d.client()
        asked = []
        for t in ("T-1", "T-2", "T-3"):
            r = c.call("tk.close", {"ticket_id": t, "queue": "q"}, run_id="run-p")
            assert r["status"] == "needs_approval", r
            asked.append(r)
        assert d.ctl("approve", asked[0]["approval_id"])[0] == 0
        assert c.resume(asked[0]["checkpoint"])["status"] == "ok"
        assert d.ctl("deny", asked[1]["approval_id"], "--note", "wrong queue")[0] == 0
        other = c.call("tk.close", {"ticket_id": "T-9"}, run_id="run-q")
        assert other["status"] == "needs_approval", other
        oc = d.client(uid=OTHER_UID).call("tk.close", {"ticket_id": "T-8"},
                                           run_id="run-p")
        assert oc["status"] == "needs_approval", oc

        f = forensics(d, "run-p", "--tenant", "acme")
        assert f["count"] == 1, f
        aps = f["approvals"]
        assert [a["approval_id"] for a in aps] == [r["approval_id"] for r in asked], aps
        assert [a["state"] for a in aps] == ["approved", "denied", "pending"], aps
        assert [a["started"] for a in aps] == [True, False, False], aps
        assert aps[0]["approver"] == aps[1]["approver"] == "uid 0 (root)", aps
        assert aps[1]["note"] == "wrong queue" and aps[2]["approver"] is None, aps
        assert all(a["tool"] == "tk.close" and a["tenant"] == "acme" and
                   a["created_ms"] > 0 for a in aps), aps
        assert aps[2]["args_hash"] == args_hash({"ticket_id": "T-3", "queue": "q"})
        # Without --tenant: every tenant's run-p.
        both = forensics(d, "run-p")["approvals"]
        assert {a["tenant"] for a in both} == {"acme", "globex"}, both
        # The table says so too.
        rc, out, err = d.ctl("forensics", "run-p", "--tenant", "acme")
        assert rc == 0 and "3 approvals asked" in out, (rc, out, err)
        assert "state: denied" in out and "note: wrong queue" in out, out
        # A run that asked none has an empty list.
        assert forensics(d, "run-none")["approvals"] == []


@test
def in_doubt_writes_are_named():
    """A write killed mid-run by the executor's own end reads as in doubt."""
    d = forensics_daemon(require=())
    conf = dict(d.conf)
    conf["catalog"] = dict(conf["catalog"])
    conf["catalog"]["tk.hang"] = {"mode": "write", "entity": ["id"],
                                  "exec": [tool("hold-record"), d.effects + ".hang"]}
    conf["tools"] = dict(conf["tools"], allow=conf["tools"]["allow"] + ["tk.hang"])
    reconfigure(d, conf)
    with d:
        c = d.client()
        assert c.call("tk.tag", {"tag": "a"}, run_id="run-d")["status"] == "ok"
        open(d.effects + ".hang.hold", "w").close()
        c.send({"op": "call", "id": 9, "run_id": "run-d", "tool": "tk.hang",
                "args": {"id": "E-1"}})
        wait_for(lambda: os.path.exists(d.effects + ".hang.pid"), 10,
                 "the write started")
        os.kill(d.executor_pid(), signal.SIGKILL)
        d.proc.wait(10)
        c.close()
        d.stop(expect_rc=None)
        kill_pid_group(d.effects + ".hang.pid")
        os.unlink(d.effects + ".hang.hold")
        d.start()
        f = forensics(d, "run-d")
        assert f["count"] == 2 and f["in_doubt"] == 1, f
        hang = [w for w in f["writes"] if w["tool"] == "tk.hang"][0]
        assert hang["state"] == "in_doubt" and hang["in_doubt"] is True, hang
        assert hang["entity"] == {"id": "E-1"}, hang


@test
def operators_only_and_bad_requests():
    with forensics_daemon() as d:
        rc, out, err = ctl_as(d, AGENT_UID, AGENT_UID, "forensics", "run-a")
        assert rc == 1 and "not an operator" in err, (rc, out, err)
        rc, out, err = d.ctl("forensics")
        assert rc == 2, (rc, out, err)
        rc, out, err = d.ctl("forensics", "run-a", "--bogus")
        assert rc == 2, (rc, out, err)


if __name__ == "__main__":
    main()
