"""Every answer that is not `ok` as an exception, one class per status and
per reason, and the errors of the connection itself.

The tree (CONTRACT.md, "Responses"):

    ToolgateError
     +- Denied              status denied: this call refused, the run goes on
     |   +- NotAllowed, UnknownPrincipal, WritesDisabled, ApprovalDenied,
     |      ApprovalExpired, BadCheckpointSignature, RateLimited,
     |      CircuitOpen, ToolChanged
     +- Stopped             status stopped: the run is over, every later call
     |   |                  of it is answered the same
     |   +- DuplicateWrite, LoopDetected, BudgetExceeded, InvalidToolOutput
     +- NeedsApproval       status needs_approval (alias ApprovalRequired)
     +- Pending             status pending: resumed before anyone decided
     +- ToolError           status error
     |   +- BadRequest, ToolFailed, ToolTimeout, Unavailable, Internal
     |   +- BadFrame, FrameTooLarge       (also ProtocolError)
     +- ProtocolError       the connection itself went wrong
     |   +- ConnectionClosed, MalformedAnswer, AnswerTimeout
     +- ApprovalTimeout     the approval helper gave up waiting

A reason the client does not know, or a known reason under a status it
does not belong to, becomes the base class of its status with the reason
in `stop_reason` (or `error`), so a newer server never crashes an older
client; an unknown status becomes a plain ToolgateError.
"""


class ToolgateError(Exception):
    """Base of everything this package raises about the gate.

    Attributes: `status` (the answer's status, None for errors of the
    client or the connection), `message` (the server's sentence, or ours),
    `response` (the whole answer map, or None).
    """

    status = None

    def __init__(self, message="", response=None):
        super().__init__(message)
        self.message = message
        self.response = response

    def __str__(self):
        return self.message or self.__class__.__name__


# -- denied ------------------------------------------------------------------

class Denied(ToolgateError):
    """`denied`: this call was refused; the run may go on.

    `stop_reason` names why; `retry_after_ms` is set when the gate says
    how long to wait (rate limits, an open circuit breaker), else None.
    """

    status = "denied"
    stop_reason = None

    def __init__(self, message="", response=None, stop_reason=None):
        super().__init__(message, response)
        if stop_reason is not None:
            self.stop_reason = stop_reason
        self.retry_after_ms = (response or {}).get("retry_after_ms")

    def __str__(self):
        return "%s: %s" % (self.stop_reason or "denied", self.message)


class NotAllowed(Denied):
    """The tool is not in this principal's allowlist (or does not exist)."""
    stop_reason = "not_allowed"


class UnknownPrincipal(Denied):
    """The connecting uid/gid maps to no principal: everything is refused
    and the gate closes the connection after answering once."""
    stop_reason = "unknown_principal"


class WritesDisabled(Denied):
    """A write while writes are disabled (config, or the kill switch)."""
    stop_reason = "writes_disabled"


class ApprovalDenied(Denied):
    """An operator denied the approval; `message` carries their note."""
    stop_reason = "approval_denied"


class ApprovalExpired(Denied):
    """The approval expired undecided, or its checkpoint is too old."""
    stop_reason = "approval_expired"


class BadCheckpointSignature(Denied):
    """The checkpoint was altered, or is another tenant's or env's."""
    stop_reason = "bad_checkpoint_signature"


class RateLimited(Denied):
    """A rate limit's bucket is empty; see `retry_after_ms`."""
    stop_reason = "rate_limited"


class CircuitOpen(Denied):
    """The tool's circuit breaker is open; see `retry_after_ms`."""
    stop_reason = "circuit_open"


class ToolChanged(Denied):
    """An MCP tool's definition changed since it was pinned; nothing was
    sent until an operator accepts it (`gatewayctl tools accept`)."""
    stop_reason = "tool_changed"


# -- stopped -----------------------------------------------------------------

class Stopped(ToolgateError):
    """`stopped`: the run is stopped; every later call and usage report
    with the same run_id gets the same answer (its first reason)."""

    status = "stopped"
    stop_reason = None

    def __init__(self, message="", response=None, stop_reason=None):
        super().__init__(message, response)
        if stop_reason is not None:
            self.stop_reason = stop_reason

    def __str__(self):
        return "%s: %s" % (self.stop_reason or "stopped", self.message)


class DuplicateWrite(Stopped):
    """The same write (same args hash) a second time in one run."""
    stop_reason = "duplicate_write"


class LoopDetected(Stopped):
    """The same tool and args more than `budgets.repeat_limit` times."""
    stop_reason = "loop_detected"


class BudgetExceeded(Stopped):
    """A budget of the run (steps, writes, tokens, cost) was passed."""
    stop_reason = "budget_exceeded"


class InvalidToolOutput(Stopped):
    """The tool's output was not one JSON value, or too large."""
    stop_reason = "invalid_tool_output"


# -- approvals ---------------------------------------------------------------

class NeedsApproval(ToolgateError):
    """`needs_approval`: nothing ran; an operator must approve first.

    `approval_id` (for `wait` and the operator), `checkpoint` (for
    `resume`), `args_hash`, `expires_at` (seconds since the epoch).
    `Gateway.wait_and_resume(exc, timeout_s)` does the rest.
    """

    status = "needs_approval"
    stop_reason = "approval_required"

    def __init__(self, message="", response=None):
        super().__init__(message, response)
        r = response or {}
        self.approval_id = r.get("approval_id")
        self.checkpoint = r.get("checkpoint")
        self.args_hash = r.get("args_hash")
        self.expires_at = r.get("expires_at")

    def __str__(self):
        return "approval required (approval %s): %s" % (self.approval_id, self.message)


