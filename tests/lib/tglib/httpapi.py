"""A local HTTP(S) API for the tests: tests/tools/https-server in a temp
dir of its own (its own CA), stopped at exit, or tests/tools/h2-server
(HTTP/2 only, node's http2) on certificates https-server made; and one
HTTP request over a Unix socket (gatewayd's metrics endpoint)."""
import json
import os
import shutil
import socket
import subprocess
import tempfile

from .env import ROOT, need_node

SERVER = os.path.join(ROOT, "tests", "tools", "https-server")
H2_SERVER = os.path.join(ROOT, "tests", "tools", "h2-server")


class Api:
    """One https-server in its own dir (its own CA), stopped at exit."""

    def __init__(self, *extra, h2=False):
        node = need_node(()) if h2 else None
        self.dir = tempfile.mkdtemp(prefix="tg-https-")
        argv = ["/usr/bin/python3", SERVER, self.dir] + list(extra)
        if h2:
            subprocess.run(argv + ["--certs-only"], check=True)
            argv = [node, H2_SERVER, self.dir]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        assert line.startswith("PORT "), line
        self.port = int(line.split()[1])
        self.ca = os.path.join(self.dir, "ca.pem")
        self.scheme = "http" if "--plain" in extra else "https"

    def url(self, path, host="localhost"):
        return "%s://%s:%d%s" % (self.scheme, host, self.port, path)

    def requests(self):
        with open(os.path.join(self.dir, "requests.log")) as f:
            return [json.loads(x) for x in f if x.strip()]

    def tls_failures(self):
        try:
            with open(os.path.join(self.dir, "tls.log")) as f:
                return [x for x in f if x.strip()]
        except FileNotFoundError:
            return []

    def close(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def http_tool(api, path, mode="read", ca=None, **kw):
    """A catalog entry of the http backend for api's path; method, headers
    and idempotent_upstream go in http:, the rest beside it."""
    h = {"url": api.url(path)}
    if api.scheme == "https":
        h["ca_file"] = ca or api.ca
    for k in ("method", "headers", "idempotent_upstream"):
        if k in kw:
            h[k] = kw.pop(k)
    return dict({"mode": mode, "http": h}, **kw)


def set_credential(d, tool_name, value, tenant="acme", env="prod"):
    """The scoped credential of tool_name for tenant/env in d's dir."""
    p = os.path.join(d.creds, tenant, env)
    os.makedirs(p, exist_ok=True)
    with open(os.path.join(p, tool_name), "w") as f:
        f.write(value)


def http_unix(path, request):
    """Send request (the whole HTTP/1.0 text) to the Unix socket path;
    the status code and the body, read to the server's close."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(request.encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()
