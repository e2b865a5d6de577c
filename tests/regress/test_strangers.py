"""Strangers (peers with no principal) and greedy agents cannot take the
agent socket from the others: refusals of strangers are summed in the
audit log, not written one by one; a stranger is answered once and closed;
connections are capped per uid and for strangers together; a frame begun
and never finished, or a stranger that never asks, is closed after
limits.frame_timeout_s."""
import math
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

SUMMARY_S = 1


def stranger_records(d, uids=None):
    """gatewayd's records of unknown_principal refusals (of uids, when given;
    None in uids stands for the summary of the uids not told apart)."""
    recs = [r for r in read_audit(d)
            if r.get("event") == "gatewayd" and r.get("stop_reason") == "unknown_principal"]
    if uids is not None:
        recs = [r for r in recs if r.get("uid") in uids]
    return recs


def refusals(recs):
    """How many refusals the records stand for: a summary says, others are one."""
    return sum(r.get("count", 1) for r in recs)


def answers(c, most):
    """The answers on c until the server closes it, or the first most."""
    out = []
    while len(out) < most:
        try:
            out.append(c.recv())
        except (EOFError, ConnectionResetError):
            break
    return out


def send_until_closed(c, data):
    """Send data, or as much of it as the server takes before it closes
    the connection (it closes a stranger after one answer)."""
    try:
        c.send_raw(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def check_summary(r, uid):
    assert r["decision"] == "denied" and r["reported_by"] == "gatewayd", r
    assert r["uid"] == uid and "tenant" not in r and "env" not in r, r
    assert r["count"] >= 1 and r["first_ms"] <= r["last_ms"], r


@test
def pipelined_hellos_of_a_stranger_cost_one_record():
    """2,000 pipelined hellos: one answer, the connection closed, one audit
    record (before: 2,000 answers and 2,000 records)."""
    conf = base_config(limits={"stranger_summary_s": SUMMARY_S})
    with Daemon(conf) as d:
        c = d.client(uid=STRANGER_UID)
        # A send buffer smaller than the 2,000 frames: gatewayd closes the
        # connection after its one answer while the client still writes,
        # as on a machine with a small default buffer (CI saw EPIPE here).
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        send_until_closed(c, b"".join(frame({"op": "hello", "id": i})
                                      for i in range(2000)))
        got = answers(c, 2000)
        c.close()
        assert got and all(r["status"] == "denied" and
                           r["stop_reason"] == "unknown_principal" for r in got), got[:3]
        wait_for(lambda: refusals(stranger_records(d, {STRANGER_UID})) == len(got),
                 timeout=20, what="the refusals in the audit log")
        recs = stranger_records(d, {STRANGER_UID})
        assert len(recs) <= 2, (len(recs), recs[:3])
        assert len(got) == 1, len(got)
        # The pair is fine, and agents are served.
        assert d.client().hello()["status"] == "ok"


@test
def refusals_of_a_stranger_are_summed_per_interval():
    """Many connections of one stranger: at most two records per uid and
    interval (the first refusal at once, then one summary with a count),
    and the counts add up to the refusals answered."""
    conf = base_config(limits={"stranger_summary_s": SUMMARY_S})
    with Daemon(conf) as d:
        t0 = time.time()
        answered = 0
        for i in range(300):
            c = d.client(uid=STRANGER_UID)
            c.send_raw(b"".join(frame({"op": "hello", "id": k}) for k in range(3)))
            got = answers(c, 3)
            c.close()
            assert all(r["stop_reason"] == "unknown_principal" for r in got), got
            answered += len(got)
        elapsed = time.time() - t0
        # The first refusal is recorded at once.
        wait_for(lambda: refusals(stranger_records(d, {STRANGER_UID})) == answered,
                 timeout=20, what="every refusal counted in the audit log")
        recs = stranger_records(d, {STRANGER_UID})
        # Intervals that began while the test ran: two records each at most.
        bound = 2 * (math.ceil(elapsed / SUMMARY_S) + 1)
        assert len(recs) <= bound, (len(recs), bound, answered)
        summaries = [r for r in recs if "count" in r]
        assert summaries, recs
        for r in summaries:
            check_summary(r, STRANGER_UID)
        assert answered == 300, answered


@test
def uids_past_the_table_are_summed_together():
    """limits.stranger_uids: 2; four stranger uids.  The first two are told
    apart, the other two are counted in one record without a uid."""
    interval = 5
    conf = base_config(limits={"stranger_summary_s": interval, "stranger_uids": 2})
    uids = [3001, 3002, 3003, 3004]
    with Daemon(conf) as d:
        t0 = time.time()
        for uid in uids:
            for _ in range(3):
                c = d.client(uid=uid, gid=uid)
                assert c.hello()["stop_reason"] == "unknown_principal"
                c.close()
        elapsed = time.time() - t0
        wait_for(lambda: refusals(stranger_records(d, set(uids) | {None})) == 12,
                 timeout=30, what="all 12 refusals in the audit log")
        recs = stranger_records(d, set(uids) | {None})
        if elapsed < interval:
            # All in one interval: 3001 and 3002 once at once and once
            # summed, the others in one record.
            by = {}
            for r in recs:
                by.setdefault(r.get("uid"), []).append(r)
            assert sorted(by, key=str) == sorted([3001, 3002, None], key=str), recs
            assert refusals(by[None]) == 6 and len(by[None]) == 1, by[None]
            assert "stranger_uids" in by[None][0]["note"], by[None]
            for uid in (3001, 3002):
                assert len(by[uid]) == 2 and refusals(by[uid]) == 3, by[uid]
        assert "past limits.stranger_uids" in d.read_log()


@test
def strangers_holding_connections_lock_no_agent_out():
    """A stranger opens many idle connections: it gets its small share
    (limits.max_stranger_connections), agents still connect."""
    conf = base_config(limits={"max_connections": 8, "max_connections_per_uid": 4,
                               "max_stranger_connections": 2, "frame_timeout_s": 60})
    with Daemon(conf) as d:
        held = [d.client(uid=STRANGER_UID) for _ in range(10)]
        # Eight are refused at once; the two accepted are sent nothing.
        refused = []
        deadline = time.time() + 20
        while len(refused) < 8 and time.time() < deadline:
            ready, _, _ = select.select([c.s for c in held if c not in refused], [], [], 0.5)
            refused += [c for c in held if c.s in ready]
        assert len(refused) == 8, len(refused)
        for c in refused:
            r = c.recv()
            assert r["status"] == "error" and r["error"] == "unavailable", r
            assert "max_stranger_connections" in r["message"], r
            assert c.closed()
        agents = [d.client(uid=AGENT_UID) for _ in range(4)] + \
                 [d.client(uid=OTHER_UID) for _ in range(2)]
        for a in agents:
            assert a.hello()["status"] == "ok"
        assert agents[0].call("echo", {"x": 1})["status"] == "ok"
        # The two held are still answered, once.
        kept = [c for c in held if c not in refused]
        assert len(kept) == 2
        for c in kept:
            assert c.hello()["stop_reason"] == "unknown_principal"
            assert c.closed()
        assert "refused" in d.read_log()


@test
def a_uid_at_its_cap_blocks_no_other_uid():
    conf = base_config(limits={"max_connections": 16, "max_connections_per_uid": 3})
    with Daemon(conf) as d:
        time.sleep(0.2)         # wait_ready's own connection is gone
        mine = []
        for _ in range(3):
            c = d.client(uid=AGENT_UID)
            assert c.hello()["status"] == "ok"
            mine.append(c)
        extra = d.client(uid=AGENT_UID)
        r = extra.recv()
        assert r["status"] == "error" and r["error"] == "unavailable", r
        assert "max_connections_per_uid" in r["message"], r
        assert extra.closed()
        others = [d.client(uid=OTHER_UID) for _ in range(3)]
        for c in others:
            assert c.hello()["status"] == "ok"
        assert d.client().hello()["status"] == "ok"     # root, a principal too
        # One of its own closed: the uid may connect again.
        mine.pop().close()

        def accepted():
            c = d.client(uid=AGENT_UID)
            try:
                r = c.hello()
            except (EOFError, OSError):
                return None
            return c if r["status"] == "ok" else None
        mine.append(wait_for(accepted, 10, "a new connection of the uid"))
        for c in mine + others:
            assert c.hello()["status"] == "ok"


@test
def half_a_frame_is_closed_after_frame_timeout():
    """Slowloris: part of a frame, then nothing (or a byte now and then):
    error bad_frame, closed.  A stranger that sends nothing is closed.  An
    agent's idle connection stays."""
    conf = base_config(limits={"frame_timeout_s": 1})
    with Daemon(conf) as d:
        idle = d.client()
        assert idle.hello()["status"] == "ok"
        whole = frame({"op": "hello", "id": 7})
        for part in (whole[:2], whole[:len(whole) - 1]):
            c = d.client()
            c.send_raw(part)
            r = c.recv()
            assert r["status"] == "error" and r["error"] == "bad_frame", r
            assert "in time" in r["message"], r
            assert c.closed()
        # A byte now and then buys nothing.
        c = d.client()
        big = frame({"op": "hello", "id": 8, "pad": "p" * 200})
        deadline = time.time() + 30
        got = None
        c.s.settimeout(0.2)
        for b in big[:-1]:
            try:
                c.s.sendall(bytes([b]))
            except OSError:
                break
            try:
                got = c.recv()
                break
            except socket.timeout:
                pass
            assert time.time() < deadline, "still open after 30 s"
        c.s.settimeout(30)
        if got is None:
            got = c.recv()
        assert got["status"] == "error" and got["error"] == "bad_frame", got
        # A stranger that asks nothing, or trickles, is closed.
        s = d.client(uid=STRANGER_UID)
        assert s.closed(timeout=20)
        s = d.client(uid=STRANGER_UID)
        s.send_raw(whole[:3])
        r = s.recv()
        assert r["status"] == "error" and r["error"] == "bad_frame", r
        assert s.closed(timeout=20)
        # Meanwhile the idle agent waited well past frame_timeout_s.
        time.sleep(2.5)
        assert idle.hello()["status"] == "ok"
        assert idle.call("echo", {"still": 1})["status"] == "ok"


@test
def counts_of_an_unfinished_interval_are_recorded_at_stop():
    """gatewayd stopped mid-interval: the refusals it counted still reach
    the audit log (as a summary), not only its own log."""
    d = Daemon(base_config(limits={"stranger_summary_s": 3600}))
    try:
        d.start()
        for _ in range(5):
            c = d.client(uid=STRANGER_UID)
            assert c.hello()["stop_reason"] == "unknown_principal"
            assert c.closed()
        wait_for(lambda: stranger_records(d, {STRANGER_UID}), what="the first refusal")
        d.stop()
        recs = stranger_records(d, {STRANGER_UID})
        assert len(recs) == 2 and refusals(recs) == 5, recs
        check_summary([r for r in recs if "count" in r][0], STRANGER_UID)
    finally:
        d.cleanup()


def summary_fatal(body, words, strangers=1):
    """The executor alone, with strangers passed peers of no principal: the
    summary body sent by its gatewayd (us) must make it exit, saying words."""
    link = ExecutorLink(base_config(), name="tg-summary")
    try:
        link.start()
        for i in range(strangers):
            link.peer(4000 + i, 4000 + i)
        link.send("MSG_AUDIT_SUMMARY", body)
        link.expect_exit("the summary %r" % (body,), (words,))
        link.proc = None
    finally:
        link.cleanup()


@test
def the_executor_checks_what_a_summary_claims():
    """A summary names no connection, so the executor checks what it can:
    the ids have no principal, and gatewayd cannot have refused strangers
    more often than it passed their connections (each is answered once)."""
    need_root()
    link = ExecutorLink(base_config(), name="tg-summary")
    try:
        link.start()
        link.peer(4000, 4000)
        link.peer(4001, 4001)
        link.send("MSG_AUDIT_SUMMARY", {"uid": 4000, "gid": 4000, "count": 2,
                                        "first_ms": 5, "last_ms": 9})
        assert link.call("echo", {}, "sync")["status"] == "ok"    # in order
        recs = [r for r in read_audit(link) if r.get("count")]
        assert len(recs) == 1, recs
        r = recs[0]
        assert (r["uid"], r["count"], r["first_ms"], r["last_ms"]) == (4000, 2, 5, 9), r
        assert r["stop_reason"] == "unknown_principal" and r["reported_by"] == "gatewayd", r
        assert "gid 4000" in r["note"], r
        link.stop()
    finally:
        link.cleanup()
    summary_fatal({"uid": 4000, "gid": 4000, "count": 2, "first_ms": 1, "last_ms": 1},
                  "more refusals")
    summary_fatal({"uid": AGENT_UID, "gid": AGENT_GID, "count": 1, "first_ms": 1,
                   "last_ms": 1}, "has a principal")
    summary_fatal({"uid": 4000, "count": 1, "first_ms": 1, "last_ms": 1}, "cannot be")
    summary_fatal({"count": 1, "first_ms": 2, "last_ms": 1}, "cannot be")
    summary_fatal({"count": 0, "first_ms": 1, "last_ms": 1}, "cannot be")
    # Reported one by one, too: a stranger's connection is refused once.
    link = ExecutorLink(base_config(), name="tg-summary")
    try:
        link.start()
        body = {"conn": link.peer(4000, 4000), "uid": 4000, "gid": 4000,
                "decision": "denied", "reason": "unknown_principal", "message": "m"}
        link.send("MSG_AUDIT", body)
        link.send("MSG_AUDIT", body)
        link.expect_exit("a stranger refused twice", ("more refusals",))
        link.proc = None
    finally:
        link.cleanup()


if __name__ == "__main__":
    main()
