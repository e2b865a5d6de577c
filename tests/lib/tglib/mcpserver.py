"""tests/tools/mcp-server behind the gate: its side files and a config
with it as the MCP server "t" of the catalog's mcp tools."""
import json
import os
import tempfile

from .config import writes_config
from .env import tool


class Files:
    """The server's side files, in a dir of their own."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mcp-")
        os.chmod(self.dir, 0o755)
        self.log = os.path.join(self.dir, "server.log")
        self.effects = os.path.join(self.dir, "effects")
        self.state = os.path.join(self.dir, "state")

    def events(self, kind=None):
        try:
            with open(self.log) as f:
                evs = [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []
        return [e for e in evs if kind is None or e.get("event") == kind]

    def received(self, method):
        return [e["msg"] for e in self.events("recv") if e["msg"].get("method") == method]

    def effects_lines(self):
        try:
            with open(self.effects) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []


def mcp_server_conf(files, tools, server=None, extra_args=(), **over):
    """writes_config with tools (name -> (server's tool, mode, catalog
    extras)) as mcp tools of tests/tools/mcp-server, which logs to files;
    'server' overrides the server's keys, 'over' the config's."""
    srv = {"command": [tool("mcp-server"), "--log", files.log, "--effects", files.effects,
                       "--state", files.state] + list(extra_args),
           "init_timeout_ms": 2000}
    srv.update(server or {})
    entries = {}
    for name, (mt, mode, extra) in tools.items():
        entries[name] = dict({"mode": mode, "mcp": {"server": "t", "tool": mt}}, **extra)
    conf = writes_config(entries, **over)
    conf["mcp_servers"] = {"t": srv}
    return conf
