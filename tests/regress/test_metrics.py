"""Metrics (CONTRACT.md, "Metrics"; PROTOCOL.md, "Metrics"): the real pair
with metrics.listen on 127.0.0.1 and on unix:, scraped over real HTTP;
`promtool check metrics` accepts what it serves; the counters move as
reads, writes, replays, denials, stops, tool failures, timeouts and
retryable failures happen; histograms have their buckets, sum and count;
finished runs (stopped, or forgotten after runs.idle_s) fill the run
histograms; a stopped executor costs a scrape only its families
(toolgate_executor_up 0); a real Prometheus scrapes the endpoint and its
query API sees the values; the example alert rules pass `promtool check
rules` and their `promtool test rules` unit tests; malformed, huge, slow
and wrong requests get 4xx or a close and cost nothing else.

Without prometheus and promtool (Debian's prometheus package, `make deps`)
the tests that need them print SKIP, and fail under CI=true."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

EXAMPLES = os.path.join(ROOT, "examples", "prometheus")
NO_BUDGET = {"max_steps_per_run": 0, "max_writes_per_run": 0, "repeat_limit": 0}


def need_prom(*names):
    """The programs' paths, or SKIP (a failure under CI=true)."""
    paths = [shutil.which(n) for n in names]
    missing = [n for n, p in zip(names, paths) if p is None]
    if missing:
        missing_peer("%s not installed (Debian package prometheus; make deps)"
                     % ", ".join(missing))
    return paths


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class MetricsDaemon(Daemon):
    """The pair with metrics.listen set to listen (a port on 127.0.0.1
    when None)."""

    def __init__(self, conf, listen=None, name="tg-metrics"):
        self.port = None
        if listen is None:
            self.port = free_port()
            listen = "127.0.0.1:%d" % self.port
        conf = dict(conf, metrics={"listen": listen})
        Daemon.__init__(self, conf, name=name)
        self.listen = listen

    def scrape(self, path="/metrics"):
        if self.listen.startswith("unix:"):
            code, body = http_unix(self.listen[5:], "GET %s HTTP/1.0\r\n\r\n" % path)
            assert code == 200, (code, body)
            return body
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path),
                                    timeout=10) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), \
                r.headers["Content-Type"]
            return r.read().decode()

    def metrics(self):
        return parse(self.scrape())


