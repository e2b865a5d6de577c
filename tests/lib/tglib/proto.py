"""The socketpair protocol as the test learns it: message types, version,
and the fields of a message, from the program (executor --dump-proto),
never from the C source.  The one place that reads them."""
import json
import subprocess

from .env import EXECUTOR

_PROTO = None


def proto_table():
    """The socketpair protocol table, as the executor dumps it
    (executor --dump-proto): version, then per type its name, number,
    direction, answer type, permits and fields."""
    global _PROTO
    if _PROTO is None:
        out = subprocess.run([EXECUTOR, "--dump-proto"], check=True,
                             stdout=subprocess.PIPE).stdout
        _PROTO = json.loads(out)
    return _PROTO


def msg_types():
    """The socketpair message types by name (MSG_HELLO: 1, ...)."""
    return {t["name"]: t["type"] for t in proto_table()["types"]}


def proto_version():
    """PROTO_VERSION, from the program like the message types."""
    return proto_table()["version"]


def schema(name):
    """A socketpair message's fields by its type name (MSG_CALL):
    [(key, type, optional)], types spelled F_UINT, F_STR, ..."""
    for t in proto_table()["types"]:
        if t["name"] == name:
            return [(f["key"], "F_" + f["type"].upper(), f["optional"])
                    for f in t["fields"]]
    raise KeyError(name)
