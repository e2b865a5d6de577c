"""Logs under systemd (common/log.c; PROTOCOL.md, "Sandboxing"): when
stderr is the journal's stream (JOURNAL_STREAM names its device and
inode) every line of both processes starts with its syslog priority,
<N>, so journald keeps the levels; with JOURNAL_STREAM naming another
file, lines stay plain.  Lines about a call carry its run_id and tool."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


class JournalDaemon(Daemon):
    """The pair with JOURNAL_STREAM set to stderr's (the log file's)
    DEV:INO, or to another file's when other is given."""

    def __init__(self, other=None, **kw):
        Daemon.__init__(self, **kw)
        open(self.logpath, "ab").close()
        st = os.stat(other or self.logpath)
        self.js = "%d:%d" % (st.st_dev, st.st_ino)

    def env(self):
        env = Daemon.env(self)
        env["JOURNAL_STREAM"] = self.js
        return env


LINE = re.compile(r"^(<(\d)>)?(gatewayd|executor)\[\d+\]: ")


@test
def priorities_prefix_every_line_when_stderr_is_the_journal():
    with JournalDaemon(name="tg-journal") as d:
        c = d.client()
        assert c.call("echo", {"q": "hi", "n": 1}, run_id="run-jl")["status"] == "ok"
        assert c.call("rm.rf", {}, run_id="run-jl")["status"] == "denied"
        d.stop()
        log = d.read_log()
    lines = [l for l in log.splitlines() if LINE.match(l)]
    assert lines, log
    # The lines about the call name its run_id and tool.
    assert any("run-jl" in l and "echo" in l for l in lines), log
    pris = set()
    for l in lines:
        m = LINE.match(l)
        assert m.group(1), "a line without its priority: %r" % l
        pris.add(int(m.group(2)))
    assert 6 in pris, pris          # info (ready, exiting)
    assert any(LINE.match(l).group(3) == "executor" for l in lines)
    # Warnings keep their level: development mode or the self-approval
    # warning is not always there, so look for any line at 4 or 7 too.
    assert pris <= {2, 3, 4, 5, 6, 7}, pris


@test
def plain_lines_when_journal_stream_is_another_file():
    other = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_journal_log.py")
    with JournalDaemon(other=other, name="tg-journal-no") as d:
        assert d.client().hello()["status"] == "ok"
        d.stop()
        log = d.read_log()
    lines = [l for l in log.splitlines() if LINE.match(l)]
    assert lines, log
    for l in lines:
        assert not LINE.match(l).group(1), l


if __name__ == "__main__":
    main()
