"""Config rules that close holes in who may do what (proto/CONFIG.md):
every tool name names a catalog tool, agents are not operators, tools do
not run as root or as an operator.  gatewayd refuses each bad config with
"FILE:LINE: KEY: message"; operators.allow_self_approval lifts the
operator rules for development and tests, loudly."""
import os
import pwd
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def strict_config(tool_user=None, **over):
    """base_config without its test conveniences: no principal uid 0, the
    operators without allow_self_approval, tools as tool_user (None: the
    default); writes enabled, read_write, no approvals; the tool "whoami"
    (uid-json)."""
    c = writes_config({"whoami": {"mode": "read", "exec": [tool("uid-json")]}},
                      **over)
    c["principals"] = [p for p in c["principals"] if p.get("uid") != 0]
    c["operators"] = {"uids": [0], "gids": []}
    c.pop("tool_user", None)
    if tool_user is not None:
        c["tool_user"] = tool_user
    return c


def line_of(path, needle):
    """The 1-based line of the first line of 'path' holding 'needle'."""
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if needle in line:
                return i
    raise AssertionError("%r not in %s" % (needle, path))


def start_or_exit(d):
    """Start the pair: True once it serves, False if gatewayd exited."""
    d.start(wait=False)
    try:
        d.wait_ready()
        return True
    except RuntimeError:
        if d.proc.poll() is None:
            raise
        return False


def refused(conf, key, needle, words=(), probe=None):
    """gatewayd must refuse 'conf' and exit non-zero with a message naming
    the file, the line of 'needle' in it and 'key', holding every one of
    'words'.  If it starts instead, 'probe' shows what the hole lets
    through."""
    d = Daemon(conf, name="tg-cfg")
    try:
        if start_or_exit(d):
            seen = probe(d) if probe is not None else None
            raise AssertionError("gatewayd started with a bad config (%s): %r"
                                 % (key, seen))
        rc = d.stop(expect_rc=None)
        assert rc != 0, rc
        log = d.read_log()
        want = "%s:%d: %s: " % (os.path.realpath(d.config_path),
                                line_of(d.config_path, needle), key)
        assert want in log, (want, log)
        for w in words:
            assert w in log, (w, log)
    finally:
        d.cleanup()


def nobody():
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody")
    return pw


@test
def require_approval_typo_is_refused():
    c = strict_config()
    c["writes"]["require_approval"] = ["ticket.clsoe"]

    def probe(d):
        # The hole: the write the operator meant to gate runs unapproved.
        return d.client(uid=AGENT_UID).call("ticket.close", {"n": 1}, run_id="typo")
    refused(c, "writes.require_approval[0]", '"ticket.clsoe"',
            ['"ticket.clsoe" is not a tool of the catalog'], probe)


@test
def empty_require_approval_is_refused():
    c = strict_config()
    c["writes"]["require_approval"] = []
    refused(c, "writes.require_approval", '"require_approval"',
            ["empty list", "write false"])


@test
def allow_typo_is_refused_when_there_is_a_catalog():
    c = strict_config()
    c["tools"]["allow"].append("ticket.clsoe")
    refused(c, "tools.allow[%d]" % (len(c["tools"]["allow"]) - 1),
            '"ticket.clsoe"', ["not a tool of the catalog"])


@test
def compensate_typo_is_refused():
    c = strict_config()
    c["catalog"]["ticket.close"] = dict(c["catalog"]["ticket.close"],
                                        compensate="ticket.reopn")
    refused(c, "catalog.ticket.close.compensate", '"ticket.reopn"',
            ["not a tool of the catalog"])


@test
def principal_that_is_an_operator_is_refused():
    c = strict_config()
    c["principals"].append({"uid": 0, "tenant": "ops", "env": "prod"})
    n = len(c["principals"]) - 1
    refused(c, "principals[%d].uid" % n, '"uid": 0,',
            ["uid 0 is also an operator (operators.uids[0])",
             "allow_self_approval"])
    # The default operators, [0], count as well.
    del c["operators"]
    refused(c, "principals[%d].uid" % n, '"uid": 0,',
            ["by default [0]"])
    c = strict_config()
    c["principals"].append({"gid": OTHER_GID, "tenant": "ops", "env": "prod"})
    c["operators"]["gids"] = [OTHER_GID]
    refused(c, "principals[%d].gid" % (len(c["principals"]) - 1),
            '"gid": %d,' % OTHER_GID, ["is also an operator gid"])


@test
def principal_that_is_an_operator_by_primary_group_is_refused():
    pw = nobody()
    # An operator uid whose primary gid is a principal gid.
    c = strict_config()
    c["principals"].append({"gid": pw.pw_gid, "tenant": "ops", "env": "prod"})
    c["operators"]["uids"] = [0, pw.pw_uid]
    refused(c, "principals[%d].gid" % (len(c["principals"]) - 1),
            '"gid": %d,' % pw.pw_gid,
            ["primary gid of operator uid %d" % pw.pw_uid])
    # A principal uid whose primary gid is an operator gid.
    c = strict_config()
    c["principals"].append({"uid": pw.pw_uid, "tenant": "ops", "env": "prod"})
    c["operators"]["gids"] = [pw.pw_gid]
    refused(c, "principals[%d].uid" % (len(c["principals"]) - 1),
            '"uid": %d,' % pw.pw_uid, ["an operator gid"])


