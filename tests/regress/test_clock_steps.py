"""Clock steps: the executor's wall clock jumping (libfaketime) neither
sweeps live idempotency keys (a retry replays, never runs again) nor
sends the audit log's seq backwards across a restart.  Each failed on
the code before its fix.  (Moved from test_exactly_once.py: one
behaviour a script.)"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

class FakeClock:
    """The executor's wall clock, steppable: Debian's libfaketime preloaded
    into the executor alone (through gatewayd's --executor), reading its
    offset from a file on every call; CLOCK_MONOTONIC is left alone."""

    def __init__(self, d):
        if not os.path.exists(FAKETIME_LIB):
            raise AssertionError("libfaketime is not installed (%s): make deps"
                                 " installs it; this test cannot run without it"
                                 % FAKETIME_LIB)
        self.file = os.path.join(d.dir, "faketime")
        self.set("+0")
        self.wrapper = os.path.join(d.dir, "executor-faketime")
        with open(self.wrapper, "w") as f:
            # ASan wants to be first among the libraries; libfaketime
            # intercepts nothing ASan does, so the order check is waived.
            f.write("#!/bin/sh\n"
                    "ASAN_OPTIONS=$ASAN_OPTIONS:verify_asan_link_order=0 "
                    "LD_PRELOAD=%s FAKETIME_TIMESTAMP_FILE=%s FAKETIME_NO_CACHE=1 "
                    "FAKETIME_DONT_FAKE_MONOTONIC=1 exec %s \"$@\"\n"
                    % (FAKETIME_LIB, self.file, EXECUTOR))
        os.chmod(self.wrapper, 0o755)

    def set(self, offset):
        with open(self.file + ".tmp", "w") as f:
            f.write(offset + "\n")
        os.rename(self.file + ".tmp", self.file)

    def args(self):
        return ["--executor", self.wrapper]

def executor_clock_ms(d):
    """The wall clock as the executor sees it, from its newest audit record."""
    return read_audit(d)[-1]["ts_ms"]

@test
def a_clock_step_forward_does_not_sweep_live_keys():
    """The wall clock jumps 2 h forward with writes.retention_s 1 h: before,
    the sweeper deleted the keys and a retry ran the write again."""
    need_root()
    d = approvals_daemon(require=False)
    conf = dict(d.conf)
    conf["writes"] = dict(conf["writes"], retention_s=3600)
    reconfigure(d, conf)
    clock = FakeClock(d)
    d.start(extra_args=clock.args())
    try:
        c = d.client()
        r = c.call("rec", {"ticket_id": "T-3"}, run_id="run-a")
        assert r["status"] == "ok" and r["replayed"] is False, r
        t0 = executor_clock_ms(d)
        clock.set("+2h")
        time.sleep(2.5)     # the sweeper runs every second
        e = c.call("echo", {}, run_id="run-b")
        assert e["status"] == "ok", e
        assert executor_clock_ms(d) - t0 > 7000 * 1000, "the clock did not step"
        r2 = c.call("rec", {"ticket_id": "T-3"}, run_id="run-b")
        assert r2["status"] == "ok" and r2["replayed"] is True, r2
        clock.set("-2h")
        time.sleep(1.5)
        r3 = c.call("rec", {"ticket_id": "T-3"}, run_id="run-c")
        assert r3["status"] == "ok" and r3["replayed"] is True, r3
        assert count_lines(d.effects) == 1
        d.stop()
    finally:
        d.cleanup()

@test
def audit_seq_never_goes_back_after_a_restart_with_the_clock_behind():
    need_root()
    d = approvals_daemon(require=False)
    clock = FakeClock(d)
    d.start(extra_args=clock.args())
    try:
        c = d.client()
        for i in range(3):
            assert c.call("rec", {"i": i}, run_id="run-q")["status"] == "ok"
        c.close()
        d.stop()
        clock.set("-1h")
        d.start(extra_args=clock.args())
        c = d.client()
        for i in range(3):
            assert c.call("rec", {"i": i + 10}, run_id="run-q2")["status"] == "ok"
        c.close()
        d.stop()
        seqs = [rec["seq"] for rec in read_audit(d)]
        assert len(seqs) >= 6, seqs
        assert all(b > a for a, b in zip(seqs, seqs[1:])), seqs
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
