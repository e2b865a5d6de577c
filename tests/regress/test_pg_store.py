"""The store shared by many hosts (store.backend: postgresql): two daemon
pairs on two state dirs stand in for two hosts, on one real PostgreSQL
the test starts itself (tglib/pg.py).  Their write tools append to one
effects file, so a write that ran twice shows as two lines."""
import json
import os
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403
from tglib.pg import Postgres


def host_conf(pg, effects, host_id):
    conf = writes_config(tools={
        "rec": {"mode": "write", "exec": [tool("record"), effects]},
        "rec.hold": {"mode": "write", "exec": [tool("hold-record"), effects]},
        "rec.appr": {"mode": "write", "exec": [tool("record"), effects]},
        # Compensated by rec.undo, or by rec.undo.appr (approval first);
        # the undos append to effects + ".undo".
        "rec.c": {"mode": "write", "exec": [tool("record"), effects],
                  "compensate": "rec.undo"},
        "rec.c2": {"mode": "write", "exec": [tool("record"), effects],
                   "compensate": "rec.undo.appr"},
        "rec.undo": {"mode": "write", "exec": [tool("record"), effects + ".undo"]},
        "rec.undo.appr": {"mode": "write",
                          "exec": [tool("record"), effects + ".undo"]}})
    conf["writes"] = dict(conf["writes"],
                          require_approval=["rec.appr", "rec.undo.appr"])
    conf["store"] = {"backend": "postgresql", "dsn": pg.dsn, "host_id": host_id}
    return conf


class Fleet:
    """A PostgreSQL and two hosts on it (a, b); retention_s and the audit
    section for both."""

    def __init__(self, retention_s=None, audit=None):
        self.pg = Postgres().start()
        self.hosts = []
        try:
            self.a = self.host("host-a")
            self.b = self.host("host-b")
            self.effects = os.path.join(self.a.dir, "effects")
            for h in self.hosts:
                conf = host_conf(self.pg, self.effects, h.host_id)
                if retention_s is not None:
                    conf["writes"] = dict(conf["writes"], retention_s=retention_s)
                if audit is not None:
                    conf["audit"] = audit
                h.metrics_sock = os.path.join(h.dir, "metrics.sock")
                conf["metrics"] = {"listen": "unix:" + h.metrics_sock}
                reconfigure(h, conf)
                h.start()
            for h in self.hosts:
                wait_store_up(h)
        except BaseException:
            self.close()
            raise

    def host(self, name):
        d = Daemon(base_config(), name="tg-" + name)
        d.host_id = name
        self.hosts.append(d)
        return d

    def close(self):
        for h in self.hosts:
            try:
                if h.proc is not None and h.proc.poll() is None:
                    h.stop(expect_rc=None)
            finally:
                h.cleanup()
        self.pg.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def metric(d, name):
    """The value of an unlabelled series on d's /metrics."""
    _, body = http_unix(d.metrics_sock, "GET /metrics HTTP/1.0\r\n\r\n")
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("%s not in the metrics" % name)


def store_state(d):
    return d.ctl_json("status").get("store", "")


def wait_store_up(d, timeout=15):
    wait_for(lambda: store_state(d) == "up", timeout, "the shared store to be up")


_n = [0]


def fresh(prefix="t"):
    _n[0] += 1
    return "%s-%d-%d" % (prefix, os.getpid(), _n[0])


@test
def status_and_metrics_show_the_shared_store():
    with Fleet() as f:
        s = f.a.ctl_json("status")
        assert s["store_backend"] == "postgresql", s
        assert s["store_host_id"] == "host-a", s
        assert s["store"] == "up", s
        assert metric(f.a, "toolgate_store_up") == 1
        assert metric(f.a, "toolgate_store_connection_losses_total") == 0
        rows = f.pg.psql("SELECT host_id FROM tg_hosts ORDER BY host_id")
        assert rows == [["host-a"], ["host-b"]], rows
        assert f.pg.psql("SELECT max(version) FROM tg_schema_version") == [["4"]]


@test
def a_write_on_one_host_replays_on_the_other():
    with Fleet() as f:
        args = {"ticket_id": fresh()}
        r = f.a.client().call("rec", args, run_id=fresh("run"))
        assert r["status"] == "ok" and r["replayed"] is False, r
        x = f.b.client().call("rec", args, run_id=fresh("run"))
        assert x["status"] == "ok" and x["replayed"] is True, x
        assert x["idempotency_key"] == r["idempotency_key"], (r, x)
        assert x["result"] == r["result"], (r, x)
        assert count_lines(f.effects) == 1
        st = f.pg.psql("SELECT state, host_id FROM tg_ledger WHERE key = '%s'"
                       % r["idempotency_key"])
        assert st == [["done", "host-a"]], st


