"""Room in the write ledger is what is really free: once swept records
have freed their pages, a ledger that refused a write for lack of room
takes writes again, before and after a restart (the room check used to
read LMDB's high-water mark, which never goes down)."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def room_daemon():
    """A small ledger (1 MiB, at most 2 MiB), outcomes of up to 100000
    bytes (so the room check keeps 2 * (100000 + 65536) per write), and
    records that expire after 1 s."""
    d = Daemon(writes_config(), name="room")
    d.big_log = os.path.join(d.dir, "big.log")
    d.conf = writes_config(
        {"big": {"mode": "write", "exec": [tool("record-big"), d.big_log]}},
        writes={"enabled": True, "require_approval": False, "retention_s": 1},
        store={"map_size": 1048576, "max_map_size": 2097152},
        limits={"max_output": 100000})
    d.conf.setdefault("paths", {})["credentials_dir"] = d.creds
    write_config(d.config_path, d.conf)
    return d


def is_full_refusal(r):
    return (r["status"] == "error" and r["error"] == "unavailable" and
            "full" in r["message"] and "ledger" in r["message"])


def fill(d, c, tag, batch=8):
    """Writes, a batch side by side at a time, until one is refused for
    lack of room; returns how many ran.  Side by side, so that the
    ledger fills faster than the sweeper (every second, retention 1 s)
    frees it on a busy machine."""
    ran = 0
    for b in range(25):
        before = count_lines(d.big_log)
        calls = [("big", {"tag": tag, "i": b * batch + k, "n": 60000},
                  "%s%d" % (tag, b * batch + k)) for k in range(batch)]
        answers = concurrent_calls(d, calls)
        ok = [r for r in answers if r["status"] == "ok"]
        for r in answers:
            if r["status"] == "ok":
                assert r["replayed"] is False, {k: v for k, v in r.items() if k != "result"}
            else:
                assert is_full_refusal(r), r
        # Exactly the writes answered ok ran; none refused did.
        assert count_lines(d.big_log) == before + len(ok), "a refused write ran"
        ran += len(ok)
        if len(ok) < batch:
            return ran
    raise AssertionError("the ledger never filled up")


def write_once_swept(d, c, tag, timeout=30):
    """A new write, retried while the ledger says it is full: the sweeper
    (every second, retention 1 s) must free the room within timeout."""
    deadline = time.time() + timeout
    n = 0
    while True:
        before = count_lines(d.big_log)
        r = c.call("big", {"tag": tag, "n": 60000}, run_id="%s%d" % (tag, n))
        n += 1
        if r["status"] == "ok":
            assert r["replayed"] is False
            assert count_lines(d.big_log) == before + 1
            return
        assert is_full_refusal(r), r
        assert count_lines(d.big_log) == before, "a refused write ran"
        assert time.time() < deadline, (
            "the ledger stayed full after every record expired:\n" +
            d.read_log()[-2000:])
        time.sleep(0.5)


@test
def swept_ledger_takes_writes_again_and_after_restart():
    d = room_daemon()
    try:
        d.start()
        c = d.client()
        ran = fill(d, c, "a")
        assert ran >= 3, ran
        write_once_swept(d, c, "after-sweep")
        # Full again, swept again, and the room survives a restart.
        fill(d, c, "b")
        c.close()
        d.stop()
        d.start()
        c = d.client()
        write_once_swept(d, c, "after-restart")
        # No write answered ok was left unrecorded: nothing is in doubt.
        assert d.ctl_json("ledger") == [], d.ctl_json("ledger")
        c.close()
        d.stop()
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
