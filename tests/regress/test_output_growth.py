"""Tool output that grows in transit: JSON under limits.max_output can be
much larger as msgpack (a float is 4 bytes of JSON, 9 of msgpack).  Before,
such a result made a socketpair frame gatewayd took for a protocol
violation, and both processes exited; for a write the result was stored, so
every replay killed the pair again.  Limits apply to what is sent."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tg import *  # noqa: F401,F403

MAX_OUTPUT = 200000
N = 49000          # about 196,000 bytes of JSON, 441,000 of msgpack


def growth_config():
    conf = writes_config(tools={
        "floats": {"mode": "read", "exec": [tool("float-array"), str(N)]},
        "floats.write": {"mode": "write", "exec": [tool("float-array"), str(N)]},
        "few.floats": {"mode": "read", "exec": [tool("float-array"), "100"]},
    })
    conf["limits"] = {"max_output": MAX_OUTPUT, "max_frame": 65536}
    return conf


def assert_too_large(r):
    assert r["status"] == "stopped" and r["stop_reason"] == "invalid_tool_output", r
    assert "max_output" in r["message"], r


@test
def a_read_whose_result_grows_is_refused_and_the_pair_lives():
    with Daemon(growth_config(), name="tg-grow") as d:
        c = d.client()
        assert_too_large(c.call("floats", {}, run_id="r1"))
        r = d.client().call("few.floats", {}, run_id="r2")
        assert r["status"] == "ok" and len(r["result"]) == 100, r


@test
def a_write_whose_result_grows_replays_its_stop_and_the_pair_lives():
    with Daemon(growth_config(), name="tg-grow") as d:
        assert_too_large(d.client().call("floats.write", {"k": 1}, run_id="w1"))
        # The stored outcome replays, as often as asked, and kills nothing.
        for run in ("w2", "w3"):
            r = d.client().call("floats.write", {"k": 1}, run_id=run)
            assert r["status"] == "stopped" and r["stop_reason"] == "invalid_tool_output", r
        assert d.client().call("few.floats", {}, run_id="r3")["status"] == "ok"


@test
def a_stored_result_larger_than_a_lowered_limit_kills_nothing():
    """An operator lowers limits.max_output: a result stored under the old
    limit no longer fits gatewayd's frame limit, and replaying it must not
    end the pair."""
    conf = growth_config()
    conf["catalog"]["mid.write"] = {"mode": "write",
                                    "exec": [tool("float-array"), "33000"]}
    conf["tools"]["allow"].append("mid.write")
    conf["limits"] = {"max_output": 400000, "max_frame": 65536}
    d = Daemon(conf, name="tg-grow")
    try:
        d.start()
        r = d.client().call("mid.write", {"k": 2}, run_id="m1")
        assert r["status"] == "ok" and len(r["result"]) == 33000, r["status"]
        d.stop()
        conf = dict(d.conf)
        conf["limits"] = {"max_output": 100000, "max_frame": 65536}
        reconfigure(d, conf)
        d.start()
        r = d.client().call("mid.write", {"k": 2}, run_id="m2")
        assert r["status"] == "stopped" and r["stop_reason"] == "invalid_tool_output", r
        assert d.client().call("few.floats", {}, run_id="r4")["status"] == "ok"
        d.stop()
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
