#!/usr/bin/python3
"""make faults: a seeded fault-injection test of exactly-once writes.

Each iteration starts the real daemon pair (as root) on a fresh state dir,
puts a mixed load on it from many agent connections at once (unique writes,
identical concurrent writes from several connections and runs, pipelined
writes, approval-required writes: request, gatewayctl approve or deny,
resume, two resumes of one checkpoint at once, reads), and SIGKILLs
gatewayd or the executor at a seeded random moment.  Once both processes
are gone it starts the pair again on the same state dir and retries every
request that got no answer (a write with a fresh run_id: its idempotency key
does not depend on the run; a resume with the same checkpoint), sometimes
killing again during the retries.  Then it reconciles what the agents were
told against the side-effect logs that tests/tools/fault-record appends
to, one line per execution, each holding the write's unique marker:

  doubled     a marker with more than one side effect
  lost        a write acknowledged ok (replayed or not) with no side effect
  unapproved  a side effect of the approval-required tool whose approval
              was never approved
  in_doubt    writes the gate answers "in doubt" (never resolved here)

Every acknowledged write is then sent once more: it must replay.  The
harness prints one totals line; any doubled, lost or unapproved write (or
a side effect with a marker the harness never sent) makes it exit 1.

FAULT_CLOCK=1: the executor runs under libfaketime (started through
tests/faults/faketime-executor, gatewayd's --executor) and its wall clock
jumps +-2 h at random moments; writes.retention_s is 3600, so a sweeper
that trusts the wall clock deletes live keys.  At the end of each iteration
the clock steps +2 h and every acknowledged write is sent again: it must
replay, not run again.  Also counted: audit_seq_back (iterations whose
audit log's seq went backwards) and unexpired (an approval that had expired
at +2 h, refusing the decision, was pending again at +0: the harness
decides again).  Not under ASan (LD_PRELOAD and ASan do not mix).

Environment: FAULT_ITERS (300), FAULT_SEED (1), FAULT_CLOCK (0),
FAULT_ONLY=N (run iteration N alone, to replay a finding), FAULT_KEEP=N
(keep the state dirs of the first N iterations with findings, default 3),
FAULT_VERBOSE=1 (print every write's answers), FAULT_KILL=gatewayd or
executor (kill only that one), BUILD, SAN as for the suite.

FAULT_PG=1: two daemon pairs on two state dirs stand for two hosts on one
PostgreSQL (store.backend: postgresql; the harness starts its own server,
tglib/pg.py, with a new database each iteration).  Every request and
every gatewayctl command goes to one of the two at random, a kill hits
one of the two, and only that one is started again: writes, replays,
approvals and resumes cross hosts; the totals are the same.  Not with
FAULT_CLOCK or FAULT_BREAK=ledger.

FAULT_BREAK checks the checker: it breaks the system on purpose, and the
run must then fail.  "approval": rec.appr needs no approval (unapproved);
"ledger": the LMDB store is deleted after each kill (doubled); "effects":
the side-effect logs are emptied after each kill (lost).
"""
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from tg import (EXECUTOR, IS_ROOT, SAN, Daemon, become_subreaper,  # noqa: E402
                read_audit, tool, wait_exit, write_config, writes_config)

SEED = int(os.environ.get("FAULT_SEED", "1"))
ITERS = int(os.environ.get("FAULT_ITERS", "300"))
CLOCK = os.environ.get("FAULT_CLOCK", "0") == "1"
ONLY = os.environ.get("FAULT_ONLY")
KEEP = int(os.environ.get("FAULT_KEEP", "3"))
VERBOSE = os.environ.get("FAULT_VERBOSE", "0") == "1"
BREAK = os.environ.get("FAULT_BREAK", "")
KILL = os.environ.get("FAULT_KILL", "")
PG = os.environ.get("FAULT_PG", "0") == "1"
PG_SERVER = None        # tglib.pg.Postgres, once for the run
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
WRAPPER = os.path.join(HERE, "faketime-executor")
RETENTION_S = 3600
IO_TIMEOUT = 15         # an answer later than this is reported as a hang
MAX_PHASES = 6          # the first run and the rounds of retries
SLOW_S = "0.2"          # rec.slow's run time: identical writes overlap


