"""make install and make uninstall: every file where the directories say,
with its mode; the installed gatewayd runs the installed executor by the
path compiled in from libexecdir; uninstall leaves nothing of ours.

Two kinds of install.  `DESTDIR=D PREFIX=/usr` is what a package build
does: the tree under D is checked file by file, but its gatewayd names
/usr/libexec/toolgate/executor, which does not exist here, so it is not
run: its configtest (gatewayd -n) says which executor it would run.  `PREFIX=P`
with P a temp dir and no DESTDIR gives a gatewayd whose compiled-in path
is P/libexec/toolgate/executor: that one is started for real, as root,
and must run that executor.

Each install builds only gatewayd's main object again, with the path of
its libexecdir (build/install/gatewayd); the rest is the build's."""
import os
import stat
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403
import tglib.daemon

EXAMPLE = os.path.join(ROOT, "examples", "toolgate.yaml.example")
MAN = {"gatewayd.8": "man8", "executor.8": "man8", "gatewayctl.8": "man8",
       "toolgate.yaml.5": "man5", "toolgate-mcp.1": "man1"}


def make(*args):
    """make in the source tree with this build (BUILD, SAN); the output
    when it fails.  The parent make's jobserver is not ours to use."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    p = subprocess.run(["make", "--no-print-directory", "BUILD=" + BUILD,
                        "SAN=" + ("1" if SAN else "0")] + list(args),
                       cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, "make %s: %d\n%s%s" % (
        " ".join(args), p.returncode, p.stdout, p.stderr)
    return p.stdout


def units():
    d = os.path.join(ROOT, "systemd")
    return sorted(n for n in os.listdir(d)
                  if n.endswith(".service") or n.endswith(".socket"))


def has_mcp():
    """toolgate-mcp is installed when this build makes it (PROGS)."""
    return os.path.exists(os.path.join(BUILD, "toolgate-mcp"))


def expected(sbindir, bindir, libexecdir, sysconfdir, mandir, docdir,
             unitdir):
    """Every file install puts there, with its mode."""
    files = {
        sbindir + "/gatewayd": 0o755,
        libexecdir + "/toolgate/executor": 0o755,
        bindir + "/gatewayctl": 0o755,
        sysconfdir + "/toolgate/toolgate.yaml.example": 0o644,
        docdir + "/CONFIG.md": 0o644,
        docdir + "/PROTOCOL.md": 0o644,
    }
    if has_mcp():
        files[bindir + "/toolgate-mcp"] = 0o755
    for page, sect in MAN.items():
        if page == "toolgate-mcp.1" and not has_mcp():
            continue
        files["%s/%s/%s" % (mandir, sect, page)] = 0o644
    for u in units():
        files[unitdir + "/" + u] = 0o644
    return files


def tree(root):
    """{path under root: mode} of every file, and the set of directories."""
    files, dirs = {}, set()
    for top, ds, fs in os.walk(root):
        for n in ds:
            dirs.add(os.path.relpath(os.path.join(top, n), root))
        for n in fs:
            p = os.path.join(top, n)
            st = os.lstat(p)
            assert stat.S_ISREG(st.st_mode), p
            files["/" + os.path.relpath(p, root)] = stat.S_IMODE(st.st_mode)
    return files, dirs


def check_tree(root, want):
    files, dirs = tree(root)
    extra = sorted(set(files) - set(want))
    missing = sorted(set(want) - set(files))
    assert not extra and not missing, ("extra", extra, "missing", missing)
    for p, mode in want.items():
        assert files[p] == mode, (p, oct(files[p]), oct(mode))
    for d in dirs:
        mode = stat.S_IMODE(os.lstat(os.path.join(root, d)).st_mode)
        assert mode & 0o022 == 0, ("writable by others", d, oct(mode))
    return files


def compiled_executor(gatewayd):
    """The executor an installed gatewayd runs: what its configtest says
    (the path is not one string in the binary: the compiler may write it
    with immediate stores)."""
    p = subprocess.run([gatewayd, "-n", "-c", EXAMPLE], capture_output=True,
                       text=True, timeout=30)
    m = re.search(r"configuration OK; the executor is (.*)$", p.stderr)
    assert p.returncode == 0 and m, p
    return m.group(1)


@test
def destdir_install_is_the_tree_the_directories_say():
    with tempfile.TemporaryDirectory(prefix="tg-inst-") as t:
        dest = os.path.join(t, "dest")
        make("install", "DESTDIR=" + dest, "PREFIX=/usr")
        want = expected("/usr/sbin", "/usr/bin", "/usr/libexec", "/etc",
                        "/usr/share/man", "/usr/share/doc/toolgate",
                        "/usr/lib/systemd/system")
        check_tree(dest, want)
        # The unit's LoadCredential= needs the credentials directory: there,
        # root's alone.
        st = os.stat(dest + "/etc/toolgate/credentials")
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
        # The compiled-in path has no DESTDIR in it.
        assert compiled_executor(dest + "/usr/sbin/gatewayd") == \
            "/usr/libexec/toolgate/executor"
        # The build tree's gatewayd runs its neighbour.
        assert compiled_executor(GATEWAYD) == EXECUTOR
        for u in units():
            text = open(dest + "/usr/lib/systemd/system/" + u).read()
            assert text == open(os.path.join(ROOT, "systemd", u)).read(), u
        # The example is the deployment example, not the demo's config.
        ex = open(dest + "/etc/toolgate/toolgate.yaml.example").read()
        assert "allow_self_approval: true" not in ex


@test
def every_directory_is_honoured():
    with tempfile.TemporaryDirectory(prefix="tg-inst-") as t:
        dest = os.path.join(t, "dest")
        dirs = dict(sbindir="/sbin", bindir="/opt/tg/bin",
                    libexecdir="/opt/tg/lib", sysconfdir="/etc/tg",
                    mandir="/opt/tg/man", docdir="/opt/tg/doc",
                    unitdir="/etc/systemd/system")
        make("install", "DESTDIR=" + dest, "PREFIX=/nowhere",
             *["%s=%s" % kv for kv in dirs.items()])
        check_tree(dest, expected(**dirs))
        assert compiled_executor(dest + "/sbin/gatewayd") == \
            "/opt/tg/lib/toolgate/executor"
        # The units name the installed programs and config.
        for u in units():
            text = open(dest + "/etc/systemd/system/" + u).read()
            if "ExecStart=" in text:
                assert "/usr/sbin/gatewayd" not in text, text
                assert "/sbin/gatewayd" in text, text
            assert "/etc/toolgate/" not in text, text
        make("uninstall", "DESTDIR=" + dest, "PREFIX=/nowhere",
             *["%s=%s" % kv for kv in dirs.items()])
        assert tree(dest)[0] == {}


@test
def install_keeps_the_operators_config_and_uninstall_leaves_nothing_else():
    with tempfile.TemporaryDirectory(prefix="tg-inst-") as t:
        dest = os.path.join(t, "dest")
        os.makedirs(dest + "/etc/toolgate")
        mine = dest + "/etc/toolgate/toolgate.yaml"
        with open(mine, "w") as f:
            f.write("# the operator's\n")
        make("install", "DESTDIR=" + dest, "PREFIX=/usr")
        make("install", "DESTDIR=" + dest, "PREFIX=/usr")    # again: no harm
        assert open(mine).read() == "# the operator's\n"
        make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr")
        files, dirs = tree(dest)
        assert files == {"/etc/toolgate/toolgate.yaml": 0o644}, files
        # toolgate's own directories go; shared ones (sbin, man8, the
        # unit dir) may stay, empty.
        assert "usr/libexec/toolgate" not in dirs, dirs
        assert "usr/share/doc/toolgate" not in dirs, dirs
        assert "etc/toolgate" in dirs
        os.unlink(mine)
        make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr")
        files, dirs = tree(dest)
        assert files == {} and "etc/toolgate" not in dirs, (files, dirs)


@test
def installed_gatewayd_runs_the_installed_executor():
    need_root()
    with tempfile.TemporaryDirectory(prefix="tg-inst-") as t:
        prefix = os.path.join(t, "prefix")
        make("install", "PREFIX=" + prefix)
        os.chmod(t, 0o755)
        gatewayd = prefix + "/sbin/gatewayd"
        executor = prefix + "/libexec/toolgate/executor"
        assert compiled_executor(gatewayd) == executor
        # The units follow PREFIX too (PREFIX=/usr leaves them as written).
        for u in units():
            text = open(prefix + "/lib/systemd/system/" + u).read()
            for line in text.splitlines():
                if line.startswith("ExecStart="):
                    assert line.startswith("ExecStart=" + prefix +
                                           "/sbin/gatewayd "), line
                    if "toolgate.yaml" in line:
                        assert prefix + "/etc/toolgate/toolgate.yaml" in line, line
        saved = tglib.daemon.GATEWAYD, tglib.daemon.GATEWAYCTL
        tglib.daemon.GATEWAYD = gatewayd
        tglib.daemon.GATEWAYCTL = prefix + "/bin/gatewayctl"
        try:
            with Daemon() as d:
                r = d.client().call("echo", {"q": "installed"})
                assert r["status"] == "ok", r
                assert r["result"]["args"] == {"q": "installed"}, r
                assert os.readlink("/proc/%d/exe" % d.executor_pid()) == executor
                assert os.readlink("/proc/%d/exe" % d.proc.pid) == gatewayd
                rc, out, err = d.ctl("status")
                assert rc == 0 and "writes_enabled" in out, (rc, out, err)
                if has_mcp():
                    mcp_lists_the_tools(prefix + "/bin/toolgate-mcp", d)
        finally:
            tglib.daemon.GATEWAYD, tglib.daemon.GATEWAYCTL = saved
        make("uninstall", "PREFIX=" + prefix)
        assert tree(prefix)[0] == {}


def mcp_lists_the_tools(bridge, d):
    """The installed toolgate-mcp, as an MCP client starts it: its
    tools/list is the gate's list, shown names included."""
    lines = [{"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                         "clientInfo": {"name": "test_install", "version": "1"}}},
             {"jsonrpc": "2.0", "method": "notifications/initialized"},
             {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}]
    p = subprocess.run([bridge, "-s", d.agent_sock],
                       input="".join(json.dumps(m) + "\n" for m in lines),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stderr)
    answers = {a["id"]: a for a in map(json.loads, p.stdout.splitlines())}
    names = [t["name"] for t in answers[2]["result"]["tools"]]
    assert "echo" in names and "ticket_close" in names, names


@test
def installed_examples_pass_the_configtest():
    """The example config, and the example of toolgate.yaml(5) as a
    reader sees it (rendered by mandoc), load: gatewayd -n says so."""
    with tempfile.TemporaryDirectory(prefix="tg-inst-") as t:
        dest = os.path.join(t, "dest")
        make("install", "DESTDIR=" + dest, "PREFIX=/usr")
        ex = dest + "/etc/toolgate/toolgate.yaml.example"
        p = subprocess.run([GATEWAYD, "-n", "-c", ex], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0 and "configuration OK" in p.stderr, p
        # And -n fails on a config that does not load, naming the key.
        bad = os.path.join(t, "bad.yaml")
        with open(bad, "w") as f:
            f.write("writes: { enabeld: true }\n")
        p = subprocess.run([GATEWAYD, "-n", "-c", bad], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 1 and "writes.enabeld: unknown key" in p.stderr, p
        if shutil.which("mandoc") is None:
            if os.environ.get("CI") == "true":
                raise AssertionError("mandoc is missing (make deps)")
            raise Skip("no mandoc (make deps installs it): the man page's"
                       " example is not checked")
        page = dest + "/usr/share/man/man5/toolgate.yaml.5"
        text = subprocess.run(["mandoc", "-Tascii", "-O", "width=200", page],
                              capture_output=True, text=True,
                              check=True).stdout
        text = re.sub(r".\x08", "", text)
        lines = text.split("\n")
        start = lines.index("EXAMPLES") + 1
        end = lines.index("SEE ALSO")
        body = [l for l in lines[start:end] if l.strip()]
        indent = min(len(l) - len(l.lstrip()) for l in body)
        yaml = os.path.join(t, "man-example.yaml")
        with open(yaml, "w") as f:
            f.write("\n".join(l[indent:] for l in lines[start:end]) + "\n")
        p = subprocess.run([GATEWAYD, "-n", "-c", yaml], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0, (p.stderr, open(yaml).read())


if __name__ == "__main__":
    main()
