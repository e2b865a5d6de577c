"""A catalog tool's `user`: the tool runs under that account, not the
executor's, and still gets its scoped credential on fd 3."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

WHO = """#!/usr/bin/python3
import json, os
cred = None
try:
    cred = os.read(3, 4096).decode()
except OSError:
    pass
print(json.dumps({"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
                  "groups": os.getgroups(), "credential": cred}))
"""


def runas_daemon(user):
    d = Daemon(base_config())
    # The tool lives in the daemon's 0755 dir: any user can run it there.
    path = os.path.join(d.dir, "who")
    with open(path, "w") as f:
        f.write(WHO)
    os.chmod(path, 0o755)
    entry = {"mode": "read", "exec": [path]}
    if user is not None:
        entry["user"] = user
    d.conf["catalog"]["who"] = entry
    d.conf["tools"]["allow"].append("who")
    write_config(d.config_path, d.conf)
    cred = os.path.join(d.creds, "acme", "prod")
    os.makedirs(cred)
    with open(os.path.join(cred, "who"), "w") as f:
        f.write("s3cret")
    os.chmod(os.path.join(cred, "who"), 0o600)
    return d


@test
def tool_runs_as_its_user_with_its_credential():
    need_root()
    with runas_daemon("nobody") as d:
        r = d.client().call("who", {}, run_id="ra")
        assert r["status"] == "ok", r
        res = r["result"]
        assert res["uid"] == 65534 and res["euid"] == 65534, res
        assert res["gid"] == 65534 and res["groups"] == [65534], res
        # Opened by the executor, readable by the tool on fd 3 only.
        assert res["credential"] == "s3cret", res


@test
def tool_without_user_runs_as_the_executor():
    need_root()
    with runas_daemon(None) as d:
        r = d.client().call("who", {}, run_id="rb")
        assert r["status"] == "ok" and r["result"]["uid"] == 0, r


@test
def unknown_user_fails_closed():
    with runas_daemon("no-such-user-here") as d:
        r = d.client().call("who", {}, run_id="rc")
        assert r["status"] == "error" and r["error"] == "tool_failed", r
        assert "no user no-such-user-here" in r["message"], r


if __name__ == "__main__":
    main()
