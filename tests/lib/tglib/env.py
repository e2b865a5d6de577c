"""Where things are (the build, the tools, the shared spec), who the test
runs as, and the ids the tests give agents."""
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
SHARED = os.path.abspath(os.environ.get("TG_SHARED", os.path.join(ROOT, "..", "shared")))
TOOLS = os.path.join(ROOT, "tests", "tools")
GATEWAYD = os.path.join(BUILD, "gatewayd")
EXECUTOR = os.path.join(BUILD, "executor")
GATEWAYCTL = os.path.join(BUILD, "gatewayctl")
IS_ROOT = os.geteuid() == 0
SAN = os.environ.get("SAN", "0") == "1"

# Unprivileged ids for agents in tests (no passwd entry needed).
AGENT_UID, AGENT_GID = 1001, 1001
OTHER_UID, OTHER_GID = 1002, 2000
STRANGER_UID = 1003


class Skip(Exception):
    pass


def missing_peer(why):
    """A real peer a test needs (node and an npm package, prometheus,
    systemd's tools) is not here: under CI=true that is a failure (CI
    must run the test); elsewhere the test is skipped, loudly."""
    if os.environ.get("CI") == "true":
        raise AssertionError("CI=true and a peer is missing: %s" % why)
    print("note: skipped, a peer is missing: %s" % why, file=sys.stderr, flush=True)
    raise Skip(why)


def need_node(files):
    """node's real path, once every file in files (what make deps installs
    with npm) is there; else missing_peer()."""
    node = shutil.which("node")
    if node is None:
        missing_peer("no node on PATH")
    for f in files:
        if not os.path.isfile(f):
            missing_peer("%s is not installed (make deps)" % f)
    return os.path.realpath(node)


def need_root():
    if not IS_ROOT:
        raise Skip("needs root")


def tool(name):
    return os.path.join(TOOLS, name)

