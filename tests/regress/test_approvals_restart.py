"""Approvals across restarts of the daemon pair: the approval record, the
decision, the executed write and the signing key all live in the state dir."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def request(d, c, args=None, run_id="run-1"):
    r = c.call("rec", {"ticket_id": "T-1"} if args is None else args, run_id=run_id)
    assert r["status"] == "needs_approval", r
    return r


def key_of(d):
    path = os.path.join(d.state, "checkpoint.key")
    st = os.stat(path)
    assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
    with open(path, "rb") as f:
        return f.read()


def restart(d):
    d.stop()
    d.start()


@test
def restart_between_request_and_approval():
    with approvals_daemon() as d:
        key = key_of(d)
        assert len(key) >= 32
        r = request(d, d.client())
        restart(d)
        assert key_of(d) == key
        items = d.ctl_json("approvals")
        assert [a["approval_id"] for a in items] == [r["approval_id"]], items
        assert items[0]["expires_at"] == r["expires_at"], items
        assert d.ctl_json("status")["pending_approvals"] == 1
        c = d.client()
        p = c.resume(r["checkpoint"])
        assert p["status"] == "pending" and p["approval_id"] == r["approval_id"], p
        assert d.ctl("approve", r["approval_id"])[0] == 0
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        assert count_lines(d.effects) == 1
        restart(d)
        assert key_of(d) == key


@test
def restart_between_approval_and_resume():
    with approvals_daemon() as d:
        key = key_of(d)
        r = request(d, d.client())
        assert d.ctl("approve", r["approval_id"], "--note", "ok")[0] == 0
        restart(d)
        assert key_of(d) == key
        assert d.ctl_json("approvals") == []
        c = d.client()
        w = c.wait(r["approval_id"], 100)
        assert w["status"] == "ok" and w["state"] == "approved", w
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        assert count_lines(d.effects) == 1
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is True, x
        assert count_lines(d.effects) == 1


@test
def restart_after_the_write_ran():
    with approvals_daemon() as d:
        c = d.client()
        r = request(d, c)
        assert d.ctl("approve", r["approval_id"])[0] == 0
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        c.close()
        restart(d)
        x2 = d.client().resume(r["checkpoint"])
        assert x2["status"] == "ok" and x2["replayed"] is True, x2
        assert x2["result"] == x["result"], (x, x2)
        assert count_lines(d.effects) == 1


@test
def denial_survives_restart():
    with approvals_daemon() as d:
        r = request(d, d.client())
        assert d.ctl("deny", r["approval_id"], "--note", "no")[0] == 0
        restart(d)
        x = d.client().resume(r["checkpoint"])
        assert x["status"] == "denied" and x["stop_reason"] == "approval_denied", x
        assert d.ctl("approve", r["approval_id"])[0] == 1
        assert count_lines(d.effects) == 0


@test
def expiry_while_stopped():
    with approvals_daemon(ttl_s=1) as d:
        r = request(d, d.client())
        d.stop()
        time.sleep(max(0, r["expires_at"] - time.time()) + 0.1)
        d.start()
        x = d.client().resume(r["checkpoint"])
        assert x["status"] == "denied" and x["stop_reason"] == "approval_expired", x
        assert d.ctl_json("approvals") == []
        assert d.ctl("approve", r["approval_id"])[0] == 1
        assert count_lines(d.effects) == 0


@test
def kill_switch_kept_across_restart_for_approved_writes():
    with approvals_daemon() as d:
        r = request(d, d.client())
        assert d.ctl("approve", r["approval_id"])[0] == 0
        d.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: d.ctl_json("status")["writes_enabled"] is False,
                 what="writes disabled")
        restart(d)
        x = d.client().resume(r["checkpoint"])
        assert x["status"] == "denied" and x["stop_reason"] == "writes_disabled", x
        assert count_lines(d.effects) == 0
        assert d.ctl("writes", "enable")[0] == 0
        x = d.client().resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        assert count_lines(d.effects) == 1


@test
def stop_with_a_parked_wait_is_prompt():
    with approvals_daemon() as d:
        c = d.client()
        r = request(d, c)
        c.send({"op": "wait", "id": 9, "approval_id": r["approval_id"],
                "timeout_ms": 120000})
        time.sleep(0.2)
        t0 = time.time()
        d.stop()
        assert time.time() - t0 < 5, time.time() - t0
        d.start()
        assert [a["approval_id"] for a in d.ctl_json("approvals")] == [r["approval_id"]]


if __name__ == "__main__":
    main()
