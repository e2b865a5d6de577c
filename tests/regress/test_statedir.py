"""The state dir: the executor refuses one that is not wholly its own (a
symlink, another owner, group- or world-writable, a hard link), before it
opens anything in it; gatewayd never shapes someone else's dir."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def pair_refuses(d, what):
    """Start the pair; it must exit non-zero, its log saying 'what'."""
    d.start(wait=False)
    try:
        rc = d.proc.wait(15)
    except subprocess.TimeoutExpired:
        raise AssertionError("the pair started:\n" + d.read_log())
    assert rc != 0, d.read_log()
    assert what in d.read_log(), (what, d.read_log())
    return d.read_log()


def executor_refuses(d, what):
    """Start the executor alone on d's config and state dir, with fds 3 and
    4 as gatewayd gives them; it must exit non-zero saying 'what'."""
    logpath = os.path.join(d.dir, "executor.log")
    log = open(logpath, "ab")
    p, a, c = spawn_on_socketpair([EXECUTOR, "-c", d.config_path, "-f",
                                   "--control-socket", d.control_sock,
                                   "--state-dir", d.state], log)
    try:
        a.sendall(hello_frame())
    except OSError:
        pass    # it refused to start already
    try:
        rc = p.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise AssertionError("the executor started:\n" + open(logpath).read())
    finally:
        log.close()
        a.close()
        c.close()
    text = open(logpath, errors="replace").read()
    assert rc != 0, text
    assert what in text, (what, text)
    return text


def plant(d):
    """A state dir made by uid 1003: audit.log a link to a file elsewhere,
    and a signing key of its choosing.  Returns (victim path, key bytes)."""
    victim = os.path.join(d.dir, "victim")
    with open(victim, "w") as f:
        f.write("original\n")
    os.mkdir(d.state, 0o700)
    os.chown(d.state, STRANGER_UID, STRANGER_UID)
    os.symlink(victim, os.path.join(d.state, "audit.log"))
    os.lchown(os.path.join(d.state, "audit.log"), STRANGER_UID, STRANGER_UID)
    key = os.urandom(64)
    kp = os.path.join(d.state, "checkpoint.key")
    with open(kp, "wb") as f:
        f.write(key)
    os.chown(kp, STRANGER_UID, STRANGER_UID)
    os.chmod(kp, 0o600)
    return victim, key


def untouched(d, victim, key):
    assert open(victim).read() == "original\n"
    assert open(os.path.join(d.state, "checkpoint.key"), "rb").read() == key
    # Nothing was made in it, nothing was chowned or chmoded into shape.
    assert sorted(os.listdir(d.state)) == ["audit.log", "checkpoint.key"], os.listdir(d.state)
    st = os.stat(d.state)
    assert (st.st_uid, st.st_mode & 0o777) == (STRANGER_UID, 0o700), st


@test
def pair_refuses_a_state_dir_made_by_another_user():
    need_root()
    d = Daemon(approvals_config("/dev/null"), name="tg-sd-foreign")
    try:
        victim, key = plant(d)
        pair_refuses(d, d.state)
        untouched(d, victim, key)
    finally:
        d.cleanup()


@test
def executor_refuses_a_state_dir_made_by_another_user():
    """The executor's own check, whoever started it."""
    need_root()
    d = Daemon(approvals_config("/dev/null"), name="tg-sd-foreign-ex")
    try:
        victim, key = plant(d)
        executor_refuses(d, "%s: owned by uid %d" % (d.state, STRANGER_UID))
        untouched(d, victim, key)
        assert not os.path.exists(d.control_sock)
    finally:
        d.cleanup()


@test
def executor_refuses_a_symlinked_audit_log_in_its_own_dir():
    need_root()
    d = Daemon(base_config(), name="tg-sd-link")
    try:
        victim = os.path.join(d.dir, "victim")
        with open(victim, "w") as f:
            f.write("original\n")
        os.mkdir(d.state, 0o700)
        os.symlink(victim, os.path.join(d.state, "audit.log"))
        pair_refuses(d, "%s/audit.log: a symbolic link" % d.state)
        executor_refuses(d, "%s/audit.log: a symbolic link" % d.state)
        assert open(victim).read() == "original\n"
    finally:
        d.cleanup()


@test
def group_writable_state_dir_is_refused():
    need_root()
    d = Daemon(base_config(), name="tg-sd-gw")
    try:
        os.mkdir(d.state)
        os.chmod(d.state, 0o770)
        pair_refuses(d, "%s: writable by group or others" % d.state)
        executor_refuses(d, "%s: writable by group or others" % d.state)
        assert os.stat(d.state).st_mode & 0o777 == 0o770
        assert os.listdir(d.state) == []
    finally:
        d.cleanup()


@test
def a_symlink_inside_db_is_refused():
    need_root()
    d = Daemon(base_config(), name="tg-sd-db")
    try:
        d.start()
        d.stop()
        bad = os.path.join(d.state, "db", "evil")
        os.symlink("/etc/passwd", bad)
        pair_refuses(d, "%s: a symbolic link" % bad)
        os.unlink(bad)
        d.start()           # and once it is gone, all is well again
        d.stop()
    finally:
        d.cleanup()


@test
def a_file_of_another_owner_or_with_two_links_is_refused():
    need_root()
    d = Daemon(base_config(), name="tg-sd-own")
    try:
        d.start()
        d.stop()
        audit = os.path.join(d.state, "audit.log")
        os.chown(audit, STRANGER_UID, STRANGER_UID)
        pair_refuses(d, "%s: owned by uid %d" % (audit, STRANGER_UID))
        os.chown(audit, 0, 0)
        os.chmod(audit, 0o622)
        pair_refuses(d, "%s: writable by group or others" % audit)
        os.chmod(audit, 0o600)
        os.link(audit, os.path.join(d.dir, "audit.copy"))
        pair_refuses(d, "%s: 2 hard links" % audit)
        os.unlink(os.path.join(d.dir, "audit.copy"))
        d.start()
        assert d.ctl("status")[0] == 0
        d.stop()
    finally:
        d.cleanup()


@test
def gatewayd_does_not_chmod_through_a_linked_chroot():
    """STATE_DIR/empty a symlink to a dir elsewhere: refused, and the dir it
    points to keeps its mode."""
    need_root()
    d = Daemon(base_config(), name="tg-sd-empty")
    try:
        elsewhere = os.path.join(d.dir, "elsewhere")
        os.mkdir(elsewhere, 0o700)
        os.mkdir(d.state, 0o700)
        os.symlink(elsewhere, os.path.join(d.state, "empty"))
        pair_refuses(d, os.path.join(d.state, "empty"))
        assert os.stat(elsewhere).st_mode & 0o777 == 0o700
    finally:
        d.cleanup()


@test
def own_state_dir_restarts_and_holds_a_lock_file():
    need_root()
    d = Daemon(base_config(), name="tg-sd-ok")
    try:
        d.start()
        d.stop()
        d.start()
        st = os.lstat(os.path.join(d.state, "lock"))
        assert st.st_uid == 0 and st.st_mode & 0o777 == 0o600, st
        d.stop()
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
