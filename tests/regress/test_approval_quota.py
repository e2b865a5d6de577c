"""Approvals cannot fill the store for everyone (issue 8).

One tenant's approval requests, each with large args, used to fill a small
store: the other tenant's writes were refused, and still were after the
approvals expired and after a restart, because the sweeper itself failed
with MDB_MAP_FULL.  Now: per-tenant quotas on pending approvals (count and
bytes, counted in the store so they survive a restart), a reserve in the
store that only the sweeper and operators' actions may use, and a sweeper
that always gets through."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

A_UID = AGENT_UID       # tenant acme
B_UID = OTHER_UID       # tenant globex


def quota_daemon(name, ttl_s=600, **over):
    """Approvals for "rec" (tenant-independent), "ticket.close" a write
    that needs none; over: extra config sections merged in."""
    d = approvals_daemon(name=name, ttl_s=ttl_s)
    conf = dict(d.conf)
    for k, v in over.items():
        conf[k] = dict(conf.get(k, {}), **v)
    reconfigure(d, conf)
    return d


def big_args(i, size, tag="a"):
    return {"tag": tag, "i": i, "blob": "x" * size}


def is_quota_refusal(r, key):
    return (r["status"] == "error" and r["error"] == "unavailable" and
            key in r["message"])


def is_full_refusal(r):
    return (r["status"] == "error" and r["error"] == "unavailable" and
            "full" in r["message"])


def pending_of(d, tenant):
    return [a for a in ctl_all(d, "approvals") if a["tenant"] == tenant]


def b_can_write(d, tag):
    """Tenant B: a write that needs no approval, and an approval."""
    c = d.client(uid=B_UID)
    try:
        r = c.call("ticket.close", {"t": tag}, run_id="b-" + tag)
        assert r["status"] == "ok", r
        r = c.call("rec", {"t": tag}, run_id="b-" + tag + "-appr")
        assert r["status"] == "needs_approval", r
        return r["approval_id"]
    finally:
        c.close()


@test
def count_quota_refuses_one_tenant_only():
    # The defaults: 100 pending approvals per tenant.
    d = quota_daemon("tg-aq-count")
    try:
        d.start()
        c = d.client(uid=A_UID)
        ids = []
        for i in range(100):
            r = c.call("rec", {"i": i}, run_id="a%d" % i)
            assert r["status"] == "needs_approval", (i, r)
            ids.append(r["approval_id"])
        r = c.call("rec", {"i": 100}, run_id="a100")
        assert is_quota_refusal(r, "approvals.max_pending_per_tenant"), r
        assert "acme" in r["message"], r
        # Nothing of it was stored; nothing ran.
        assert len(pending_of(d, "acme")) == 100
        assert count_lines(d.effects) == 0
        # The other tenant is not affected.
        b_can_write(d, "1")
        # A decision frees a place; the quota is counted again at once.
        rc, out, err = d.ctl("deny", ids[0])
        assert rc == 0, (rc, out, err)
        r = c.call("rec", {"i": 101}, run_id="a101")
        assert r["status"] == "needs_approval", r
        r = c.call("rec", {"i": 102}, run_id="a102")
        assert is_quota_refusal(r, "approvals.max_pending_per_tenant"), r
        c.close()
        # The count survives a restart.
        d.stop()
        d.start()
        c = d.client(uid=A_UID)
        r = c.call("rec", {"i": 103}, run_id="a103")
        assert is_quota_refusal(r, "approvals.max_pending_per_tenant"), r
        rc, out, err = d.ctl("approve", ids[1])
        assert rc == 0, (rc, out, err)
        r = c.call("rec", {"i": 104}, run_id="a104")
        assert r["status"] == "needs_approval", r
        c.close()
        b_can_write(d, "2")
        d.stop()
    finally:
        d.cleanup()


@test
def bytes_quota_refuses_one_tenant_only():
    d = quota_daemon("tg-aq-bytes",
                     approvals={"max_pending_per_tenant": 50,
                                "max_pending_bytes_per_tenant": 250000},
                     limits={"max_frame": 200000})
    try:
        d.start()
        c = d.client(uid=A_UID)
        r1 = c.call("rec", big_args(1, 100000), run_id="a1")
        r2 = c.call("rec", big_args(2, 100000), run_id="a2")
        assert r1["status"] == r2["status"] == "needs_approval", (r1, r2)
        r = c.call("rec", big_args(3, 100000), run_id="a3")
        assert is_quota_refusal(r, "approvals.max_pending_bytes_per_tenant"), r
        assert len(pending_of(d, "acme")) == 2
        # Small args still fit under the bytes quota.
        r = c.call("rec", {"i": 4}, run_id="a4")
        assert r["status"] == "needs_approval", r
        c.close()
        b_can_write(d, "1")
        assert count_lines(d.effects) == 0
        d.stop()
    finally:
        d.cleanup()


@test
def expired_approvals_count_no_more():
    # Approvals expire 4 s after their request; at most 2 pending.
    d = quota_daemon("tg-aq-expiry", ttl_s=4,
                     approvals={"max_pending_per_tenant": 2})
    try:
        d.start()
        c = d.client(uid=A_UID)
        n = 0
        # Until the quota refuses one (two were pending at once) ...
        while True:
            r = c.call("rec", {"i": n}, run_id="a%d" % n)
            n += 1
            if r["status"] != "needs_approval":
                assert is_quota_refusal(r, "approvals.max_pending_per_tenant"), r
                break
            assert n < 100, "the quota never refused"
        # ... then, once they have expired, the sweeper (every second)
        # stops counting them.
        deadline = time.time() + 60
        while True:
            r = c.call("rec", {"i": n}, run_id="a%d" % n)
            n += 1
            if r["status"] == "needs_approval":
                break
            assert is_quota_refusal(r, "approvals.max_pending_per_tenant"), r
            assert time.time() < deadline, "expired approvals still counted"
            time.sleep(0.5)
        assert count_lines(d.effects) == 0
        c.close()
        d.stop()
    finally:
        d.cleanup()


def fill_store(d, c, tag):
    """Tenant A's approvals, large then smaller, until the store refuses
    one; returns how many were recorded."""
    n = 0
    for size in (120000, 30000, 4000):
        for i in range(200):
            r = c.call("rec", big_args(i, size, tag + str(size)),
                       run_id="%s-%d-%d" % (tag, size, i))
            if r["status"] != "needs_approval":
                assert is_full_refusal(r), r
                break
            n += 1
        else:
            raise AssertionError("the store never filled up")
    return n


def recovers(d, tag, timeout=60):
    """Within timeout: the sweeper has removed the expired approvals, so
    tenant B writes and tenant A can ask for approvals again."""
    deadline = time.time() + timeout
    k = 0
    while True:
        k += 1
        cb = d.client(uid=B_UID)
        r = cb.call("ticket.close", {"t": tag, "k": k}, run_id="b-%s-%d" % (tag, k))
        cb.close()
        if r["status"] == "ok":
            break
        assert is_full_refusal(r), r
        assert time.time() < deadline, (
            "tenant B's writes stay refused after A's approvals expired:\n" +
            d.read_log()[-3000:])
        time.sleep(0.5)
    ca = d.client(uid=A_UID)
    while True:
        r = ca.call("rec", big_args(k, 120000, tag + "again"), run_id="a-%s-%d" % (tag, k))
        k += 1
        if r["status"] == "needs_approval":
            break
        assert is_full_refusal(r), r
        assert time.time() < deadline, "A's room never came back"
        time.sleep(0.5)
    ca.close()


@test
def full_store_is_swept_and_takes_writes_again_also_after_restart():
    # A 4 MiB store; approvals expire after 5 s and are swept 1 s later.
    d = quota_daemon("tg-aq-full", ttl_s=5,
                     store={"map_size": 1048576, "max_map_size": 4194304},
                     limits={"max_frame": 200000, "max_output": 20000},
                     writes={"retention_s": 1})
    try:
        d.start()
        c = d.client(uid=A_UID)
        n = fill_store(d, c, "f1")
        assert n >= 10, n
        c.close()
        recovers(d, "r1")
        # Full again, then a restart with the store full.
        c = d.client(uid=A_UID)
        fill_store(d, c, "f2")
        c.close()
        d.stop()
        d.start()
        recovers(d, "r2")
        d.stop()
    finally:
        d.cleanup()


@test
def operator_actions_fit_in_a_full_store():
    d = quota_daemon("tg-aq-ops", ttl_s=600,
                     store={"map_size": 1048576, "max_map_size": 4194304},
                     limits={"max_frame": 200000, "max_output": 20000})
    try:
        d.start()
        c = d.client(uid=A_UID)
        fill_store(d, c, "f")
        c.close()
        ids = [a["approval_id"] for a in pending_of(d, "acme")]
        assert len(ids) >= 10, ids
        # Deny every one: each fits in the reserve and frees its args.
        for aid in ids:
            rc, out, err = d.ctl("deny", aid)
            assert rc == 0, (aid, rc, out, err)
        for sub in ("disable", "enable"):
            rc, out, err = d.ctl("writes", sub)
            assert rc == 0, (sub, rc, out, err)
        assert pending_of(d, "acme") == []
        # Denied approvals keep no args: the room is back at once.
        b_can_write(d, "after-deny")
        c = d.client(uid=A_UID)
        r = c.call("rec", big_args(0, 120000, "again"), run_id="again")
        assert r["status"] == "needs_approval", r
        c.close()
        assert count_lines(d.effects) == 0
        d.stop()
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