ApprovalRequired = NeedsApproval   # the contract's stop_reason name


class Pending(ToolgateError):
    """`pending`: a resume before the approval was decided; `approval_id`."""

    status = "pending"

    def __init__(self, message="", response=None):
        super().__init__(message, response)
        self.approval_id = (response or {}).get("approval_id")


class ApprovalTimeout(ToolgateError, TimeoutError):
    """The approval helper waited its time and nobody decided.  Nothing
    ran; `approval_id` and `checkpoint` let a caller resume later
    (`needs_approval` is the original exception)."""

    def __init__(self, message, needs_approval):
        super().__init__(message, needs_approval.response)
        self.needs_approval = needs_approval
        self.approval_id = needs_approval.approval_id
        self.checkpoint = needs_approval.checkpoint


# -- errors ------------------------------------------------------------------

class ToolError(ToolgateError):
    """`error`: a bad request, or a failure of the tool or the server.

    `error` is the contract's code (`tool_failed`, ...); `retryable` is
    True when the tool says a later try may work (an HTTP 429 or 5xx),
    with `retry_after_ms` when it said how long to wait (else None).
    """

    status = "error"
    error = None

    def __init__(self, message="", response=None, error=None):
        super().__init__(message, response)
        if error is not None:
            self.error = error
        r = response or {}
        self.retryable = r.get("retryable") is True
        self.retry_after_ms = r.get("retry_after_ms")

    def __str__(self):
        return "%s: %s" % (self.error or "error", self.message)


class BadRequest(ToolError):
    """The request was malformed (or names an approval that is not ours)."""
    error = "bad_request"


class ToolFailed(ToolError):
    """The tool ran and failed (or a write is in doubt); see `retryable`."""
    error = "tool_failed"


class ToolTimeout(ToolError):
    """The tool did not finish within its `timeout_ms`."""
    error = "tool_timeout"


class Unavailable(ToolError):
    """The gate or a backend cannot take the call now; nothing ran."""
    error = "unavailable"


class Internal(ToolError):
    """A failure inside the gate."""
    error = "internal"


# -- the connection ----------------------------------------------------------

class ProtocolError(ToolgateError):
    """The connection is unusable: the server refused a frame and closed
    it, it closed, or it sent something that is not an answer."""


class ConnectionClosed(ProtocolError):
    """The gate closed the connection (or it was never open).  `cause` is
    the exception that ended it (say FrameTooLarge) when one did."""

    cause = None


class MalformedAnswer(ProtocolError):
    """The gate sent a frame this client cannot read; the connection is
    closed, since nothing after it can be trusted."""


class AnswerTimeout(ProtocolError, TimeoutError):
    """No answer within the timeout given to the request.  The connection
    stays usable; the late answer, should it come, is dropped."""


class BadFrame(ToolError, ProtocolError):
    """`error`/`bad_frame`: the gate could not read a frame we sent (say,
    args nested deeper than it allows) and closed the connection."""
    error = "bad_frame"


class FrameTooLarge(ToolError, ProtocolError):
    """`error`/`frame_too_large`: a request over `limits.max_frame`; the
    gate closed the connection."""
    error = "frame_too_large"


# -- the mapping -------------------------------------------------------------

DENIED = {c.stop_reason: c for c in (
    NotAllowed, UnknownPrincipal, WritesDisabled, ApprovalDenied, ApprovalExpired,
    BadCheckpointSignature, RateLimited, CircuitOpen, ToolChanged)}
STOPPED = {c.stop_reason: c for c in (
    DuplicateWrite, LoopDetected, BudgetExceeded, InvalidToolOutput)}
ERRORS = {c.error: c for c in (
    BadFrame, FrameTooLarge, BadRequest, ToolFailed, ToolTimeout, Unavailable, Internal)}


def _text(v):
    return v if isinstance(v, str) else ""


def error_for(response):
    """The exception for an answer map whose status is not `ok`.

    Never raises itself: whatever the map holds, an exception comes back
    (the most specific class the status and reason allow).
    """
    if not isinstance(response, dict):
        return MalformedAnswer("the answer is not a map: %r" % (response,))
    status = response.get("status")
    msg = _text(response.get("message"))
    if status == "denied":
        reason = response.get("stop_reason")
        cls = DENIED.get(reason) if isinstance(reason, str) else None
        if cls is not None:
            return cls(msg, response)
        return Denied(msg, response, stop_reason=_text(reason) or None)
    if status == "stopped":
        reason = response.get("stop_reason")
        cls = STOPPED.get(reason) if isinstance(reason, str) else None
        if cls is not None:
            return cls(msg, response)
        return Stopped(msg, response, stop_reason=_text(reason) or None)
    if status == "needs_approval":
        return NeedsApproval(msg, response)
    if status == "pending":
        return Pending(msg, response)
    if status == "error":
        code = response.get("error")
        cls = ERRORS.get(code) if isinstance(code, str) else None
        if cls is not None:
            return cls(msg, response)
        return ToolError(msg, response, error=_text(code) or None)
    e = ToolgateError(msg or "unknown status %r" % (status,), response)
    e.status = status
    return e
