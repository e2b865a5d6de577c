"""A full audit log: calls are refused error/unavailable (the log fails
closed), both processes stay up, no line is left torn, and once there is
room again calls are served and the seqs go on without a gap."""
import contextlib
import os
import resource
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def records(path):
    """Every line of the log, parsed: a torn line fails the test here."""
    with open(path, "rb") as f:
        data = f.read()
    assert data == b"" or data.endswith(b"\n"), "torn last line: %r" % data[-200:]
    return [json.loads(line) for line in data.splitlines()]


def assert_consecutive(recs):
    """The records' seqs go on without a gap: none was taken by a record
    that is not in the log."""
    seqs = [x["seq"] for x in recs]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def fill(path):
    """Write to path until the filesystem refuses; returns bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 64, 1):
            while True:
                try:
                    n += f.write(b"x" * size)
                except OSError:
                    break
    return n


@contextlib.contextmanager
def no_room_past(d, log):
    """For the block, the executor's RLIMIT_FSIZE is 100 bytes past the
    log's end (less than a record); yields the log's size then.  The soft
    limit only: raising a hard one back may be refused."""
    pid = d.executor_pid()
    size = os.path.getsize(log)
    hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (size + 100, hard))
    try:
        yield size
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))


def log_past_ledger(d, c, log):
    """RLIMIT_FSIZE limits every file of the executor: for a limit just past
    the log's end to refuse the log alone, the ledger's file must end well
    before it.  gatewayd's refusals fill the log."""
    ledger = os.path.join(d.state, "db", "data.mdb")
    while os.path.getsize(log) < 4 * os.path.getsize(ledger):
        for i in range(500):
            c.send({"op": "call", "id": i, "run_id": "fill", "step_id": i,
                    "tool": "not.allowed", "args": {}})
        for i in range(500):
            assert c.recv()["status"] == "denied"
        time.sleep(0.1)


def alive(d):
    return d.proc.poll() is None and os.path.exists("/proc/%d" % d.executor_pid())


def mounted_state(d, size="1m"):
    os.makedirs(d.state, mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size,
                    "tmpfs", d.state], check=True)


def unmount(d):
    subprocess.run(["umount", "-l", d.state], check=False)


@test
def a_full_audit_log_fails_closed_and_recovers():
    need_root()
    d = Daemon(base_config(writes={"enabled": True}), name="tg-auditfull")
    mounted_state(d)
    try:
        d.start()
        log = os.path.join(d.state, "audit.log")
        filler = os.path.join(d.state, "filler")
        c = d.client()
        assert c.call("echo", {"before": 1}, run_id="full")["status"] == "ok"
        r = c.call("ticket.close", {"t": 1}, run_id="full")
        assert r["status"] == "ok", r
        fill(filler)
        # The log's last page may still take a few records; then none fits.
        for i in range(1000):
            r = c.call("echo", {"full": "x" * 200, "i": i}, run_id="full")
            if r["status"] != "ok":
                break
        assert r["status"] == "error" and r["error"] == "unavailable", r
        # From then on every call is refused, none runs.
        for i in range(20):
            r = c.call("echo", {"full": "x" * 200, "i": -i}, run_id="full")
            assert r["status"] == "error" and r["error"] == "unavailable", r
        r = c.call("ticket.close", {"t": 2}, run_id="full")
        assert r["status"] == "error" and r["error"] == "unavailable", r
        # logrotate's SIGHUP while it fails: the log is reopened, still down.
        os.kill(d.executor_pid(), signal.SIGHUP)
        wait_for(lambda: d.read_log().count("reopened") == 1, what="the reopen")
        r = c.call("echo", {"after_hup": 1}, run_id="full")
        assert r["status"] == "error" and r["error"] == "unavailable", r
        assert alive(d), d.read_log()
        st = d.ctl_json("status")
        assert st["audit"].startswith("failing"), st
        recs = records(log)
        assert not any(x.get("idempotency_key", "").endswith(args_hash({"t": 2}))
                       for x in recs), recs
        # Room again: the next calls are served, with no operator action.
        os.unlink(filler)
        r = wait_for(lambda: (lambda x: x if x["status"] == "ok" else None)(
            c.call("echo", {"after": 1}, run_id="full2")), what="a served call")
        r = c.call("ticket.close", {"t": 3}, run_id="full2")
        assert r["status"] == "ok", r
        # The write refused for the audit log left nothing in the ledger:
        # it runs now for the first time (not a replay, not in doubt).
        r = c.call("ticket.close", {"t": 2}, run_id="full3")
        assert r["status"] == "ok" and r["replayed"] is False, r
        assert alive(d), d.read_log()
        assert d.ctl_json("status")["audit"] == "ok"
        recs = records(log)
        assert_consecutive(recs)
        assert any(x.get("run_id") == "full2" and x.get("decision") == "ok" for x in recs)
        out = d.read_log()
        assert out.count("audit: cannot write") == 1, out
        assert out.count("is written again") == 1, out
    finally:
        try:
            d.stop()
        finally:
            unmount(d)
            d.cleanup()


