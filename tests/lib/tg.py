"""The regression test harness: starts the real daemon pair on private
sockets in a temp dir, speaks the agent protocol, runs gatewayctl.

Each test script registers functions with @test and calls main(); every
test prints "PASS: name" or "FAIL: name" (or "SKIP: name: why"), which
tests/run counts.  Runs with Debian's /usr/bin/python3 (python3-msgpack).

The code lives in tglib/, one module per concern (see tglib/__init__.py);
this module gathers it so that `from tg import *` gives a script all of
it, and the modules scripts have long used through it.
"""
import hashlib  # noqa: F401
import json  # noqa: F401
import os  # noqa: F401
import re  # noqa: F401
import shutil  # noqa: F401
import signal  # noqa: F401
import socket  # noqa: F401
import struct  # noqa: F401
import subprocess  # noqa: F401
import sys  # noqa: F401
import tempfile  # noqa: F401
import time  # noqa: F401
import traceback  # noqa: F401

import msgpack  # noqa: F401

from tglib.env import *  # noqa: F401,F403
from tglib.proto import *  # noqa: F401,F403
from tglib.wire import *  # noqa: F401,F403
from tglib.config import *  # noqa: F401,F403
from tglib.client import *  # noqa: F401,F403
from tglib.daemon import *  # noqa: F401,F403
from tglib.link import *  # noqa: F401,F403
from tglib.procs import *  # noqa: F401,F403
from tglib.checkpoint import *  # noqa: F401,F403
from tglib.approvals import *  # noqa: F401,F403
from tglib.runner import *  # noqa: F401,F403
from tglib.httpapi import *  # noqa: F401,F403
from tglib.mcpserver import *  # noqa: F401,F403
