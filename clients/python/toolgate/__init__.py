"""toolgate: a client for the toolgate agent socket.

    import toolgate

    with toolgate.Gateway("/run/toolgate/agent.sock", run_id="run-1") as gw:
        for t in gw.tools():
            print(t.name, t.mode)
        print(gw.call("kb.read", {"q": "vpn"}).result)
        try:
            gw.call_with_approval("ticket.close", {"ticket_id": "T-1"}, timeout_s=600)
        except toolgate.Denied as e:       # NotAllowed, WritesDisabled, ...
            print("refused:", e.stop_reason, e.message)
        except toolgate.Stopped as e:      # LoopDetected, BudgetExceeded, ...
            print("run over:", e.stop_reason)

Needs only msgpack (Debian: python3-msgpack).  The protocol is
CONTRACT.md's "Agent socket"; see clients/python/README.md.
"""
from .approvals import wait_and_resume
from .errors import (AnswerTimeout, ApprovalDenied, ApprovalExpired, ApprovalRequired,
                     ApprovalTimeout, BadCheckpointSignature, BadFrame, BadRequest,
                     BudgetExceeded, CircuitOpen, ConnectionClosed, Denied, DuplicateWrite,
                     FrameTooLarge, Internal, InvalidToolOutput, LoopDetected,
                     MalformedAnswer, NeedsApproval, NotAllowed, Pending, ProtocolError,
                     RateLimited, Stopped, ToolChanged, ToolError, ToolFailed, ToolTimeout,
                     ToolgateError, Unavailable, UnknownPrincipal, WritesDisabled, error_for)
from .gateway import DEFAULT_SOCKET, Gateway, Hello, Result, Tool

__all__ = [
    "Gateway", "Hello", "Result", "Tool", "DEFAULT_SOCKET", "wait_and_resume", "error_for",
    "ToolgateError",
    "Denied", "NotAllowed", "UnknownPrincipal", "WritesDisabled", "ApprovalDenied",
    "ApprovalExpired", "BadCheckpointSignature", "RateLimited", "CircuitOpen", "ToolChanged",
    "Stopped", "DuplicateWrite", "LoopDetected", "BudgetExceeded", "InvalidToolOutput",
    "NeedsApproval", "ApprovalRequired", "Pending", "ApprovalTimeout",
    "ToolError", "BadRequest", "ToolFailed", "ToolTimeout", "Unavailable", "Internal",
    "BadFrame", "FrameTooLarge",
    "ProtocolError", "ConnectionClosed", "MalformedAnswer", "AnswerTimeout",
]