@test
def a_file_size_limit_fails_closed_without_a_torn_line():
    """EFBIG: the executor's RLIMIT_FSIZE just past the log's end.  A record
    that crosses it is written in part (a short write): cut back."""
    need_root()
    with Daemon(base_config(writes={"enabled": True}), name="tg-auditfsize") as d:
        log = os.path.join(d.state, "audit.log")
        c = d.client()
        assert c.call("echo", {"before": 1}, run_id="fs")["status"] == "ok"
        with no_room_past(d, log) as size:
            # A write first, while the log is still up: its intent record
            # does not fit, so nothing goes to the ledger and no tool runs.
            r = c.call("ticket.close", {"w": 1}, run_id="fs")
            assert r["status"] == "error" and r["error"] == "unavailable", r
            for i in range(5):
                r = c.call("echo", {"big": "x" * 300, "i": i}, run_id="fs")
                assert r["status"] == "error" and r["error"] == "unavailable", r
            assert alive(d), d.read_log()
            assert os.path.getsize(log) == size, (os.path.getsize(log), size)
            records(log)
        wait_for(lambda: c.call("echo", {"after": 1}, run_id="fs2")["status"] == "ok",
                 what="a served call")
        r = c.call("ticket.close", {"w": 1}, run_id="fs3")
        assert r["status"] == "ok" and r["replayed"] is False, r
        recs = records(log)
        assert_consecutive(recs)
        assert recs[-3]["run_id"] == "fs2", recs[-3]
        # The write's intent, durable before it ran, then its outcome.
        assert [(x["event"], x.get("decision")) for x in recs[-2:]] == \
            [("intent", "admitted"), ("call", "ok")], recs[-2:]
        assert recs[-2]["idempotency_key"] == r["idempotency_key"], recs[-2]
        # (The failure's own log line went to stderr, a file past the
        # limit too; the recovery's is there.)
        assert d.read_log().count("is written again") == 1, d.read_log()


@test
def an_answer_waits_for_its_record_in_the_turns_write():
    """A read's record and a replay's go in the loop turn's one write, and
    their answers wait for it (gwout.c).  With the log up but that write
    failing (RLIMIT_FSIZE just past the log), the read ran and the write
    was replayed, yet each is answered error/unavailable, withheld: no
    result leaves without its record, and no line is left in the log."""
    need_root()
    with Daemon(base_config(writes={"enabled": True}), name="tg-auditturn") as d:
        log = os.path.join(d.state, "audit.log")
        c = d.client()
        w = c.call("ticket.close", {"t": 1}, run_id="turn")
        assert w["status"] == "ok" and w["replayed"] is False, w
        asks = [("echo", {"i": 1}, "result is withheld"),
                ("ticket.close", {"t": 1}, "replay is withheld")]
        for n, (tool, args, withheld) in enumerate(asks):
            # The log is up: this call's record is the first to fail.
            r = wait_for(lambda: (lambda x: x if x["status"] == "ok" else None)(
                c.call("echo", {"up": n}, run_id="up%d" % n)), what="a served call")
            with no_room_past(d, log) as size:
                r = c.call(tool, args, run_id="turn%d" % n)
                assert r["status"] == "error" and r["error"] == "unavailable", r
                assert withheld in r["message"] and "result" not in r, r
                assert os.path.getsize(log) == size, (os.path.getsize(log), size)
        wait_for(lambda: c.call("echo", {"after": 1}, run_id="after")["status"] == "ok",
                 what="a served call")
        r = c.call("ticket.close", {"t": 1}, run_id="again")
        assert r["status"] == "ok" and r["replayed"] is True, r
        recs = records(log)
        assert_consecutive(recs)
        assert recs[-1].get("replayed") is True, recs[-1]


