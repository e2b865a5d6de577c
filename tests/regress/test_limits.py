"""Limits: connections, requests in flight, and clients that do not read."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


@test
def max_connections():
    with Daemon(base_config(limits={"max_connections": 4})) as d:
        def accepted():
            c = d.client()
            try:
                r = c.hello()
            except (EOFError, OSError):
                c.close()
                return None
            if r["status"] != "ok":
                c.close()
                return None
            return c
        # Retried: wait_ready's own connection may not be gone yet.
        cs = [wait_for(accepted, 5, "connection %d accepted" % i)
              for i in range(4)]
        extra = d.client()
        r = extra.recv()
        assert r["status"] == "error" and r["error"] == "unavailable", r
        assert extra.closed(), "the 5th connection was not closed"
        extra.close()
        # A stranger is counted and refused the same way.
        s = d.client(uid=STRANGER_UID)
        r = s.recv()
        assert r["status"] == "error" and r["error"] == "unavailable", r
        assert s.closed()
        for i, c in enumerate(cs):
            r = c.call("echo", {"i": i}, run_id="mc")
            assert r["status"] == "ok", r
        cs.pop().close()
        c = wait_for(accepted, 5, "a new connection to be accepted")
        assert c.call("echo", {}, run_id="mc")["status"] == "ok"
        cs.append(c)
        # And it is full again.
        extra = d.client()
        r = extra.recv()
        assert r["status"] == "error" and r["error"] == "unavailable", r
        for c in cs:
            assert c.hello()["status"] == "ok"


@test
def many_pipelined_calls_with_small_inflight_cap():
    with Daemon(base_config(limits={"max_inflight": 4})) as d:
        c = d.client()
        n = 200
        # One run per call: this is about the connection, not run budgets.
        data = b"".join(frame({"op": "call", "id": i, "run_id": "pipe-%d" % i,
                               "tool": "echo", "args": {"i": i}})
                        for i in range(n))
        c.send_raw(data)
        got = {}
        for _ in range(n):
            r = c.recv()
            assert r["status"] == "ok", r
            assert r["result"]["args"] == {"i": r["id"]}, r
            assert r["id"] not in got, r
            got[r["id"]] = r
        assert set(got) == set(range(n))
        # Hellos are not held up behind the cap for long either.
        assert c.hello()["status"] == "ok"


@test
def a_client_that_never_reads_stops_no_one():
    # The hog's calls may all run at once, past the default
    # max_tools_per_tenant (16): this is about a client that does not
    # read, not admission, which refused the 17th when the echoes were slow.
    conf = base_config(limits={"max_frame": 65536, "max_output": 65536,
                               "max_tools": 256, "max_tools_per_tenant": 256})
    with Daemon(conf) as d:
        x = d.client()
        x.s.setblocking(False)
        pad = "p" * 30000
        sent_frames = 0
        buf = b""
        deadline = time.time() + 5
        blocked_since = None
        i = 0
        # Requests with big answers, never read, until the socket stays full.
        while time.time() < deadline:
            if blocked_since is not None and time.time() - blocked_since > 0.5:
                break
            if not buf:
                buf = frame({"op": "call", "id": i, "run_id": "hog-%d" % i, "tool": "echo",
                             "args": {"pad": pad, "i": i}})
                i += 1
            try:
                n = x.s.send(buf)
            except BlockingIOError:
                if blocked_since is None:
                    blocked_since = time.time()
                time.sleep(0.05)
                continue
            blocked_since = None
            buf = buf[n:]
            if not buf:
                sent_frames += 1
        assert sent_frames >= 10, sent_frames
        # Everyone else is served.
        y = d.client()
        t0 = time.time()
        for k in range(10):
            r = y.call("echo", {"k": k}, run_id="polite")
            assert r["status"] == "ok", r
        assert time.time() - t0 < 10, time.time() - t0
        z = d.client(uid=OTHER_UID)
        assert z.hello()["status"] == "ok"
        assert z.call("echo", {}, run_id="z")["status"] == "ok"
        # The hog gets every answer once it reads (the unfinished last
        # frame excepted).
        x.s.setblocking(True)
        x.s.settimeout(30)
        ids = set()
        for _ in range(sent_frames):
            r = x.recv()
            assert r["status"] == "ok", {k: v for k, v in r.items() if k != "result"}
            ids.add(r["id"])
        assert ids == set(range(sent_frames)), sorted(ids)
        x.close()
        assert y.hello()["status"] == "ok"


@test
def out_of_descriptors_pauses_accept_and_recovers():
    """EMFILE on accept: the listener pauses (no spinning), connections
    wait in the backlog and are served once descriptors are free again."""
    import resource
    d = Daemon()
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    # The pair inherits a small descriptor limit from us.
    resource.setrlimit(resource.RLIMIT_NOFILE, (24, old[1]))
    try:
        d.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)
    try:
        held = []
        while "accept paused" not in d.read_log() and len(held) < 40:
            c = Client(connect_as(d.agent_sock))
            c.send({"op": "hello", "id": len(held)})
            held.append(c)
            time.sleep(0.05)
        assert "accept paused" in d.read_log(), d.read_log()[-500:]
        time.sleep(1.5)
        # Paused, not spinning: little CPU for gatewayd meanwhile.
        with open("/proc/%d/stat" % d.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        assert int(fields[11]) + int(fields[12]) < 100, fields[11:13]
        # Free descriptors: every connection that waited is served.
        n_first = 5
        for c in held[:n_first]:
            assert c.recv()["status"] == "ok"
            c.close()
        for c in held[n_first:]:
            assert c.recv()["status"] == "ok"
            c.close()
        d.stop()
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
