"""The fields of audit records (issue 12): every decision and execution
carries time, seq, tenant, env, uid, run_id, step_id, tool, mode, backend,
args_hash, decision, stop_reason or error, approval_id, approver,
idempotency_key, replayed, outcome, duration_ms and the traceparent when
given; gatewayd's own refusals are marked reported_by gatewayd.  Checked
on the real records of reads, writes, replays, approvals and refusals."""
import os
import signal
import stat
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
WHO = "acme", "prod", 0        # tenant, env, uid of the test's own client


def one(recs, what, **match):
    got = [r for r in recs if all(r.get(k) == v for k, v in match.items())]
    assert len(got) == 1, (what, match, got)
    return got[0]


def common(r, run_id, tool):
    """What every record of a call on the test's client carries."""
    assert isinstance(r["seq"], int) and len(r["prev"]) == 64, r
    assert isinstance(r["ts_ms"], int) and r["ts_ms"] > 1600000000000, r
    assert (r["tenant"], r["env"], r["uid"]) == WHO, r
    assert r["run_id"] == run_id and r["tool"] == tool, r


def execution(r, mode, outcome, backend="exec"):
    assert r["mode"] == mode and r["backend"] == backend, r
    assert r["outcome"] == outcome, r
    assert isinstance(r["duration_ms"], int) and 0 <= r["duration_ms"] < 60000, r
    assert "reported_by" not in r and "args" not in r, r


@test
def reads_writes_replays_and_refusals_carry_every_field():
    with approvals_daemon(require=["rec.slow"]) as d:
        c = d.client()
        assert c.call("echo", {"q": 1}, run_id="rd", step_id=7,
                      traceparent=TP)["status"] == "ok"
        assert c.call("fail", {"q": 2}, run_id="rd")["status"] == "error"
        w = c.call("rec", {"ticket_id": "T-1"}, run_id="wr", step_id="s1")
        assert w["status"] == "ok" and w["replayed"] is False, w
        dup = c.call("rec", {"ticket_id": "T-1"}, run_id="wr")
        assert dup["status"] == "stopped", dup
        rep = c.call("rec", {"ticket_id": "T-1"}, run_id="wr2", traceparent=TP)
        assert rep["status"] == "ok" and rep["replayed"] is True, rep
        assert c.call("nope", {"x": 1}, run_id="gw",
                      traceparent=TP)["status"] == "denied"
        recs = wait_for(lambda: (lambda a: a if any(
            r.get("tool") == "nope" for r in a) else None)(read_audit(d)),
            what="gatewayd's records")

        r = one(recs, "read", event="call", tool="echo")
        common(r, "rd", "echo")
        execution(r, "read", "ok")
        assert r["step_id"] == "7" and r["traceparent"] == TP, r
        assert r["args_hash"] == args_hash({"q": 1}) and r["decision"] == "ok", r
        for k in ("idempotency_key", "replayed", "stop_reason", "error",
                  "approval_id", "approver"):
            assert k not in r, (k, r)

        r = one(recs, "failed read", event="call", tool="fail")
        common(r, "rd", "fail")
        execution(r, "read", "failed")
        assert r["decision"] == "error" and r["error"] == "tool_failed", r
        assert "traceparent" not in r and "stop_reason" not in r, r

        key = "acme:rec:" + args_hash({"ticket_id": "T-1"})
        intent = one(recs, "intent", event="intent", tool="rec")
        common(intent, "wr", "rec")
        assert intent["mode"] == "write" and intent["backend"] == "exec", intent
        assert intent["idempotency_key"] == key and intent["step_id"] == "s1", intent

        r = one(recs, "write", event="call", tool="rec", run_id="wr",
                decision="ok")
        common(r, "wr", "rec")
        execution(r, "write", "ok")
        assert r["idempotency_key"] == key and r["replayed"] is False, r
        assert r["seq"] > intent["seq"], (intent, r)

        # gatewayd stops the same write again in its run on its own.
        r = one(recs, "duplicate", tool="rec", run_id="wr", decision="stopped")
        common(r, "wr", "rec")
        assert r["event"] == "gatewayd" and r["reported_by"] == "gatewayd", r
        assert r["stop_reason"] == "duplicate_write", r
        assert "traceparent" not in r, r
        assert r["args_hash"] == args_hash({"ticket_id": "T-1"}), r

        r = one(recs, "replay", event="call", tool="rec", run_id="wr2")
        common(r, "wr2", "rec")
        execution(r, "write", "ok")
        assert r["replayed"] is True and r["traceparent"] == TP, r
        assert r["idempotency_key"] == key, r

        r = one(recs, "gatewayd's refusal", reported_by="gatewayd", tool="nope")
        common(r, "gw", "nope")
        assert r["event"] == "gatewayd" and r["decision"] == "denied", r
        assert r["stop_reason"] == "not_allowed" and r["traceparent"] == TP, r
        assert "outcome" not in r, r

        seqs = [r["seq"] for r in recs]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs


