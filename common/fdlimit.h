/*
 * RLIMIT_NOFILE for both processes: each holds one descriptor per agent
 * connection, and counts what it holds at start to know how many are left
 * for connections.
 */
#ifndef TG_FDLIMIT_H
#define TG_FDLIMIT_H

#include <stddef.h>

/* The soft limit (fatal on error). */
size_t	fdlimit_get(void);
/* Raise the soft limit to the hard one; returns the limit (fatal on error). */
size_t	fdlimit_raise(void);
/* How many descriptors are open now (below limit). */
size_t	fdlimit_open(size_t limit);

#endif
