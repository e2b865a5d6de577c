"""Configs for the tests: the base config, writes and approvals on, and
the args hash the contract defines (the reference the daemons must match)."""
import hashlib
import json

from .env import AGENT_UID, OTHER_UID, tool


def base_config(**over):
    """A config with three principals, a few read and write tools."""
    conf = {
        "user": "nobody",
        "principals": [
            {"uid": 0, "tenant": "acme", "env": "prod"},
            {"uid": AGENT_UID, "tenant": "acme", "env": "prod"},
            {"uid": OTHER_UID, "tenant": "globex", "env": "staging"},
        ],
        # Root is both an agent and an operator here, and the record tools
        # write into the root-owned test dir: both need the opt-in.
        "operators": {"uids": [0], "gids": [], "allow_self_approval": True},
        "tool_user": "root",
        "catalog": {
            "echo": {"mode": "read", "exec": [tool("echo-args")]},
            "env.dump": {"mode": "read", "exec": [tool("env-dump")]},
            "fail": {"mode": "read", "exec": [tool("fail")]},
            "sleep": {"mode": "read", "exec": [tool("sleep")], "timeout_ms": 500},
            "not.json": {"mode": "read", "exec": [tool("not-json")]},
            "big.output": {"mode": "read", "exec": [tool("big-output")]},
            "ticket.close": {"mode": "write", "exec": [tool("echo-args")]},
            "nomode": {"exec": [tool("echo-args")]},
        },
        "tools": {"default_mode": "read_only",
                  "allow": ["echo", "env.dump", "fail", "sleep", "not.json",
                            "big.output", "ticket.close", "nomode"]},
        "writes": {"enabled": False, "require_approval": False},
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(conf.get(k), dict):
            conf[k] = dict(conf[k], **v)
        else:
            conf[k] = v
    return conf


def canonical_json(args):
    """The reference definition of CONTRACT.md."""
    args = {k: v for k, v in args.items() if k not in ("idempotency_key", "approval_token")}
    return json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def args_hash(args):
    return hashlib.sha256(canonical_json(args)).hexdigest()[:24]


def key_of(tool_name, args, tenant="acme"):
    """The gateway's idempotency key of a write (CONTRACT.md)."""
    return "%s:%s:%s" % (tenant, tool_name, args_hash(args))


def write_config(path, conf):
    # JSON is YAML (flow style); one key per line keeps line numbers useful.
    with open(path, "w") as f:
        f.write(json.dumps(conf, indent=1) + "\n")



def writes_config(tools=None, **over):
    """base_config with writes enabled (no approvals), read_write, and the
    catalog entries in tools (name -> entry) added and allowed."""
    writes = dict({"enabled": True, "require_approval": False},
                  **over.pop("writes", {}))
    conf = base_config(writes=writes, **over)
    conf["tools"] = dict(conf["tools"], default_mode="read_write")
    conf["tools"]["allow"] = list(conf["tools"]["allow"])
    conf["catalog"] = dict(conf["catalog"])
    for name, entry in (tools or {}).items():
        conf["catalog"][name] = entry
        if name not in conf["tools"]["allow"]:
            conf["tools"]["allow"].append(name)
    return conf



def approvals_config(effects, require=("rec",), ttl_s=600, allow_rec=True):
    """writes_config with the record tool "rec" (appending to effects) and
    "rec.slow" (slow-record, to effects + ".slow"), require_approval set
    to require (a list of names, or True/False), approvals.ttl_s."""
    conf = writes_config(
        tools={"rec": {"mode": "write", "exec": [tool("record"), effects]},
               "rec.slow": {"mode": "write",
                            "exec": [tool("slow-record"), effects + ".slow", "0.5"]}},
        approvals={"ttl_s": ttl_s})
    conf["writes"] = dict(conf["writes"],
                          require_approval=list(require) if isinstance(require, (list, tuple))
                          else require)
    if not allow_rec:
        conf["tools"]["allow"] = [t for t in conf["tools"]["allow"] if t != "rec"]
    return conf


def reconfigure(daemon, conf):
    """Replace a (stopped or not yet started) daemon's config, keeping its paths."""
    conf = dict(conf)
    conf["paths"] = dict(conf.get("paths", {}), **daemon.conf.get("paths", {}))
    daemon.conf = conf
    write_config(daemon.config_path, conf)


