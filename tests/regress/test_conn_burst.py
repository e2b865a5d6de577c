"""A burst of connections: every agent that connects is served, however
many connect at once and however busy the executor is.  The peer channel
that hands the executor each connection's socket holds only a few
messages (as many as its send buffer takes, about 250); the connections past them wait
their turn, unread, and none is refused."""
import os
import select
import signal
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

BURST = 400
STOPPED = 600     # more than the peer channel holds (its send buffer: about 250)


def connect_burst(path, uid, gid, n):
    """n connections of uid/gid made as fast as one process can: the
    effective ids are what SO_PEERCRED records at connect()."""
    socks = []
    os.setegid(gid)
    os.seteuid(uid)
    try:
        while len(socks) < n:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(path)
            except BlockingIOError:     # the listen backlog is full
                s.close()
                continue
            socks.append(s)
    finally:
        os.seteuid(0)
        os.setegid(0)
    return socks


def burst_config():
    """Room for every connection of the burst, all of one uid."""
    return base_config(limits={"max_connections": 1024, "max_connections_per_uid": 1024})


def hello_all(socks):
    """hello on each; the answers that were not ok."""
    bad = []
    for s in socks:
        s.setblocking(True)
        c = Client(s)
        try:
            r = c.hello()
        except (OSError, EOFError) as e:    # refused and closed
            r = {"closed": repr(e)}
        if r.get("status") != "ok":
            bad.append(r)
        c.close()
    return bad


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


@test
def every_connection_of_a_burst_is_served():
    need_root()
    with Daemon(burst_config()) as d:
        bad = hello_all(connect_burst(d.agent_sock, AGENT_UID, AGENT_GID, BURST))
        assert not bad, "%d of %d refused: %s" % (len(bad), BURST, bad[0])


@test
def connections_made_while_the_executor_is_busy_wait_their_turn():
    """The executor stopped (as if busy) while agents connect: the peer
    channel fills after a few; the others wait and are served after."""
    need_root()
    with Daemon(burst_config()) as d:
        gw, ex = d.proc.pid, d.executor_pid()
        # The executor hears of a close after gatewayd made it: once it
        # knows no agent, gatewayd holds none (wait_ready's is gone).
        wait_for(lambda: d.ctl_json("status")["agent_connections"] == 0,
                 timeout=30, what="no agent connection")
        base = nfds(gw)
        os.kill(ex, signal.SIGSTOP)
        try:
            socks = connect_burst(d.agent_sock, AGENT_UID, AGENT_GID, STOPPED)

            def all_taken():
                # Each is held by gatewayd, or was answered (refused) by it.
                p = select.poll()
                for s in socks:
                    p.register(s, select.POLLIN)
                return nfds(gw) - base + len(p.poll(0)) >= STOPPED
            wait_for(all_taken, timeout=30, what="gatewayd to take every connection")
        finally:
            os.kill(ex, signal.SIGCONT)
        bad = hello_all(socks)
        assert not bad, "%d of %d refused: %s" % (len(bad), STOPPED, bad[0])
        # And the pair is still whole and serving.
        assert d.client(uid=AGENT_UID).hello()["status"] == "ok"


if __name__ == "__main__":
    main()
