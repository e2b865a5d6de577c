#!/usr/bin/python3
"""make soak: load that stays.

Starts the real daemon pair (as root) with a config of its own and holds
SOAK_CONNS agent connections open at once (1000), spread over four tenants
(three uid principals and one gid principal) and a stranger (a uid with no
principal).  For SOAK_SECONDS (600) it sends paced, mixed traffic at
SOAK_RATE requests a second in total (200: every read and write forks a
tool, and it is a soak, not a flood):

  reads         /bin/cat as the tool: the result must be the args, and the
                args hash the one computed here; some pipelined three at a
                time, some through a tool that sleeps first
  writes        unique args (ok, not replayed), and again from a later run
                of the same tenant (ok, replayed unless swept meanwhile)
  approvals     a write that needs one: needs_approval, sometimes a resume
                while pending, wait; an operator lists the pending approvals
                on the control socket and approves (or denies about one in
                ten), every fifth decision through gatewayctl; the agent
                resumes (ok once; a second resume replays) or is told
                approval_denied; some agents hang up while waiting and
                resume from a new connection
  denials       tools not allowed: denied/not_allowed
  hello, usage  ok
  hang-ups      a request sent (a slow read, a write, a wait, a hello) or
                half a frame, then the connection closed without reading,
                and a new one made; a write hung up on is sent again later
                from a new run and must be ok
  slow readers  SOAK_SLOW connections (20) pipeline four reads of 32 KiB
                each and read their answers 512 bytes at a time; some hang
                up with answers still unread
  the stranger  every request denied/unknown_principal; the server may
                also refuse its connections (error/unavailable at accept,
                past a cap of peers with no principal) or close them (a
                refused peer): both expected, counted, and it comes back
                a second later

Every answer is checked against what its request must get.  Unexpected
are: any `error` answer, an answer other than the one expected, an answer
that does not come within 60 s, a principal's connection closed by the
server, and the daemon pair dying or not settling.

After SOAK_WARMUP seconds (90, or SOAK_SECONDS if less) of the same
traffic, and again at the end,
the traffic pauses: every action in progress finishes, the stranger's
connections are closed, and once the executor reports no tool running and
exactly the principal connections open, VmRSS and the open descriptors of
gatewayd and the executor are read from /proc.  The run fails when

  - unexpected > 0;
  - a process's descriptors grew by more than SOAK_FD_TOL (8): both counts
    are taken at the same quiet point with the same connections open, so
    a leak of one descriptor per thousand requests shows; the slack covers
    a control connection the executor has not yet seen close;
  - a process's VmRSS grew by more than SOAK_RSS_TOL_PCT percent (20) and
    more than SOAK_RSS_TOL_MIB MiB (4): after the warm-up the allocator's
    arenas and the LMDB pages in use (they count in RSS: the map is read
    through mmap) are near their steady state: written results are swept
    after writes.retention_s (30 s here), decided approvals after
    approvals.ttl_s + retention_s (90 s), and a run (10 calls, about a
    minute) is forgotten runs.idle_s (20 s) after its last; what is left
    to move is allocator fragmentation and the store's pages (measured:
    both processes flat within 0.3 MiB from 90 s to 300 s; in the 30 s
    variant, whose warm-up is 30 s, they still grow by up to 1.5 MiB),
    while a leak of 40 bytes a request is 4.6 MiB in a 10-minute run.
    Under SAN=1 the RSS is not judged (ASan's quarantine grows it by
    design); the descriptors are.

Environment: SOAK_SECONDS (600), SOAK_WARMUP, SOAK_CONNS (1000),
SOAK_STRANGERS (40 of the connections), SOAK_SLOW (20 of them),
SOAK_RATE (200), SOAK_SEED (1), SOAK_FD_TOL, SOAK_RSS_TOL_PCT,
SOAK_RSS_TOL_MIB, SOAK_VERBOSE=1 (print every unexpected answer),
SOAK_KEEP=1 (keep the temp dir with the daemon log and the state dir when
the run fails), BUILD
and SAN as for the suite.
"""
import asyncio
import collections
import os
import random
import resource
import struct
import sys
import time

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from tg import (GATEWAYCTL, IS_ROOT, SAN, Daemon, args_hash,  # noqa: E402
                frame, pid_alive)


def env_num(name, default, kind=int):
    v = os.environ.get(name, "")
    return kind(v) if v != "" else default


SECONDS = env_num("SOAK_SECONDS", 600)
WARMUP = env_num("SOAK_WARMUP", min(90, SECONDS))
CONNS = env_num("SOAK_CONNS", 1000)
STRANGERS = env_num("SOAK_STRANGERS", 40)
SLOW = env_num("SOAK_SLOW", 20)
RATE = env_num("SOAK_RATE", 200.0, float)
SEED = env_num("SOAK_SEED", 1)
FD_TOL = env_num("SOAK_FD_TOL", 8)
RSS_TOL_PCT = env_num("SOAK_RSS_TOL_PCT", 20.0, float)
RSS_TOL_MIB = env_num("SOAK_RSS_TOL_MIB", 4.0, float)
VERBOSE = os.environ.get("SOAK_VERBOSE", "0") == "1"
KEEP = os.environ.get("SOAK_KEEP", "0") == "1"