class FaultDaemon(Daemon):
    """The pair; in the clock variant gatewayd starts the executor through
    the faketime wrapper, which finds its settings in the environment."""
    clock_file = None

    def env(self):
        env = super().env()
        if self.clock_file:
            env.update(FAULT_EXECUTOR=EXECUTOR, FAULT_FAKETIME_LIB=FAKETIME_LIB,
                       FAULT_FAKETIME_FILE=self.clock_file)
        return env


class Unanswered(Exception):
    """The request got no answer: the connection failed or closed (sent:
    after the request went out, so it may have been acted on)."""

    def __init__(self, why, sent=False):
        super().__init__(why)
        self.sent = sent


class Write:
    """One logical write: a unique marker in its args."""

    def __init__(self, marker, tool_name):
        self.marker = marker
        self.tool = tool_name
        self.args = {"m": marker}
        self.acked = False          # some answer was ok (replayed or not)
        self.doubt = False          # some answer was "in doubt"
        self.answers = []
        self.aids = []              # approvals requested for it
        self.approved = set()       # those known approved
        self.approve_sent = set()   # those the harness asked to approve
        self.checkpoints = {}       # approval id -> checkpoint


def describe(r):
    """A short form of an answer, for the findings."""
    if r is None:
        return "no answer"
    s = r.get("status", "?")
    if s == "ok":
        return "ok" + (" replayed" if r.get("replayed") else "")
    return "%s/%s" % (s, r.get("error") or r.get("stop_reason") or r.get("state"))


def in_doubt_answer(r):
    return (r.get("status") == "error" and r.get("error") == "tool_failed" and
            "in doubt" in r.get("message", ""))