@test
def identical_writes_in_flight_on_two_hosts_run_once():
    """The first holds its tool; the second host's write waits for the
    NOTIFY of its outcome and replays it."""
    with Fleet() as f:
        args = {"ticket_id": fresh()}
        hold = f.effects + ".hold"
        open(hold, "w").close()
        res = {}

        def call(name, d):
            res[name] = d.client().call("rec.hold", args, run_id=fresh("run"))

        ta = threading.Thread(target=call, args=("a", f.a))
        ta.start()
        wait_for(lambda: os.path.exists(f.effects + ".pid"), 10, "the tool to start")
        tb = threading.Thread(target=call, args=("b", f.b))
        tb.start()
        time.sleep(0.5)
        assert "b" not in res, res      # waiting, not refused
        os.unlink(hold)
        ta.join(30)
        tb.join(30)
        assert res["a"]["status"] == "ok" and res["a"]["replayed"] is False, res
        assert res["b"]["status"] == "ok" and res["b"]["replayed"] is True, res
        assert count_lines(f.effects) == 1


@test
def identical_writes_at_the_same_moment_run_once():
    with Fleet() as f:
        for _ in range(5):
            args = {"ticket_id": fresh()}
            before = count_lines(f.effects)
            barrier = threading.Barrier(4)
            res = []

            def call(d):
                c = d.client()
                barrier.wait()
                res.append(c.call("rec", args, run_id=fresh("run")))

            ts = [threading.Thread(target=call, args=(d,)) for d in (f.a, f.b, f.a, f.b)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
            assert all(r["status"] == "ok" for r in res), res
            assert sum(1 for r in res if r["replayed"] is False) == 1, res
            assert count_lines(f.effects) == before + 1


@test
def the_kill_switch_crosses_hosts_within_a_second():
    with Fleet() as f:
        assert f.b.client().hello()["writes_enabled"] is True
        t0 = time.time()
        assert f.a.ctl("writes", "disable")[0] == 0
        wait_for(lambda: f.b.client().hello()["writes_enabled"] is False, 5,
                 "host b to hear of the switch")
        assert time.time() - t0 < 1.0, time.time() - t0
        r = f.b.client().call("rec", {"ticket_id": fresh()}, run_id=fresh("run"))
        assert r["status"] == "denied" and r["stop_reason"] == "writes_disabled", r
        # SIGUSR1 to one host's executor throws it for all too.
        assert f.b.ctl("writes", "enable")[0] == 0
        wait_for(lambda: f.a.client().hello()["writes_enabled"] is True, 5, "host a on")
        os.kill(f.b.executor_pid(), signal.SIGUSR1)
        t0 = time.time()
        wait_for(lambda: f.a.client().hello()["writes_enabled"] is False, 5, "host a off")
        assert time.time() - t0 < 1.0, time.time() - t0
        # Only writes enable turns it back on, for every host.
        assert f.a.ctl("writes", "enable")[0] == 0
        wait_for(lambda: f.b.client().hello()["writes_enabled"] is True, 5, "host b on")
        r = f.b.client().call("rec", {"ticket_id": fresh()}, run_id=fresh("run"))
        assert r["status"] == "ok", r


@test
def a_switch_thrown_while_the_database_is_down_reaches_all_when_it_is_back():
    with Fleet() as f:
        f.pg.stop()
        wait_for(lambda: store_state(f.a).startswith("down"), 10, "a to see the loss")
        assert f.a.ctl("writes", "disable")[0] != 0     # held here, not stored
        assert f.a.client().hello()["writes_enabled"] is False
        rc, out, err = f.b.ctl("writes", "enable")
        assert rc != 0 and "writes stay disabled" in err, (rc, out, err)
        assert f.b.client().hello()["writes_enabled"] is True   # b never saw it
        f.pg.start()
        wait_store_up(f.a)
        wait_for(lambda: f.b.client().hello()["writes_enabled"] is False, 10,
                 "b to hear of the switch thrown on a")
        assert f.b.ctl("writes", "enable")[0] == 0
        wait_for(lambda: f.a.client().hello()["writes_enabled"] is True, 5, "a on")


@test
def a_switch_thrown_while_down_survives_a_restart_and_reaches_all():
    with Fleet() as f:
        f.pg.stop()
        wait_for(lambda: store_state(f.a).startswith("down"), 10, "a to see the loss")
        os.kill(f.a.executor_pid(), signal.SIGUSR1)
        wait_for(lambda: f.a.client().hello()["writes_enabled"] is False, 5, "a off")
        f.a.stop(expect_rc=None)
        f.a.start()
        assert f.a.client().hello()["writes_enabled"] is False
        f.pg.start()
        wait_store_up(f.a)
        wait_for(lambda: f.b.client().hello()["writes_enabled"] is False, 10,
                 "b to hear of the switch a kept")


@test
def losing_the_database_fails_closed_and_comes_back():
    with Fleet() as f:
        done = {}
        for i in range(5):
            args = {"ticket_id": fresh()}
            r = f.a.client().call("rec", args, run_id=fresh("run"))
            assert r["status"] == "ok", r
            done[r["idempotency_key"]] = args
        stop = threading.Event()
        answers = []

        def load(d):
            c = d.client()
            while not stop.is_set():
                args = {"ticket_id": fresh("load")}
                r = c.call("rec", args, run_id=fresh("run"))
                answers.append((args, r))
                time.sleep(0.01)

        ts = [threading.Thread(target=load, args=(d,)) for d in (f.a, f.b)]
        for t in ts:
            t.start()
        time.sleep(0.5)
        f.pg.stop()
        wait_for(lambda: store_state(f.a).startswith("down"), 10, "a to see the loss")
        wait_for(lambda: store_state(f.b).startswith("down"), 10, "b to see the loss")
        # Writes refused, reads served.
        r = f.a.client().call("rec", {"ticket_id": fresh()}, run_id=fresh("run"))
        assert r["status"] == "error" and r["error"] == "unavailable", r
        assert "PostgreSQL" in r["message"], r
        e = f.b.client().call("echo", {"x": 1}, run_id=fresh("run"))
        assert e["status"] == "ok", e
        assert metric(f.a, "toolgate_store_up") == 0
        assert metric(f.a, "toolgate_store_connection_losses_total") == 1
        m = f.a.client()
        time.sleep(0.3)
        f.pg.start()
        wait_store_up(f.a)
        wait_store_up(f.b)
        time.sleep(0.5)
        stop.set()
        for t in ts:
            t.join(30)
        del m
        ok = [a for a, r in answers if r["status"] == "ok"]
        refused = [r for a, r in answers if r["status"] != "ok"]
        assert ok and refused, (len(ok), refused[:3])
        for r in refused:
            assert r["status"] == "error" and r["error"] in ("unavailable", "tool_failed"), r
        # Nothing doubled: every line is one write that was answered ok,
        # or one whose outcome was lost with the connection (in doubt).
        with open(f.effects) as fp:
            lines = [json.loads(x) for x in fp]
        tickets = [x["ticket_id"] for x in lines]
        assert len(tickets) == len(set(tickets)), "a write ran twice"
        for a in ok:
            assert a["ticket_id"] in tickets, a
        # Nothing lost: what was done before replays on both hosts.
        for key, args in done.items():
            for d in (f.a, f.b):
                x = d.client().call("rec", args, run_id=fresh("run"))
                assert x["status"] == "ok" and x["replayed"] is True, x
        s = f.a.ctl_json("status")
        assert s["store"] == "up", s
        assert metric(f.a, "toolgate_store_up") == 1


@test
def sigkill_of_an_executor_mid_write_leaves_it_in_doubt_on_both():
    with Fleet() as f:
        args = {"ticket_id": fresh()}
        hold = f.effects + ".hold"
        open(hold, "w").close()
        c = f.a.client()
        run = fresh("run")
        c.send({"op": "call", "id": 1, "run_id": run, "tool": "rec.hold",
                "args": args})
        wait_for(lambda: os.path.exists(f.effects + ".pid"), 10, "the tool to start")
        os.kill(f.a.executor_pid(), signal.SIGKILL)
        os.unlink(hold)
        for d in (f.b,):
            x = d.client().call("rec.hold", args, run_id=fresh("run"))
            assert x["status"] == "error" and x["error"] == "tool_failed", x
            assert "in doubt" in x["message"], x
        st = f.pg.psql("SELECT state FROM tg_ledger WHERE note IS NOT NULL")
        assert ["in_doubt"] in st, st
        # Host a, started again, says the same.
        f.a.stop(expect_rc=None)
        f.a.start()
        wait_store_up(f.a)
        x = f.a.client().call("rec.hold", args, run_id=fresh("run"))
        assert x["status"] == "error" and "in doubt" in x["message"], x
        key = x["idempotency_key"] if "idempotency_key" in x else \
            "acme:rec.hold:" + args_hash(args)
        # Both hosts list it; one settles it for all.
        for d in (f.a, f.b):
            items = d.ctl_json("ledger")
            mine = [i for i in items if i["key"] == key]
            assert len(mine) == 1 and mine[0]["state"] == "in_doubt", items
            assert mine[0]["tool"] == "rec.hold", mine
        wait_for(lambda: f.b.ctl_json("status")["in_doubt"] == 1, 5,
                 "status to count the write in doubt")
        # forensics on the host of the run reads the record in the database.
        fx = f.a.ctl_json("forensics", run)
        assert fx["count"] == 1 and fx["in_doubt"] == 1, fx
        assert fx["writes"][0]["idempotency_key"] == key, fx
        assert fx["writes"][0]["state"] == "in_doubt", fx
        rc, out, err = f.b.ctl("resolve", key, "done")
        assert rc == 0, (rc, out, err)
        fx = f.a.ctl_json("forensics", run)
        assert fx["in_doubt"] == 0 and fx["writes"][0]["state"] == "done", fx
        rc, out, err = f.a.ctl("resolve", key, "failed")
        assert rc != 0 and "not in doubt" in err, (rc, out, err)
        assert all(i["key"] != key for i in f.a.ctl_json("ledger"))
        x = f.a.client().call("rec.hold", args, run_id=fresh("run"))
        assert x["status"] == "ok" and x["replayed"] is True, x
        resolves = [r for r in read_audit(f.b) if r.get("event") == "resolve"]
        assert len(resolves) == 1 and resolves[0]["idempotency_key"] == key, resolves


@test
def a_wait_on_a_host_that_dies_ends_in_doubt():
    """Host b waits for host a's outcome; a's executor is killed: no
    NOTIFY comes, and b's wait asks again (every 5 s) and finds the
    record in doubt."""
    with Fleet() as f:
        args = {"ticket_id": fresh()}
        hold = f.effects + ".hold"
        open(hold, "w").close()
        ca = f.a.client()
        ca.send({"op": "call", "id": 1, "run_id": fresh("run"), "tool": "rec.hold",
                 "args": args})
        wait_for(lambda: os.path.exists(f.effects + ".pid"), 10, "the tool to start")
        res = {}

        def call():
            res["b"] = f.b.client().call("rec.hold", args, run_id=fresh("run"))

        tb = threading.Thread(target=call)
        tb.start()
        time.sleep(0.5)
        assert "b" not in res, res
        t0 = time.time()
        os.kill(f.a.executor_pid(), signal.SIGKILL)
        tb.join(20)
        assert "b" in res, "b still waits"
        assert time.time() - t0 < 8, time.time() - t0
        x = res["b"]
        assert x["status"] == "error" and "in doubt" in x["message"], x
        os.unlink(hold)


@test
def a_checkpoint_issued_on_one_host_resumes_on_the_other_once():
    """Requested on a, approved on b, resumed on b first (a's public key
    is in the database, the record copied to b), then on a, and on both
    at once: the write runs once."""
    with Fleet() as f:
        args = {"ticket_id": fresh()}
        r = f.a.client().call("rec.appr", args, run_id=fresh("run"))
        assert r["status"] == "needs_approval", r
        x = f.b.client().resume(r["checkpoint"])
        assert x["status"] == "pending", x
        assert f.b.ctl("approve", r["approval_id"])[0] == 0
        x = f.b.client().resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        res = []

        def resume(d):
            res.append(d.client().resume(r["checkpoint"]))

        ts = [threading.Thread(target=resume, args=(d,)) for d in (f.a, f.b, f.a, f.b)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        assert all(y["status"] == "ok" and y["replayed"] is True for y in res), res
        assert count_lines(f.effects) == 1
        # A wait on b for an approval asked on a wakes at a's decision.
        r2 = f.a.client().call("rec.appr", {"ticket_id": fresh()}, run_id=fresh("run"))
        assert r2["status"] == "needs_approval", r2
        res2 = {}

        def wait():
            res2["w"] = f.b.client().wait(r2["approval_id"], 10000)

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.5)
        t0 = time.time()
        assert f.a.ctl("approve", r2["approval_id"])[0] == 0
        t.join(15)
        assert res2["w"]["state"] == "approved", res2
        assert time.time() - t0 < 1.0, time.time() - t0
        w = f.b.client().wait("0" * 32, 100)
        assert w["status"] == "error" and "no such approval" in w["message"], w
        # A forged checkpoint is still refused on either host.
        bad = r["checkpoint"][:-4] + ("AAAA" if not r["checkpoint"].endswith("AAAA") else "BBBB")
        for d in (f.a, f.b):
            y = d.client().resume(bad)
            assert y["status"] == "denied" and y["stop_reason"] == "bad_checkpoint_signature", y
        # After a's key rotation, its new checkpoints verify on b too.
        assert f.a.ctl("keys", "rotate")[0] == 0
        args = {"ticket_id": fresh()}
        r = f.a.client().call("rec.appr", args, run_id=fresh("run"))
        assert f.a.ctl("approve", r["approval_id"])[0] == 0
        time.sleep(0.3)
        x = f.b.client().resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        assert count_lines(f.effects) == 2


@test
def a_used_approval_never_runs_again_on_another_host_after_retention():
    """Resumed (ran) on a; its ledger record swept (retention_s 1, on the
    database's clock); the same checkpoint on b is refused, not run."""
    with Fleet(retention_s=1) as f:
        r = f.a.client().call("rec.appr", {"ticket_id": fresh()}, run_id=fresh("run"))
        assert f.a.ctl("approve", r["approval_id"])[0] == 0
        x = f.a.client().resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        wait_for(lambda: f.pg.psql("SELECT count(*) FROM tg_ledger") == [["0"]], 25,
                 "the sweep")
        for d in (f.b, f.a):
            y = d.client().resume(r["checkpoint"])
            assert y["status"] == "denied" and y["stop_reason"] == "approval_expired", y
        assert count_lines(f.effects) == 1


@test
def writes_that_come_while_a_batch_is_in_the_database_share_the_next():
    """Group commit on the shared store: one batch in the database at a
    time, and every write that comes meanwhile goes in the next one.  The
    first write's batch is held (the kill switch row locked by a session
    of the test), eight more are asked a tenth of a second apart; once it
    is let go, the eight are recorded together: one transaction, so one
    now() in tg_ledger.started (two at most, should one come late).  Sent
    as they came, they were eight transactions."""
    with Fleet() as f:
        assert f.a.client().call("rec", {"ticket_id": fresh()},
                                 run_id=fresh("run"))["status"] == "ok"
        lock = f.pg.session()
        lock.stdin.write("BEGIN; SELECT * FROM tg_meta WHERE name = 'writes_off'"
                         " FOR UPDATE;\n")
        lock.stdin.flush()
        wait_for(lambda: f.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE"
                                   " state = 'idle in transaction'") == [["1"]],
                 10, "the test's session to hold the row")
        results = {}

        def write(i, args):
            results[i] = f.a.client().call("rec", args, run_id=fresh("run"))
        first = threading.Thread(target=write, args=(0, {"ticket_id": fresh()}))
        first.start()
        wait_for(lambda: f.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE"
                                   " wait_event_type = 'Lock'") == [["1"]],
                 10, "the first write's batch to wait on the lock")
        args = [{"ticket_id": fresh()} for _ in range(8)]
        ts = [threading.Thread(target=write, args=(i + 1, a)) for i, a in enumerate(args)]
        for t in ts:        # each in a loop turn of its own
            t.start()
            time.sleep(0.1)
        time.sleep(1.0)     # the eight reach the executor and wait
        lock.stdin.write("COMMIT;\n")
        lock.stdin.close()
        lock.wait(10)
        for t in [first] + ts:
            t.join(30)
        assert all(r["status"] == "ok" for r in results.values()), results
        assert len(results) == 9, results
        keys = ",".join("'acme:rec:%s'" % args_hash(a) for a in args)
        n = f.pg.psql("SELECT count(DISTINCT started) FROM tg_ledger WHERE key IN (%s)" % keys)
        assert int(n[0][0]) <= 2, n
        assert count_lines(f.effects) == 10


