"""Checkpoints that must not verify: a field altered, removed or added, a
signature or an encoding mangled, a NUL inside, or a payload re-signed
with the executor's own key that says something else than the approval
record.  Each is refused, nothing runs, and the genuine one still works.
(Moved from test_approvals.py: one behaviour a script.)"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

import msgpack


def _other_value(key, v):
    if key == "kid":
        return "0123456789abcdef" if v != "0123456789abcdef" else "fedcba9876543210"
    if key == "aid":
        return ("f" if v[0] != "f" else "e") + v[1:]
    if key == "args_sha256":
        return ("0" if v[0] != "0" else "1") + v[1:]
    if key == "tenant":
        return "globex"
    if key == "env":
        return "staging"
    if key == "exp":
        return v + 3600
    return v + "x"

@test
def altered_checkpoint_fields_do_not_verify():
    with approvals_daemon() as d:
        c = d.client()
        r = request_approval(d, c, run_id="run-alt", step_id="s1")
        assert d.ctl("approve", r["approval_id"])[0] == 0
        payload, raw, sig = checkpoint_split(r["checkpoint"])
        # The harness re-encodes faithfully: otherwise every case below proves nothing.
        assert msgpack.packb(payload, use_bin_type=True) == raw, payload
        fields = ("kid", "aid", "tenant", "env", "run_id", "step_id", "tool",
                  "args_sha256", "exp")
        assert set(payload) == set(fields), payload
        assert payload["aid"] == r["approval_id"] and payload["exp"] == r["expires_at"]
        assert (payload["tenant"], payload["env"], payload["run_id"], payload["tool"],
                payload["step_id"]) == ("acme", "prod", "run-alt", "rec", "s1"), payload
        for k in fields:
            p = dict(payload)
            p[k] = _other_value(k, p[k])
            x = c.resume(checkpoint_join(p, sig))
            assert x["status"] == "denied" and \
                x["stop_reason"] == "bad_checkpoint_signature", (k, x)
        # A field removed, a field added.
        p = dict(payload)
        del p["step_id"]
        assert_denied(c.resume(checkpoint_join(p, sig)), "bad_checkpoint_signature")
        p = dict(payload, approved=True)
        assert_denied(c.resume(checkpoint_join(p, sig)), "bad_checkpoint_signature")
        assert count_lines(d.effects) == 0
        # The genuine one still works, once.
        x = c.resume(r["checkpoint"])
        assert x["status"] == "ok" and x["replayed"] is False, x
        assert count_lines(d.effects) == 1

@test
def mangled_checkpoints_are_refused():
    with approvals_daemon() as d:
        c = d.client()
        r = request_approval(d, c)
        assert d.ctl("approve", r["approval_id"])[0] == 0
        cp = r["checkpoint"]
        payload, raw, sig = checkpoint_split(cp)
        flipped = bytearray(sig)
        flipped[10] ^= 0x01
        bad = [
            ("sig-flip", checkpoint_join(raw, bytes(flipped))),
            ("sig-short", checkpoint_join(raw, sig[:-1])),
            ("sig-zero", checkpoint_join(raw, bytes(64))),
            ("truncated", cp[:-5]),
            ("truncated-half", cp[:len(cp) // 2]),
            ("no-sig", cp.rsplit(".", 1)[0]),
            ("no-sig-dot", cp.rsplit(".", 1)[0] + "."),
            ("extra-part", cp + ".AAAA"),
            ("prefix", "tgc2." + cp[5:]),
            ("no-prefix", cp[5:]),
            ("garbage", "hello world"),
            ("garbage-prefix", "tgc1.!!!!.????"),
            ("padding", cp + "=="),
            ("payload-not-map", checkpoint_join(msgpack.packb([1, 2]), sig)),
            ("payload-garbage", checkpoint_join(b"\xc1\xc1\xc1", sig)),
            ("payload-empty", checkpoint_join(b"", sig)),
            ("at-limit", "tgc1." + "A" * 2043),
        ]
        for name, b in bad:
            x = d.client().resume(b)
            assert x["status"] == "denied" and \
                x["stop_reason"] == "bad_checkpoint_signature", (name, x)
        # Not a checkpoint string at all: a bad request (or refused), never run.
        for name, b in [("empty", ""), ("over-long", "tgc1." + "A" * 100000),
                        ("over-long-real", cp + "A" * 3000)]:
            x = d.client().resume(b)
            assert (x["status"], x.get("error", x.get("stop_reason"))) in \
                (("error", "bad_request"), ("denied", "bad_checkpoint_signature")), (name, x)
        for name, b in [("int", 12), ("nil", None), ("bin", cp.encode()),
                        ("list", [cp]), ("map", {"checkpoint": cp}), ("bool", True)]:
            x = d.client().resume(b)
            assert x["status"] == "error" and x["error"] == "bad_request", (name, x)
        x = c.rpc({"op": "resume"})
        assert x["status"] == "error" and x["error"] == "bad_request", x
        assert count_lines(d.effects) == 0
        assert c.hello()["status"] == "ok"
        x = c.resume(cp)
        assert x["status"] == "ok" and x["replayed"] is False, x
        assert count_lines(d.effects) == 1

@test
def checkpoint_with_a_nul_byte_is_refused():
    """A NUL inside the checkpoint string: refused; the server lives on."""
    with approvals_daemon() as d:
        c = d.client()
        r = request_approval(d, c)
        assert d.ctl("approve", r["approval_id"])[0] == 0
        cp = r["checkpoint"]
        for b in (cp[:20] + "\0" + cp[21:], cp + "\0", "\0"):
            x = d.client().resume(b)
            assert (x["status"], x.get("error", x.get("stop_reason"))) in \
                (("error", "bad_request"), ("denied", "bad_checkpoint_signature")), x
        assert d.client().hello()["status"] == "ok"
        assert count_lines(d.effects) == 0
        x = d.client().resume(cp)
        assert x["status"] == "ok" and x["replayed"] is False, x

@test
def resigned_checkpoint_must_match_the_record():
    """Even with the executor's own key (read from the state dir), a payload
    that says something else than the approval record is refused."""
    need_root()
    with approvals_daemon() as d:
        c = d.client()
        r = request_approval(d, c, args={"ticket_id": "A"}, run_id="run-s", step_id=1)
        r2 = request_approval(d, c, args={"ticket_id": "B"}, run_id="run-t")
        for a in (r, r2):
            assert d.ctl("approve", a["approval_id"])[0] == 0
        with open(os.path.join(d.state, "checkpoint.key"), "rb") as f:
            seed = f.read()[:32]
        payload, raw, sig = checkpoint_split(r["checkpoint"])
        # The key and the signing rule are right: re-signing reproduces it.
        assert checkpoint_sign_with(raw, seed) == r["checkpoint"]
        p2, _, _ = checkpoint_split(r2["checkpoint"])
        changes = [("aid", p2["aid"]), ("run_id", "run-t"), ("step_id", "2"),
                   ("tool", "ticket.close"), ("args_sha256", p2["args_sha256"]),
                   ("exp", payload["exp"] + 1)]
        for k, v in changes:
            x = c.resume(checkpoint_sign_with(dict(payload, **{k: v}), seed))
            assert x["status"] == "denied" and \
                x["stop_reason"] == "bad_checkpoint_signature", (k, x)
        p = dict(payload)
        del p["step_id"]
        assert_denied(c.resume(checkpoint_sign_with(p, seed)), "bad_checkpoint_signature")
        assert count_lines(d.effects) == 0


if __name__ == "__main__":
    main()
