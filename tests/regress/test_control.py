"""gatewayctl and the control socket: status, the kill switch, who may use
it, usage errors, and bad frames."""
import json
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

import msgpack


def writes_conf(**over):
    return base_config(writes={"enabled": True, "require_approval": False},
                       tools={"default_mode": "read_write"}, **over)


def writes_enabled(d):
    return d.ctl_json("status")["writes_enabled"]


def ctl_conn(d):
    s = connect_as(d.control_sock)
    s.settimeout(10)
    return s


def ctl_rpc(s, req):
    s.sendall(frame(req))
    return ctl_recv(s)


def ctl_recv(s):
    return read_frame(s, "the control connection")


def is_closed(s, timeout=5):
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        s.settimeout(10)


@test
def status_text_and_json():
    with Daemon() as d:
        rc, out, err = d.ctl("status")
        assert rc == 0, (rc, out, err)
        lines = dict(l.split(": ", 1) for l in out.splitlines() if ": " in l)
        assert lines.get("writes_enabled") == "false", out
        assert lines.get("pending_approvals") == "0", out
        rc, out, err = d.ctl("--json", "status")
        assert rc == 0, (rc, out, err)
        s = json.loads(out)
        assert s["writes_enabled"] is False, s
        assert s["pending_approvals"] == 0, s
        assert "ok" not in s, s
    with Daemon(writes_conf()) as d:
        s = d.ctl_json("status")
        assert s["writes_enabled"] is True and s["pending_approvals"] == 0, s


@test
def writes_disable_and_enable():
    with Daemon(writes_conf()) as d:
        c = d.client()
        rc, out, err = d.ctl("writes", "disable")
        assert rc == 0, (rc, out, err)
        assert writes_enabled(d) is False
        wait_for(lambda: c.hello()["writes_enabled"] is False, 5, "hello off")
        r = c.call("ticket.close", {"t": 1}, run_id="c1")
        assert r["status"] == "denied" and r["stop_reason"] == "writes_disabled", r
        # Disabling twice is fine.
        rc, out, err = d.ctl("--json", "writes", "disable")
        assert rc == 0, (rc, out, err)
        assert json.loads(out)["writes_enabled"] is False, out
        rc, out, err = d.ctl("--json", "writes", "enable")
        assert rc == 0, (rc, out, err)
        assert json.loads(out)["writes_enabled"] is True, out
        assert writes_enabled(d) is True
        wait_for(lambda: c.hello()["writes_enabled"] is True, 5, "hello on")
        r = c.call("ticket.close", {"t": 2}, run_id="c2")
        assert r["status"] == "ok", r
        # The operator is on record.
        recs = [x for x in read_audit(d) if x.get("event") == "writes"]
        decisions = [x["decision"] for x in recs]
        assert decisions[0] == "disabled" and decisions[-1] == "enabled", recs
        assert all("uid 0" in x["approver"] for x in recs), recs


@test
def non_operators_are_refused_and_change_nothing():
    with Daemon(writes_conf()) as d:
        rc, out, err = d.ctl("status", uid=AGENT_UID)
        assert rc == 1, (rc, out, err)
        assert "operator" in err, err
        assert out == "", out
        rc, out, err = d.ctl("--json", "status", uid=AGENT_UID)
        # Nothing of the status leaks: only the refusal, as JSON.
        assert rc == 1 and json.loads(out) == {
            "error": "uid %d is not an operator" % AGENT_UID}, (rc, out, err)
        rc, out, err = d.ctl("writes", "disable", uid=AGENT_UID)
        assert rc == 1, (rc, out, err)
        assert writes_enabled(d) is True
        assert d.client().hello()["writes_enabled"] is True
        d.ctl("writes", "disable")
        rc, out, err = d.ctl("writes", "enable", uid=AGENT_UID)
        assert rc == 1, (rc, out, err)
        assert writes_enabled(d) is False
        # Nor any other uid outside the lists.
        rc, out, err = ctl_as(d, STRANGER_UID, STRANGER_UID, "writes", "enable")
        assert rc == 1, (rc, out, err)
        assert writes_enabled(d) is False
        recs = [x for x in read_audit(d) if x.get("event") == "writes" and
                x.get("decision") in ("disabled", "enabled")]
        assert len(recs) == 1 and "uid 0" in recs[0]["approver"], recs


