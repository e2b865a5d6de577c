/*
 * The executor's metric families (PROTOCOL.md, "Metrics"): what only it
 * sees, the tools' outcomes and latency, the writes' outcomes, pending
 * approvals and the breakers.  gatewayd, which serves /metrics, asks for
 * them on every scrape (MSG_METRICS); they come back as Prometheus text
 * (MSG_METRICS_ANS).  Calls, decisions, stops and runs are gatewayd's:
 * nothing is counted in both processes.
 */
#ifndef TG_EX_METRICS_H
#define TG_EX_METRICS_H

struct config;
struct proto_msg;
struct tool;
struct tool_outcome;

/* toolgate_writes_total's outcome label. */
enum write_outcome {
	WO_OK,			/* ran, and its outcome is done */
	WO_REPLAYED,		/* answered from the ledger, not run again */
	WO_FAILED,		/* ran, and failed: its key may run again */
	WO_IN_DOUBT,		/* ran, and may or may not have acted */
	WO_N
};

void	metrics_init(const struct config *);
void	metrics_shutdown(void);
/* A run of a catalog tool ended (read or write): its class and time. */
void	metrics_tool_run(const struct tool *, const struct tool_outcome *);
/* The same, by the tool's name (a read's call keeps only the name). */
void	metrics_tool_run_name(const char *tool, const struct tool_outcome *);
void	metrics_write(const struct tool *, enum write_outcome);
void	metrics_write_name(const char *tool, enum write_outcome);
/* MSG_METRICS: answer with every family of ours. */
void	metrics_answer(const struct proto_msg *);

#endif
