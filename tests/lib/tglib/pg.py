"""A real PostgreSQL of the test's own: initdb and pg_ctl in a temp dir,
listening on a Unix socket there only (listen_addresses=''), run as an
unprivileged user when the test runs as root.  Debian's binaries are
looked for in /usr/lib/postgresql/*/bin and on PATH; none is
missing_peer()."""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time

from .env import missing_peer


def _bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            return d
    p = shutil.which("initdb")
    if p is not None:
        return os.path.dirname(os.path.realpath(p))
    missing_peer("PostgreSQL's initdb and pg_ctl (Debian's postgresql package)")
    return None


def _user():
    """Who runs the server: the test's own user, or 'nobody' as root
    (postgres refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    missing_peer("no unprivileged user to run PostgreSQL as")
    return None


class Postgres:
    """One cluster: start(), stop(), dsn, psql(sql)."""

    def __init__(self, name="tg-pg"):
        self.bindir = _bindir()
        self.user = _user()
        self.dir = tempfile.mkdtemp(prefix=name + "-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.logpath = os.path.join(self.dir, "pg.log")
        os.mkdir(self.sock)
        if self.user is not None:
            for p in (self.dir, self.sock):
                os.chown(p, self.user.pw_uid, self.user.pw_gid)
        self.dbuser = self.user.pw_name if self.user else pwd.getpwuid(os.geteuid()).pw_name
        self.dsn = "host=%s dbname=toolgate user=%s" % (self.sock, self.dbuser)
        self._run("initdb", "-D", self.data, "-A", "trust", "-E", "UTF8",
                  "--no-sync", "-U", self.dbuser)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("listen_addresses = ''\n")
            f.write("unix_socket_directories = '%s'\n" % self.sock)
            f.write("fsync = off\nfull_page_writes = off\n")
            f.write("max_connections = 50\n")

    def _pre(self):
        u = self.user
        if u is None:
            return None

        def pre():
            os.setgroups([])
            os.setgid(u.pw_gid)
            os.setuid(u.pw_uid)
        return pre

    def _run(self, prog, *args, check=True, timeout=120):
        p = subprocess.run([os.path.join(self.bindir, prog)] + list(args),
                           capture_output=True, text=True, timeout=timeout,
                           preexec_fn=self._pre(), cwd=self.dir)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s%s" % (prog, p.returncode, p.stdout, p.stderr))
        return p

    def start(self):
        self._run("pg_ctl", "-D", self.data, "-l", self.logpath, "-w", "-t", "60", "start")
        if not getattr(self, "created", False):
            self._run("createdb", "-h", self.sock, "-U", self.dbuser, "toolgate")
            self.created = True
        return self

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop", check=False)

    def psql(self, sql):
        """Run sql; its rows as lists of strings."""
        p = self._run("psql", "-h", self.sock, "-U", self.dbuser, "-d", "toolgate",
                      "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql)
        return [line.split("\t") for line in p.stdout.splitlines() if line != ""]

    def session(self):
        """An interactive psql of its own (a transaction held open across
        the test's steps): send SQL lines with .stdin.write, close with
        .stdin.close() and .wait()."""
        return subprocess.Popen(
            [os.path.join(self.bindir, "psql"), "-h", self.sock, "-U", self.dbuser,
             "-d", "toolgate", "-X", "-q", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            preexec_fn=self._pre())

    def cleanup(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


def wait_until(fn, timeout=10, what="a condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)
