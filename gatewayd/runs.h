/* The run record (runs.c); the functions are in gatewayd.h. */
#ifndef TG_RUNS_H
#define TG_RUNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

/* How often one (tool, args hash) was called in a run. */
struct run_seen {
	char		key[160];	/* tool \0 args hash */
	uint32_t	calls;
	int		wrote;
};

struct run {
	struct run		*next;		/* hash chain */
	TAILQ_ENTRY(run)	 lru_entry;
	uint64_t		 hash;
	char			*tenant;
	char			*run_id;
	uint64_t		 last_used;	/* mono_ms */
	char			*stop_reason;	/* NULL while the run goes on */
	char			*stop_message;
	uint64_t		 steps;
	uint64_t		 writes;
	uint64_t		 tokens;
	double			 cost;
	struct run_seen		*seen;
	size_t			 nseen;
};

void	runs_free(void);

/*
 * Count a call in the run.  Returns NULL, or the stop reason (with a
 * sentence in msg) when this call passes one of the run's limits.
 */
const char	*run_account(struct run *, const char *tool, const char *hash,
		    int write, char *msg, size_t len);
/* Add reported usage; the stop reason once a budget is passed. */
const char	*run_usage(struct run *, uint64_t tokens, double cost,
		    char *msg, size_t len);

#endif
