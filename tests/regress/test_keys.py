"""Checkpoint signing keys: a rotated-out key is never dropped while it
must still verify."""
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


if __name__ == "__main__":
    main()
