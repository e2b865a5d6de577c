/*
 * The answer module: what the executor answers a call, as a value.
 *
 * A struct response is built once by whoever decides the answer (the
 * read path, the write path, the approval handlers, the checks) and
 * packed where it goes: once for the ledger (response_pack, a write's
 * outcome, replayed byte for byte later) and once for the wire
 * (answer()).  A response read back from the ledger is answered as
 * stored (answer_stored): its map is copied, not rebuilt.
 *
 * Everything the executor sends to gatewayd goes out through gw_send()
 * (gwout.c).
 */
#ifndef TG_RESPONSE_H
#define TG_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

struct call;
struct msgbuf;

/*
 * The fields of a response map, in the order they are packed; NULL (or
 * 0 for the flags) leaves a field out.
 */
struct response {
	const char	*status;	/* ST_OK, ST_DENIED, ST_STOPPED, ... */
	const char	*reason;	/* "error" when status is error, else
					   "stop_reason" */
	const char	*state;		/* an approval's, for WAIT */
	const char	*approval_id;
	const char	*checkpoint;
	const char	*result;	/* msgpack bytes, appended as they are */
	size_t		 resultlen;
	const char	*args_hash;
	int		 has_expires_at;
	uint64_t	 expires_at;
	const char	*idempotency_key;
	const char	*message;
	/* error/tool_failed: a later try may work (http 429, 5xx) */
	int		 retryable;
	uint64_t	 retry_after_ms;	/* 0: not given */
};

/* A response map alone (a write's outcome, for the ledger). */
char	*response_pack(const struct response *, size_t *len);

/*
 * Answer c with r: audited first (a write's answer synced), then sent.
 * A write's callers also learn whether the answer is a replay.  A
 * refusal that stops a run stops it for us too.
 */
void	answer(struct call *c, const struct response *r, int replayed);
/*
 * Write the audit record answer(c, r, replayed) would, now: it reaches
 * the disk with what is synced next, and answer() later writes none.
 */
void	answer_preaudit(struct call *c, const struct response *r,
	    int replayed);
/* Answer with a refusal: denied/stopped carry stop_reason, error error. */
void	answer_refuse(struct call *, const char *status, const char *reason,
	    const char *message);
/* The same, saying when to try again (rate_limited, circuit_open). */
void	answer_refuse_retry(struct call *, const char *status,
	    const char *reason, const char *message, uint64_t retry_after_ms);
/* Answer a tool's failure: error/tool_failed, retryable when it says so. */
struct tool_outcome;
void	answer_failed(struct call *, const struct tool_outcome *);
/* Answer with a response map the ledger holds (packed msgpack). */
void	answer_stored(struct call *, const char *resp, size_t resplen,
	    int replayed);
/* Answer error/unavailable, unrecorded: the connection has no socket here. */
void	answer_unavailable(uint64_t id, uint32_t ans_type, const char *message);
/* Answer a request that names no call (WAIT): sent, not audited. */
void	answer_plain(uint32_t ans_type, uint64_t id, const struct response *);

/*
 * gwout.c: send a finished socketpair message to gatewayd (dropped if it
 * is gone).  While audit records wait for the turn's write, it waits
 * behind them; guarded, alt goes instead should that write fail.
 */
void	gw_send(struct msgbuf *);
void	gw_send_guarded(struct msgbuf *, struct msgbuf *alt);
/* audit.c: its queue was written (1) or not (0); what waits goes. */
void	gw_release(int written);
/* Shutting down: gatewayd's socket closes, what was for it is dropped. */
void	gw_close(void);
void	gw_shutdown(void);

#endif