ANSWER_TIMEOUT = 60     # an answer later than this is a hang
WAIT_MS = 30000         # an agent's wait for an operator's decision
RUN_STEPS = 10          # a new run after this many calls (max_steps_per_run 50)
RUN_WRITES = 4          # or this many writes (max_writes_per_run 10)
SLOW_PAD = 32768        # args of a slow reader's read
SLOW_CHUNK = 512        # a slow reader reads this much ...
SLOW_PAUSE = 0.01       # ... then waits this long
SAMPLES = 20            # unexpected answers kept to print
RETENTION_S = 30        # writes.retention_s

# (uid, gid, tenant, env); the last is matched by its gid.
TENANTS = [(3001, 3001, "acme", "prod"),
           (3002, 3002, "globex", "staging"),
           (3003, 3003, "initech", "dev"),
           (3004, 3104, "umbrella", "prod")]
STRANGER = (3099, 3099, None, None)


def soak_config():
    principals = [{"uid": u, "tenant": t, "env": e} for u, _, t, e in TENANTS[:3]]
    u, g, t, e = TENANTS[3]
    principals.append({"gid": g, "tenant": t, "env": e})
    return {
        "user": "nobody",
        "principals": principals,
        "operators": {"uids": [0], "gids": []},
        "tool_user": "nobody",
        "catalog": {
            "read": {"mode": "read", "exec": ["/bin/cat"]},
            "read.slow": {"mode": "read", "exec": ["/bin/sh", "-c", "sleep 0.2; exec cat"]},
            "write": {"mode": "write", "exec": ["/bin/cat"]},
            "appr": {"mode": "write", "exec": ["/bin/cat"]},
            "admin.drop": {"mode": "write", "exec": ["/bin/false"]},
        },
        "tools": {"default_mode": "read_write",
                  "allow": ["read", "read.slow", "write", "appr"]},
        # Short lives, so that the warm-up reaches the steady state: written
        # results swept after 30 s, decided approvals after 60 + 30 s,
        # runs (about a minute of calls each) forgotten 20 s after.
        "writes": {"enabled": True, "require_approval": ["appr"],
                   "retention_s": RETENTION_S},
        "approvals": {"ttl_s": 60, "max_pending_per_tenant": 1000},
        "budgets": {"max_steps_per_run": 50, "max_writes_per_run": 10,
                    "repeat_limit": 3},
        # Room for every connection and a few more, a tenant's 240 (and
        # those hung up on, not yet seen closed) included, and for every
        # tool at once (a slow reader runs four); the stranger's share is
        # the default 16 of its 40: refusals at accept are expected.
        "limits": {"max_connections": CONNS + 256, "max_inflight": 64,
                   "max_connections_per_uid": 512,
                   "max_tools": 256, "max_tools_per_tenant": 128},
        # About 300 live runs a tenant (240 connections, each with one).
        "runs": {"idle_s": 20, "max_runs": 100000, "max_runs_per_tenant": 10000},
    }


def deny_it(aid):
    """The operator denies about one approval in ten, known to both sides."""
    return int(aid[:2], 16) < 26


class Dropped(Exception):
    """The connection closed under a request."""


class Hang(Exception):
    """No answer within ANSWER_TIMEOUT."""


class Stats:
    def __init__(self):
        self.requests = 0
        self.answers = collections.Counter()    # "ok", "denied/not_allowed", ...
        self.unexpected = collections.Counter()  # kind -> count
        self.samples = []
        self.hangups = 0            # provoked by the soak
        self.stranger_closed = 0    # the server closed a stranger's connection
        self.stranger_refused = 0   # ... refused at accept (its cap)
        self.connects = 0
        self.connect_retries = 0
        self.approvals = collections.Counter()
        self.replayed = 0

    def policy(self):
        return sum(n for k, n in self.answers.items()
                   if k.split("/")[0] in ("denied", "stopped", "needs_approval", "pending"))

    def total_unexpected(self):
        return sum(self.unexpected.values())


