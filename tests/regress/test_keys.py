"""Checkpoint signing keys: gatewayctl keys rotate (operators only), and
a rotated-out key is never dropped while it must still verify, for one
approvals.ttl_s and no longer."""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


@test
def seventy_rotations_keep_a_pending_checkpoint():
    with approvals_daemon(name="tg-keys") as d:
        c = d.client()
        r = c.call("rec", {"ticket_id": "T-1"}, run_id="run-k")
        assert r["status"] == "needs_approval", r
        for i in range(70):
            rc, out, err = d.ctl("keys", "rotate")
            assert rc == 0, (i, rc, out, err)
        assert d.ctl("approve", r["approval_id"])[0] == 0
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        assert count_lines(d.effects) == 1
        # And after a restart, read back from the file.
        c.close()
        d.stop()
        d.start()
        x = d.client().resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is True, x
        assert count_lines(d.effects) == 1


@test
def a_full_key_table_refuses_rotation():
    """At the bound, rotating would drop a key that must still verify: the
    rotation is refused and every key keeps verifying."""
    d = approvals_daemon(name="tg-keys-full")
    try:
        d.start()
        c = d.client()
        r = c.call("rec", {"ticket_id": "T-1"}, run_id="run-k")
        assert r["status"] == "needs_approval", r
        rc, out, err = d.ctl("keys", "rotate")
        assert rc == 0, (rc, out, err)
        d.stop()
        # Fill the rotated-out keys to the bound with keys valid for an hour.
        old = os.path.join(d.state, "checkpoint.key.old")
        data = open(old, "rb").read()
        assert len(data) == 72, len(data)
        exp = struct.pack(">Q", int(time.time()) + 3600)
        with open(old, "ab") as f:
            for _ in range(1023):
                f.write(os.urandom(64) + exp)
        d.start()
        key = open(os.path.join(d.state, "checkpoint.key"), "rb").read()
        rc, out, err = d.ctl("keys", "rotate")
        assert rc != 0, (rc, out, err)
        assert "rotated-out keys" in out + err, (out, err)
        assert open(os.path.join(d.state, "checkpoint.key"), "rb").read() == key
        assert open(old, "rb").read()[:72] == data
        assert d.ctl("approve", r["approval_id"])[0] == 0
        x = d.client().resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        d.stop()
    finally:
        d.cleanup()


@test
def gatewayctl_keys_rotate():
    with approvals_daemon() as d:
        rc, out, err = d.ctl("keys", "rotate")
        assert rc == 0, (rc, out, err)
        rc, out, err = d.ctl("keys", "rotate", uid=AGENT_UID) if IS_ROOT else (1, "", "")
        assert rc == 1, (rc, out, err)

@test
def key_rotation_keeps_old_checkpoints():
    """Rotation through the control socket (the op gatewayctl keys rotate sends)."""
    with approvals_daemon() as d:
        c = d.client()
        keyfile = os.path.join(d.state, "checkpoint.key")
        before = open(keyfile, "rb").read()
        r = request_approval(d, c, args={"k": 1})
        ans = ctl_raw(d.control_sock, {"op": "keys_rotate"})
        assert ans.get("ok") is True, ans
        assert open(keyfile, "rb").read() != before
        assert os.stat(keyfile).st_mode & 0o777 == 0o600
        old = os.path.join(d.state, "checkpoint.key.old")
        if os.path.exists(old):
            assert os.stat(old).st_mode & 0o777 == 0o600
            assert open(old, "rb").read()[:64] == before
        audit = [e for e in read_audit(d) if e.get("event") == "keys_rotate"]
        assert len(audit) == 1 and audit[0].get("approver") == ROOT_WHO, audit
        r2 = request_approval(d, c, args={"k": 2})
        assert checkpoint_split(r2["checkpoint"])[0]["kid"] != \
            checkpoint_split(r["checkpoint"])[0]["kid"], (r, r2)
        for a in (r, r2):
            assert d.ctl("approve", a["approval_id"])[0] == 0
        for a in (r, r2):
            x = c.resume(a["checkpoint"])
            assert x["status"] == "ok" and x["replayed"] is False, x
        assert count_lines(d.effects) == 2
        # The old key still verifies after a restart too.
        c.close()
        d.stop()
        d.start()
        x = d.client().resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is True, x
        assert count_lines(d.effects) == 2

@test
def two_rotations_keep_a_pending_checkpoint():
    """A checkpoint handed out before two rotations, within its ttl, is
    still a valid ticket once an operator approves it."""
    with approvals_daemon() as d:
        c = d.client()
        r = request_approval(d, c)
        for _ in range(2):
            ans = ctl_raw(d.control_sock, {"op": "keys_rotate"})
            assert ans.get("ok") is True, ans
        assert d.ctl("approve", r["approval_id"])[0] == 0
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        assert count_lines(d.effects) == 1

@test
def a_rotated_key_verifies_for_one_ttl_only():
    """The issue: a rotated-out key still verifies for one approvals.ttl_s.
    After that its checkpoints are refused, even an approved one (the
    operator approves again by having the agent call again)."""
    # A ttl of 1 s (expires_at is in whole seconds) left a slow
    # (sanitizer) build too little time to approve before it expired.
    with approvals_daemon(ttl_s=3) as d:
        c = d.client()
        r = request_approval(d, c)
        assert d.ctl("approve", r["approval_id"])[0] == 0
        ans = ctl_raw(d.control_sock, {"op": "keys_rotate"})
        assert ans.get("ok") is True, ans
        time.sleep(3.3)
        x = c.resume(r["checkpoint"])
        assert x["status"] == "denied", x
        assert x["stop_reason"] == "bad_checkpoint_signature", x
        assert count_lines(d.effects) == 0


if __name__ == "__main__":
    main()
