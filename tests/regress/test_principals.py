"""Principals: the peer's uid/gid, mapped by the config, name the tenant and
environment; nothing in a request does."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

GID_TENANT = {"gid": OTHER_GID, "tenant": "initech", "env": "dev"}


def make_daemon():
    """Principals: the gid one first, so a uid principal's precedence is not
    just list order; a record tool that leaves a trace of every run."""
    c = base_config()
    c["principals"] = [GID_TENANT] + c["principals"]
    d = Daemon(c)
    d.rec = os.path.join(d.dir, "record.out")
    c["catalog"]["record"] = {"mode": "read", "exec": [tool("record"), d.rec]}
    c["tools"]["allow"].append("record")
    write_config(d.config_path, c)
    return d


def recorded(d):
    try:
        with open(d.rec) as f:
            return f.read()
    except FileNotFoundError:
        return ""


@test
def stranger_is_denied_everything_and_nothing_runs():
    with make_daemon() as d:
        c = d.client(uid=STRANGER_UID)
        r = c.hello()
        assert r["status"] == "denied" and r["stop_reason"] == "unknown_principal", r
        assert r["id"] == 1 and r.get("message"), r
        assert "tenant" not in r and "writes_enabled" not in r, r
        # Its first answer is its last: the connection is closed.
        assert c.closed()
        for req in ({"op": "call", "run_id": "s", "tool": "record", "args": {"who": "stranger"}},
                    {"op": "call", "run_id": "s", "tool": "echo", "args": {}},
                    {"op": "call", "run_id": "s", "tool": "rm.rf", "args": {}},
                    {"op": "call", "run_id": "s", "tool": "ticket.close", "args": {}},
                    {"op": "resume", "checkpoint": "x"},
                    {"op": "wait", "approval_id": "x", "timeout_ms": 10},
                    {"op": "usage", "run_id": "s", "tokens": 1},
                    # Claiming a tenant in the request changes nothing.
                    {"op": "call", "run_id": "s", "tool": "record", "args": {"who": "stranger"},
                     "tenant": "acme", "env": "prod"}):
            c = d.client(uid=STRANGER_UID)
            # Pipelined requests after the first are dropped unanswered.
            c.send_raw(frame(dict(req, id=1)) + frame({"op": "hello", "id": 2}))
            r = c.recv()
            assert r["status"] == "denied" and r["stop_reason"] == "unknown_principal", (req, r)
            assert r["id"] == 1, r
            assert c.closed(), req
        assert recorded(d) == "", recorded(d)
        # Control: a principal's call through the same tool leaves a trace.
        r = d.client(uid=AGENT_UID).call("record", {"who": "agent"})
        assert r["status"] == "ok", r
        assert recorded(d) == '{"who":"agent"}\n', recorded(d)


@test
def gid_principal_and_uid_precedence():
    with make_daemon() as d:
        # No uid principal: the gid one applies.
        c = d.client(uid=STRANGER_UID, gid=OTHER_GID)
        r = c.hello()
        assert r["status"] == "ok", r
        assert (r["tenant"], r["env"]) == ("initech", "dev"), r
        r = c.call("env.dump", {})
        assert r["status"] == "ok", r
        env = r["result"]["env"]
        assert (env["TOOLGATE_TENANT"], env["TOOLGATE_ENV"]) == ("initech", "dev"), env
        # A uid principal wins over a gid principal listed before it.
        c = d.client(uid=AGENT_UID, gid=OTHER_GID)
        r = c.hello()
        assert (r["status"], r["tenant"], r["env"]) == ("ok", "acme", "prod"), r
        env = c.call("env.dump", {})["result"]["env"]
        assert (env["TOOLGATE_TENANT"], env["TOOLGATE_ENV"]) == ("acme", "prod"), env
        c = d.client(uid=OTHER_UID, gid=OTHER_GID)
        r = c.hello()
        assert (r["status"], r["tenant"], r["env"]) == ("ok", "globex", "staging"), r
        # The gid that maps is the peer's: another gid gets nothing.
        c = d.client(uid=STRANGER_UID, gid=STRANGER_UID)
        r = c.hello()
        assert r["status"] == "denied" and r["stop_reason"] == "unknown_principal", r


@test
def tenants_are_told_their_own_and_cannot_claim_another():
    with make_daemon() as d:
        a = d.client(uid=AGENT_UID)
        g = d.client(uid=OTHER_UID)
        ra, rg = a.hello(), g.hello()
        assert ra == {"id": 1, "status": "ok", "v": 1, "tenant": "acme", "env": "prod",
                      "writes_enabled": False}, ra
        assert rg == {"id": 1, "status": "ok", "v": 1, "tenant": "globex", "env": "staging",
                      "writes_enabled": False}, rg
        # Tenant and env in a request are ignored.
        r = a.call("env.dump", {}, run_id="claim", tenant="globex", env="staging")
        assert r["status"] == "ok", r
        env = r["result"]["env"]
        assert (env["TOOLGATE_TENANT"], env["TOOLGATE_ENV"]) == ("acme", "prod"), env
        r = g.rpc({"op": "hello", "tenant": "acme", "env": "prod"})
        assert (r["tenant"], r["env"]) == ("globex", "staging"), r
        r = g.call("env.dump", {}, run_id="claim")
        env = r["result"]["env"]
        assert (env["TOOLGATE_TENANT"], env["TOOLGATE_ENV"]) == ("globex", "staging"), env


@test
def audit_records_uid_and_tenant():
    with make_daemon() as d:
        r = d.client(uid=AGENT_UID).call("echo", {"a": 1}, run_id="audit-a", step_id=3)
        assert r["status"] == "ok", r
        r = d.client(uid=OTHER_UID).call("echo", {"g": 1}, run_id="audit-g")
        assert r["status"] == "ok", r
        r = d.client(uid=STRANGER_UID, gid=OTHER_GID).call("echo", {"i": 1}, run_id="audit-i")
        assert r["status"] == "ok", r
        r = d.client(uid=AGENT_UID).call("rm.rf", {}, run_id="audit-deny")
        assert r["status"] == "denied", r
        recs = read_audit(d)
        st = os.stat(os.path.join(d.state, "audit.log"))
        assert st.st_uid == 0 and st.st_mode & 0o077 == 0, oct(st.st_mode)

        def find(run_id):
            got = [x for x in recs if x.get("run_id") == run_id and x.get("event") == "call"]
            assert len(got) == 1, (run_id, recs)
            return got[0]
        a = find("audit-a")
        assert (a["uid"], a["tenant"], a["env"], a["tool"]) == (AGENT_UID, "acme", "prod", "echo"), a
        assert a["args_hash"] == args_hash({"a": 1}) and a["decision"] == "ok", a
        assert a["step_id"] == "3", a
        g = find("audit-g")
        assert (g["uid"], g["tenant"], g["env"]) == (OTHER_UID, "globex", "staging"), g
        i = find("audit-i")
        assert (i["uid"], i["tenant"], i["env"]) == (STRANGER_UID, "initech", "dev"), i
        seqs = [x["seq"] for x in recs]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs


@test
def wait_checks_the_env_as_well_as_the_tenant():
    """acme/staging must not learn the state of an acme/prod approval."""
    need_root()
    d = approvals_daemon()
    conf = dict(d.conf)
    conf["principals"] = conf["principals"] + [
        {"uid": STRANGER_UID, "tenant": "acme", "env": "staging"}]
    reconfigure(d, conf)
    with d:
        r = d.client().call("rec", {"n": 1})
        assert r["status"] == "needs_approval", r
        w = d.client(STRANGER_UID).wait(r["approval_id"], 0)
        assert w["status"] == "error" and w["error"] == "bad_request", w
        w = d.client(AGENT_UID).wait(r["approval_id"], 0)
        assert w["status"] == "ok" and w["state"] == "pending", w


if __name__ == "__main__":
    main()
