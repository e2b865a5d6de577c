"""The regression test harness, one module per concern:

  env         paths of the build and the tools, the agents' ids, Skip, a
              missing real peer (missing_peer, need_node)
  proto       the socketpair protocol as the tests learn it
  wire        frames: the one writer and the one reader
  config      configs and the contract's args hash
  client      an agent's connection (Client) and the control socket
  daemon      the daemon pair in a temp dir, gatewayctl, the audit log
  link        the test as gatewayd: the executor alone (ExecutorLink)
  procs       waiting, pids, process groups
  checkpoint  checkpoints split, joined and signed
  approvals   a write that needs approval, a refused resume
  httpapi     a local HTTP(S) API (tests/tools/https-server, or the
              HTTP/2 one, tests/tools/h2-server), http catalog entries
              and credentials, and one HTTP request over a Unix socket
              (http_unix)
  mcpserver   tests/tools/mcp-server behind the gate: its files, its config
  runner      @test and main()

tests/lib/tg.py gathers them, so scripts say `from tg import *`.
"""
