"""The audit log's sync fails (EIO from fdatasync, made on demand by the
LD_PRELOAD shim tests/tools/failsync.c) after a write's intent record was
written: the intent went to the ledger beside the sync (write.c), so the
write must not run, its caller is refused error/unavailable, and its
ledger record is in doubt with a note saying it never started.  Once the
sync works again, calls are served."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

HERE = os.path.dirname(os.path.abspath(__file__))


class FailSyncDaemon(Daemon):
    """The pair with the shim preloaded and its trigger file named."""

    def __init__(self, conf, shim, trigger, **kw):
        super().__init__(conf, **kw)
        self.shim = shim
        self.trigger = trigger

    def env(self):
        env = super().env()
        env["LD_PRELOAD"] = self.shim
        env["FAILSYNC_TRIGGER"] = self.trigger
        if SAN:
            # The shim is not instrumented: it comes before ASan's runtime.
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + \
                ":verify_asan_link_order=0"
        return env


def build_shim(dirname):
    so = os.path.join(dirname, "failsync.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", so,
                    os.path.join(HERE, "..", "tools", "failsync.c"), "-ldl"],
                   check=True)
    os.chmod(dirname, 0o755)
    return so


@test
def an_intent_whose_audit_record_was_not_synced_never_runs():
    tmp = tempfile.mkdtemp(prefix="failsync-")
    shim = build_shim(tmp)
    trigger = os.path.join(tmp, "fail")
    effects = os.path.join(tmp, "effects")
    conf = approvals_config(effects, require=False)
    d = FailSyncDaemon(conf, shim, trigger, name="tg-failsync")
    with d:
        c = d.client()
        r = c.call("rec", {"n": 1}, run_id="ok-run")
        assert r["status"] == "ok", r
        assert len(open(effects).read().splitlines()) == 1

        open(trigger, "w").close()
        r = c.call("rec", {"n": 2}, run_id="fail-run")
        assert r["status"] == "error" and r["error"] == "unavailable", r
        assert "audit" in r["message"], r
        # It never ran.
        assert len(open(effects).read().splitlines()) == 1
        # Its ledger record says so, for an operator.
        items = d.ctl_json("ledger")
        mine = [i for i in items if i["key"] == "acme:rec:" + args_hash({"n": 2})]
        assert len(mine) == 1, items
        assert mine[0]["state"] == "in_doubt", mine
        assert "not started" in mine[0]["note"], mine
        # Asked again, it is not run by itself: it is in doubt.
        os.unlink(trigger)
        r = c.call("rec", {"n": 2}, run_id="again")
        assert r["status"] == "error" and r["error"] in ("tool_failed", "unavailable"), r
        assert len(open(effects).read().splitlines()) == 1
        # With the sync working again, other writes run.
        for _ in range(50):
            r = c.call("rec", {"n": 3}, run_id="later-%d" % _)
            if r["status"] == "ok":
                break
        assert r["status"] == "ok", r
        assert len(open(effects).read().splitlines()) == 2


@test
def on_the_shared_store_an_unsynced_intent_is_neither_run_nor_recorded():
    """store.backend: postgresql: the intent's audit record is synced
    beside the local commit (its run's count) and before the database:
    when the sync fails the write is refused, the database never hears of
    it, and its run's count is given back, so the same write runs once
    later even in a run allowed only one."""
    from tglib.pg import Postgres
    pg = Postgres().start()
    tmp = tempfile.mkdtemp(prefix="failsync-")
    try:
        shim = build_shim(tmp)
        trigger = os.path.join(tmp, "fail")
        effects = os.path.join(tmp, "effects")
        conf = approvals_config(effects, require=False)
        conf["store"] = {"backend": "postgresql", "dsn": pg.dsn, "host_id": "fs"}
        conf["budgets"] = dict(conf.get("budgets", {}), max_writes_per_run=1)
        d = FailSyncDaemon(conf, shim, trigger, name="tg-failsync-pg")
        with d:
            wait_for(lambda: d.ctl_json("status").get("store") == "up", 15,
                     "the shared store to be up")
            c = d.client()
            assert c.call("rec", {"n": 1}, run_id="ok-run")["status"] == "ok"
            open(trigger, "w").close()
            r = c.call("rec", {"n": 2}, run_id="fail-run")
            assert r["status"] == "error" and r["error"] == "unavailable", r
            assert "audit" in r["message"], r
            assert len(open(effects).read().splitlines()) == 1
            key = "acme:rec:" + args_hash({"n": 2})
            assert pg.psql("SELECT count(*) FROM tg_ledger WHERE key = '%s'" % key) == [["0"]]
            os.unlink(trigger)
            for i in range(50):
                r = c.call("rec", {"n": 2}, run_id="fail-run")
                if r["status"] == "ok":
                    break
                assert r["status"] == "error" and r["error"] == "unavailable", r
            assert r["status"] == "ok", r
            assert len(open(effects).read().splitlines()) == 2
            assert pg.psql("SELECT state FROM tg_ledger WHERE key = '%s'" % key) == [["done"]]
    finally:
        pg.cleanup()


if __name__ == "__main__":
    main()