def parse(text):
    """{(name, ((label, value), ...)): value}; label values unescaped
    (ours never hold an escape)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        if "{" in series:
            name, labels = series[:-1].split("{", 1)
            pairs = []
            for part in split_labels(labels):
                k, v = part.split("=", 1)
                pairs.append((k, v[1:-1]))
            key = (name, tuple(sorted(pairs)))
        else:
            key = (series, ())
        assert key not in out, "series twice: %s" % line
        out[key] = float(value)
    return out


def split_labels(s):
    parts, cur, quoted = [], "", False
    for ch in s:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


def val(m, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    assert key in m, "no series %s %s" % (name, labels)
    return m[key]


def promtool_check(text):
    promtool, = need_prom("promtool")
    p = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    # Lint findings (not errors) print but exit 0 on promtool 2.42: any
    # output at all is a finding we want to see fixed.
    assert p.returncode == 0 and p.stdout.strip() == b"", p.stdout.decode()


def main_conf(api=None, **over):
    effects_dir = tempfile.mkdtemp(prefix="tg-metrics-fx-")
    os.chmod(effects_dir, 0o755)
    tools = {
        "rec": {"mode": "write", "exec": [tool("record"), os.path.join(effects_dir, "fx")]},
        "w.killed": {"mode": "write", "exec": [tool("killed")]},
    }
    if api is not None:
        tools["api.flaky"] = {"mode": "read", "http": {"url": api.url("/mode/flaky")}}
    over.setdefault("budgets", NO_BUDGET)
    return writes_config(tools, **over)


@test
def counters_move_as_calls_happen_and_promtool_accepts_them():
    need_root()
    with Api("--plain") as api:
        with open(os.path.join(api.dir, "mode.flaky"), "w") as f:
            f.write("503")
        with MetricsDaemon(main_conf(api)) as d:
            m0 = d.metrics()
            promtool_check(d.scrape())
            assert val(m0, "toolgate_executor_up") == 1
            assert val(m0, "toolgate_writes_enabled") == 1
            assert val(m0, "toolgate_calls_total", tool="echo", mode="read",
                       decision="ok") == 0
            c = d.client()
            # Reads: two ok, one failed, one timeout, one retryable (503).
            assert c.call("echo", {"a": 1}, run_id="r1")["status"] == "ok"
            assert c.call("echo", {"a": 2}, run_id="r1")["status"] == "ok"
            assert c.call("fail", {}, run_id="r1")["status"] == "error"
            assert c.call("sleep", {}, run_id="r1")["error"] == "tool_timeout"
            r = c.call("api.flaky", {}, run_id="r1")
            assert r["status"] == "error" and r.get("retryable") is True, r
            # A tool nobody configured: counted under (other), never its name.
            r = c.call("no.such.tool.xyz", {}, run_id="r1")
            assert r["status"] == "denied" and r["stop_reason"] == "not_allowed", r
            # Writes: one ok, its replay from another run, a duplicate in
            # the same run (a stop), and one killed by a signal (in doubt).
            assert c.call("rec", {"n": 1}, run_id="w1")["status"] == "ok"
            r = c.call("rec", {"n": 1}, run_id="w2")
            assert r["status"] == "ok" and r["replayed"] is True, r
            r = c.call("rec", {"n": 1}, run_id="w2")
            assert r["status"] == "stopped" and r["stop_reason"] == "duplicate_write", r
            r = c.call("w.killed", {}, run_id="w3")
            assert r["status"] == "error", r

            text = d.scrape()
            promtool_check(text)
            assert "no.such.tool.xyz" not in text
            m = parse(text)
            calls = lambda t, mode, dec: val(m, "toolgate_calls_total", tool=t,  # noqa: E731
                                              mode=mode, decision=dec)
            assert calls("echo", "read", "ok") == 2
            assert calls("fail", "read", "error") == 1
            assert calls("sleep", "read", "error") == 1
            assert calls("api.flaky", "read", "error") == 1
            assert calls("(other)", "(other)", "denied") == 1
            assert calls("rec", "write", "ok") == 2
            assert calls("rec", "write", "stopped") == 1
            assert calls("w.killed", "write", "error") == 1
            oc = lambda t, cl: val(m, "toolgate_tool_outcomes_total", tool=t, **{"class": cl})  # noqa: E731,E501
            assert oc("echo", "ok") == 2
            assert oc("fail", "failed") == 1
            assert oc("sleep", "timeout") == 1
            assert oc("api.flaky", "retryable") == 1
            assert oc("rec", "ok") == 1       # the replay did not run it
            wr = lambda t, o: val(m, "toolgate_writes_total", tool=t, outcome=o)  # noqa: E731
            assert wr("rec", "ok") == 1
            assert wr("rec", "replayed") == 1
            assert wr("w.killed", "in_doubt") == 1
            assert wr("rec", "failed") == 0
            assert val(m, "toolgate_stops_total", reason="not_allowed") == 1
            assert val(m, "toolgate_stops_total", reason="duplicate_write") == 1
            assert val(m, "toolgate_runs_stopped_total", reason="duplicate_write") == 1
            # Histograms: cumulative buckets ending in +Inf = count.
            n_calls = 10
            assert val(m, "toolgate_decision_seconds_count") == n_calls
            assert val(m, "toolgate_decision_seconds_bucket", le="+Inf") == n_calls
            assert val(m, "toolgate_decision_seconds_sum") > 0
            assert val(m, "toolgate_tool_seconds_count", tool="sleep") == 1
            assert val(m, "toolgate_tool_seconds_sum", tool="sleep") >= 0.4
            assert val(m, "toolgate_tool_seconds_bucket", tool="sleep", le="0.25") == 0
            assert val(m, "toolgate_tool_seconds_bucket", tool="sleep", le="+Inf") == 1
            b = sorted((float(dict(k[1])["le"]), v) for k, v in m.items()
                       if k[0] == "toolgate_decision_seconds_bucket")
            assert all(b[i][1] <= b[i + 1][1] for i in range(len(b) - 1)), b
            # The stopped run w2 is finished: 2 calls in it.
            assert val(m, "toolgate_run_calls_count") == 1
            assert val(m, "toolgate_run_calls_sum") == 2
            # The agents were served all along, and still are.
            assert c.call("echo", {"a": 3}, run_id="r9")["status"] == "ok"


@test
def kill_switch_pending_approvals_and_tokens_per_run():
    need_root()
    effects = tempfile.mktemp(prefix="tg-metrics-appr-")
    conf = approvals_config(effects, require=("rec",))
    conf["budgets"] = {"max_tokens_per_run": 1000}
    with MetricsDaemon(conf) as d:
        c = d.client()
        r = c.call("rec", {"n": 1}, run_id="a1")
        assert r["status"] == "needs_approval", r
        m = d.metrics()
        assert val(m, "toolgate_pending_approvals") == 1
        assert val(m, "toolgate_oldest_pending_approval_seconds") >= 0
        assert val(m, "toolgate_calls_total", tool="rec", mode="write",
                   decision="needs_approval") == 1
        # Tokens per run: a run that passes its budget is stopped, finished.
        assert c.rpc({"op": "usage", "run_id": "t1", "tokens": 600})["status"] == "ok"
        r = c.rpc({"op": "usage", "run_id": "t1", "tokens": 500})
        assert r["status"] == "stopped" and r["stop_reason"] == "budget_exceeded", r
        m = d.metrics()
        assert val(m, "toolgate_run_tokens_count") == 1
        assert val(m, "toolgate_run_tokens_sum") == 1100
        assert val(m, "toolgate_run_tokens_bucket", le="1000") == 0
        assert val(m, "toolgate_run_tokens_bucket", le="5000") == 1
        assert val(m, "toolgate_runs_stopped_total", reason="budget_exceeded") == 1
        # The kill switch: SIGUSR1 to gatewayd turns the gauge off.
        assert val(m, "toolgate_writes_enabled") == 1
        d.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: val(d.metrics(), "toolgate_writes_enabled") == 0,
                 what="writes_enabled 0 after SIGUSR1")
        if os.path.exists(effects):
            os.unlink(effects)


@test
def idle_runs_are_finished_when_forgotten():
    need_root()
    conf = base_config(runs={"idle_s": 1}, budgets=NO_BUDGET)
    with MetricsDaemon(conf) as d:
        c = d.client()
        for i in range(3):
            assert c.call("echo", {"i": i}, run_id="idle-1")["status"] == "ok"
        assert val(d.metrics(), "toolgate_runs") == 1
        wait_for(lambda: val(d.metrics(), "toolgate_run_calls_count") == 1,
                 timeout=15, what="the idle run forgotten and counted")
        m = d.metrics()
        assert val(m, "toolgate_run_calls_sum") == 3
        assert val(m, "toolgate_runs") == 0


@test
def unix_socket_scrape_and_wrong_paths_and_methods():
    need_root()
    tmp = tempfile.mkdtemp(prefix="tg-msock-")
    path = os.path.join(tmp, "metrics.sock")
    try:
        with MetricsDaemon(base_config(), listen="unix:" + path) as d:
            assert oct(os.stat(path).st_mode & 0o777) == "0o666"
            c = d.client()
            assert c.call("echo", {}, run_id="u1")["status"] == "ok"
            text = d.scrape()
            promtool_check(text)
            m = parse(text)
            assert val(m, "toolgate_calls_total", tool="echo", mode="read",
                       decision="ok") == 1
            assert val(m, "toolgate_executor_up") == 1
            code, _ = http_unix(path, "GET /other HTTP/1.0\r\n\r\n")
            assert code == 404, code
            code, _ = http_unix(path, "GET / HTTP/1.0\r\n\r\n")
            assert code == 404, code
            for method in ("POST", "PUT", "DELETE", "HEAD"):
                code, _ = http_unix(path, "%s /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n"
                                    % method)
                assert code == 405, (method, code)
            assert c.call("echo", {}, run_id="u1")["status"] == "ok"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test
def ipv6_loopback_scrape():
    need_root()
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        port = s.getsockname()[1]
        s.close()
    except OSError as e:
        raise Skip("no IPv6 loopback here: %s" % e)
    with MetricsDaemon(base_config(), listen="[::1]:%d" % port) as d:
        assert d.client().call("echo", {}, run_id="v6")["status"] == "ok"
        with urllib.request.urlopen("http://[::1]:%d/metrics" % port, timeout=10) as r:
            text = r.read().decode()
        promtool_check(text)
        assert val(parse(text), "toolgate_calls_total", tool="echo", mode="read",
                   decision="ok") == 1
        # Not on the IPv4 loopback: only the address asked for.
        with socket.socket() as s4:
            assert s4.connect_ex(("127.0.0.1", port)) != 0


@test
def a_stopped_executor_costs_the_scrape_only_its_families():
    need_root()
    with MetricsDaemon(base_config()) as d:
        pid = d.executor_pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            text = d.scrape()
        finally:
            os.kill(pid, signal.SIGCONT)
        promtool_check(text)
        m = parse(text)
        assert val(m, "toolgate_executor_up") == 0
        assert ("toolgate_calls_total", (("decision", "ok"), ("mode", "read"),
                                         ("tool", "echo"))) in m
        assert not any(k[0] == "toolgate_tool_outcomes_total" for k in m)
        # Its late answer is dropped; the next scrape has it all again.
        assert val(d.metrics(), "toolgate_executor_up") == 1
        assert d.client().call("echo", {}, run_id="s1")["status"] == "ok"


def raw_tcp(port, data, timeout=10):
    """Send data, read until the server closes: (status code or None, bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
    except OSError:
        pass
    got = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    code = int(got.split()[1]) if got.startswith(b"HTTP/1.") else None
    return code, got


@test
def malformed_requests_get_400_or_a_close_and_cost_nothing_else():
    need_root()
    with MetricsDaemon(base_config()) as d:
        c = d.client()
        assert c.call("echo", {}, run_id="m1")["status"] == "ok"
        code, got = raw_tcp(d.port, b"\x00\x01garbage\xff\r\n\r\n")
        assert code == 400, got
        # A method HTTP does not know: 501, as RFC 9110 says (libevent's).
        code, got = raw_tcp(d.port, b"FROB /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert code == 501, got
        code, got = raw_tcp(d.port, b"GET /metrics HTTP/9.9\r\n\r\n")
        assert code == 400, got
        code, got = raw_tcp(d.port, b"GET\r\n\r\n")
        assert code == 400, got
        # Headers past the bound: refused, not buffered without end.
        big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
        code, got = raw_tcp(d.port, big)
        assert code == 400, got[:200]
        # A body on a GET past the bound.
        code, got = raw_tcp(d.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                            b"Content-Length: 100000\r\n\r\n" + b"b" * 4096)
        assert code == 413, got[:200]
        # Slowloris: a request never finished is closed by the server.
        slow = socket.create_connection(("127.0.0.1", d.port), timeout=60)
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        t0 = time.time()
        # Meanwhile agents and other scrapes are served.
        assert c.call("echo", {}, run_id="m1")["status"] == "ok"
        assert val(d.metrics(), "toolgate_executor_up") == 1
        slow.settimeout(60)
        try:
            rest = slow.recv(65536)
            while rest and not rest.endswith(b"\r\n\r\n") and b"\r\n\r\n" not in rest:
                rest += slow.recv(65536)
        except (ConnectionResetError, socket.timeout):
            rest = b""
        assert time.time() - t0 < 60
        assert rest == b"" or rest.startswith(b"HTTP/1.1 4") or rest.startswith(b"HTTP/1.1 5"), rest
        slow.close()
        # More connections than the cap: the extra wait, nothing breaks;
        # closing them lets the endpoint serve again.
        hold = [socket.create_connection(("127.0.0.1", d.port), timeout=10)
                for _ in range(40)]
        for s in hold:
            s.close()
        wait_for(lambda: d.scrape() is not None, timeout=30, what="scrape after the burst")
        m = d.metrics()
        assert val(m, "toolgate_calls_total", tool="echo", mode="read", decision="ok") == 2
        assert c.call("echo", {}, run_id="m1")["status"] == "ok"
        assert d.proc.poll() is None


@test
def a_real_prometheus_scrapes_it():
    need_root()
    prometheus, = need_prom("prometheus")
    with MetricsDaemon(base_config()) as d:
        c = d.client()
        for i in range(3):
            assert c.call("echo", {"i": i}, run_id="p1")["status"] == "ok"
        ppath = tempfile.mkdtemp(prefix="tg-prom-")
        pport = free_port()
        cfg = os.path.join(ppath, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: toolgate\n"
                    "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % d.port)
        log = open(os.path.join(ppath, "prometheus.log"), "wb")
        p = subprocess.Popen([prometheus, "--config.file=" + cfg,
                              "--storage.tsdb.path=" + os.path.join(ppath, "data"),
                              "--web.listen-address=127.0.0.1:%d" % pport],
                             stdout=log, stderr=log, start_new_session=True)
        try:
            def query(q):
                u = "http://127.0.0.1:%d/api/v1/query?%s" % (
                    pport, urllib.parse.urlencode({"query": q}))
                try:
                    with urllib.request.urlopen(u, timeout=5) as r:
                        return json.loads(r.read())
                except (urllib.error.URLError, ConnectionError):
                    return None

            def echo_ok():
                r = query('toolgate_calls_total{tool="echo",decision="ok"}')
                if not r or r["status"] != "success" or not r["data"]["result"]:
                    return None
                return float(r["data"]["result"][0]["value"][1])

            wait_for(lambda: echo_ok() == 3, timeout=60,
                     what="Prometheus to see 3 echo calls")
            r = query('up{job="toolgate"}')
            assert r["data"]["result"][0]["value"][1] == "1", r
            r = query("toolgate_executor_up")
            assert r["data"]["result"][0]["value"][1] == "1", r
            assert c.call("echo", {"i": 9}, run_id="p1")["status"] == "ok"
            wait_for(lambda: echo_ok() == 4, timeout=60,
                     what="Prometheus to see the 4th call")
            r = query("histogram_quantile(0.5, rate(toolgate_decision_seconds_bucket[1m]))")
            assert r["status"] == "success", r
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            log.close()
            shutil.rmtree(ppath, ignore_errors=True)


@test
def example_alert_rules_check_and_fire_in_promtool_tests():
    promtool, = need_prom("promtool")
    rules = os.path.join(EXAMPLES, "toolgate.rules.yml")
    p = subprocess.run([promtool, "check", "rules", rules], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, p.stdout.decode()
    p = subprocess.run([promtool, "check", "config",
                        os.path.join(EXAMPLES, "prometheus.yml")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                       cwd=EXAMPLES)
    assert p.returncode == 0, p.stdout.decode()
    p = subprocess.run([promtool, "test", "rules", "toolgate.test.yml"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                       cwd=EXAMPLES)
    assert p.returncode == 0, p.stdout.decode()
    # Every alert of the rules has a test that makes it fire.
    with open(rules) as f:
        alerts = set(re.findall(r"^\s*- alert: (\S+)", f.read(), re.M))
    with open(os.path.join(EXAMPLES, "toolgate.test.yml")) as f:
        # A test that expects it firing: alertname, then alerts listed.
        tested = set(re.findall(r"alertname: (\S+)\n\s*exp_alerts:\n\s*- exp_labels",
                                f.read()))
    assert len(alerts) >= 6 and alerts <= tested, (alerts, tested)


if __name__ == "__main__":
    main()