@test
def a_replay_writes_nothing_to_the_database():
    """A write asked again after it was done is answered from a plain read
    of its record: the batch takes no lock and assigns no transaction id
    (the database's next xid does not move), where before each replay
    cost one (and the commit's WAL flush)."""
    with Fleet() as f:
        f.pg.psql("ALTER SYSTEM SET autovacuum = off")
        f.pg.psql("SELECT pg_reload_conf()")
        args = {"ticket_id": fresh()}
        assert f.a.client().call("rec", args, run_id=fresh("run"))["status"] == "ok"

        def next_xid():
            return int(f.pg.psql("SELECT pg_snapshot_xmax(pg_current_snapshot())")[0][0])
        before = next_xid()
        for host in (f.a, f.b, f.a, f.b, f.a):
            r = host.client().call("rec", args, run_id=fresh("run"))
            assert r["status"] == "ok" and r["replayed"] is True, r
        assert next_xid() - before <= 1, (before, next_xid())
        assert count_lines(f.effects) == 1
        # The kill switch still refuses them, as before.
        assert f.b.ctl("writes", "disable")[0] == 0
        wait_for(lambda: f.a.client().call("rec", args, run_id=fresh("run"))
                 .get("stop_reason") == "writes_disabled", 5, "the switch on host-a")


