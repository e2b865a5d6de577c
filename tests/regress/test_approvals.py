"""Approvals: needs_approval, operator decisions, resume exactly once,
wait, expiry, other principals, policy asked again, retention.  The
restart cases are in test_approvals_restart.py, checkpoints that must not
verify in test_checkpoints.py, key rotation in test_keys.py."""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

TTL = 600


def pending_ids(d):
    return [a["approval_id"] for a in d.ctl_json("approvals")]


# -- requesting ---------------------------------------------------------------

@test
def covered_write_needs_approval_and_nothing_runs():
    args = {"ticket_id": "T-9", "note": "caf\u00e9", "n": 3}
    with approvals_daemon(ttl_s=TTL) as d:
        c = d.client()
        t0 = time.time()
        r = c.call("rec", args, run_id="run-a", step_id=4)
        assert r["status"] == "needs_approval", r
        assert r["stop_reason"] == "approval_required", r
        assert isinstance(r["approval_id"], str) and len(r["approval_id"]) >= 16, r
        assert isinstance(r["checkpoint"], str) and r["checkpoint"].startswith("tgc1."), r
        assert r["args_hash"] == args_hash(args), r
        assert isinstance(r["expires_at"], int) and not isinstance(r["expires_at"], bool), r
        assert t0 + TTL - 2 <= r["expires_at"] <= time.time() + TTL + 2, r
        assert count_lines(d.effects) == 0
        items = d.ctl_json("approvals")
        assert len(items) == 1, items
        a = items[0]
        assert a["approval_id"] == r["approval_id"], a
        assert (a["tenant"], a["env"], a["tool"], a["run_id"]) == \
            ("acme", "prod", "rec", "run-a"), a
        assert a["args_hash"] == args_hash(args), a
        assert a["expires_at"] == r["expires_at"], a
        assert a.get("args") == canonical_json(args).decode(), a
        st = d.ctl_json("status")
        assert st["pending_approvals"] == 1, st
        # Asking again is another request (a second approval), still nothing runs.
        assert count_lines(d.effects) == 0


@test
def require_approval_true_covers_every_write():
    with approvals_daemon(require=True) as d:
        c = d.client()
        for t in ("rec", "ticket.close", "nomode"):
            r = c.call(t, {"x": t}, run_id="run-" + t)
            assert r["status"] == "needs_approval", (t, r)
        assert count_lines(d.effects) == 0
        r = c.call("echo", {"q": 1})
        assert r["status"] == "ok", r
        assert d.ctl_json("status")["pending_approvals"] == 3


@test
def uncovered_write_runs_and_reads_are_never_covered():
    # "echo" is a read: naming it in require_approval does not cover it.
    with approvals_daemon(require=["rec", "echo"]) as d:
        c = d.client()
        r = c.call("ticket.close", {"ticket_id": "T-2"})
        assert r["status"] == "ok" and r["replayed"] is False, r
        r = c.call("echo", {"q": "hi"})
        assert r["status"] == "ok", r
        assert r["result"]["args"] == {"q": "hi"}, r
        request_approval(d, c)
        assert d.ctl_json("status")["pending_approvals"] == 1


# -- before the decision: resume and wait -------------------------------------

@test
def resume_before_decision_is_pending():
    with approvals_daemon() as d:
        c = d.client()
        r = request_approval(d, c)
        p = c.resume(r["checkpoint"])
        assert p["status"] == "pending" and p["approval_id"] == r["approval_id"], p
        assert count_lines(d.effects) == 0
        assert pending_ids(d) == [r["approval_id"]]


@test
def wait_times_out_pending_without_blocking_others():
    with approvals_daemon() as d:
        c = d.client()
        r = request_approval(d, c)
        t0 = time.time()
        w = c.wait(r["approval_id"], 200)
        dt = time.time() - t0
        assert w["status"] == "ok" and w["state"] == "pending", w
        assert 0.15 <= dt <= 1.5, dt
        # A long wait parked on one connection...
        c.send({"op": "wait", "id": 77, "approval_id": r["approval_id"],
                "timeout_ms": 2000})
        time.sleep(0.1)
        # ... blocks neither another connection ...
        other = d.client()
        t0 = time.time()
        h = other.hello()
        assert h["status"] == "ok", h
        assert time.time() - t0 < 0.5, time.time() - t0
        # ... nor a later request on the same connection (answers out of order).
        t0 = time.time()
        h = c.rpc({"op": "hello", "id": 78})
        assert h["id"] == 78 and h["status"] == "ok", h
        assert time.time() - t0 < 0.5, time.time() - t0
        w = c.recv()
        assert w["id"] == 77 and w["status"] == "ok" and w["state"] == "pending", w
        # A wait whose connection went away, then the decision: nothing breaks.
        gone = d.client()
        gone.send({"op": "wait", "id": 1, "approval_id": r["approval_id"],
                   "timeout_ms": 5000})
        time.sleep(0.1)
        gone.close()
        time.sleep(0.1)
        assert d.ctl("approve", r["approval_id"])[0] == 0
        assert d.client().hello()["status"] == "ok"
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x


