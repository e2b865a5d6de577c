"""The executor's capabilities (executor/caps.c; PROTOCOL.md,
"Sandboxing"): started as root, it keeps CAP_SETUID and CAP_SETGID, and
nothing else, in its effective, permitted and bounding sets (none
inheritable or ambient) when the config starts programs; none at all when
it has only HTTP tools.  Tools still run as another user, and one past
its timeout is still killed.  Development mode (not root) is unchanged."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

SETID = (1 << 6) | (1 << 7)     # CAP_SETGID, CAP_SETUID

WHO = """#!/usr/bin/python3
import json, os
print(json.dumps({"uid": os.getuid(), "gid": os.getgid()}))
"""


def caps(pid):
    st = proc_status(pid)
    return {k: int(st[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


@test
def keeps_setuid_setgid_alone_and_tools_still_run_as_their_user():
    need_root()
    d = Daemon(base_config(), name="tg-caps")
    path = os.path.join(d.dir, "who")
    with open(path, "w") as f:
        f.write(WHO)
    os.chmod(path, 0o755)
    d.conf["catalog"]["who"] = {"mode": "read", "exec": [path], "user": "nobody"}
    d.conf["catalog"]["sleep"]["user"] = "nobody"
    d.conf["tools"]["allow"].append("who")
    write_config(d.config_path, d.conf)
    with d:
        c = caps(d.executor_pid())
        assert c == {"CapInh": 0, "CapPrm": SETID, "CapEff": SETID,
                     "CapBnd": SETID, "CapAmb": 0}, c
        assert "capabilities: kept CAP_SETUID CAP_SETGID" in d.read_log()
        r = d.client().call("who", {}, run_id="rc")
        assert r["status"] == "ok" and r["result"] == {"uid": 65534, "gid": 65534}, r
        # Past timeout_ms (500) the tool, running as nobody, is killed.
        t0 = time.time()
        r = d.client().call("sleep", {"s": 30}, run_id="rc")
        assert r["status"] == "error" and r["error"] == "tool_timeout", r
        assert time.time() - t0 < 10, r
        # Still the same sets after spawning and killing as another uid.
        assert caps(d.executor_pid()) == c


@test
def http_tools_only_keep_nothing():
    need_root()
    conf = base_config()
    conf["catalog"] = {"api": {"mode": "read", "http": {"url": "http://127.0.0.1:9/x"}}}
    conf["tools"]["allow"] = ["api"]
    d = Daemon(conf, name="tg-caps-none")
    try:
        d.start()
    except RuntimeError as e:
        # The http tool's keys are the config's; say so rather than pass.
        raise AssertionError("an http-only config did not start: %s" % e)
    try:
        c = caps(d.executor_pid())
        assert c == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0,
                     "CapAmb": 0}, c
        assert "capabilities: kept none" in d.read_log()
        d.stop()
    finally:
        d.cleanup()


@test
def development_mode_is_unchanged():
    d = Daemon(base_config(tool_user=None), name="tg-caps-dev")
    d.conf.pop("tool_user", None)
    write_config(d.config_path, d.conf)
    try:
        start_as(d, 1001, 1001)
        assert "capabilities:" not in d.read_log()
        assert d.client(uid=1001, gid=1001).call("echo", {"q": "x", "n": 1})["status"] == "ok"
        d.stop()
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
