"""The socketpair protocol as the test learns it: message types, version,
and the fields of a message.  The one place that reads them, so that when
the programs can print their table (a dump option) only this file changes."""
import os
import re

from .env import ROOT


def msg_types():
    """The socketpair message types, read from the one place that defines them."""
    text = open(os.path.join(ROOT, "proto", "proto.h")).read()
    body = re.search(r"enum msg_type \{(.*?)\};", text, re.S).group(1)
    names = re.findall(r"^\s*(MSG_[A-Z_]+)", body, re.M)
    return {n: i for i, n in enumerate(names)}


def proto_version():
    """PROTO_VERSION, read from proto/proto.h like the message types."""
    text = open(os.path.join(ROOT, "proto", "proto.h")).read()
    return int(re.search(r"#define PROTO_VERSION\s+(\d+)", text).group(1))


def schema(var):
    """A socketpair message's fields, read from proto/proto.c (the one place
    that defines them): [(key, type, optional)]."""
    text = open(os.path.join(ROOT, "proto", "proto.c")).read()
    body = re.search(r"struct field %s\[\] = \{(.*?)\};" % var, text, re.S).group(1)
    return [(k, t, o == "1") for k, t, o in
            re.findall(r'\{\s*"(\w+)",\s*(F_\w+),\s*(\d)\s*\}', body)]