@test
def approvals_carry_their_id_and_approver_into_every_record():
    with approvals_daemon(require=["rec"]) as d:
        c = d.client()
        args = {"ticket_id": "T-9"}
        r = request_approval(d, c, args, run_id="ap", step_id=3)
        aid = r["approval_id"]
        rc, out, err = d.ctl("approve", aid)
        assert rc == 0, (rc, out, err)
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        y = c.resume(r["checkpoint"])
        assert y["status"] == "ok" and y["replayed"] is True, y
        # A second one, denied: its resume is refused, with the id.
        r2 = request_approval(d, c, {"ticket_id": "T-10"}, run_id="ap2")
        assert d.ctl("deny", r2["approval_id"])[0] == 0
        z = c.resume(r2["checkpoint"])
        assert_denied(z, "approval_denied")
        recs = read_audit(d)

        req = one(recs, "request", event="approval", approval_id=aid)
        common(req, "ap", "rec")
        assert req["decision"] == "requested" and req["mode"] == "write", req
        assert req["backend"] == "exec" and req["step_id"] == "3", req
        assert req["args_hash"] == args_hash(args), req
        dec = one(recs, "decision", event="decision", approval_id=aid)
        assert dec["decision"] == "approved" and dec["approver"] == ROOT_WHO, dec
        calls = [e for e in recs if e.get("event") == "call" and
                 e.get("approval_id") == aid]
        assert [e["replayed"] for e in calls] == [False, True], calls
        for e in calls:
            common(e, "ap", "rec")
            execution(e, "write", "ok")
            assert e["approver"] == ROOT_WHO and e["decision"] == "ok", e
            assert e["idempotency_key"].startswith("acme:rec:"), e
        intent = one(recs, "intent", event="intent", approval_id=aid)
        assert intent["approver"] == ROOT_WHO, intent
        refused = one(recs, "denied resume", event="call",
                      approval_id=r2["approval_id"])
        assert refused["decision"] == "denied", refused
        assert refused["stop_reason"] == "approval_denied", refused
        assert refused["outcome"] == "not_run", refused


def with_audit(d, **audit):
    conf = dict(d.conf, audit=dict(d.conf.get("audit", {}), **audit))
    reconfigure(d, conf)
    return d