class Iteration:
    """One iteration: its plan, its daemon pair, what happened."""

    def __init__(self, n, totals):
        self.n = n
        self.rnd = random.Random("%d:%d" % (SEED, n))
        # Its own: the steps depend on timing, the plan must not.
        self.clock_rnd = random.Random("%d:%d:clock" % (SEED, n))
        self.totals = totals
        self.lock = threading.Lock()
        self.runs = itertools.count(1)
        self.writes = []
        self.jobs = []
        self.issues = []            # unexpected answers, hangs, leftovers
        self.d = None               # the first host; ds: every host
        self.ds = []
        self.pids = {}              # daemon -> (gatewayd pid, executor pid)
        self.pick_rnd = random.Random("%d:%d:pick" % (SEED, n))
        self.dbname = None
        self.executors = []         # every executor pid started
        self.clock_file = None

    # -- the pair -------------------------------------------------------

    def make_daemon(self):
        d = FaultDaemon(writes_config(), name="tg-fault")
        self.effects = {t: os.path.join(d.dir, "effects." + t)
                        for t in ("rec", "slow", "appr")}
        conf = writes_config(
            {"rec": {"mode": "write", "exec": [tool("fault-record"), self.effects["rec"]]},
             "rec.slow": {"mode": "write",
                          "exec": [tool("fault-record"), self.effects["slow"], SLOW_S]},
             "rec.appr": {"mode": "write",
                          "exec": [tool("fault-record"), self.effects["appr"]]}},
            writes={"retention_s": RETENTION_S,
                    "require_approval": False if BREAK == "approval" else ["rec.appr"]},
            approvals={"ttl_s": 3600})
        conf.setdefault("paths", {})["credentials_dir"] = d.creds
        d.conf = conf
        write_config(d.config_path, conf)
        if CLOCK:
            self.clock_file = d.clock_file = os.path.join(d.dir, "faketime")
            self.set_clock("+0")
        self.d = d
        self.ds = [d]
        if PG:
            self.dbname = "tg_s%d_i%d" % (SEED, self.n)
            PG_SERVER.psql("CREATE DATABASE %s" % self.dbname)
            dsn = "host=%s dbname=%s user=%s" % (PG_SERVER.sock, self.dbname,
                                                 PG_SERVER.dbuser)
            d2 = FaultDaemon(writes_config(), name="tg-fault-b")
            for h, dd in (("host-a", d), ("host-b", d2)):
                c2 = dict(conf, store={"backend": "postgresql", "dsn": dsn,
                                       "host_id": h})
                c2["paths"] = dict(conf.get("paths", {}), credentials_dir=dd.creds)
                dd.conf = c2
                write_config(dd.config_path, c2)
            self.ds = [d, d2]

    def start(self):
        """Starts every host not running (all at first; after a kill,
        the one killed)."""
        for d in self.ds:
            if d.proc is not None:
                continue
            d.start(extra_args=["--executor", WRAPPER] if CLOCK else [])
            self.pids[d] = (d.proc.pid, d.executor_pid())
            self.executors.append(self.pids[d][1])
        if PG:
            for d in self.ds:
                self.wait_store_up(d)

    def wait_store_up(self, d):
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                if d.ctl_json("status").get("store") == "up":
                    return
            except AssertionError:
                pass
            time.sleep(0.05)
        self.issue("the shared store is not up on %s" % d.dir)

    def host(self):
        """The host a request goes to: one of them, at random."""
        if len(self.ds) == 1:
            return self.d
        with self.lock:
            return self.ds[self.pick_rnd.randrange(len(self.ds))]

    def set_clock(self, offset):
        """The executor's wall clock is real time + offset from now on."""
        tmp = self.clock_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(offset + "\n")
        os.rename(tmp, self.clock_file)

    def issue(self, text):
        with self.lock:
            self.issues.append(text)

    def run_id(self):
        with self.lock:
            return "s%d-i%d-r%d" % (SEED, self.n, next(self.runs))

    # -- requests ---------------------------------------------------------

    def request(self, req):
        """One request on its own connection; raises Unanswered."""
        try:
            c = self.host().client()
        except OSError as e:
            raise Unanswered("connect: %s" % e)
        sent = False
        try:
            c.s.settimeout(IO_TIMEOUT)
            c.send(dict(req, id=1))
            sent = True
            return c.recv()
        except socket.timeout:
            self.issue("no answer in %d s to %s" % (IO_TIMEOUT, req))
            raise Unanswered("timeout", sent)
        except (OSError, EOFError) as e:
            raise Unanswered(str(e), sent)
        finally:
            if sent:
                with self.lock:
                    self.totals["requests"] += 1
            c.close()

    def lost_answer(self, w, how, e):
        """A request of w that went out and got no answer: asked again."""
        if e.sent:
            w.answers.append(how + ": no answer")
            with self.lock:
                self.totals["unanswered"] += 1

    def call(self, w):
        return self.request({"op": "call", "run_id": self.run_id(),
                             "tool": w.tool, "args": w.args})

    def resume(self, cp):
        return self.request({"op": "resume", "checkpoint": cp})

    def wait_state(self, aid):
        r = self.request({"op": "wait", "approval_id": aid, "timeout_ms": 0})
        # Refused while its executor is gone (a kill): the gate did not say.
        if r.get("status") == "error" and r.get("error") == "unavailable":
            raise Unanswered("unavailable")
        return r.get("state") if r.get("status") == "ok" else "gone"

    def ctl(self, *args):
        try:
            return self.host().ctl(*args)[0]
        except subprocess.TimeoutExpired:
            self.issue("gatewayctl %s: no answer" % " ".join(args))
            return -1

    def settle(self, w, r, how):
        """Records a write's answer; True when the request is finished
        (False: ask again, the gate could not say)."""
        w.answers.append("%s: %s" % (how, describe(r)))
        if r.get("status") == "ok":
            w.acked = True
        elif in_doubt_answer(r):
            w.doubt = True
        elif r.get("status") == "error" and r.get("error") in ("unavailable", "internal"):
            return False
        else:
            self.issue("%s %s: unexpected %s: %s" % (how, w.marker, describe(r),
                                                     r.get("message")))
        return True

    # -- the plan -----------------------------------------------------------

    def new_write(self, tool_name):
        w = Write("s%d-i%d-w%d" % (SEED, self.n, len(self.writes)), tool_name)
        self.writes.append(w)
        return w

    def plan(self):
        rnd = self.rnd
        for _ in range(rnd.randint(4, 8)):
            w = self.new_write(rnd.choice(["rec", "rec", "rec.slow"]))
            self.jobs.append(CallJob(self, w))
        self.jobs.append(PipeJob(self, [self.new_write(rnd.choice(["rec", "rec.slow"]))
                                        for _ in range(rnd.randint(2, 4))]))
        for _ in range(rnd.randint(1, 2)):
            w = self.new_write(rnd.choice(["rec.slow", "rec.slow", "rec"]))
            delay = rnd.uniform(0, 0.3)
            for _ in range(rnd.randint(2, 4)):
                self.jobs.append(CallJob(self, w, delay))
        for _ in range(rnd.randint(1, 2)):
            self.jobs.append(ApprovalJob(self, "approve", rnd.choice([1, 2])))
        if rnd.random() < 0.6:
            self.jobs.append(ApprovalJob(self, "deny", 1))
        if rnd.random() < 0.4:
            self.jobs.append(ApprovalJob(self, "pending", 1))
        for _ in range(2):
            self.jobs.append(ReadJob(self, "s%d-i%d-q%d" % (SEED, self.n, len(self.jobs))))

    # -- phases ---------------------------------------------------------------

    def run_phase(self, phase):
        """Runs every unfinished job; maybe kills one of the pair meanwhile.
        Returns with the pair running (no kill) or gone (a kill)."""
        todo = [j for j in self.jobs if not j.done]
        kill = None
        if phase == 0 or (phase == 1 and self.rnd.random() < 0.3):
            kill = (self.rnd.choice(["gatewayd", "executor"]),
                    self.rnd.uniform(0.0, 0.45),
                    self.ds[self.rnd.randrange(len(self.ds))])
            if KILL:
                kill = (KILL, kill[1], kill[2])
        stop = threading.Event()
        threads = [threading.Thread(target=j.run_guarded, args=(phase,)) for j in todo]
        if CLOCK:
            threads.append(threading.Thread(target=self.clock_steps, args=(stop,)))
        if kill:
            threads.append(threading.Thread(target=self.killer, args=kill))
        for t in threads:
            t.start()
        for t in threads[:len(todo)]:
            t.join(IO_TIMEOUT * 3)
            if t.is_alive():
                self.issue("a job thread hangs")
        stop.set()
        for t in threads[len(todo):]:
            t.join()
        if kill:
            self.reap_pair(kill[2])
            self.reap_orphans()
            if BREAK == "ledger":
                shutil.rmtree(os.path.join(self.d.state, "db"))
            elif BREAK == "effects":
                for path in self.effects.values():
                    open(path, "w").close()
            self.start()

    def killer(self, which, delay, d):
        time.sleep(delay)
        pid = self.pids[d][0] if which == "gatewayd" else self.pids[d][1]
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            self.issue("%s already gone before its kill" % which)
            return
        with self.lock:
            self.totals["kill_" + which] += 1

    def clock_steps(self, stop):
        while not stop.wait(self.clock_rnd.uniform(0.03, 0.3)):
            self.set_clock(self.clock_rnd.choice(["+2h", "-2h", "+0"]))
            with self.lock:
                self.totals["clock_steps"] += 1

    def reap_pair(self, d):
        """After a kill: both processes must go away by themselves (a dead
        gatewayd makes the executor finish and exit; a dead executor makes
        gatewayd exit).  Leftovers are killed and reported."""
        ex = self.pids[d][1]
        try:
            d.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.issue("gatewayd outlived its executor")
            d.proc.kill()
            d.proc.wait()
        if wait_exit(ex, 15) is None:
            self.issue("the executor outlived gatewayd")
            os.kill(ex, signal.SIGKILL)
            wait_exit(ex, 5)
        d.log.close()
        d.proc = None

    def keep_pids(self):
        """Our children that are no orphans: the hosts still running and
        the PostgreSQL server (pg_ctl daemonizes it: we are its reaper)."""
        keep = {d.proc.pid for d in self.ds if d.proc is not None}
        try:
            with open(os.path.join(PG_SERVER.data, "postmaster.pid")) as f:
                keep.add(int(f.readline()))
        except (OSError, ValueError):
            pass
        return keep

    def reap_orphans(self, timeout=5):
        """Tools left running by a killed executor are ours (subreaper):
        wait for them, so that their side effects are all on disk."""
        if PG:
            return self.reap_orphans_pg(timeout)
        deadline = time.time() + timeout
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                continue
            if time.time() > deadline:
                self.issue("tools still running %d s after a kill" % timeout)
                for k in our_children():
                    for kill in (os.killpg, os.kill):
                        try:
                            kill(k, signal.SIGKILL)
                        except OSError:
                            pass
                deadline = time.time() + 5
            time.sleep(0.02)

    def reap_orphans_pg(self, timeout):
        """The same, sparing the other host and the database server."""
        deadline = time.time() + timeout
        while True:
            kids = [k for k in our_children() if k not in self.keep_pids()]
            if not kids:
                return
            for k in kids:
                try:
                    os.waitpid(k, os.WNOHANG)
                except ChildProcessError:
                    pass
            if time.time() > deadline:
                self.issue("tools still running %d s after a kill" % timeout)
                for k in kids:
                    try:
                        os.kill(k, signal.SIGKILL)
                    except OSError:
                        pass
                deadline = time.time() + 5
            time.sleep(0.02)

    def replay_check(self):
        """Every acknowledged write sent again, after the restarts (and in
        the clock variant after a +2 h step and a sweep): each must replay."""
        if CLOCK:
            self.set_clock("+2h")
            time.sleep(1.1)     # the sweeper runs every second
        when = "after +2h" if CLOCK else "at the end"
        for w in self.writes:
            if not w.acked:
                continue
            try:
                if w.tool == "rec.appr":
                    for aid in w.approved:
                        r = self.resume(w.checkpoints[aid])
                        w.answers.append("%s resume: %s" % (when, describe(r)))
                else:
                    r = self.call(w)
                    w.answers.append("%s call: %s" % (when, describe(r)))
            except Unanswered as e:
                self.issue("%s: %s unanswered: %s" % (when, w.marker, e))
        if CLOCK:
            self.set_clock("+0")

    # -- the end --------------------------------------------------------------

    def confirm_approvals(self):
        """An approve whose answer was lost: ask the gate what it decided."""
        for w in self.writes:
            for aid in w.approve_sent - w.approved:
                try:
                    if self.wait_state(aid) == "approved":
                        w.approved.add(aid)
                except Unanswered:
                    pass

    def audit_seq_ok(self):
        for d in self.ds:
            seqs = [a.get("seq") for a in read_audit(d)]
            if not (all(isinstance(s, int) for s in seqs) and
                    all(a < b for a, b in zip(seqs, seqs[1:]))):
                return False
        return True

    def side_effects(self):
        """marker -> number of side effects; and the appr tool's markers."""
        count, appr, foreign = {}, set(), []
        for t, path in self.effects.items():
            try:
                lines = open(path).read().splitlines()
            except FileNotFoundError:
                continue
            for line in lines:
                try:
                    m = json.loads(line).get("m")
                except ValueError:
                    m = None
                count[m] = count.get(m, 0) + 1
                if t == "appr":
                    appr.add(m)
        sent = {w.marker for w in self.writes}
        foreign = [m for m in count if m not in sent]
        return count, appr, foreign

    def reconcile(self):
        count, appr, foreign = self.side_effects()
        t = self.totals
        found = []
        t["writes"] += len(self.writes)
        t["side_effects"] += sum(count.values())
        for w in self.writes:
            n = count.get(w.marker, 0)
            t["acknowledged"] += w.acked
            if n > 1:
                t["doubled"] += 1
                found.append("doubled %s (%s, %d side effects): %s" %
                             (w.marker, w.tool, n, "; ".join(w.answers)))
            if w.acked and n == 0:
                t["lost"] += 1
                found.append("lost %s (%s): %s" % (w.marker, w.tool, "; ".join(w.answers)))
            if w.tool == "rec.appr" and w.marker in appr and not w.approved:
                t["unapproved"] += 1
                found.append("unapproved %s: approvals %s: %s" %
                             (w.marker, w.aids, "; ".join(w.answers)))
            if w.doubt and not w.acked:
                t["in_doubt"] += 1
            if not w.acked and not w.doubt and w.tool != "rec.appr":
                t["unsettled"] += 1
                found.append("unsettled %s (%s): %s" % (w.marker, w.tool, "; ".join(w.answers)))
        for m in foreign:
            t["foreign"] += 1
            found.append("a side effect the harness never asked for: %r" % m)
        return found

    def run(self):
        self.make_daemon()
        self.plan()
        kept = False
        try:
            self.start()
            for phase in range(MAX_PHASES):
                if all(j.done for j in self.jobs):
                    break
                self.run_phase(phase)
            self.replay_check()
            self.confirm_approvals()
            for d in self.ds:
                try:
                    d.stop()
                except AssertionError as e:
                    self.issue("stop: %s" % str(e).splitlines()[0])
            self.reap_orphans()
            if not self.audit_seq_ok():
                self.totals["audit_seq_back"] += 1
            found = self.reconcile()
            for j in self.jobs:
                if not j.done:
                    self.issue("%s not finished after %d rounds" % (j.name(), MAX_PHASES))
            if VERBOSE:
                for w in self.writes:
                    print("  %s %s: %s" % (w.marker, w.tool, "; ".join(w.answers)))
            if found or self.issues:
                print("iteration %d (FAULT_SEED=%d FAULT_ONLY=%d%s):" %
                      (self.n, SEED, self.n, " FAULT_CLOCK=1" if CLOCK else ""))
                for f in found + ["issue: " + i for i in self.issues]:
                    print("  " + f)
                self.totals["issues"] += len(self.issues)
                if found and self.totals["kept"] < KEEP:
                    self.totals["kept"] += 1
                    kept = True
                    print("  state dir kept: " + self.d.dir)
                sys.stdout.flush()
        finally:
            for d in self.ds:
                if d.proc is not None and d.proc.poll() is None:
                    os.killpg(d.proc.pid, signal.SIGKILL)   # and the executor
                    d.proc.wait()
                    d.proc = None
            self.reap_orphans()
            if not kept:
                for d in self.ds:
                    shutil.rmtree(d.dir, ignore_errors=True)
            if PG and not kept:
                PG_SERVER.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.dbname)
            if CLOCK:
                faketime_cleanup(self.executors)