class Soak:
    def __init__(self, d):
        self.d = d
        self.rnd = random.Random(SEED)
        self.st = Stats()
        self.pace_t = 0.0
        self.paused = False
        self.stopping = False
        self.resume_ev = asyncio.Event()
        self.active = 0             # workers in an action or about to be
        self.counter = 0
        self.runs = 0
        self.recent_writes = collections.defaultdict(lambda: collections.deque(maxlen=200))
        self.hung_writes = collections.defaultdict(collections.deque)
        self.conns = []
        self.fatal = None

    # -- bookkeeping

    def unexpected(self, kind, req=None, ans=None):
        self.st.unexpected[kind] += 1
        line = "%s: request %s answer %s" % (kind, short(req), short(ans))
        if VERBOSE:
            print("soak: unexpected " + line, flush=True)
        if len(self.st.samples) < SAMPLES:
            self.st.samples.append(line)

    def new_args(self, c, pad=0):
        self.counter += 1
        a = {"c": c.idx, "n": self.counter}
        if pad:
            a["pad"] = "p" * pad
        return a

    def new_run_id(self, c):
        self.runs += 1
        return "soak-%d-%d" % (c.idx, self.runs)

    async def pace(self, n=1):
        """The next slot of the total rate for n requests: actions start
        evenly spread, and send their requests without waiting further
        (a pipeline is a pipeline, a resume follows its wait)."""
        now = time.monotonic()
        slot = max(self.pace_t, now)
        self.pace_t = slot + n / RATE
        if slot > now:
            await asyncio.sleep(slot - now)


def short(x, n=300):
    if x is None:
        return "-"
    if isinstance(x, dict):
        x = {k: (v if not isinstance(v, str) or len(v) < 80 else v[:40] + "...(%d)" % len(v))
             for k, v in x.items()}
        if isinstance(x.get("args"), dict) and "pad" in x["args"]:
            x["args"] = dict(x["args"], pad="...")
    s = repr(x)
    return s if len(s) <= n else s[:n] + "..."