def last_head_seq(d):
    """The head_seq of the last head record in d's audit log, or 0."""
    seq = 0
    for line in open(os.path.join(d.state, "audit.log"), "rb"):
        r = json.loads(line)
        if r.get("event") == "head":
            seq = r["head_seq"]
    return seq


def db_head_seq(f, d):
    rows = f.pg.psql("SELECT seq FROM tg_audit_heads WHERE host_id = '%s'" % d.host_id)
    return int(rows[0][0]) if rows else 0


@test
def each_hosts_audit_head_is_kept_in_the_database():
    """Every head a host signs is kept in tg_audit_heads, never going
    back; a host whose log and state dir are rolled back together (each
    agreeing with the other) is found out against it at the next start,
    and goes on serving."""
    with Fleet(audit={"head_every": 2}) as f:
        for i in range(3):
            assert f.a.client().call("rec", {"ticket_id": fresh()},
                                      run_id=fresh("run"))["status"] == "ok"
        wait_for(lambda: last_head_seq(f.a) > 0 and
                 db_head_seq(f, f.a) == last_head_seq(f.a), 10,
                 "host-a's head in the database")
        f.a.stop()
        saved = os.path.join(f.a.dir, "saved")
        shutil.copytree(f.a.state, saved)
        f.a.start()
        wait_store_up(f.a)
        before = db_head_seq(f, f.a)
        for i in range(4):
            assert f.a.client().call("rec", {"ticket_id": fresh()},
                                     run_id=fresh("run"))["status"] == "ok"
        wait_for(lambda: db_head_seq(f, f.a) > before and
                 db_head_seq(f, f.a) == last_head_seq(f.a), 10,
                 "host-a's newer head in the database")
        assert f.a.ctl_json("status")["audit_chain"] == "ok"
        f.a.stop()
        # The state dir as it was: its log and its local head agree.
        shutil.rmtree(f.a.state)
        shutil.copytree(saved, f.a.state)
        kept = db_head_seq(f, f.a)
        f.a.start()
        wait_store_up(f.a)
        wait_for(lambda: f.a.ctl_json("status")["audit_chain"].startswith("broken: "),
                 10, "the rollback found")
        chain = f.a.ctl_json("status")["audit_chain"]
        assert "tail cut" in chain, chain
        # Said, not enforced; and the database's head did not go back.
        assert f.a.client().call("echo", {"x": 1}, run_id=fresh("run"))["status"] == "ok"
        assert db_head_seq(f, f.a) == kept
        assert f.b.ctl_json("status")["audit_chain"] == "ok"