@test
def wait_answers_promptly_on_approval():
    with approvals_daemon() as d:
        c = d.client()
        r = request_approval(d, c)
        out = {}

        def approve():
            time.sleep(0.3)
            out["ctl"] = d.ctl("approve", r["approval_id"])
        th = threading.Thread(target=approve)
        t0 = time.time()
        c.send({"op": "wait", "id": 5, "approval_id": r["approval_id"],
                "timeout_ms": 10000})
        th.start()
        w = c.recv()
        dt = time.time() - t0
        th.join()
        assert out["ctl"][0] == 0, out
        assert w["id"] == 5 and w["status"] == "ok" and w["state"] == "approved", w
        assert dt < 3, dt
        # Decided: a new wait answers at once.
        t0 = time.time()
        w = c.wait(r["approval_id"], 5000)
        assert w["state"] == "approved" and time.time() - t0 < 1, w
        assert count_lines(d.effects) == 0   # approving runs nothing by itself


@test
def wait_on_unknown_approval_is_an_error():
    with approvals_daemon() as d:
        w = d.client().wait("0" * 32, 100)
        assert w["status"] == "error", w


# -- approve, resume, replay ---------------------------------------------------

@test
def approve_then_resume_runs_once_and_audits_the_approver():
    args = {"ticket_id": "T-3"}
    with approvals_daemon() as d:
        c = d.client()
        r = request_approval(d, c, args, run_id="run-aud")
        rc, out, err = d.ctl("approve", r["approval_id"], "--note", "looks fine")
        assert rc == 0, (rc, out, err)
        # Decided once: a second decision and an unknown id are refused.
        assert d.ctl("approve", r["approval_id"])[0] == 1
        assert d.ctl("deny", r["approval_id"])[0] == 1
        assert d.ctl("approve", "0" * 32)[0] == 1
        assert d.ctl("approve", "nonsense")[0] == 1
        assert d.ctl_json("approvals") == []
        assert d.ctl_json("status")["pending_approvals"] == 0
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok", x
        assert x["replayed"] is False, x
        assert x["args_hash"] == args_hash(args), x
        assert x["result"] == {"recorded": True}, x
        assert count_lines(d.effects) == 1
        with open(d.effects) as f:
            assert f.read() == canonical_json(args).decode() + "\n"
        audit = read_audit(d)
        dec = [e for e in audit if e.get("event") == "decision"]
        assert len(dec) == 1, audit
        assert dec[0]["decision"] == "approved", dec
        assert dec[0]["approver"] == ROOT_WHO, dec
        assert dec[0].get("note") == "looks fine", dec
        calls = [e for e in audit if e.get("event") == "call" and e.get("tool") == "rec"
                 and e.get("decision") == "ok"]
        assert len(calls) == 1, audit
        assert calls[0].get("approver") == ROOT_WHO, calls
        assert calls[0].get("run_id") == "run-aud", calls


@test
def resume_twice_replays():
    with approvals_daemon() as d:
        c = d.client()
        r = request_approval(d, c)
        assert d.ctl("approve", r["approval_id"])[0] == 0
        x1 = c.resume(r["checkpoint"])
        x2 = d.client().resume(r["checkpoint"])
        assert x1["status"] == "ok" and x1["replayed"] is False, x1
        assert x2["status"] == "ok" and x2["replayed"] is True, x2
        assert x2["result"] == x1["result"], (x1, x2)
        assert count_lines(d.effects) == 1


@test
def concurrent_resumes_run_once():
    with approvals_daemon(require=["rec", "rec.slow"]) as d:
        c = d.client()
        r = request_approval(d, c, tool_name="rec.slow")
        assert d.ctl("approve", r["approval_id"])[0] == 0
        clients = [d.client() for _ in range(8)]
        for i, k in enumerate(clients):
            k.send({"op": "resume", "id": i + 1, "checkpoint": r["checkpoint"]})
        answers = [k.recv() for k in clients]
        assert all(a["status"] == "ok" for a in answers), answers
        assert sorted(a["replayed"] for a in answers) == [False] + [True] * 7, answers
        assert count_lines(d.effects + ".slow") == 1


# -- deny, expiry --------------------------------------------------------------

