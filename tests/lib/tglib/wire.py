"""Frames: a 4-byte big-endian length, then that many bytes (a msgpack
value), on the agent socket, the control socket and the socketpair alike.
The one frame writer and the one frame reader of the tests."""
import struct

import msgpack


def frame(obj):
    b = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(b)) + b


def raw_frame(body):
    """A frame around body bytes, whatever they hold."""
    return struct.pack(">I", len(body)) + body



def read_exact(sock, n, what="the connection"):
    """n bytes from sock; EOFError when the peer closes first."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("%s closed after %d of %d bytes" % (what, len(data), n))
        data += chunk
    return data


def read_frame(sock, what="the connection"):
    """The next frame's value from sock (msgpack, maps with any keys)."""
    (n,) = struct.unpack(">I", read_exact(sock, 4, what))
    return msgpack.unpackb(read_exact(sock, n, what), raw=False, strict_map_key=False)


def read_frame_or_none(sock):
    """The next frame's value, or None when the connection ends (or is
    reset) before a whole frame."""
    try:
        return read_frame(sock)
    except (EOFError, ConnectionResetError, BrokenPipeError):
        return None


def decode_frames(data):
    """Every frame's value in data (bytes read to the end of a stream);
    AssertionError when data ends inside a frame."""
    out = []
    while data:
        assert len(data) >= 4, data
        (n,) = struct.unpack(">I", data[:4])
        assert len(data) >= 4 + n, data
        out.append(msgpack.unpackb(data[4:4 + n], raw=False, strict_map_key=False))
        data = data[4 + n:]
    return out