@test
def an_older_schema_is_migrated_at_start():
    """A database at version 1 (as the first executors left it) is taken
    to the current version by the next executor that connects."""
    with Fleet() as f:
        f.pg.psql("DROP TABLE tg_approvals; DROP FUNCTION tg_decide;"
                  " DROP TABLE tg_audit_heads;"
                  " DELETE FROM tg_schema_version WHERE version > 1")
        f.a.stop(expect_rc=None)
        f.a.start()
        wait_store_up(f.a)
        assert f.pg.psql("SELECT version FROM tg_schema_version ORDER BY 1") == \
            [["1"], ["2"], ["3"], ["4"]]
        r = f.a.client().call("rec.appr", {"ticket_id": fresh()}, run_id=fresh("run"))
        assert r["status"] == "needs_approval", r
        assert len(f.b.ctl_json("approvals")) == 1


@test
def a_schema_newer_than_the_executor_is_refused():
    with Fleet() as f:
        f.pg.psql("INSERT INTO tg_schema_version VALUES (999)")
        f.a.stop(expect_rc=None)
        f.a.start()
        # Refused, and tried again with a backoff: down, or connecting.
        wait_for(lambda: store_state(f.a).startswith("down") and
                 "newer" in store_state(f.a), 15, "the refusal in status")
        r = f.a.client().call("rec", {"ticket_id": fresh()}, run_id=fresh("run"))
        assert r["status"] == "error" and r["error"] == "unavailable", r
        e = f.a.client().call("echo", {"x": 1}, run_id=fresh("run"))
        assert e["status"] == "ok", e