@test
def args_are_written_only_when_asked_and_redacted_values_can_be_found():
    # By default: the hash only (execution() checks "args" is absent).
    with Daemon() as d:
        d.client().call("echo", {"email": "a@b"}, run_id="p0")
        assert all("args" not in r for r in read_audit(d)), read_audit(d)
        assert "a@b" not in open(os.path.join(d.state, "audit.log")).read()
    d = with_audit(Daemon(base_config(), name="tg-redact"), args=True,
                   redact=["email", "card"])
    with d:
        key = os.path.join(d.state, "audit.hashkey")
        st = os.stat(key)
        assert st.st_size == 32 and stat.S_IMODE(st.st_mode) == 0o600, st
        c = d.client()
        args = {"email": "alice@example.com", "n": 3, "card": {"no": "4111"},
                "note": {"email": "kept@nested"}}
        assert c.call("echo", args, run_id="p1")["status"] == "ok"
        assert c.call("echo", {"other": "x"}, run_id="p2")["status"] == "ok"
        recs = read_audit(d)
        r = one(recs, "redacted", event="call", run_id="p1")
        a = r["args"]
        assert a["n"] == 3 and a["note"] == {"email": "kept@nested"}, r
        assert a["email"].startswith("hmac-sha256:") and len(a["email"]) == 76, r
        assert a["card"].startswith("hmac-sha256:") and a["card"] != a["email"], r
        # The args hash is still over the real args.
        assert r["args_hash"] == args_hash(args), r
        log = open(os.path.join(d.state, "audit.log")).read()
        assert "alice@example.com" not in log and "4111" not in log, log
        assert one(recs, "plain", event="call", run_id="p2")["args"] == {"other": "x"}
        # gatewayctl audit hash: the same hash, of a string or of JSON.
        rc, out, err = d.ctl("--json", "audit", "hash", "alice@example.com")
        assert rc == 0, (rc, out, err)
        h = json.loads(out)
        assert h["hash"] == a["email"], (h, a)
        assert h["canonical_json"] == '"alice@example.com"', h
        rc, out, err = d.ctl("--json", "audit", "hash", "--json", '{ "no" : "4111" }')
        assert rc == 0 and json.loads(out)["hash"] == a["card"], (rc, out, err)
        rc, out, err = d.ctl("audit", "hash", "alice@example.com")
        assert rc == 0 and "hash: " + a["email"] in out, (rc, out, err)
        # Bad JSON is refused; so is a caller who is not an operator.
        rc, out, err = d.ctl("audit", "hash", "--json", "{nope")
        assert rc == 1 and "json" in (out + err).lower(), (rc, out, err)
        rc, out, err = d.ctl("audit", "hash", "x", uid=AGENT_UID)
        assert rc != 0 and "hmac-sha256" not in out, (rc, out, err)
        assert d.ctl("audit", "hash")[0] == 2
        # Records with args verify as any other.
        rc, out, err = d.ctl("audit", "verify", "--log", os.path.join(d.state, "audit.log"))
        assert rc == 0, (rc, out, err)
        # The key is the executor's, kept across restarts.
        d.stop()
        d.start()
        assert json.loads(d.ctl("--json", "audit", "hash",
                                "alice@example.com")[1])["hash"] == a["email"]


def show(d, *args):
    log = os.path.join(d.state, "audit.log")
    return d.ctl("audit", "show", "--log", log, *args)


@test
def audit_show_filters_by_run_tool_and_time_across_rotated_files():
    d = with_audit(Daemon(base_config(), name="tg-show"), max_bytes=2000, keep=50)
    with d:
        c = d.client()
        for i in range(24):
            c.call("echo", {"i": i}, run_id="r%d" % (i % 3))
        c.call("fail", {"i": 99}, run_id="r0")
        wait_for(lambda: os.path.exists(os.path.join(d.state, "audit.log.2")),
                 what="two rotations")
        time.sleep(1.1)
        t1 = time.time()
        c.call("echo", {"late": 1}, run_id="late")
        recs = [r for r in read_all(d) if r.get("event") != "head"]
        rc, out, err = show(d, "--json")
        assert rc == 0, (rc, out, err)
        lines = [json.loads(x) for x in out.splitlines()]
        assert lines == recs, (len(lines), len(recs))
        rc, out, err = show(d, "--run", "r0", "--json")
        got = [json.loads(x) for x in out.splitlines()]
        assert [r["seq"] for r in got] == [r["seq"] for r in recs
                                           if r.get("run_id") == "r0"], got
        assert len(got) == 9, got
        rc, out, err = show(d, "--run", "r0", "--tool", "fail", "--json")
        got = [json.loads(x) for x in out.splitlines()]
        assert len(got) == 1 and got[0]["error"] == "tool_failed", got
        t = t1 - 0.3
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + \
            ".%03dZ" % int((t % 1) * 1000)
        rc, out, err = show(d, "--since", since, "--json")
        got = [json.loads(x) for x in out.splitlines()]
        assert [r["run_id"] for r in got] == ["late"], got
        rc, out, err = show(d, "--since", "1h", "--json")
        assert len(out.splitlines()) == len(recs), out
        # The table: a header and a row per record.
        rc, out, err = show(d, "--run", "late")
        rows = out.splitlines()
        assert rc == 0 and rows[0].split()[:4] == ["SEQ", "TIME", "EVENT", "TENANT"], out
        assert len(rows) == 2 and " late " in rows[1] and " echo " in rows[1], out
        # Nothing matches: no output, success.
        assert show(d, "--run", "none") == (0, "", "")
        # Bad arguments: a clear error, exit 2.
        for bad in (["--since", "yesterday"], ["--since", "2026-13-01T00:00:00Z"],
                    ["--run"], ["--frobnicate", "x"], ["--run", "a", "--run", "b"],
                    ["--tool", ""]):
            rc, out, err = show(d, *bad)
            assert rc == 2 and err.startswith("gatewayctl: audit show: "), (bad, rc, err)
            assert out == "", (bad, out)
        rc, out, err = d.ctl("audit", "show", "--log", os.path.join(d.dir, "nolog"))
        assert rc == 1 and "nolog" in err, (rc, err)


