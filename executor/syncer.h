/*
 * One fdatasync(2) at a time on a thread of its own, so that the audit
 * log reaches the disk while the loop thread commits the ledger: the two
 * waits for the disk overlap instead of adding up (write.c).  The thread
 * does nothing else: no state of ours is touched off the loop thread.
 */
#ifndef TG_SYNCER_H
#define TG_SYNCER_H

/* Start the thread (once, in the executor, after exec). */
void	syncer_init(void);
/* Begin fdatasync(fd); syncer_wait() must follow before the next begin. */
void	syncer_begin(int fd);
/* Wait for it: 0, or -1 with errno set from fdatasync. */
int	syncer_wait(void);
/* At exit: the thread ends. */
void	syncer_shutdown(void);

#endif
