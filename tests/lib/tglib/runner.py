"""Running a test script: @test registers a function, main() runs them
and prints one "PASS: name", "FAIL: name" or "SKIP: name: why" each
(tests/run counts those lines)."""
import os
import sys
import time
import traceback

from .env import Skip


_tests = []


def test(fn):
    _tests.append(fn)
    return fn


def main():
    failed = 0
    only = sys.argv[1:]
    for fn in _tests:
        if only and fn.__name__ not in only:
            continue
        name = "%s.%s" % (os.path.basename(sys.argv[0]).replace(".py", ""), fn.__name__)
        t0 = time.time()
        try:
            fn()
        except Skip as e:
            print("SKIP: %s: %s" % (name, e), flush=True)
            continue
        except Exception:
            failed += 1
            traceback.print_exc()
            print("FAIL: %s" % name, flush=True)
            continue
        print("PASS: %s (%.1fs)" % (name, time.time() - t0), flush=True)
    sys.exit(1 if failed else 0)