@test
def a_ledger_batchs_records_go_in_whole_or_not_at_all():
    """The intent records of a ledger batch are one append (audit_hold).
    With room for one record but not a batch, an append that fails leaves
    nothing and every intent of its batch is refused: no write runs whose
    intent record is not in the log.  Once there is room, the same writes
    run, each once, and those that ran before are replayed."""
    need_root()
    with Daemon(base_config(writes={"enabled": True}), name="tg-auditledger") as d:
        log = os.path.join(d.state, "audit.log")
        c = d.client()
        assert c.call("ticket.close", {"warm": 1}, run_id="lb")["status"] == "ok"
        log_past_ledger(d, c, log)
        intent = len(json.dumps([x for x in records(log) if x["event"] == "intent"][-1]))
        clients = [d.client() for _ in range(16)]
        pid = d.executor_pid()
        size = os.path.getsize(log)
        hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]
        # Room for one intent record and a half, not for two.
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (size + intent * 3 // 2, hard))
        try:
            for i, cl in enumerate(clients):
                cl.send({"op": "call", "id": 1, "run_id": "lb%d" % i,
                         "step_id": 1, "tool": "ticket.close", "args": {"n": i}})
            got = [cl.recv() for cl in clients]
            ran = [i for i, r in enumerate(got) if r["status"] == "ok"]
            assert all(r["status"] == "ok" or r["error"] == "unavailable"
                       for r in got), got
            assert len(ran) <= 1, got
            recs = records(log)
            logged = sorted(int(x["run_id"][2:]) for x in recs
                            if x["event"] == "intent" and x["run_id"] != "lb")
            assert logged == ran, (logged, ran)
        finally:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))
        wait_for(lambda: c.call("echo", {"after": 1}, run_id="lb-after")["status"] == "ok",
                 what="a served call")
        for i, cl in enumerate(clients):
            r = cl.call("ticket.close", {"n": i}, run_id="lb%d-again" % i)
            assert r["status"] == "ok" and r["replayed"] is (i in ran), (i, ran, r)
        recs = records(log)
        assert_consecutive(recs)
        intents = [x["idempotency_key"] for x in recs if x["event"] == "intent"]
        assert len(intents) == len(set(intents)) == 17, intents


@test
def a_waiters_replay_waits_for_the_outcomes_append():
    """A write's outcome is answered to the call that ran it and, as a
    replay, to the same write asked meanwhile by another run (a waiter).
    Both answers' records are in the ledger batch's one append: when it
    fails, the write that ran is still answered ok (it ran, its intent is
    in the log, its outcome in the ledger), but the waiter's replay is
    withheld, never given without its record."""
    need_root()
    conf = writes_config({"hold.w": {"mode": "write", "exec": [tool("hold")]}})
    with Daemon(conf, name="tg-auditwaiter") as d:
        log = os.path.join(d.state, "audit.log")
        mark, release = os.path.join(d.dir, "mark"), os.path.join(d.dir, "release")
        args = {"mark": mark, "release": release}
        c = d.client()
        log_past_ledger(d, c, log)
        first, waiter = d.client(), d.client()
        first.send({"op": "call", "id": 1, "run_id": "wa", "step_id": 1,
                    "tool": "hold.w", "args": args})
        wait_for(lambda: os.path.exists(mark), what="the write to run")
        waiter.send({"op": "call", "id": 1, "run_id": "wb", "step_id": 1,
                     "tool": "hold.w", "args": args})
        time.sleep(0.3)     # the waiter's call reaches the executor
        with no_room_past(d, log) as size:
            open(release, "w").close()
            r = first.recv()
            assert r["status"] == "ok" and r["replayed"] is False, r
            w = waiter.recv()
            assert w["status"] == "error" and w["error"] == "unavailable", w
            assert "replay is withheld" in w["message"] and "result" not in w, w
            assert os.path.getsize(log) == size, (os.path.getsize(log), size)
        wait_for(lambda: c.call("echo", {"after": 1}, run_id="wc")["status"] == "ok",
                 what="a served call")
        r = c.call("hold.w", args, run_id="wd")
        assert r["status"] == "ok" and r["replayed"] is True, r


