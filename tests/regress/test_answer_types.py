"""gatewayd's requests to the executor each wait for one answer type, the
one the protocol table names (CALL -> CALL_ANS, ...): an answer of another
type to a request's id is fatal, as OpenSSH's mm_request_receive_expect()
makes it.  A stand-in executor (gatewayd --executor) answers HELLO
properly, then each CALL with the type under test."""
import json
import os
import stat
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

FAKE = r'''#!/usr/bin/python3
import hashlib, json, os, socket, struct, sys, threading
import msgpack

T = json.loads(os.environ["FAKE_TYPES"])
ANSWER = os.environ["FAKE_ANSWER"]
cfg = sys.argv[sys.argv.index("-c") + 1]
chash = hashlib.sha256(open(cfg, "rb").read()).hexdigest()
s = socket.socket(fileno=3)
peer = socket.socket(fileno=4)
peer.setblocking(True)


def drain_peers():
    """Take the agent sockets gatewayd passes, so its channel never fills."""
    while True:
        msg, anc, _, _ = peer.recvmsg(8, socket.CMSG_SPACE(4))
        if not msg:
            os._exit(0)
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                os.close(struct.unpack("i", data[:4])[0])


threading.Thread(target=drain_peers, daemon=True).start()


def recvall(n):
    b = b""
    while len(b) < n:
        more = s.recv(n - len(b))
        if not more:
            os._exit(0)
        b += more
    return b


def read():
    n = struct.unpack(">I", recvall(4))[0]
    return msgpack.unpackb(recvall(n), raw=False)


def send(obj):
    b = msgpack.packb(obj, use_bin_type=True)
    s.sendall(struct.pack(">I", len(b)) + b)


m = read()
send([T["MSG_HELLO_ANS"], m[1], {"version": m[2]["version"],
      "writes_enabled": False, "config_hash": chash}])
while True:
    m = read()
    if m[0] == T["MSG_CALL"]:
        send([T[ANSWER], m[1], {"response": {"status": "ok", "result": {"fake": True}}}])
'''


def hello_ok(d):
    try:
        c = d.client()
        c.hello()
        c.close()
        return True
    except (OSError, EOFError):
        return False


def with_fake(answer, fn):
    d = Daemon(name="tg-ans")
    path = os.path.join(d.dir, "fake-executor")
    with open(path, "w") as f:
        f.write(FAKE)
    os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    os.environ["FAKE_TYPES"] = json.dumps(msg_types())
    os.environ["FAKE_ANSWER"] = answer
    try:
        # No control socket comes from the stand-in: ready once hello is.
        d.start(extra_args=("--executor", path), wait=False)
        wait_for(lambda: hello_ok(d), 30, "gatewayd to answer hello")
        fn(d)
        log = d.read_log()
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            assert bad not in log, "sanitizer report in gatewayd's log:\n" + log
    finally:
        d.cleanup()


@test
def the_expected_answer_is_passed_on():
    """The stand-in works: CALL answered CALL_ANS reaches the agent."""
    def go(d):
        c = d.client()
        r = c.call("echo", {"a": 1})
        assert r["status"] == "ok" and r["result"] == {"fake": True}, r
        c.close()
        assert d.proc.poll() is None
    with_fake("MSG_CALL_ANS", go)


def wrong_answer_is_fatal(answer):
    def go(d):
        c = d.client()
        try:
            r = c.call("echo", {"a": 1})
        except (OSError, EOFError):
            r = None
        # The agent must never get the answer of another request type.
        assert r is None, r
        wait_for(lambda: d.proc.poll() is not None, 30, "gatewayd to exit")
        assert d.proc.returncode != 0, d.proc.returncode
        log = d.read_log()
        want = "executor answered %s to id" % answer[4:]
        assert want in log and "which waits for CALL_ANS" in log, log
        c.close()
    with_fake(answer, go)


@test
def wait_ans_to_a_call_is_fatal():
    wrong_answer_is_fatal("MSG_WAIT_ANS")


@test
def resume_ans_to_a_call_is_fatal():
    wrong_answer_is_fatal("MSG_RESUME_ANS")


if __name__ == "__main__":
    main()