@test
def sighup_to_either_process_reopens_the_log_and_the_chain_goes_on():
    with Daemon() as d:
        log = os.path.join(d.state, "audit.log")
        c = d.client()
        c.call("echo", {"n": 0}, run_id="h0")
        # logrotate's way: move the file, then SIGHUP; first the executor,
        # then gatewayd (which asks the executor on the socketpair).
        for n, pid in ((1, d.executor_pid()), (2, d.proc.pid)):
            for k in range(n - 1, 0, -1):
                os.rename("%s.%d" % (log, k), "%s.%d" % (log, k + 1))
            os.rename(log, log + ".1")
            reopened = d.read_log().count("reopened")
            os.kill(pid, signal.SIGHUP)
            wait_for(lambda: d.read_log().count("reopened") == reopened + 1,
                     what="the reopen after SIGHUP %d" % n)
            assert os.path.exists(log), os.listdir(d.state)
            assert c.call("echo", {"n": n}, run_id="h%d" % n)["status"] == "ok"
            # The old file ends in a head; the new one chains to it.
            old = [json.loads(x) for x in open(log + ".1")]
            new = [json.loads(x) for x in open(log)]
            assert old[-1]["event"] == "head", old[-1]
            assert [r["run_id"] for r in new] == ["h%d" % n], new
            assert new[0]["seq"] == old[-1]["seq"] + 1, (old[-1], new[0])
        rc, out, err = d.ctl("audit", "verify", "--log", log)
        assert rc == 0, (rc, out, err)
        assert "SIGHUP: the executor reopens the audit log" in d.read_log()
        # SIGHUPs to gatewayd in a burst: the first reopens at once, the
        # others in the same second are one more reopen a second later.
        time.sleep(1.1)
        before = d.read_log().count("reopened")
        t0 = time.monotonic()
        for _ in range(5):
            os.kill(d.proc.pid, signal.SIGHUP)
            time.sleep(0.05)
        wait_for(lambda: d.read_log().count("reopened") == before + 2,
                 what="the held-back reopen")
        assert time.monotonic() - t0 >= 0.9, time.monotonic() - t0
        time.sleep(1.2)
        assert d.read_log().count("reopened") == before + 2, d.read_log()[-2000:]
        assert d.proc.poll() is None and c.call("echo", {"n": 9}, run_id="h9")["status"] == "ok"
        rc, out, err = d.ctl("audit", "verify", "--log", log)
        assert rc == 0, (rc, out, err)


def read_all(d):
    """Every record of the log and its rotated files, oldest first."""
    names = sorted((n for n in os.listdir(d.state) if n.startswith("audit.log.")),
                   key=lambda n: -int(n.rsplit(".", 1)[1])) + ["audit.log"]
    out = []
    for n in names:
        with open(os.path.join(d.state, n)) as f:
            out += [json.loads(x) for x in f if x.strip()]
    return out


if __name__ == "__main__":
    main()
