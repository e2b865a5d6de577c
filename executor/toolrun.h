/*
 * The exec backend (CONTRACT.md, "Tool programs"): run one catalog tool as
 * a child process without blocking the event loop.
 *
 * The child gets the canonical JSON of args and a newline on stdin, a
 * cleared environment (TOOLGATE_* and PATH only), its own process group,
 * and, when CREDENTIALS_DIR/TENANT/ENV/TOOL exists, that file open on fd 3.
 * Its stdout must be one JSON value of at most max_output bytes.
 */
#ifndef TG_TOOLRUN_H
#define TG_TOOLRUN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"
#include "executor/backend.h"

struct event_base;

/* Once per process, before toolrun_start(): installs the SIGCHLD event. */
void	toolrun_init(struct event_base *, const struct config *);

/*
 * Start the tool.  'req' and the strings it points to need not outlive the
 * call.  'cb' is always called exactly once, later, from the event loop
 * (never from inside toolrun_start), even when the program cannot start.
 */
void	toolrun_start(const struct tool_req *req, tool_done_cb cb, void *arg);

/*
 * Cancel the run whose callback argument is 'arg' (its caller is gone):
 * the process group is killed, the child reaped as usual, and the
 * callback comes later from the event loop, never from in here, with
 * TR_CANCELLED.  A run that never started ends so too.  Returns 1 when
 * such a run was found, 0 when there is none (or it was cancelled
 * already).
 */
int	toolrun_cancel(const void *arg);

/*
 * The shutdown deadline has passed: every running tool is ended as its
 * timeout would end it (TR_TIMEOUT, so a write is in doubt), its callback
 * comes later from the loop, and no tool starts from now on (TR_FAILED,
 * it never ran).  Returns how many were running.
 */
size_t	toolrun_expire(void);

/* How many tools are running now (for a clean shutdown). */
size_t	toolrun_active(void);

/* At exit, once nothing runs: frees the SIGCHLD event. */
void	toolrun_shutdown(void);

#endif
