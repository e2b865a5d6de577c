"""Frames of the agent socket: a 4-byte big-endian length N, then N bytes
holding one msgpack map (CONTRACT.md, "Agent socket").  Encoding, and a
buffer that cuts a byte stream into answers, apart from any socket."""
import struct

import msgpack

from .errors import MalformedAnswer

HEADER = struct.Struct(">I")

# The largest answer this client takes.  The gate's answers are bounded by
# its limits.max_output (1 MiB by default) plus headers; this leaves room
# for a gate configured far above that while refusing a length that is
# clearly not one (a stream out of step).
DEFAULT_MAX_ANSWER = 64 * 1024 * 1024


def encode(request):
    """One request map as a frame.  Strings go as msgpack str and bytes
    as bin (which the gate refuses in args, as the contract says)."""
    body = msgpack.packb(request, use_bin_type=True)
    return HEADER.pack(len(body)) + body


class FrameBuffer:
    """Bytes in, whole answers out.  Holds at most one partial frame."""

    def __init__(self, max_answer=DEFAULT_MAX_ANSWER):
        self.buf = bytearray()
        self.max_answer = max_answer

    def feed(self, data):
        self.buf += data

    def partial(self):
        """True while bytes of an unfinished frame are held."""
        return len(self.buf) > 0

    def next(self):
        """The next whole answer (a dict), or None until more bytes come.
        Raises MalformedAnswer for a frame that is not one msgpack map."""
        if len(self.buf) < HEADER.size:
            return None
        (n,) = HEADER.unpack_from(self.buf)
        if n == 0 or n > self.max_answer:
            raise MalformedAnswer("an answer frame of %d bytes (limit %d)" % (n, self.max_answer))
        if len(self.buf) < HEADER.size + n:
            return None
        body = bytes(self.buf[HEADER.size:HEADER.size + n])
        del self.buf[:HEADER.size + n]
        try:
            value = msgpack.unpackb(body, raw=False, strict_map_key=False)
        except Exception as e:   # msgpack raises several unrelated types
            raise MalformedAnswer("an answer frame that is not msgpack: %s" % e)
        if not isinstance(value, dict):
            raise MalformedAnswer("an answer that is not a map: %r" % (value,))
        return value