@test
def gatewayds_refusals_go_in_whole_or_not_at_all():
    """The refusals gatewayd reports are appended a loop turn at a time
    (audit.c's queue): a batch past RLIMIT_FSIZE leaves no line and takes
    no seq; once there is room they are in, in the order they were
    answered, the seqs consecutive with the records around them."""
    need_root()
    with Daemon(base_config(), name="tg-auditbatch") as d:
        log = os.path.join(d.state, "audit.log")
        c = d.client()
        assert c.call("echo", {"before": 1}, run_id="b")["status"] == "ok"
        with no_room_past(d, log) as size:
            for i in range(100):
                c.send({"op": "call", "id": i, "run_id": "b-full",
                        "step_id": i, "tool": "not.allowed", "args": {}})
            for i in range(100):
                r = c.recv()
                assert r["id"] == i and r["status"] == "denied", r
            wait_for(lambda: d.ctl_json("status")["audit"].startswith("failing"),
                     what="the log to be down")
            assert os.path.getsize(log) == size, (os.path.getsize(log), size)
            records(log)
            # An allowed call fails closed, as for any record.
            r = c.call("echo", {"during": 1}, run_id="b")
            assert r["status"] == "error" and r["error"] == "unavailable", r
        for i in range(100):
            c.send({"op": "call", "id": i, "run_id": "b-ok", "step_id": i,
                    "tool": "not.allowed", "args": {}})
        for i in range(100):
            r = c.recv()
            assert r["id"] == i and r["status"] == "denied", r
        wait_for(lambda: sum(x.get("run_id") == "b-ok" for x in records(log)) == 100,
                 what="the refusals in the log")
        assert c.call("echo", {"after": 1}, run_id="b")["status"] == "ok"
        wait_for(lambda: d.ctl_json("status")["audit"] == "ok", what="the log up")
        recs = records(log)
        assert_consecutive(recs)
        assert not any(x.get("run_id") == "b-full" for x in recs), recs
        mine = [x for x in recs if x.get("run_id") == "b-ok"]
        assert [x["step_id"] for x in mine] == [str(i) for i in range(100)], mine
        assert all(x["event"] == "gatewayd" and x["decision"] == "denied" and
                   x["reported_by"] == "gatewayd" for x in mine), mine[0]
        assert recs[-1].get("run_id") == "b" and recs[-1]["decision"] == "ok", recs[-1]


@test
def a_torn_last_line_is_cut_at_start():
    d = Daemon(name="tg-audittorn")
    try:
        d.start()
        d.client().call("echo", {"a": 1}, run_id="torn")
        d.stop()
        log = os.path.join(d.state, "audit.log")
        last = records(log)[-1]["seq"]
        with open(log, "ab") as f:
            f.write(b'{"seq":999999,"ts_ms":1,"ev')
        d.start()
        d.client().call("echo", {"b": 1}, run_id="torn2")
        d.stop()
        # The last record is the head written at shutdown.
        recs = [r for r in records(log) if r.get("event") != "head"]
        assert recs[-1]["run_id"] == "torn2" and recs[-1]["seq"] > last, recs[-2:]
        # The cut line took no place in the chain.
        assert d.ctl("audit", "verify", "--log", log)[0] == 0
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