@test
def retention_is_swept_on_the_databases_clock():
    """A done record past writes.retention_s (by the database's now()) is
    swept, by one of the hosts: the same write then runs again."""
    with Fleet(retention_s=1) as f:
        args = {"ticket_id": fresh()}
        r = f.a.client().call("rec", args, run_id=fresh("run"))
        assert r["status"] == "ok" and r["replayed"] is False, r
        key = r["idempotency_key"]
        wait_for(lambda: f.pg.psql("SELECT count(*) FROM tg_ledger WHERE key = '%s'"
                                   % key) == [["0"]], 25, "the sweep")
        x = f.b.client().call("rec", args, run_id=fresh("run"))
        assert x["status"] == "ok" and x["replayed"] is False, x
        assert count_lines(f.effects) == 2


@test
def an_approval_requested_on_one_host_is_decided_on_the_other():
    with Fleet() as f:
        c = f.a.client()
        args = {"ticket_id": fresh()}
        r = c.call("rec.appr", args, run_id=fresh("run"))
        assert r["status"] == "needs_approval", r
        aid = r["approval_id"]
        # Both hosts list it and show it.
        for d in (f.a, f.b):
            items = d.ctl_json("approvals")
            assert [i["approval_id"] for i in items] == [aid], items
            one = d.ctl_json("approval", aid)
            assert one["state"] == "pending" and json.loads(one["args"]) == args, one
        # Still pending: the resume says so.
        x = c.resume(r["checkpoint"])
        assert x["status"] == "pending", x
        rc, out, err = f.b.ctl("approve", aid)
        assert rc == 0, (rc, out, err)
        # Decided once, for all.
        rc, out, err = f.a.ctl("deny", aid)
        assert rc != 0 and "already" in err, (rc, out, err)
        assert f.a.ctl_json("approvals") == []
        # Resumed at once on the host that asked: the decision is there.
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        y = f.a.client().resume(r["checkpoint"])
        assert y["status"] == "ok" and y["replayed"] is True, y
        # And on the other host: a's key verifies there, it replays.
        z = f.b.client().resume(r["checkpoint"])
        assert z["status"] == "ok" and z["replayed"] is True, z
        assert count_lines(f.effects) == 1
        # Each host's audit log: requested on a, decided on b.
        da = [x for x in read_audit(f.a) if x.get("event") == "decision"]
        db = [x for x in read_audit(f.b) if x.get("event") == "decision"]
        assert len(db) == 1 and db[0]["decision"] == "approved", db
        assert len(da) == 1 and da[0]["decision"] == "approved", da

        # A denial on b reaches a wait on a.
        args = {"ticket_id": fresh()}
        r = c.call("rec.appr", args, run_id=fresh("run"))
        assert r["status"] == "needs_approval", r
        res = {}

        def wait():
            res["w"] = f.a.client().wait(r["approval_id"], 10000)

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.3)
        t0 = time.time()
        rc, out, err = f.b.ctl("deny", r["approval_id"])
        assert rc == 0, (rc, out, err)
        t.join(15)
        assert res["w"]["state"] == "denied", res
        assert time.time() - t0 < 1.0, time.time() - t0
        x = c.resume(r["checkpoint"])
        assert x["status"] == "denied" and x["stop_reason"] == "approval_denied", x
        assert count_lines(f.effects) == 1


