"""Checkpoints as agents hold them ("tgc1.PAYLOAD.SIG"): split, join,
and signed with a key of the test's own."""
import base64

import msgpack


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_encode(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def checkpoint_split(cp):
    """A checkpoint "tgc1.PAYLOAD.SIG" -> (payload dict, payload bytes, sig bytes)."""
    prefix, p, s = cp.split(".")
    assert prefix == "tgc1", cp
    raw = b64url_decode(p)
    return msgpack.unpackb(raw, raw=False), raw, b64url_decode(s)


def checkpoint_join(payload, sig):
    """payload (a dict, or bytes as they are) and sig bytes -> a checkpoint string."""
    if isinstance(payload, dict):
        payload = msgpack.packb(payload, use_bin_type=True)
    return "tgc1." + b64url_encode(payload) + "." + b64url_encode(sig)


CHECKPOINT_DOMAIN = b"toolgate checkpoint v1\0"


def checkpoint_sign_with(payload, seed):
    """Sign payload (dict or bytes) the way the executor does, with the
    Ed25519 key of 32-byte seed (python3-cryptography); a checkpoint string."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    if isinstance(payload, dict):
        payload = msgpack.packb(payload, use_bin_type=True)
    sig = Ed25519PrivateKey.from_private_bytes(seed).sign(CHECKPOINT_DOMAIN + payload)
    return checkpoint_join(payload, sig)