@test
def operators_by_gid():
    with Daemon(writes_conf(operators={"uids": [0], "gids": [OTHER_GID]})) as d:
        rc, out, err = ctl_as(d, STRANGER_UID, OTHER_GID, "--json", "status")
        assert rc == 0, (rc, out, err)
        assert json.loads(out)["writes_enabled"] is True
        rc, out, err = ctl_as(d, STRANGER_UID, OTHER_GID, "writes", "disable")
        assert rc == 0, (rc, out, err)
        assert writes_enabled(d) is False
        rc, out, err = ctl_as(d, STRANGER_UID, OTHER_GID, "writes", "enable")
        assert rc == 0, (rc, out, err)
        assert writes_enabled(d) is True
        recs = [x for x in read_audit(d) if x.get("event") == "writes"]
        assert recs and all("uid %d" % STRANGER_UID in x["approver"] for x in recs), recs
        # Same uid, another gid: refused.
        rc, out, err = ctl_as(d, STRANGER_UID, STRANGER_UID, "status")
        assert rc == 1, (rc, out, err)


@test
def usage_errors_exit_2():
    with Daemon(writes_conf()) as d:
        for args in ([], ["frobnicate"], ["writes"], ["writes", "maybe"],
                     ["writes", "enable", "now"], ["status", "extra"], ["--bogus", "status"],
                     ["approve"], ["resolve", "k", "maybe"], ["--json"]):
            rc, out, err = d.ctl(*args)
            assert rc == 2, (args, rc, out, err)
            assert "usage" in err, (args, err)
        assert writes_enabled(d) is True
    # No socket to talk to: 1, not 2.
    p = subprocess.run([GATEWAYCTL, "-s", "/nonexistent/control.sock", "status"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p


@test
def bad_control_frames_close_only_their_connection():
    with Daemon(writes_conf()) as d:
        good = ctl_conn(d)
        r = ctl_rpc(good, {"op": "status"})
        assert r["ok"] is True and r["writes_enabled"] is True, r
        cases = [
            ("zero length", b"\0\0\0\0"),
            ("too large", b"\x7f\xff\xff\xff"),
            ("not msgpack", raw_frame(b"\xc1")),
            ("not a map", raw_frame(msgpack.packb([1, 2]))),
            ("trailing bytes", raw_frame(msgpack.packb({"op": "status"}) + b"\xc0")),
            ("truncated map", raw_frame(msgpack.packb({"op": "status"})[:-2])),
            ("too deep", raw_frame(b"\x81\xa1x" + b"\x91" * 100 + b"\x01")),
            ("huge map", raw_frame(b"\xdf\xff\xff\xff\xff\x01")),
        ]
        for what, data in cases:
            s = ctl_conn(d)
            s.sendall(data)
            assert is_closed(s), "%s: control connection still open" % what
            s.close()
            r = ctl_rpc(good, {"op": "status"})
            assert r["ok"] is True, (what, r)
            rc, out, err = d.ctl("status")
            assert rc == 0, (what, rc, out, err)
        # Unknown ops and odd maps are refused without closing.
        for req in ({"op": "frobnicate"}, {}, {"op": 5}):
            r = ctl_rpc(good, req)
            assert r["ok"] is False and r.get("error"), (req, r)
        r = ctl_rpc(good, {"op": "status"})
        assert r["ok"] is True, r
        # The agents never noticed.
        assert d.client().call("echo", {})["status"] == "ok"
        assert writes_enabled(d) is True


@test
def json_refusals_are_json_too():
    with Daemon() as d:
        rc, out, err = d.ctl("--json", "approve", "0" * 32)
        assert rc == 1, (rc, out, err)
        assert "no approval" in json.loads(out)["error"], out
        assert "no approval" in err, err


@test
def status_counts_agent_connections_passed_to_the_executor():
    # The count follows the connections as the executor learns of them,
    # a moment after they come and go: it is waited for, never sampled
    # (wait_ready's own connection may not be forgotten yet at the start).
    with Daemon() as d:
        def count():
            return d.ctl_json("status")["agent_connections"]
        wait_for(lambda: count() == 0, what="wait_ready's connection forgotten")
        cs = [d.client() for _ in range(3)]
        for c in cs:
            assert c.hello()["status"] == "ok"
        wait_for(lambda: count() == 3, what="three connections counted")
        for c in cs:
            c.close()
        wait_for(lambda: count() == 0, what="closed connections forgotten")


if __name__ == "__main__":
    main()