@test
def forensics_reads_the_shared_ledger():
    # A run's keys are in its host's run record (runs are per host); their
    # records are the database's.
    with Fleet() as f:
        run = fresh("run")
        c = f.a.client()
        tickets = [fresh(), fresh()]
        for t in tickets:
            r = c.call("rec", {"ticket_id": t}, run_id=run)
            assert r["status"] == "ok" and r["replayed"] is False, r
        # Host b ran this one first: run is answered a replay, and did
        # not write it.
        other = fresh()
        r = f.b.client().call("rec", {"ticket_id": other}, run_id=fresh("run"))
        assert r["status"] == "ok", r
        r = c.call("rec", {"ticket_id": other}, run_id=run)
        assert r["status"] == "ok" and r["replayed"] is True, r
        fx = f.a.ctl_json("forensics", run)
        assert fx["count"] == 2 and fx["in_doubt"] == 0, fx
        keys = ["acme:rec:" + args_hash({"ticket_id": t}) for t in tickets]
        assert [w["idempotency_key"] for w in fx["writes"]] == keys, fx
        assert all(w["state"] == "done" and w["run_id"] == run and
                   w["tool"] == "rec" and w["asks"] == 1 and
                   w["finished_ms"] > 0 for w in fx["writes"]), fx
        assert f.b.ctl_json("forensics", run)["count"] == 0


def compensate(d, run, *extra, rc_ok=(0,)):
    rc, out, err = d.ctl("--json", "compensate", run, *extra)
    assert rc in rc_ok, (rc, out, err)
    return json.loads(out)