@test
def deny_with_note():
    with approvals_daemon() as d:
        c = d.client()
        r = request_approval(d, c)
        rc, out, err = d.ctl("deny", r["approval_id"], "--note", "not on a Friday")
        assert rc == 0, (rc, out, err)
        x = c.resume(r["checkpoint"])
        assert_denied(x, "approval_denied")
        assert "not on a Friday" in x["message"], x
        w = c.wait(r["approval_id"], 100)
        assert w["state"] == "denied", w
        rc, out, err = d.ctl("approve", r["approval_id"])
        assert rc == 1, (rc, out, err)
        assert_denied(c.resume(r["checkpoint"]), "approval_denied")
        assert count_lines(d.effects) == 0
        dec = [e for e in read_audit(d) if e.get("event") == "decision"]
        assert [e["decision"] for e in dec] == ["denied"], dec
        assert dec[0]["approver"] == ROOT_WHO and dec[0]["note"] == "not on a Friday", dec
        # A denial is final for that write in its run (PROTOCOL.md, "Runs
        # and stops"): asked again, the run stops, no new approval is asked.
        again = c.call("rec", {"ticket_id": "T-1", "n": 1}, run_id="run-1")
        assert again["status"] == "stopped", again
        assert again["stop_reason"] == "duplicate_write", again
        assert pending_ids(d) == []
        # A new run asks anew.
        assert c.call("rec", {"ticket_id": "T-1", "n": 1},
                      run_id="run-2")["status"] == "needs_approval"
        assert count_lines(d.effects) == 0


@test
def expiry():
    with approvals_daemon(ttl_s=1) as d:
        c = d.client()
        r = request_approval(d, c)
        assert r["expires_at"] <= time.time() + 2, r
        # A wait longer than the ttl answers at the expiry, saying so.
        t0 = time.time()
        w = c.wait(r["approval_id"], 5000)
        assert w["status"] == "ok" and w["state"] == "expired", w
        assert time.time() - t0 < 3.5, time.time() - t0
        time.sleep(max(0, r["expires_at"] - time.time()) + 0.1)
        assert_denied(c.resume(r["checkpoint"]), "approval_expired")
        rc, out, err = d.ctl("approve", r["approval_id"])
        assert rc == 1, (rc, out, err)
        assert d.ctl_json("approvals") == []
        assert d.ctl_json("status")["pending_approvals"] == 0
        assert_denied(c.resume(r["checkpoint"]), "approval_expired")
        assert count_lines(d.effects) == 0


@test
def decided_approval_does_not_expire():
    # expires_at is in whole seconds: a ttl of 1 s can leave well under a
    # second to approve in, which a slow (sanitizer) build did not make.
    with approvals_daemon(ttl_s=3) as d:
        c = d.client()
        r = request_approval(d, c)
        assert d.ctl("approve", r["approval_id"])[0] == 0
        time.sleep(max(0, r["expires_at"] - time.time()) + 0.2)
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        assert count_lines(d.effects) == 1



# -- other principals -----------------------------------------------------------

@test
def another_tenants_checkpoint_is_refused():
    need_root()
    with approvals_daemon() as d:
        c = d.client(AGENT_UID)
        r = request_approval(d, c)
        assert d.ctl("approve", r["approval_id"])[0] == 0
        g = d.client(OTHER_UID, OTHER_GID)
        assert g.hello()["tenant"] == "globex"
        x = g.resume(r["checkpoint"])
        assert_denied(x, "bad_checkpoint_signature")
        w = g.wait(r["approval_id"], 100)
        assert w["status"] == "error", w
        assert "state" not in w, w
        assert count_lines(d.effects) == 0
        # acme's own resume still works: globex consumed nothing.
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        assert count_lines(d.effects) == 1


@test
def agent_cannot_approve_even_its_own():
    need_root()
    with approvals_daemon() as d:
        c = d.client(AGENT_UID)
        r = request_approval(d, c)
        for cmd in (("approve", r["approval_id"]), ("deny", r["approval_id"]),
                    ("approve", r["approval_id"], "--note", "me")):
            rc, out, err = d.ctl(*cmd, uid=AGENT_UID)
            assert rc == 1, (cmd, rc, out, err)
        assert pending_ids(d) == [r["approval_id"]]
        x = c.resume(r["checkpoint"])
        assert x["status"] == "pending", x
        assert [e for e in read_audit(d) if e.get("event") == "decision"] == []
        assert count_lines(d.effects) == 0


# -- the policy is asked again at resume ----------------------------------------

