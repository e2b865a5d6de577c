/*
 * The write path: every write through the ledger, exactly once (write.c
 * says how).  Handlers start writes; the tool runs behind a backend
 * (backend.h) and the callers are answered from the outcome (response.h).
 */
#ifndef TG_WRITE_H
#define TG_WRITE_H

#include <stddef.h>
#include <stdint.h>

struct call;
struct tool;

void	write_init(void);
void	write_shutdown(void);
/* Run c's write, or replay or refuse it, as the ledger says.  Owns c. */
void	write_start(struct call *, const struct tool *);
/*
 * The agent of 'conn' hung up: its calls joined to an identical running
 * write, and its writes whose intent is not recorded yet, are refused
 * (answered; gatewayd drops the answer).  A write whose intent is
 * recorded runs on and its outcome is recorded.  Returns how many.
 */
size_t	write_conn_gone(uint64_t conn);
/* gatewayctl resolve: settle a write in doubt; -1 with a reason. */
int	write_resolve(const char *key, int done, const char *who, char *err,
	    size_t errlen);
/* Shutting down: writes waiting on another host's outcome are refused. */
void	write_drop_waits(void);
/*
 * The same on the shared store (PostgreSQL): fn(NULL) once resolved,
 * fn(why) if not; -1 with err when refused at once (fn not called).
 */
int	write_resolve_shared(const char *key, int done, const char *who,
	    void (*fn)(const char *err, void *), void *arg, char *err,
	    size_t errlen);

#endif
