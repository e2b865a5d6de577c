"""Processes: waiting for conditions, pids, process groups, reaping."""
import os
import signal
import time


def wait_for(pred, timeout=10, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)



def proc_status(pid):
    """/proc/PID/status as a dict of field -> value string."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def group_pids(pgid):
    """The live (not zombie) processes of process group pgid."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(name))
    return pids


def become_subreaper():
    """Orphans of our children (an executor whose gatewayd died) become ours."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:     # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "PR_SET_CHILD_SUBREAPER")


def wait_exit(pid, timeout=10):
    """Reap pid (our child or orphan); returns its wait status or None on timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            p, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None if pid_alive(pid) else -1
        if p == pid:
            return status
        time.sleep(0.02)
    return None



def count_lines(path):
    """Lines in a file (a record tool's side effects); 0 when missing."""
    try:
        with open(path) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def kill_pid_group(pidfile):
    """SIGKILL the process group whose leader's pid is in pidfile, if any
    (a tool left behind by an executor that died)."""
    try:
        pid = int(open(pidfile).read().strip())
    except (OSError, ValueError):
        return
    for fn in (lambda: os.killpg(pid, signal.SIGKILL),
               lambda: os.kill(pid, signal.SIGKILL)):
        try:
            fn()
        except OSError:
            pass