def faketime_cleanup(pids):
    """libfaketime keeps a semaphore and a shared memory segment per
    process, named by its pid, and removes them at exit: not when the
    process is SIGKILLed.  Those of our executors go here."""
    for pid in pids:
        for name in ("faketime_shm_%d" % pid, "sem.faketime_sem_%d" % pid):
            try:
                os.unlink(os.path.join("/dev/shm", name))
            except FileNotFoundError:
                pass


def our_children():
    kids = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/children" % task) as f:
                kids += [int(k) for k in f.read().split()]
        except OSError:
            pass
    return kids


class Job:
    """A piece of the load, run in its own thread; each phase goes on from
    where the last one stopped (a kill leaves requests unanswered)."""

    def __init__(self, it):
        self.it = it
        self.done = False
        self.tries = 0

    def run_guarded(self, phase):
        self.tries += 1
        try:
            self.run(phase)
        except Unanswered:
            pass
        except Exception as e:      # a harness bug must not pass silently
            self.it.issue("%s: %r" % (self.name(), e))
            raise


class CallJob(Job):
    """One request of a write; the members of an identical group share w."""

    def __init__(self, it, w, delay=None):
        super().__init__(it)
        self.w = w
        self.delay = it.rnd.uniform(0, 0.3) if delay is None else delay

    def name(self):
        return "call " + self.w.marker

    def run(self, phase):
        if phase == 0:
            time.sleep(self.delay)
        try:
            r = self.it.call(self.w)
        except Unanswered as e:
            self.it.lost_answer(self.w, "call", e)
            raise
        self.done = self.it.settle(self.w, r, "call")