@test
def kill_switch_after_approval():
    with approvals_daemon() as d:
        c = d.client()
        r = request_approval(d, c)
        assert d.ctl("approve", r["approval_id"])[0] == 0
        d.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: d.ctl_json("status")["writes_enabled"] is False,
                 what="writes disabled after SIGUSR1")
        assert_denied(c.resume(r["checkpoint"]), "writes_disabled")
        assert count_lines(d.effects) == 0
        # Writes back on: the approval still stands, runs once.
        assert d.ctl("writes", "enable")[0] == 0
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        assert count_lines(d.effects) == 1


@test
def kill_switch_by_ctl_after_approval():
    with approvals_daemon() as d:
        c = d.client()
        r = request_approval(d, c)
        assert d.ctl("approve", r["approval_id"])[0] == 0
        assert d.ctl("writes", "disable")[0] == 0
        assert_denied(c.resume(r["checkpoint"]), "writes_disabled")
        assert count_lines(d.effects) == 0


@test
def allowlist_changed_after_approval():
    with approvals_daemon() as d:
        c = d.client()
        r = request_approval(d, c)
        assert d.ctl("approve", r["approval_id"])[0] == 0
        c.close()
        d.stop()
        reconfigure(d, approvals_config(d.effects, allow_rec=False))
        d.start()
        x = d.client().resume(r["checkpoint"])
        assert_denied(x, "not_allowed")
        assert count_lines(d.effects) == 0


# -- retention --------------------------------------------------------------


@test
def expired_approvals_are_swept_after_retention():
    """An approval record goes writes.retention_s after its expiry, and so
    does its checkpoint: until then a resume says the approval expired,
    after that that the checkpoint has; never does anything run."""
    d = approvals_daemon(ttl_s=1)
    conf = dict(d.conf)
    conf["writes"] = dict(conf["writes"], retention_s=1)
    reconfigure(d, conf)
    with d:
        c = d.client()
        r = request_approval(d, c)
        time.sleep(max(0, r["expires_at"] - time.time()) + 0.1)
        x = c.resume(r["checkpoint"])
        assert_denied(x, "approval_expired")
        assert "no operator decided" in x["message"], x
        time.sleep(max(0, r["expires_at"] + 1 - time.time()) + 0.2)
        x = c.resume(r["checkpoint"])
        assert_denied(x, "approval_expired")
        assert "checkpoint has expired" in x["message"], x
        assert count_lines(d.effects) == 0


# -- a compromised gatewayd ------------------------------------------------------

@test
def compromised_gatewayd_cannot_skip_approval():
    link = ExecutorLink(base_config(), name="tg-appr-ex")
    effects = os.path.join(link.dir, "effects")
    conf = approvals_config(effects)
    link.configure(conf)
    T = msg_types()
    with link:
        r = link.call("rec", {"ticket_id": "X"}, "run-ex")
        assert r["status"] == "needs_approval", r
        assert count_lines(effects) == 0

        def resume_msg(cp, uid=AGENT_UID, gid=AGENT_GID, tenant="acme", env="prod"):
            msg = link.request("MSG_RESUME", {"conn": link.peer(uid, gid),
                                              "uid": uid, "gid": gid, "pid": os.getpid(),
                                              "tenant": tenant, "env": env,
                                              "checkpoint": cp})
            assert msg[0] == T["MSG_RESUME_ANS"], msg
            return msg[2]["response"]

        # Not approved yet: pending, even straight from "gatewayd".
        assert resume_msg(r["checkpoint"])["status"] == "pending"
        payload, raw, sig = checkpoint_split(r["checkpoint"])
        # A checkpoint signed by a key of our own, under the real kid and under ours.
        try:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa
            seed = os.urandom(32)
            forged = [checkpoint_sign_with(raw, seed),
                      checkpoint_sign_with(dict(payload, kid="ab" * 8), seed)]
        except ImportError:
            forged = []
        flipped = bytearray(sig)
        flipped[0] ^= 0x80
        forged.append(checkpoint_join(raw, bytes(flipped)))
        for cp in forged:
            x = resume_msg(cp)
            assert_denied(x, "bad_checkpoint_signature")
        # gatewayd naming a principal the uid does not map to.
        x = resume_msg(r["checkpoint"], tenant="globex", env="staging")
        assert x["status"] == "denied", x
        # Another principal's real checkpoint.
        x = resume_msg(r["checkpoint"], uid=OTHER_UID, gid=OTHER_GID,
                       tenant="globex", env="staging")
        assert_denied(x, "bad_checkpoint_signature")
        assert count_lines(effects) == 0
        # Approved by an operator on the control socket: then it runs, once.
        ans = ctl_raw(link.control_sock, {"op": "approve", "approval_id": r["approval_id"]})
        assert ans.get("ok") is True, ans
        x = resume_msg(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        x = resume_msg(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is True, x
        assert count_lines(effects) == 1


if __name__ == "__main__":
    main()
