/*
 * The read path: a read's tool runs at once behind its backend and its
 * answer goes straight back; nothing is recorded but the audit.
 */
#ifndef TG_READ_H
#define TG_READ_H

#include <stddef.h>
#include <stdint.h>

struct call;
struct tool;

/* Run c's read (its tool slot is taken).  Owns c. */
void	read_start(struct call *, const struct tool *);
/*
 * The agent of connection 'conn' hung up: its reads still running are
 * cancelled (their tools killed; audited and answered when reaped).
 * Returns how many.
 */
size_t	read_conn_gone(uint64_t conn);

#endif