class PipeJob(Job):
    """Several writes pipelined on one connection (answers in any order);
    those left unanswered are asked again one by one."""

    def __init__(self, it, writes):
        super().__init__(it)
        self.writes = writes
        self.left = list(writes)
        self.delay = it.rnd.uniform(0, 0.3)

    def name(self):
        return "pipeline " + ",".join(w.marker for w in self.left)

    def run(self, phase):
        if phase == 0:
            time.sleep(self.delay)
            self.pipeline()
        for w in list(self.left):
            try:
                r = self.it.call(w)
            except Unanswered as e:
                self.it.lost_answer(w, "call", e)
                raise
            if self.it.settle(w, r, "call"):
                self.left.remove(w)
        self.done = not self.left

    def pipeline(self):
        done, sent = [], []
        try:
            c = self.it.host().client()
        except OSError:
            return
        try:
            c.s.settimeout(IO_TIMEOUT)
            for i, w in enumerate(self.left):
                c.send({"op": "call", "id": i + 1, "run_id": self.it.run_id(),
                        "tool": w.tool, "args": w.args})
                sent.append(w)
            ws = dict(enumerate(self.left, 1))
            while len(done) < len(ws):
                r = c.recv()
                w = ws[r["id"]]
                if self.it.settle(w, r, "pipelined call"):
                    done.append(w)
        except socket.timeout:
            self.it.issue("pipeline: no answer in %d s" % IO_TIMEOUT)
        except (OSError, EOFError):
            pass
        finally:
            c.close()
            for w in sent:
                if w not in done:
                    self.it.lost_answer(w, "pipelined call", Unanswered("", True))
            with self.it.lock:
                self.it.totals["requests"] += len(sent)
            self.left = [w for w in self.left if w not in done]


