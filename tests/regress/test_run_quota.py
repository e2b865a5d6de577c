"""Per-tenant run quotas: one tenant starting run after run (usage with
fresh run ids, or calls) fills its own share of the run table
(runs.max_runs_per_tenant), never the table: other tenants still start
runs, and no run is forgotten to make room."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def unavailable(r, key):
    return (r["status"] == "error" and r["error"] == "unavailable" and
            key in r["message"])


@test
def one_tenant_cannot_fill_the_run_table():
    need_root()    # the other tenant is another uid
    conf = base_config(runs={"max_runs": 30, "max_runs_per_tenant": 10})
    with Daemon(conf, name="tg-runquota") as d:
        a = d.client()
        # Tenant acme: fresh run ids, as the flood did, far past its share.
        answers = [a.rpc({"op": "usage", "run_id": "u%d" % i, "tokens": 1})
                   for i in range(100)]
        assert all(r["status"] == "ok" for r in answers[:10]), answers[:10]
        assert all(unavailable(r, "runs.max_runs_per_tenant")
                   for r in answers[10:]), answers[10:12]
        r = a.call("echo", {"n": 1}, run_id="new")
        assert unavailable(r, "runs.max_runs_per_tenant"), r
        # Its live runs go on: none was forgotten to make room.
        assert a.call("echo", {"n": 2}, run_id="u0")["status"] == "ok"
        assert a.call("echo", {"n": 3}, run_id="u9")["status"] == "ok"
        # Tenant globex is not held back: it starts runs up to its own share.
        b = d.client(uid=OTHER_UID, gid=OTHER_GID)
        for i in range(10):
            r = b.call("echo", {"i": i}, run_id="g%d" % i)
            assert r["status"] == "ok", r
        r = b.call("echo", {}, run_id="g10")
        assert unavailable(r, "runs.max_runs_per_tenant"), r


@test
def the_share_is_checked_against_max_runs():
    conf = base_config(runs={"max_runs": 5, "max_runs_per_tenant": 6})
    d = Daemon(conf, name="tg-runquota-bad")
    try:
        p = subprocess.run([GATEWAYD, "-c", d.config_path, "-f",
                            "--agent-socket", d.agent_sock,
                            "--control-socket", d.control_sock,
                            "--state-dir", d.state],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0, p
        assert "runs.max_runs_per_tenant" in p.stderr and \
            "more than runs.max_runs" in p.stderr, p.stderr
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
