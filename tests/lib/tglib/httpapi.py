"""A local HTTP(S) API for the tests: tests/tools/https-server in a temp
dir of its own (its own CA), stopped at exit; and one HTTP request over a
Unix socket (gatewayd's metrics endpoint)."""
import json
import os
import shutil
import socket
import subprocess
import tempfile

from .env import ROOT

SERVER = os.path.join(ROOT, "tests", "tools", "https-server")


class Api:
    """One https-server in its own dir (its own CA), stopped at exit."""

    def __init__(self, *extra):
        self.dir = tempfile.mkdtemp(prefix="tg-https-")
        self.proc = subprocess.Popen(["/usr/bin/python3", SERVER, self.dir] + list(extra),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
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
