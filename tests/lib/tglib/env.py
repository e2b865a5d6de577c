"""Where things are (the build, the tools, the shared spec), who the test
runs as, and the ids the tests give agents."""
import os

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


def need_root():
    if not IS_ROOT:
        raise Skip("needs root")


def tool(name):
    return os.path.join(TOOLS, name)