def connect_as(path, uid, gid):
    """A non-blocking connection whose SO_PEERCRED is uid/gid: the kernel
    takes the effective ids at connect().  Raises BlockingIOError when the
    listen backlog is full."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    os.setegid(gid)
    os.seteuid(uid)
    try:
        s.connect(path)
    except BaseException:
        s.close()
        raise
    finally:
        os.seteuid(0)
        os.setegid(0)
    return s


class Conn:
    """One agent connection, made again after every hang-up: a task reads
    its frames and hands each answer to the request with its id."""

    def __init__(self, soak, idx, who, slow=False):
        self.soak = soak
        self.idx = idx
        self.uid, self.gid, self.tenant, self.env = who
        self.stranger = self.tenant is None
        self.slow = slow
        self.alive = False
        self.provoked = False       # the soak closed it itself
        self.closed_by_peer = False
        self.writer = None
        self.waiters = {}
        self.next_id = 1

    # -- the connection

    async def open(self):
        delay = 0.01
        while True:
            try:
                sock = connect_as(self.soak.d.agent_sock, self.uid, self.gid)
                break
            except BlockingIOError:
                self.soak.st.connect_retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
        self.soak.st.connects += 1
        limit = 2 * SLOW_CHUNK if self.slow else 1 << 20
        self.reader, self.writer = await asyncio.open_unix_connection(sock=sock, limit=limit)
        self.alive = True
        self.provoked = False
        self.closed_by_peer = False
        self.waiters = {}
        self.next_id = 1
        self.rtask = asyncio.ensure_future(self.read_loop())
        self.new_run()

    def new_run(self):
        self.run = self.soak.new_run_id(self)
        self.steps = 0
        self.writes = 0
        self.written = set()

    async def hangup(self):
        """Close without reading what is owed (provoked by the soak)."""
        self.soak.st.hangups += 1
        self.provoked = True
        self.alive = False
        if self.writer is not None:
            self.writer.transport.abort()
        try:
            await self.rtask
        except BaseException:
            pass

    async def read_n(self, n):
        if not self.slow:
            return await self.reader.readexactly(n)
        buf = bytearray()
        while len(buf) < n:
            chunk = await self.reader.read(min(SLOW_CHUNK, n - len(buf)))
            if not chunk:
                raise asyncio.IncompleteReadError(bytes(buf), n)
            buf += chunk
            await asyncio.sleep(SLOW_PAUSE)
        return bytes(buf)

    async def read_loop(self):
        try:
            while True:
                (n,) = struct.unpack(">I", await self.read_n(4))
                msg = msgpack.unpackb(await self.read_n(n), raw=False, strict_map_key=False)
                fut = self.waiters.pop(msg.get("id") if isinstance(msg, dict) else None, None)
                if fut is None and self.stranger and msg.get("error") == "unavailable":
                    self.soak.st.stranger_refused += 1     # a cap at accept
                elif fut is None:
                    self.soak.unexpected("answer to no request", None, msg)
                elif not fut.done():
                    fut.set_result(msg)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        if self.alive and not self.provoked:
            self.closed_by_peer = True
        self.alive = False
        for fut in self.waiters.values():
            if not fut.done():
                fut.set_exception(Dropped())
        self.waiters = {}

    # -- requests

    async def send(self, req):
        """Send req (an id is added); returns (req, future of its answer)."""
        if not self.alive:
            raise Dropped()
        req = dict(req, id=self.next_id)
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        # Answers of requests hung up on are never awaited: mark them seen.
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.waiters[req["id"]] = fut
        self.writer.write(frame(req))
        self.soak.st.requests += 1
        try:
            await asyncio.wait_for(self.writer.drain(), ANSWER_TIMEOUT)
        except asyncio.TimeoutError:
            raise Hang()
        except (ConnectionError, OSError):
            raise Dropped()
        return req, fut

    async def answer(self, fut, timeout=ANSWER_TIMEOUT):
        try:
            ans = await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            raise Hang()
        key = ans.get("status", "?")
        why = ans.get("stop_reason") or ans.get("error")
        self.soak.st.answers[key + ("/" + why if why else "")] += 1
        return ans

    async def rpc(self, req, timeout=ANSWER_TIMEOUT):
        req, fut = await self.send(req)
        return req, await self.answer(fut, timeout)

    def call_req(self, tool, args, write=False):
        if self.steps >= RUN_STEPS or self.writes >= RUN_WRITES:
            self.new_run()
        self.steps += 1
        if write:
            self.writes += 1
            self.written.add(args_hash(args))
        return {"op": "call", "run_id": self.run, "tool": tool, "args": args}

    def check(self, kind, req, ans, ok):
        if ans.get("status") == "error":
            self.soak.unexpected("error " + kind, req, ans)
        elif not ok:
            self.soak.unexpected("wrong answer to " + kind, req, ans)

    def check_result(self, kind, req, ans, tool_name=None, replayed=None):
        """An ok answer whose result is the args (the tool is cat)."""
        args = req["args"]
        ok = (ans.get("status") == "ok" and ans.get("result") == args and
              ans.get("args_hash") == args_hash(args))
        if ok and tool_name is not None:
            ok = (ans.get("idempotency_key") ==
                  "%s:%s:%s" % (self.tenant, tool_name, args_hash(args)))
            if replayed is not None:
                ok = ok and ans.get("replayed") is replayed
            if ans.get("replayed"):
                self.soak.st.replayed += 1
        self.check(kind, req, ans, ok)


# ---------------------------------------------------------------------------
# What agents do.  Each action takes one paced slot per request it sends.

async def act_read(c, tool_name="read"):
    req, ans = await c.rpc(c.call_req(tool_name, c.soak.new_args(c)))
    c.check_result(tool_name, req, ans)


async def act_read_slow(c):
    await act_read(c, "read.slow")


async def act_pipeline(c):
    sent = [await c.send(c.call_req("read", c.soak.new_args(c))) for _ in range(3)]
    for req, fut in sent:
        c.check_result("pipelined read", req, await c.answer(fut))


async def act_write(c):
    args = c.soak.new_args(c)
    req, ans = await c.rpc(c.call_req("write", args, write=True))
    c.check_result("write", req, ans, "write", replayed=False)
    if ans.get("status") == "ok":
        c.soak.recent_writes[c.tenant].append(args)


async def write_again(c, kind, args):
    """A write sent before (by any run of the tenant), from this run: ok,
    replayed when its result is still kept."""
    if args_hash(args) in c.written:
        c.new_run()
    req, ans = await c.rpc(c.call_req("write", args, write=True))
    c.check_result(kind, req, ans, "write")


async def act_write_again(c):
    pool = c.soak.recent_writes[c.tenant]
    if not pool:
        return await act_write(c)
    await write_again(c, "write again", c.soak.rnd.choice(pool))


async def act_retry_hung(c):
    pool = c.soak.hung_writes[c.tenant]
    if not pool:
        return await act_write(c)
    await write_again(c, "write hung up on, again", pool.popleft())


async def act_denied(c):
    tool_name = c.soak.rnd.choice(["rm.rf", "admin.drop"])
    req, ans = await c.rpc(c.call_req(tool_name, c.soak.new_args(c)))
    c.check("denied tool", req, ans, ans.get("status") == "denied" and
            ans.get("stop_reason") == "not_allowed")


async def act_hello(c):
    req, ans = await c.rpc({"op": "hello"})
    c.check("hello", req, ans, ans.get("status") == "ok" and ans.get("v") == 1 and
            (ans.get("tenant"), ans.get("env")) == (c.tenant, c.env))


async def act_usage(c):
    req, ans = await c.rpc({"op": "usage", "run_id": c.run, "tokens": 10, "cost": 0.001})
    c.check("usage", req, ans, ans.get("status") == "ok")


async def act_hangup(c):
    """A request (or half of one), then the connection closed unread."""
    soak = c.soak
    kind = soak.rnd.choice(["read.slow", "write", "hello", "partial"])
    if kind == "read.slow":
        await c.send(c.call_req("read.slow", soak.new_args(c)))
        await asyncio.sleep(soak.rnd.uniform(0, 0.3))
    elif kind == "write":
        args = soak.new_args(c)
        await c.send(c.call_req("write", args, write=True))
        soak.hung_writes[c.tenant].append(args)
        await asyncio.sleep(soak.rnd.uniform(0, 0.05))
    elif kind == "hello":
        await c.send({"op": "hello"})
    else:
        data = frame({"op": "hello", "id": 1})
        c.writer.write(data[:len(data) // 2])
    await c.hangup()
    await c.open()


async def approval_early_resume(c, args, aid, cp, deny):
    """A resume before the decision: pending, unless the operator was
    quicker.  Returns when it ran the write (the time it was sent), or None."""
    sent = time.monotonic()
    req, ans = await c.rpc({"op": "resume", "checkpoint": cp})
    req = dict(req, args=args)
    st = ans.get("status")
    if st == "pending":
        c.check("resume while pending", req, ans, ans.get("approval_id") == aid)
        return None
    if deny:
        c.check("resume while pending", req, ans,
                st == "denied" and ans.get("stop_reason") == "approval_denied")
        return None
    c.check_result("resume while pending", req, ans, "appr", replayed=False)
    return sent if st == "ok" else None


async def act_approval(c):
    soak = c.soak
    args = soak.new_args(c)
    req, ans = await c.rpc(c.call_req("appr", args, write=True))
    aid, cp = ans.get("approval_id"), ans.get("checkpoint")
    if (ans.get("status") != "needs_approval" or ans.get("stop_reason") != "approval_required"
            or not isinstance(aid, str) or len(aid) != 32 or not isinstance(cp, str)
            or ans.get("args_hash") != args_hash(args)):
        return c.check("approval request", req, ans, False)
    soak.st.approvals["requested"] += 1
    deny, ran = deny_it(aid), None
    r = soak.rnd.random()
    if r < 0.15:
        ran = await approval_early_resume(c, args, aid, cp, deny)
    elif r < 0.35:
        # Hang up while waiting; wait and resume from a new connection.
        await c.send({"op": "wait", "approval_id": aid, "timeout_ms": WAIT_MS})
        await asyncio.sleep(soak.rnd.uniform(0, 0.2))
        await c.hangup()
        await c.open()
    want = "denied" if deny else "approved"
    req, ans = await c.rpc({"op": "wait", "approval_id": aid, "timeout_ms": WAIT_MS},
                           timeout=WAIT_MS / 1000 + ANSWER_TIMEOUT)
    if ans.get("status") == "ok" and ans.get("state") == "pending":
        return soak.unexpected("approval not decided within %d s" % (WAIT_MS // 1000), req, ans)
    c.check("wait", req, ans, ans.get("status") == "ok" and ans.get("state") == want and
            ans.get("approval_id") == aid)
    if ans.get("state") != want:
        return
    soak.st.approvals[want] += 1
    for _ in range(2 if soak.rnd.random() < 0.2 else 1):
        sent = time.monotonic()
        req, ans = await c.rpc({"op": "resume", "checkpoint": cp})
        req = dict(req, args=args)
        if deny:
            c.check("resume of a denied approval", req, ans, ans.get("status") == "denied"
                    and ans.get("stop_reason") == "approval_denied")
        elif (ran is not None and time.monotonic() - ran >= RETENTION_S and
              ans.get("status") == "denied" and ans.get("stop_reason") == "approval_expired"):
            # Used, and its result swept since (a slow pair: ASan).
            soak.st.approvals["used, result swept"] += 1
        else:
            c.check_result("resume", req, ans, "appr", replayed=ran is not None)
            if ran is None and ans.get("status") == "ok":
                ran = sent


async def act_slow_batch(c):
    """Four large reads pipelined, read slowly; sometimes a hang-up with
    answers still owed."""
    soak = c.soak
    sent = [await c.send(c.call_req("read", soak.new_args(c, pad=SLOW_PAD)))
            for _ in range(4)]
    if soak.rnd.random() < 0.1:
        await asyncio.sleep(soak.rnd.uniform(0, 1))
        await c.hangup()
        await c.open()
        return
    for req, fut in sent:
        c.check_result("slow read", req, await c.answer(fut))


async def act_stranger(c):
    soak = c.soak
    reqs = [{"op": "hello"},
            {"op": "call", "run_id": "s", "tool": "read", "args": soak.new_args(c)},
            {"op": "call", "run_id": "s", "tool": "write", "args": soak.new_args(c)},
            {"op": "usage", "run_id": "s", "tokens": 1},
            {"op": "wait", "approval_id": "0" * 32, "timeout_ms": 10},
            {"op": "resume", "checkpoint": "tgc1.x.y"}]
    req = soak.rnd.choice(reqs)
    if soak.rnd.random() < 0.1:
        await c.send(req)
        await c.hangup()
        await c.open()
        return
    req, ans = await c.rpc(req)
    c.check("stranger", req, ans, ans.get("status") == "denied" and
            ans.get("stop_reason") == "unknown_principal")


ACTIONS = [(act_read, 38), (act_read_slow, 6), (act_pipeline, 6), (act_write, 12),
           (act_write_again, 5), (act_retry_hung, 3), (act_approval, 5),
           (act_denied, 8), (act_hello, 4), (act_usage, 5), (act_hangup, 6)]


# Requests an action sends (about), for the pacing.
COST = {act_pipeline: 3, act_write_again: 1, act_approval: 3.5, act_slow_batch: 4}


def choose(c):
    if c.stranger:
        return act_stranger
    if c.slow and c.soak.rnd.random() < 0.7:
        return act_slow_batch
    fns, weights = zip(*ACTIONS)
    return c.soak.rnd.choices(fns, weights)[0]


async def reopen(c):
    if c.closed_by_peer:
        if c.stranger:
            c.soak.st.stranger_closed += 1
            await asyncio.sleep(1)      # a refused peer, refused again: no spin
        else:
            c.soak.unexpected("connection closed by the server (%s, uid %d)" %
                              (c.tenant, c.uid))
    await c.open()


async def worker(c):
    soak = c.soak
    while not soak.stopping:
        if soak.paused:
            # Quiet: the stranger's connections go, the others stay open.
            if c.stranger and c.alive:
                await c.hangup()
            elif not c.stranger and not c.alive:
                await reopen(c)
            soak.active -= 1
            await soak.resume_ev.wait()
            soak.active += 1
            continue
        if not c.alive:
            await reopen(c)
            continue
        action = choose(c)
        await soak.pace(COST.get(action, 1))
        if soak.paused or soak.stopping or not c.alive:
            continue
        try:
            await action(c)
        except Dropped:
            pass
        except Hang:
            soak.unexpected("no answer within %d s (%s)" % (ANSWER_TIMEOUT, c.tenant))
            await c.hangup()


# ---------------------------------------------------------------------------
# The operator, the control socket, measuring.

async def ctl(d, req, timeout=30):
    """One request on the control socket; the answer map."""
    r, w = await asyncio.wait_for(asyncio.open_unix_connection(d.control_sock), timeout)
    try:
        w.write(frame(req))
        await w.drain()
        (n,) = struct.unpack(">I", await asyncio.wait_for(r.readexactly(4), timeout))
        return msgpack.unpackb(await asyncio.wait_for(r.readexactly(n), timeout),
                               raw=False, strict_map_key=False)
    finally:
        w.close()


async def gatewayctl(d, *args):
    p = await asyncio.create_subprocess_exec(
        GATEWAYCTL, "-s", d.control_sock, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=d.env())
    out, err = await asyncio.wait_for(p.communicate(), 60)
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def decide(soak, aid, via_gatewayctl):
    op = "deny" if deny_it(aid) else "approve"
    want = "denied" if op == "deny" else "approved"
    if via_gatewayctl:
        rc, out, err = await gatewayctl(soak.d, op, aid, "--note", "soak")
        if rc != 0 or ("state: " + want) not in out:
            soak.unexpected("gatewayctl " + op, {"approval_id": aid},
                            {"rc": rc, "out": out, "err": err})
        return
    ans = await ctl(soak.d, {"op": op, "approval_id": aid, "note": "soak"})
    if not ans.get("ok") or ans.get("state") != want:
        soak.unexpected("control " + op, {"approval_id": aid}, ans)


async def operator(soak):
    """Lists the pending approvals and decides each, every fifth through
    gatewayctl, the others on the control socket."""
    decided = {}
    n = 0
    while not soak.stopping:
        await asyncio.sleep(0.25)
        try:
            ans = await ctl(soak.d, {"op": "approvals"})
            if not ans.get("ok"):
                soak.unexpected("control approvals", None, ans)
                continue
            for item in ans.get("items", []):
                aid = item.get("approval_id")
                if aid in decided:
                    continue
                decided[aid] = time.monotonic()
                n += 1
                await decide(soak, aid, n % 5 == 0)
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.TimeoutError) as e:
            if not soak.stopping:
                soak.unexpected("control socket", None, repr(e))
        old = time.monotonic() - 600
        for aid in [a for a, t in decided.items() if t < old]:
            del decided[aid]


def sample(pid):
    """VmRSS and RssAnon (KiB) and open descriptors of pid, from /proc."""
    f = {}
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            k, _, v = line.partition(":")
            f[k] = v.strip()
    return {"rss": int(f["VmRSS"].split()[0]), "anon": int(f["RssAnon"].split()[0]),
            "fds": len(os.listdir("/proc/%d/fd" % pid))}


def alive_pair(soak):
    if soak.d.proc.poll() is not None:
        return "gatewayd exited with %s" % soak.d.proc.returncode
    if not pid_alive(soak.exec_pid):
        return "the executor (pid %d) is gone" % soak.exec_pid
    return None


async def monitor(soak):
    t0 = time.monotonic()
    while not soak.stopping:
        await asyncio.sleep(10)
        why = alive_pair(soak)
        if why:
            soak.fatal = why
            return
        g, e = sample(soak.gw_pid), sample(soak.exec_pid)
        print("soak: t=%4.0fs requests %d unexpected %d open %d  gatewayd rss %d KiB fds %d"
              "  executor rss %d KiB fds %d%s" %
              (time.monotonic() - t0, soak.st.requests, soak.st.total_unexpected(),
               sum(1 for c in soak.conns if c.alive), g["rss"], g["fds"], e["rss"], e["fds"],
               "  (paused)" if soak.paused else ""), flush=True)


async def quiesce(soak, what):
    """Pause the traffic until every action has finished and the pair has
    settled; then read both processes."""
    soak.paused = True
    soak.resume_ev.clear()
    paused_at = time.monotonic()
    deadline = time.monotonic() + WAIT_MS / 1000 + 2 * ANSWER_TIMEOUT
    while soak.active > 0 and not soak.fatal:
        if time.monotonic() > deadline:
            soak.unexpected("%d actions still running at the %s" % (soak.active, what))
            break
        await asyncio.sleep(0.1)
    # Settled: no tool running, exactly the principals' connections known.
    deadline = time.monotonic() + WAIT_MS / 1000 + 15
    while not soak.fatal:
        want = sum(1 for c in soak.conns if c.alive)
        st = await ctl(soak.d, {"op": "status"})
        if st.get("running_tools") == 0 and st.get("agent_connections") == want:
            break
        if time.monotonic() > deadline:
            soak.unexpected("the pair did not settle at the %s (want %d connections)" %
                            (what, want), None, st)
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)
    return {"gatewayd": sample(soak.gw_pid), "executor": sample(soak.exec_pid),
            "status": st, "requests": soak.st.requests, "paused_at": paused_at}


def resume(soak):
    soak.paused = False
    soak.pace_t = soak.resumed_at = time.monotonic()
    soak.resume_ev.set()


async def run_for(soak, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not soak.fatal:
        await asyncio.sleep(min(1, max(0, end - time.monotonic())))


# ---------------------------------------------------------------------------

def make_conns(soak):
    """CONNS connections: STRANGERS of the stranger, the rest dealt round
    the tenants, SLOW of those (spread over them) slow readers."""
    agents = CONNS - STRANGERS
    every = max(1, agents // SLOW) if SLOW else 0
    conns = []
    for i in range(CONNS):
        if i < STRANGERS:
            conns.append(Conn(soak, i, STRANGER))
            continue
        j = i - STRANGERS
        slow = bool(SLOW) and j % every == 0 and j // every < SLOW
        conns.append(Conn(soak, i, TENANTS[j % len(TENANTS)], slow))
    return conns


def judge(start, end):
    """The growth of each process against the tolerances; a list of failures."""
    bad = []
    for name in ("gatewayd", "executor"):
        a, b = start[name], end[name]
        rss_allowed = max(a["rss"] * RSS_TOL_PCT / 100, RSS_TOL_MIB * 1024)
        if b["rss"] - a["rss"] > rss_allowed and not SAN:
            bad.append("%s RSS grew %d KiB (allowed %d)" % (name, b["rss"] - a["rss"],
                                                           rss_allowed))
        if b["fds"] - a["fds"] > FD_TOL:
            bad.append("%s descriptors grew by %d (allowed %d)" %
                       (name, b["fds"] - a["fds"], FD_TOL))
    return bad


def report(soak, start, end, bad):
    st = soak.st
    tenants = collections.Counter(c.tenant or "stranger" for c in soak.conns)
    print("soak: %d s after a %d s warm-up, %d connections (%s; %d slow readers), "
          "rate %g/s" % (SECONDS, WARMUP, CONNS,
                         ", ".join("%s %d" % kv for kv in sorted(tenants.items())),
                         sum(1 for c in soak.conns if c.slow), RATE))
    measured, secs = 0, 1
    if start and end:
        measured = end["requests"] - start["requests"]
        secs = max(1e-3, end["paused_at"] - soak.resumed_at)
    print("soak: requests %d (%d in the measured %.0f s: %.0f/s)" %
          (st.requests, measured, secs, measured / secs))
    print("soak: answers %s" % ", ".join("%s %d" % kv for kv in sorted(st.answers.items())))
    errors = sum(n for k, n in st.answers.items() if k.startswith("error"))
    print("soak: policy answers %d; errors %d; unexpected %d%s" %
          (st.policy(), errors, st.total_unexpected(),
           "" if not st.unexpected else " (" + ", ".join(
               "%s %d" % kv for kv in sorted(st.unexpected.items())) + ")"))
    for line in st.samples:
        print("soak:   " + line)
    print("soak: hang-ups %d, connects %d (backlog full %d), stranger's closed by the "
          "server %d (refused at accept %d), approvals %s, replayed writes %d" %
          (st.hangups, st.connects, st.connect_retries, st.stranger_closed,
           st.stranger_refused, dict(st.approvals), st.replayed))
    if start and end:
        for name in ("gatewayd", "executor"):
            a, b = start[name], end[name]
            print("soak: %-8s rss start %d KiB end %d KiB (%+d; anon %d -> %d)  "
                  "fds start %d end %d (%+d)" %
                  (name, a["rss"], b["rss"], b["rss"] - a["rss"], a["anon"], b["anon"],
                   a["fds"], b["fds"], b["fds"] - a["fds"]))
        print("soak: tolerance: fds +%d, rss +max(%g%%, %g MiB)%s" %
              (FD_TOL, RSS_TOL_PCT, RSS_TOL_MIB,
               " (rss not judged under SAN=1)" if SAN else ""))
    print("soak: " + ("PASS" if not bad else "FAIL: " + "; ".join(bad)), flush=True)


async def run(d):
    soak = Soak(d)
    soak.gw_pid, soak.exec_pid = d.proc.pid, d.executor_pid()
    soak.conns = make_conns(soak)
    t = time.monotonic()
    for c in soak.conns:
        await c.open()
    print("soak: %d connections open in %.1f s; warm-up %d s, then %d s" %
          (CONNS, time.monotonic() - t, WARMUP, SECONDS), flush=True)
    soak.active = len(soak.conns)
    soak.pace_t = time.monotonic()
    tasks = [asyncio.ensure_future(worker(c)) for c in soak.conns]
    helpers = [asyncio.ensure_future(operator(soak)), asyncio.ensure_future(monitor(soak))]
    start = end = None
    await run_for(soak, WARMUP)
    if not soak.fatal:
        start = await quiesce(soak, "start")
        print("soak: start: gatewayd %s executor %s" % (start["gatewayd"], start["executor"]),
              flush=True)
        resume(soak)
        await run_for(soak, SECONDS)
    if not soak.fatal:
        end = await quiesce(soak, "end")
        print("soak: end:   gatewayd %s executor %s" % (end["gatewayd"], end["executor"]),
              flush=True)
    bad = []
    if soak.fatal is None:
        st = end["status"]
        if st.get("in_doubt"):
            bad.append("%s writes in doubt" % st.get("in_doubt"))
    soak.stopping = True
    soak.resume_ev.set()
    for task in helpers:
        task.cancel()
    why = soak.fatal or alive_pair(soak)
    if why:
        bad.append(why)
    else:
        try:
            d.stop()
        except AssertionError as e:
            bad.append("stopping the pair: %s" % str(e)[:2000])
    for task in tasks:
        task.cancel()
    for c in soak.conns:
        if c.writer is not None:
            c.writer.transport.abort()
    await asyncio.gather(*tasks, *helpers, return_exceptions=True)
    if soak.st.total_unexpected():
        bad.insert(0, "%d unexpected" % soak.st.total_unexpected())
    if start and end:
        bad += judge(start, end)
    report(soak, start, end, bad)
    return 1 if bad else 0


def main():
    if not IS_ROOT:
        print("soak: needs root (its agents connect as other uids)")
        sys.exit(1)
    if STRANGERS + SLOW > CONNS:
        print("soak: SOAK_STRANGERS + SOAK_SLOW > SOAK_CONNS")
        sys.exit(2)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * CONNS + 1024     # ours, and each daemon holds one per connection
    if hard < need:
        print("soak: RLIMIT_NOFILE hard limit %d < %d" % (hard, need))
        sys.exit(1)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    d = Daemon(soak_config(), name="soak")
    rc = 1
    try:
        d.start()
        rc = asyncio.run(run(d))
    finally:
        if rc != 0:
            # The log is verbose (-v): its warnings, and the last lines.
            lines = d.read_log().splitlines()
            warn = [ln for ln in lines if not ln.split(": ", 1)[-1].startswith(("<-", "->"))
                    and any(w in ln for w in ("cannot", "refus", "error", "fatal", "warn"))]
            print("soak: daemon log, %d warnings (first 20):" % len(warn))
            print("\n".join(warn[:20]))
            print("soak: daemon log, last lines:")
            print("\n".join(lines[-10:]))
        if rc != 0 and KEEP:
            print("soak: kept %s (daemon.log, state/audit.log)" % d.dir)
            d.dir = os.path.join(d.dir, "nothing")     # cleanup() removes nothing
        d.cleanup()
    sys.exit(rc)


if __name__ == "__main__":
    main()
