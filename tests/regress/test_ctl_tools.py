"""gatewayctl tools: the catalog as operators see it, each tool with its
mode, backend and state; tools accept refuses what pins nothing; the
control op refuses a tool that is not in the catalog.  (An mcp tool's
states and accept are in test_mcp.py.)"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403


def conf():
    c = writes_config({"rec": {"mode": "write", "exec": [tool("echo-args")]}})
    c["catalog"]["zz.unlisted"] = {"mode": "read", "exec": [tool("echo-args")]}
    return c


@test
def tools_lists_the_catalog_in_name_order():
    with Daemon(conf()) as d:
        items = d.ctl_json("tools")
        names = [t["name"] for t in items]
        assert names == sorted(d.conf["catalog"]), names
        by = {t["name"]: t for t in items}
        assert by["rec"]["mode"] == "write" and by["echo"]["mode"] == "read", by
        assert all(t["backend"] == "exec" and t["state"] == "ok" for t in items), items
        assert by["rec"]["allowed"] is True, by["rec"]
        assert by["zz.unlisted"]["allowed"] is False, by["zz.unlisted"]
        # For a person: a header and one line a tool.
        rc, out, err = d.ctl("tools")
        assert rc == 0, (rc, out, err)
        lines = out.splitlines()
        assert lines[0].split()[:4] == ["NAME", "MODE", "BACKEND", "STATE"], lines
        assert len(lines) == 1 + len(items), lines
        row = [l for l in lines if l.startswith("rec ")][0].split()
        assert row[:5] == ["rec", "write", "exec", "ok", "yes"], row


@test
def tools_accept_refuses_what_pins_nothing():
    with Daemon(conf()) as d:
        rc, out, err = d.ctl("tools", "accept", "rec")
        assert rc == 1 and "pins no definition" in err, (rc, out, err)
        rc, out, err = d.ctl("tools", "accept", "no.such")
        assert rc == 1 and "not a tool of the catalog" in err, (rc, out, err)
        rc, out, err = d.ctl("tools", "accept")
        assert rc == 2, (rc, out, err)
        # Nothing was accepted, so nothing is on the record.
        assert not [r for r in read_audit(d) if r.get("event") == "tool_accept"]


if __name__ == "__main__":
    main()
