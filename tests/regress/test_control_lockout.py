"""The control socket cannot be taken from the operators: a non-operator's
connection is refused and closed at accept and never counts against the
connection caps; a connection without a complete request for
limits.control_idle_s is closed, so idle operators do not pile up either."""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

import msgpack

NON_OPERATORS = range(1001, 1011)	# operators are uid 0 only here


def writes_conf(**over):
    return base_config(writes={"enabled": True, "require_approval": False},
                       tools={"default_mode": "read_write"}, **over)


def writes_enabled(d):
    return d.ctl_json("status")["writes_enabled"]


def recv_frame(s):
    """One answer frame, or None when the connection ends first."""
    return read_frame_or_none(s)


def closed_now(s):
    """True when the peer has closed s (EOF or reset), without blocking."""
    s.setblocking(False)
    try:
        return s.recv(65536) == b""
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        s.setblocking(True)


def drained_and_closed(s):
    """Reads what is there; True once the peer has closed s."""
    while True:
        s.setblocking(False)
        try:
            data = s.recv(65536)
        except BlockingIOError:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            s.setblocking(True)
        if data == b"":
            return True


def hold(d, uids, per_uid):
    """per_uid idle control connections for each uid, held open."""
    return [connect_as(d.control_sock, uid) for uid in uids
            for _ in range(per_uid)]


@test
def non_operators_cannot_lock_root_out():
    with Daemon(writes_conf()) as d:
        # 8 uids x 8 idle connections: the whole former total cap.
        held = hold(d, NON_OPERATORS[:8], 8)
        try:
            rc, out, err = d.ctl("writes", "disable")
            assert rc == 0, (rc, out, err)
            assert writes_enabled(d) is False
            assert d.client().hello()["writes_enabled"] is False
            # Root's own 8 connections are all served meanwhile.
            mine = hold(d, [0], 8)
            for s in mine:
                s.settimeout(30)
                s.sendall(frame({"op": "status"}))
                r = recv_frame(s)
                assert r is not None and r["ok"] is True, r
                s.close()
        finally:
            for s in held:
                s.close()
        # Every refused connection is on record, none as a cap.
        log = d.read_log()
        assert "is not an operator" in log, log
        assert "too many connections" not in log, log


@test
def non_operator_is_refused_and_closed_at_once():
    # A long idle timeout: only the refusal may close these.
    with Daemon(writes_conf(limits={"control_idle_s": 3600})) as d:
        for uid in (NON_OPERATORS[0], NON_OPERATORS[-1]):
            s = connect_as(d.control_sock, uid)
            s.settimeout(60)
            # Without sending anything: one refusal, then the end.
            r = recv_frame(s)
            assert r == {"ok": False,
                         "error": "uid %d is not an operator" % uid}, r
            wait_for(lambda: closed_now(s), 30, "non-operator closed")
            s.close()
        # gatewayctl still says why.
        rc, out, err = d.ctl("--json", "writes", "disable",
                             uid=NON_OPERATORS[0])
        assert rc == 1 and "not an operator" in err, (rc, out, err)
        assert writes_enabled(d) is True


@test
def operator_caps_still_hold_for_operators():
    with Daemon(writes_conf(limits={"control_idle_s": 3600})) as d:
        held = hold(d, [0], 8)
        try:
            # Root's ninth connection is one too many for its uid...
            s = connect_as(d.control_sock)
            wait_for(lambda: closed_now(s), 30, "ninth root connection closed")
            s.close()
            wait_for(lambda: "too many connections (uid 0)" in d.read_log(),
                     30, "cap logged")
        finally:
            for s in held:
                s.close()
        # ...and once they are gone, root is served again.
        wait_for(lambda: d.ctl("status")[0] == 0, 30, "root served again")


@test
def idle_control_connections_are_closed():
    with Daemon(writes_conf(limits={"control_idle_s": 1})) as d:
        quiet = connect_as(d.control_sock)
        # One that keeps a request unfinished, a byte at a time.
        slow = connect_as(d.control_sock)
        body = msgpack.packb({"op": "status", "pad": "x" * 4000})
        data = struct.pack(">I", len(body)) + body
        sent = 0
        deadline = time.time() + 60
        while not drained_and_closed(slow):
            assert time.time() < deadline, "slow connection never closed"
            assert sent < len(data), "the whole request went through"
            try:
                slow.send(data[sent:sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            time.sleep(0.05)
        slow.close()
        wait_for(lambda: closed_now(quiet), 30, "idle connection closed")
        quiet.close()
        # A connection that was answered is closed too once it idles.
        s = connect_as(d.control_sock)
        s.settimeout(30)
        s.sendall(frame({"op": "status"}))
        r = recv_frame(s)
        assert r is not None and r["ok"] is True, r
        wait_for(lambda: drained_and_closed(s), 30, "answered, then closed")
        s.close()
        # Operators are still served.
        assert d.ctl("status")[0] == 0


if __name__ == "__main__":
    main()
