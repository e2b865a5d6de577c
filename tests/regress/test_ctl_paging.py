"""gatewayctl's lists page, and show args cut short (issue 8).

Pending approvals with large args made the answer to `gatewayctl
approvals` larger than gatewayctl accepts, for every operator.  Now
`approvals` and `ledger` answer one page (--limit, default 50) with a
cursor (--after the "next" of the page before), list items carry the
first 200 bytes of the args' canonical JSON with `args_bytes` and
`truncated`, and `gatewayctl approval ID` shows one approval in full."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

PREVIEW = 200


def request_many(d, n, make_args, uid=None):
    """n approvals; returns {approval_id: args}."""
    c = d.client(uid=uid)
    out = {}
    for i in range(n):
        args = make_args(i)
        r = c.call("rec", args, run_id="p%d" % i)
        assert r["status"] == "needs_approval", (i, {k: v for k, v in r.items()})
        out[r["approval_id"]] = args
    c.close()
    return out


def check_item(it, args):
    full = canonical_json(args)
    assert it["args_bytes"] == len(full), (it["args_bytes"], len(full))
    shown = it["args"].encode()
    assert len(shown) <= PREVIEW, len(shown)
    assert full.startswith(shown), shown[:60]
    assert it["truncated"] is (len(shown) < len(full)), it
    # Cut on a character boundary, never more than one character short.
    assert len(shown) > PREVIEW - 4 or not it["truncated"], len(shown)


@test
def list_of_approvals_too_large_for_one_answer_still_works():
    # Control characters take 1 byte in msgpack and 6 in JSON: 12 approvals
    # of 1,000,000 of them are 72 MB of args as JSON, more than gatewayctl
    # reads in one answer (64 MiB).  The defaults otherwise (max_frame
    # 1 MiB, quotas 100 and 16 MiB).
    with approvals_daemon(name="tg-page-big") as d:
        ids = request_many(d, 12, lambda i: {"i": i, "blob": "\x01" * 1000000})
        rc, out, err = d.ctl("--json", "approvals")
        assert rc == 0, (rc, out[:200], err)
        items = json.loads(out)
        assert sorted(it["approval_id"] for it in items) == sorted(ids), items
        for it in items:
            check_item(it, ids[it["approval_id"]])
            assert it["truncated"] is True
        # One in full, through the same control socket.
        aid = sorted(ids)[3]
        one = d.ctl_json("approval", aid)
        assert one["approval_id"] == aid and one["state"] == "pending", \
            {k: v for k, v in one.items() if k != "args"}
        assert one["args"].encode() == canonical_json(ids[aid])
        assert one["args_bytes"] == len(canonical_json(ids[aid]))
        assert one["truncated"] is False
        # Text output too.
        rc, out, err = d.ctl("approvals", "--limit", "2")
        assert rc == 0, (rc, out[:300], err)
        assert "next: " in out, out[:500]
        assert len(out) < 20000, len(out)


@test
def pages_cover_every_approval_exactly_once():
    # Args near a small max_frame, with multibyte characters around the cut.
    d = approvals_daemon(name="tg-page")
    reconfigure(d, dict(d.conf, limits={"max_frame": 65536}))
    try:
        d.start()
        ids = request_many(
            d, 30, lambda i: {"i": i, "s": "é" * (95 + i % 3) + "x" * 60000})
        # Pages of 7: 5 pages, the last one short, every id exactly once.
        pages = ctl_pages(d, "approvals", limit=7)
        assert [len(p) for p in pages] == [7, 7, 7, 7, 2], [len(p) for p in pages]
        seen = [it["approval_id"] for p in pages for it in p]
        assert len(seen) == len(set(seen)) == 30, seen
        assert set(seen) == set(ids)
        assert seen == sorted(seen), "pages are in id order"
        for p in pages:
            for it in p:
                check_item(it, ids[it["approval_id"]])
        # The default page holds them all (50): no cursor.
        rc, out, err = d.ctl("--json", "approvals")
        assert rc == 0 and "next: " not in err, (rc, err)
        assert len(json.loads(out)) == 30
        # Decided ones leave the list; the cursor still works across it.
        first = ctl_pages(d, "approvals", limit=10)[0]
        rc, out, err = d.ctl("deny", first[-1]["approval_id"])
        assert rc == 0, (rc, out, err)
        rc, out, err = d.ctl("approve", first[2]["approval_id"])
        assert rc == 0, (rc, out, err)
        rest = ctl_all(d, "approvals", limit=4)
        assert len(rest) == 28 and len({i["approval_id"] for i in rest}) == 28
        # Every one in full, decided ones too (a denied one keeps no args).
        denied = first[-1]["approval_id"]
        for aid, args in ids.items():
            one = d.ctl_json("approval", aid)
            if aid == denied:
                continue
            assert one["args"].encode() == canonical_json(args), aid
        one = d.ctl_json("approval", denied)
        assert one["state"] == "denied" and one["args"] is None, one
        assert d.ctl_json("approval", first[2]["approval_id"])["state"] == "approved"
        # Bad requests are refused, with exit status 2 for usage.
        assert d.ctl("approval", "0" * 32)[0] == 1
        for bad in (["approvals", "--limit", "0"], ["approvals", "--limit", "x"],
                    ["approvals", "--limit", "1001"], ["approvals", "--after"],
                    ["approval"], ["ledger", "--bogus", "1"]):
            assert d.ctl(*bad)[0] == 2, bad
        r = ctl_raw(d.control_sock, {"op": "approvals", "limit": -1})
        assert r["ok"] is False and "limit" in r["error"], r
        r = ctl_raw(d.control_sock, {"op": "approvals", "after": 5})
        assert r["ok"] is False and "cursor" in r["error"], r
        d.stop()
    finally:
        d.cleanup()


@test
def ledger_pages():
    d = Daemon(writes_config(
        {"die": {"mode": "write", "exec": [tool("killed")]}}), name="tg-page-lg")
    with d:
        c = d.client()
        for i in range(12):
            r = c.call("die", {"i": i}, run_id="l%d" % i)
            assert r["status"] == "error", r
        c.close()
        pages = ctl_pages(d, "ledger", limit=5)
        assert [len(p) for p in pages] == [5, 5, 2], [len(p) for p in pages]
        keys = [it["key"] for p in pages for it in p]
        assert len(set(keys)) == 12 and keys == sorted(keys), keys
        assert all(it["state"] == "in_doubt" for p in pages for it in p)
        assert len(d.ctl_json("ledger")) == 12
        rc, out, err = d.ctl("ledger", "--limit", "5")
        assert rc == 0 and ("next: " + pages[0][-1]["key"]) in out, out


if __name__ == "__main__":
    main()