@test
def principal_gid_0_is_refused_even_with_self_approval():
    c = strict_config()
    c["principals"].append({"gid": 0, "tenant": "ops", "env": "prod"})
    c["operators"] = {"uids": [1500], "allow_self_approval": True}
    refused(c, "principals[%d].gid" % (len(c["principals"]) - 1),
            '"gid": 0,', ["root's group"])


@test
def tool_users_that_could_approve_are_refused():
    pw = nobody()
    c = strict_config(tool_user="root")
    refused(c, "tool_user", '"tool_user"', ["is root"])
    c = strict_config()
    c["catalog"]["whoami"]["user"] = "root"
    refused(c, "catalog.whoami.user", '"user": "root"', ["is root"])
    # The default tool_user, nobody, made an operator.
    c = strict_config()
    c["operators"]["uids"] = [0, pw.pw_uid]
    refused(c, "tool_user", "{", ["user nobody (uid %d) is an operator" % pw.pw_uid])
    c = strict_config(tool_user="daemon")
    c["catalog"]["whoami"]["user"] = "nobody"
    c["operators"]["gids"] = [pw.pw_gid]
    # (Indented: the top-level user of base_config is nobody too.)
    refused(c, "catalog.whoami.user", '   "user": "nobody"', ["an operator gid"])


@test
def unknown_tool_user_is_left_to_run_time():
    c = strict_config(tool_user="no-such-user-here")
    with Daemon(c) as d:
        r = d.client(uid=AGENT_UID).call("whoami", {}, run_id="nu")
        if IS_ROOT:
            assert r["status"] == "error" and "no user no-such-user-here" in r["message"], r


@test
def self_approval_starts_loudly_and_is_shown():
    c = strict_config()
    c["principals"].append({"uid": 0, "tenant": "ops", "env": "prod"})
    c["operators"]["allow_self_approval"] = True
    c["tool_user"] = "root"
    with Daemon(c) as d:
        st = d.ctl_json("status")
        assert st["allow_self_approval"] is True, st
        rc, out, err = d.ctl("status")
        assert rc == 0 and "allow_self_approval: true" in out, (rc, out, err)
        log = d.read_log()
        for proc in ("gatewayd[", "executor["):
            assert any(proc in line and "allow_self_approval" in line and
                       "WARNING" in line for line in log.splitlines()), log
        # The agent uid 0 really is served.
        assert d.client().hello()["status"] == "ok"
    with Daemon(strict_config()) as d:
        assert d.ctl_json("status")["allow_self_approval"] is False
        assert "allow_self_approval" not in d.read_log()


@test
def tool_without_user_runs_as_nobody_under_root():
    need_root()
    pw = nobody()
    with Daemon(strict_config()) as d:
        r = d.client(uid=AGENT_UID).call("whoami", {}, run_id="nb")
        assert r["status"] == "ok" and r["result"] == {"uid": pw.pw_uid}, r
    # tool_user names the default; a catalog user still wins over it.
    daemon = pwd.getpwnam("daemon")
    c = strict_config(tool_user="daemon")
    c["catalog"]["whoami.nobody"] = {"mode": "read", "exec": [tool("uid-json")],
                                     "user": "nobody"}
    c["tools"]["allow"].append("whoami.nobody")
    with Daemon(c) as d:
        r = d.client(uid=AGENT_UID).call("whoami", {}, run_id="td")
        assert r["status"] == "ok" and r["result"] == {"uid": daemon.pw_uid}, r
        r = d.client(uid=AGENT_UID).call("whoami.nobody", {}, run_id="tn")
        assert r["status"] == "ok" and r["result"] == {"uid": pw.pw_uid}, r


@test
def tool_without_user_runs_as_the_executor_in_development_mode():
    need_root()
    d = Daemon(strict_config())
    try:
        start_as(d, AGENT_UID)
        r = d.client(uid=AGENT_UID).call("whoami", {}, run_id="dv")
        assert r["status"] == "ok" and r["result"] == {"uid": AGENT_UID}, r
        d.stop()
    finally:
        d.cleanup()


@test
def safe_default_still_starts():
    # Started unprivileged: as root gatewayd would drop to the default
    # user, toolgate, which this machine need not have.
    need_root()
    d = Daemon(name="tg-safe")
    with open(os.path.join(SHARED, "spec", "safe-default.yaml")) as f:
        text = f.read()
    with open(d.config_path, "w") as f:
        f.write(text)
    try:
        start_as(d, AGENT_UID)
        rc, out, err = ctl_as(d, AGENT_UID, AGENT_UID, "--json", "status")
        # AGENT_UID is no operator: refused, but by a running executor.
        assert rc == 1 and "error" in out, (rc, out, err)
        assert d.client(uid=AGENT_UID).hello()["stop_reason"] == "unknown_principal"
        d.stop()
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