@test
def compensate_on_the_shared_store_runs_each_compensation_once():
    # The run's writes come from the database, as forensics's, and so do
    # their compensations' records: asked again, or concurrently, each
    # compensation runs once.
    with Fleet() as f:
        undo = f.effects + ".undo"
        run = fresh("run")
        c = f.a.client()
        tickets = [fresh(), fresh()]
        for t in tickets:
            assert c.call("rec.c", {"ticket_id": t}, run_id=run)["status"] == "ok"
        res = []

        def comp():
            res.append(compensate(f.a, run))

        ts = [threading.Thread(target=comp) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert len(res) == 3, res
        statuses = sorted(w["status"] for r in res for w in r["writes"])
        assert statuses.count("done") == 2, res
        assert set(statuses) <= {"done", "replayed"}, res
        assert sorted(json.loads(x)["ticket_id"] for x in open(undo)) == \
            sorted(tickets)
        again = compensate(f.a, run)
        assert [w["status"] for w in again["writes"]] == ["replayed"] * 2, again
        assert count_lines(undo) == 2
        fx = f.a.ctl_json("forensics", run)
        assert [w["compensation"]["state"] for w in fx["writes"]] == \
            ["done", "done"], fx
        # The compensations are rows of the shared ledger, done by host a.
        keys = ["'acme:rec.c:%s:compensate'" % args_hash({"ticket_id": t})
                for t in tickets]
        rows = f.pg.psql("SELECT state, host_id FROM tg_ledger WHERE key IN"
                         " (%s)" % ", ".join(keys))
        assert rows == [["done", "host-a"]] * 2, rows
        # Another host has no record of the run: nothing to compensate.
        assert compensate(f.b, run)["count"] == 0
        assert (count_lines(undo), count_lines(f.effects)) == (2, 2)


@test
def a_compensation_approved_on_another_host_runs_once():
    # Its approval is a row: listed and decided on any host; the next
    # compensate on the run's host goes by the decision.
    with Fleet() as f:
        undo = f.effects + ".undo"
        run = fresh("run")
        t = fresh()
        assert f.a.client().call("rec.c2", {"ticket_id": t},
                                 run_id=run)["status"] == "ok"
        w = compensate(f.a, run)["writes"][0]
        assert w["status"] == "pending_approval", w
        aid = w["approval_id"]
        assert [i["approval_id"] for i in f.b.ctl_json("approvals")] == [aid]
        assert compensate(f.a, run)["writes"][0]["status"] == "pending_approval"
        assert len(f.b.ctl_json("approvals")) == 1
        # The database lost it (a restore, say): asked again, it is there
        # again, the same approval.
        f.pg.psql("DELETE FROM tg_approvals WHERE id = '%s'" % aid)
        assert f.b.ctl_json("approvals") == []
        w = compensate(f.a, run)["writes"][0]
        assert w["status"] == "pending_approval" and w["approval_id"] == aid, w
        assert [i["approval_id"] for i in f.b.ctl_json("approvals")] == [aid]
        # Approved on b while a is down: a, back, hears of it from the
        # database when asked.
        f.a.stop()
        rc, out, err = f.b.ctl("approve", aid)
        assert rc == 0, (rc, out, err)
        f.a.start()
        wait_store_up(f.a)
        x = compensate(f.a, run)["writes"][0]
        assert x["status"] == "done", x
        assert [json.loads(l)["ticket_id"] for l in open(undo)] == [t]
        y = compensate(f.a, run)["writes"][0]
        assert y["status"] == "replayed", y
        assert count_lines(undo) == 1
        fx = f.a.ctl_json("forensics", run)
        assert fx["writes"][0]["compensation"]["approver"] == "uid 0 (root)", fx

        # Denied on b: refused on a, nothing run.
        run = fresh("run")
        assert f.a.client().call("rec.c2", {"ticket_id": fresh()},
                                 run_id=run)["status"] == "ok"
        aid = compensate(f.a, run)["writes"][0]["approval_id"]
        assert f.b.ctl("deny", aid, "--note", "keep it")[0] == 0
        z = compensate(f.a, run, rc_ok=(1,))["writes"][0]
        assert z["status"] == "refused" and "keep it" in z["reason"], z
        assert count_lines(undo) == 1


@test
def compensate_without_the_database_is_refused_and_runs_nothing():
    with Fleet() as f:
        undo = f.effects + ".undo"
        run = fresh("run")
        assert f.a.client().call("rec.c", {"ticket_id": fresh()},
                                 run_id=run)["status"] == "ok"
        f.pg.stop()
        wait_for(lambda: store_state(f.a) != "up", 15, "a to see the database go")
        rc, out, err = f.a.ctl("compensate", run)
        assert rc != 0 and "PostgreSQL" in out + err, (rc, out, err)
        assert count_lines(undo) == 0
        f.pg.start()
        wait_store_up(f.a)
        assert compensate(f.a, run)["writes"][0]["status"] == "done"
        assert count_lines(undo) == 1


if __name__ == "__main__":
    main()