class ApprovalJob(Job):
    """rec.appr: request, then approve (resume once or twice at once), deny
    (resume: denied) or leave pending (resume: pending)."""

    def __init__(self, it, kind, resumes):
        super().__init__(it)
        self.kind = kind
        self.w = it.new_write("rec.appr")
        self.state = "request"
        self.resumes = resumes      # resumes still to answer
        self.delay = it.rnd.uniform(0, 0.3)
        self.aid = self.cp = None
        self.unexpired = False

    def name(self):
        return "%s %s (%s)" % (self.kind, self.w.marker, self.state)

    def run(self, phase):
        if phase == 0:
            time.sleep(self.delay)
        if self.state == "request":
            self.request()
        if self.state == "decide":
            self.decide()
        if self.state == "resume":
            self.resume_all()

    def request(self):
        it, w = self.it, self.w
        try:
            r = it.call(w)
        except Unanswered as e:
            it.lost_answer(w, "request", e)
            raise
        if r.get("status") == "needs_approval":
            self.aid, self.cp = r["approval_id"], r["checkpoint"]
            w.aids.append(self.aid)
            w.checkpoints[self.aid] = self.cp
            w.answers.append("request: needs_approval " + self.aid[:8])
            self.state = "resume" if self.kind == "pending" else "decide"
        elif it.settle(w, r, "request"):
            self.done = True

    def decide(self):
        it, w = self.it, self.w
        if self.kind == "approve":
            w.approve_sent.add(self.aid)
        rc = it.ctl(self.kind, self.aid)
        if rc == 0:
            state = "approved" if self.kind == "approve" else "denied"
        else:
            # The daemon died, or decided before it died and the answer was
            # lost, or the approval expired (a clock step): ask the gate.
            state = it.wait_state(self.aid)
            if state == "pending":
                raise Unanswered("not decided yet")
        w.answers.append("%s: %s" % (self.kind, state))
        if state == "approved":
            if self.kind != "approve":
                it.issue("%s: approved, but the harness only denied it" % w.marker)
            w.approved.add(self.aid)
        self.state = "resume"

    def resume_all(self):
        out = [None] * self.resumes
        threads = [threading.Thread(target=self.one_resume, args=(out, i))
                   for i in range(self.resumes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.resumes = out.count(None)
        self.done = self.resumes == 0
        if self.unexpired:
            # Decide again (next round), as an agent told "pending" would.
            self.unexpired = False
            self.state = "decide"
            with self.it.lock:
                self.it.totals["unexpired"] += 1

    def one_resume(self, out, i):
        it, w = self.it, self.w
        try:
            r = it.resume(self.cp)
        except Unanswered as e:
            it.lost_answer(w, "resume", e)
            return
        st, why = r.get("status"), r.get("stop_reason")
        if CLOCK and st == "pending" and self.kind != "pending":
            # The approval expired when the clock stepped forward (the
            # decision was refused) and is pending again now that it
            # stepped back.
            w.answers.append("resume: pending again")
            self.unexpired = True
            return
        expect = {"approve": ("ok",), "deny": ("denied",), "pending": ("pending",)}[self.kind]
        if st in ("ok",) or in_doubt_answer(r):
            it.settle(w, r, "resume")
            if self.kind != "approve":
                it.issue("%s: a %s approval resumed: %s" % (w.marker, self.kind, describe(r)))
        elif st == "error" and r.get("error") in ("unavailable", "internal"):
            w.answers.append("resume: " + describe(r))
            return
        else:
            w.answers.append("resume: " + describe(r))
            # A clock step may expire a pending approval or sweep a record.
            clocked = CLOCK and why in ("approval_expired", "bad_checkpoint_signature")
            if st not in expect and not clocked:
                it.issue("%s (%s) resume: unexpected %s: %s (%s)" %
                         (w.marker, self.kind, describe(r), r.get("message"),
                          "; ".join(w.answers)))
            if self.kind == "deny" and why != "approval_denied" and not clocked:
                it.issue("%s: denied approval resumed as %s" % (w.marker, describe(r)))
        out[i] = r


class ReadJob(Job):
    def __init__(self, it, q):
        super().__init__(it)
        self.q = q
        self.delay = it.rnd.uniform(0, 0.3)

    def name(self):
        return "read " + self.q

    def run(self, phase):
        if phase == 0:
            time.sleep(self.delay)
        r = self.it.request({"op": "call", "run_id": self.it.run_id(),
                             "tool": "echo", "args": {"q": self.q}})
        # Refused while its executor is gone (a kill): asked again, as a
        # write would be.
        if r.get("status") == "error" and r.get("error") == "unavailable":
            return
        if r.get("status") != "ok" or r["result"].get("args") != {"q": self.q}:
            self.it.issue("read %s: %s" % (self.q, r))
        with self.it.lock:
            self.it.totals["reads"] += 1
        self.done = True


def main():
    if not IS_ROOT:
        print("faults: SKIP: needs root (the daemon pair separates privileges)")
        return 0
    if BREAK not in ("", "approval", "ledger", "effects"):
        print("faults: FAULT_BREAK is approval, ledger or effects")
        return 2
    if KILL not in ("", "gatewayd", "executor"):
        print("faults: FAULT_KILL is gatewayd or executor")
        return 2
    if CLOCK and SAN:
        print("faults: FAULT_CLOCK=1 needs the normal build (LD_PRELOAD and ASan do not mix)")
        return 2
    if CLOCK and not os.path.exists(FAKETIME_LIB):
        print("faults: FAULT_CLOCK=1 needs %s (Debian package libfaketime)" % FAKETIME_LIB)
        return 2
    if PG and (CLOCK or BREAK == "ledger"):
        print("faults: FAULT_PG=1 is not for FAULT_CLOCK or FAULT_BREAK=ledger")
        return 2
    global PG_SERVER
    if PG:
        from tglib.pg import Postgres
        PG_SERVER = Postgres(name="tg-fault-pg").start()
    try:
        return run_all()
    finally:
        if PG_SERVER is not None:
            PG_SERVER.cleanup()


def run_all():
    become_subreaper()
    names = ("iterations writes acknowledged side_effects doubled lost unapproved "
             "in_doubt unsettled foreign reads requests unanswered unexpired kill_gatewayd kill_executor "
             "clock_steps audit_seq_back issues kept").split()
    totals = dict.fromkeys(names, 0)
    iters = [int(ONLY)] if ONLY is not None else range(ITERS)
    t0 = time.time()
    print("faults: seed %d, %d iterations%s%s" %
          (SEED, len(iters), ", clock steps +-2h" if CLOCK else "",
           ", two hosts on PostgreSQL" if PG else ""), flush=True)
    for n in iters:
        try:
            Iteration(n, totals).run()
        except Exception:
            print("faults: iteration %d (FAULT_SEED=%d FAULT_ONLY=%d) failed:" % (n, SEED, n))
            raise
        totals["iterations"] += 1
        if totals["iterations"] % 50 == 0:
            print("faults: %d iterations, %.0f s" % (totals["iterations"], time.time() - t0),
                  flush=True)
    print("faults: seed %d clock %d " % (SEED, CLOCK) +
          " ".join("%s %d" % (k, totals[k]) for k in
                   ("unsettled", "foreign", "reads", "requests", "unanswered",
                    "kill_gatewayd", "kill_executor", "clock_steps", "unexpired",
                    "audit_seq_back", "issues")) +
          " wall %.0fs" % (time.time() - t0))
    print("faults: " + " ".join("%s %d" % (k, totals[k]) for k in
                                ("iterations", "writes", "acknowledged", "side_effects",
                                 "doubled", "lost", "unapproved", "in_doubt")), flush=True)
    bad = totals["doubled"] + totals["lost"] + totals["unapproved"] + totals["foreign"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
