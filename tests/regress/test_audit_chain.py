"""The audit log's hash chain and signed heads: every record carries the
SHA-256 of the line before it, heads sign (seq, hash, time) with the
executor's audit key, and `gatewayctl audit verify` finds and names edits,
deletions, reorders, a cut tail, a log and store rolled back together
against a kept head, and forged heads.  `gatewayctl audit head` prints the
latest head."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

GENESIS = "0" * 64


def log_of(d):
    return os.path.join(d.state, "audit.log")


def lines_of(path):
    with open(path, "rb") as f:
        return f.read().split(b"\n")[:-1]


def write_lines(path, lines):
    with open(path, "wb") as f:
        f.write(b"".join(l + b"\n" for l in lines))


def verify(d, *extra, log=None):
    """gatewayctl audit verify on the files: (exit status, message)."""
    rc, out, err = d.ctl("audit", "verify", "--log", log or log_of(d), *extra)
    return rc, (out + err).strip()


def all_records(d):
    """Every record, in the log and its rotated files."""
    out = []
    for name in sorted(os.listdir(d.state)):
        if name.startswith("audit.log"):
            out += [json.loads(l) for l in lines_of(os.path.join(d.state, name))]
    return out


def mixed_run(d, tag):
    """Reads, writes, a refusal gatewayd decides, an approval, a denial."""
    c = d.client()
    for i in range(5):
        assert c.call("echo", {"i": i}, run_id=tag)["status"] == "ok"
    c.call("nope", {}, run_id=tag)
    r = c.call("rec", {"n": 1}, run_id=tag)
    assert r["status"] == "needs_approval", r
    assert d.ctl("approve", r["approval_id"])[0] == 0
    assert c.resume(r["checkpoint"])["status"] == "ok"
    r = c.call("rec", {"n": 2}, run_id=tag)
    assert d.ctl("deny", r["approval_id"])[0] == 0
    c.call("ticket.close", {"t": 1}, run_id=tag)
    # gatewayd's refusal lands a moment after its answer.
    wait_for(lambda: any(x.get("event") == "gatewayd" and x.get("run_id") == tag
                         for x in all_records(d)), what="gatewayd's record")


def chained_run():
    """A stopped daemon whose log holds two runs and a restart."""
    d = approvals_daemon(name="tg-chain")
    d.start()
    mixed_run(d, "one")
    d.stop()
    d.start()
    mixed_run(d, "two")
    d.stop()
    return d


@test
def every_record_chains_to_the_one_before():
    d = chained_run()
    try:
        lines = lines_of(log_of(d))
        prev = GENESIS
        for l in lines:
            rec = json.loads(l)
            assert rec["prev"] == prev, (rec, prev)
            prev = hashlib.sha256(l).hexdigest()
        heads = [json.loads(l) for l in lines if json.loads(l).get("event") == "head"]
        # One at each shutdown (two stops), each signing the record before it.
        assert len(heads) >= 2, heads
        assert json.loads(lines[-1])["event"] == "head"
        rc, msg = verify(d)
        assert rc == 0 and msg.startswith("ok: %d records" % len(lines)), msg
        # No log at all is not a log that verifies.
        rc, msg = verify(d, log=os.path.join(d.dir, "none.log"))
        assert rc == 1 and "none.log" in msg, msg
    finally:
        d.cleanup()


@test
def audit_head_prints_the_latest_signed_head():
    d = chained_run()
    try:
        rc, out, err = d.ctl("audit", "head", "--log", log_of(d))
        assert rc == 0, err
        h = json.loads(out)
        assert set(h) == {"seq", "hash", "ts_ms", "signature", "public_key"}, h
        last = json.loads(lines_of(log_of(d))[-1])
        assert h["seq"] == last["head_seq"] and h["hash"] == last["head_hash"], (h, last)
        assert h["public_key"] == open(os.path.join(d.state, "audit.pub")).read().strip()
        assert len(h["signature"]) == 128
        # The store keeps the same head: status at the next start is ok.
        d.start()
        assert d.ctl_json("status")["audit_chain"] == "ok"
        d.stop()
    finally:
        d.cleanup()


def tampered(d, fn):
    """Verify a copy of the log after fn(lines) changed it."""
    lines = lines_of(log_of(d))
    bad = os.path.join(d.dir, "bad.log")
    write_lines(bad, fn(list(lines)))
    shutil.copy(os.path.join(d.state, "audit.pub"), os.path.join(d.dir, "audit.pub"))
    return verify(d, log=bad)


@test
def edits_deletions_and_reorders_are_named():
    d = chained_run()
    try:
        def edit(ls):
            ls[5] = ls[5].replace(b'"run_id":"one"', b'"run_id":"onf"')
            return ls
        rc, msg = tampered(d, edit)
        assert rc == 1 and "bad.log:6: edited" in msg, msg

        def edit_last_of_many(ls):
            ls[9] = ls[9].replace(b'"decision":"', b'"decision":"x')
            return ls
        rc, msg = tampered(d, edit_last_of_many)
        assert rc == 1 and "bad.log:10: edited" in msg, msg

        rc, msg = tampered(d, lambda ls: ls[:4] + ls[5:])
        assert rc == 1 and "bad.log:5: deleted" in msg, msg

        rc, msg = tampered(d, lambda ls: ls[1:])
        assert rc == 1 and "bad.log:1: deleted" in msg, msg

        def swap(ls):
            ls[3], ls[4] = ls[4], ls[3]
            return ls
        rc, msg = tampered(d, swap)
        assert rc == 1 and "bad.log:4: reordered" in msg, msg

        rc, msg = tampered(d, lambda ls: ls[:7] + [b"not json"] + ls[7:])
        assert rc == 1 and "bad.log:8: edited: not a record" in msg, msg
    finally:
        d.cleanup()


@test
def a_cut_tail_is_found_against_a_kept_head():
    d = chained_run()
    try:
        rc, out, _ = d.ctl("audit", "head", "--log", log_of(d))
        head = os.path.join(d.dir, "head.json")
        open(head, "w").write(out)
        assert verify(d, "--head", head)[0] == 0
        # Cut the last records, head and all: still a whole chain by itself.
        rc, msg = tampered(d, lambda ls: ls[:-3])
        assert rc == 0, msg
        bad = os.path.join(d.dir, "bad.log")
        rc, msg = verify(d, "--head", head, log=bad)
        assert rc == 1 and "tail cut" in msg and "bad.log:" in msg, msg
        # And the executor sees it at start, against the head it kept.
        shutil.copy(bad, log_of(d))
        d.start()
        st = d.ctl_json("status")
        assert st["audit_chain"].startswith("broken: ") and "tail cut" in st["audit_chain"], st
        assert "THE AUDIT LOG DOES NOT VERIFY" in d.read_log()
        # It is said, not enforced: calls are still served.
        assert d.client().call("echo", {"after": 1}, run_id="cut")["status"] == "ok"
        d.stop()
    finally:
        d.cleanup()


@test
def log_and_store_rolled_back_together_are_found():
    d = approvals_daemon(name="tg-roll")
    try:
        d.start()
        mixed_run(d, "one")
        d.stop()
        saved = os.path.join(d.dir, "saved")
        shutil.copytree(d.state, saved)
        d.start()
        mixed_run(d, "two")
        d.stop()
        rc, out, _ = d.ctl("audit", "head", "--log", log_of(d))
        head = os.path.join(d.dir, "head.json")
        open(head, "w").write(out)
        # Restore the earlier state whole: log, store and keys agree.
        shutil.rmtree(d.state)
        shutil.copytree(saved, d.state)
        assert verify(d)[0] == 0
        rc, msg = verify(d, "--head", head)
        assert rc == 1 and "tail cut" in msg and "rolled back" in msg, msg
        # Run on from the restored state: the seqs come back with other records.
        d.start()
        mixed_run(d, "three")
        d.stop()
        assert verify(d)[0] == 0
        rc, msg = verify(d, "--head", head)
        assert rc == 1 and ("rolled back" in msg or "tail cut" in msg), msg
        assert "audit.log:" in msg, msg
    finally:
        d.cleanup()


def forge(h, key_seed=None, **change):
    """h changed and, with key_seed, re-signed with another key."""
    h = dict(h, **change)
    if key_seed is not None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives import serialization
        k = Ed25519PrivateKey.from_private_bytes(key_seed)
        msg = (b"toolgate audit head v1\0" + h["seq"].to_bytes(8, "big") +
               bytes.fromhex(h["hash"]) + h["ts_ms"].to_bytes(8, "big"))
        h["signature"] = k.sign(msg).hex()
        h["public_key"] = k.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    return h


@test
def forged_heads_are_refused():
    d = chained_run()
    try:
        rc, out, _ = d.ctl("audit", "head", "--log", log_of(d))
        h = json.loads(out)
        head = os.path.join(d.dir, "head.json")
        # The test's own signer agrees with the executor's: re-signing the
        # true head with its key is not possible here, but a head signed
        # by another key over the true seq and hash verifies by itself...
        other = forge(h, key_seed=b"\x07" * 32)
        open(head, "w").write(json.dumps(other))
        rc, msg = verify(d, "--head", head, "--key", h["public_key"])
        assert rc == 1 and "forged head" in msg and "other than the executor" in msg, msg
        # ...and without --key the kept head's key is taken, so every head
        # in the log (signed by the executor's key) is the forgery.
        rc, msg = verify(d, "--head", head)
        assert rc == 1 and "forged head" in msg, msg
        # A seq changed under the executor's signature.
        open(head, "w").write(json.dumps(forge(h, seq=h["seq"] + 1)))
        rc, msg = verify(d, "--head", head)
        assert rc == 1 and "forged head" in msg and "signature is not valid" in msg, msg

        # In the log: a head re-signed with another key, chain kept whole.
        lines = lines_of(log_of(d))
        i = max(n for n, l in enumerate(lines) if json.loads(l)["event"] == "head")
        rec = json.loads(lines[i])
        f = forge({"seq": rec["head_seq"], "hash": rec["head_hash"],
                   "ts_ms": rec["ts_ms"]}, key_seed=b"\x09" * 32)
        rec["signature"], rec["public_key"] = f["signature"], f["public_key"]
        bad = os.path.join(d.dir, "bad.log")
        write_lines(bad, lines[:i] + [json.dumps(rec, separators=(",", ":")).encode()])
        shutil.copy(os.path.join(d.state, "audit.pub"), os.path.join(d.dir, "audit.pub"))
        rc, msg = verify(d, log=bad)
        assert rc == 1 and "bad.log:%d: forged head" % (i + 1) in msg, msg
        # A head whose head_seq was changed: its signature no longer holds.
        rec = json.loads(lines[i])
        rec["head_seq"] += 1
        write_lines(bad, lines[:i] + [json.dumps(rec, separators=(",", ":")).encode()])
        rc, msg = verify(d, log=bad)
        assert rc == 1 and "bad.log:%d: forged head" % (i + 1) in msg, msg
    finally:
        d.cleanup()


@test
def the_chain_continues_across_rotation():
    d = approvals_daemon(name="tg-rot")
    try:
        d.start()
        mixed_run(d, "one")
        log = log_of(d)
        os.rename(log, log + ".1")
        os.kill(d.executor_pid(), signal.SIGHUP)
        wait_for(lambda: os.path.exists(log), what="a new audit.log")
        mixed_run(d, "two")
        d.stop()
        old, new = lines_of(log + ".1"), lines_of(log)
        # A head closes the old file, the new one chains to it.
        assert json.loads(old[-1])["event"] == "head", old[-1]
        assert json.loads(new[0])["prev"] == hashlib.sha256(old[-1]).hexdigest()
        rc, msg = verify(d)
        assert rc == 0 and "ok: %d records" % (len(old) + len(new)) in msg, msg
        # Deleting the first record of the new file is found across files.
        write_lines(log, new[1:])
        rc, msg = verify(d)
        assert rc == 1 and "audit.log:1: deleted" in msg, msg
        # A restart with an empty new file chains to the rotated one.
        write_lines(log, new)
        os.rename(log, log + ".2")
        os.rename(log + ".1", log + ".3")
        os.rename(log + ".2", log + ".1")
        os.rename(log + ".3", log + ".2")
        d.start()
        assert d.ctl_json("status")["audit_chain"] == "ok"
        d.client().call("echo", {"x": 1}, run_id="three")
        d.stop()
        rc, msg = verify(d)
        assert rc == 0, msg
    finally:
        d.cleanup()


@test
def the_executor_rotates_by_size_and_keeps_audit_keep_files():
    d = approvals_daemon(name="tg-size")
    conf = dict(d.conf, audit={"max_bytes": 3000, "keep": 2, "head_every": 7})
    reconfigure(d, conf)
    try:
        d.start()
        c = d.client()
        for i in range(60):
            r = c.call("echo", {"i": i}, run_id="size%d" % (i // 20))
            assert r["status"] == "ok", r
        mixed_run(d, "size2")
        d.stop()
        log = log_of(d)
        assert os.path.exists(log + ".1") and os.path.exists(log + ".2")
        assert not os.path.exists(log + ".3")
        files = [log + ".2", log + ".1", log]
        for older, newer in zip(files, files[1:]):
            o, n = lines_of(older), lines_of(newer)
            # Each rotated file ends in a head, the next chains to it.
            assert json.loads(o[-1])["event"] == "head", o[-1]
            assert json.loads(n[0])["prev"] == hashlib.sha256(o[-1]).hexdigest()
            assert os.path.getsize(older) < 3000 + 1024, os.path.getsize(older)
        # head_every: a head after 7 records, written from the loop (so a
        # loop turn's records may come first); without it ~70 go unsigned.
        recs = [json.loads(l) for f in files for l in lines_of(f)]
        gaps, since = [], 0
        for r in recs:
            if r["event"] == "head":
                gaps.append(since)
                since = 0
            else:
                since += 1
        assert gaps and max(gaps) <= 10, gaps
        rc, msg = verify(d)
        assert rc == 0 and "ok: %d records" % len(recs) in msg, msg
        # The head that ends a rotated file deleted: found across files.
        a = lines_of(log + ".1")
        write_lines(log + ".1", a[:-1])
        rc, msg = verify(d)
        assert rc == 1 and "/audit.log:1: deleted" in msg, msg
    finally:
        d.cleanup()


@test
def a_head_follows_head_s_after_a_record():
    d = Daemon(base_config(audit={"head_s": 1}), name="tg-heads")
    try:
        d.start()
        d.client().call("echo", {"x": 1}, run_id="t")
        call = [r for r in read_audit(d) if r.get("run_id") == "t"][0]
        # No stop: the timer writes it, signing the call's record.
        head = wait_for(lambda: [r for r in read_audit(d) if r["event"] == "head"] or None,
                        timeout=5, what="a timed head")[0]
        assert head["head_seq"] == call["seq"], (head, call)
        rc, out, _ = d.ctl("audit", "head", "--log", log_of(d))
        assert json.loads(out)["seq"] == call["seq"], out
        assert verify(d)[0] == 0
        d.stop()
    finally:
        d.cleanup()


@test
def the_audit_key_may_come_from_the_credentials_directory():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization
    k = Ed25519PrivateKey.from_private_bytes(b"\x05" * 32)
    pk = k.public_key().public_bytes(serialization.Encoding.Raw,
                                     serialization.PublicFormat.Raw)
    d = Daemon(name="tg-akey")
    try:
        os.makedirs(d.creds, mode=0o700, exist_ok=True)
        with open(os.path.join(d.creds, "audit.key"), "wb") as f:
            f.write(b"\x05" * 32 + pk)     # libsodium's form: seed, public key
        os.chmod(os.path.join(d.creds, "audit.key"), 0o600)
        d.start()
        d.client().call("echo", {"x": 1}, run_id="k")
        d.stop()
        assert not os.path.exists(os.path.join(d.state, "audit.key"))
        assert open(os.path.join(d.state, "audit.pub")).read().strip() == pk.hex()
        rc, out, _ = d.ctl("audit", "head", "--log", log_of(d))
        assert json.loads(out)["public_key"] == pk.hex(), out
        assert verify(d, "--key", pk.hex())[0] == 0
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
