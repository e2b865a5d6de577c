/*
 * The jobs in flight: a read from its tool's start to its answer, a write
 * from its first look at the ledger to its last answer.  The entry
 * function (executor.c) owns the count's idle event and decides what an
 * idle executor does (during shutdown: exit); the paths below only count,
 * so nothing calls back up into the entry function.
 */
#ifndef TG_JOBS_H
#define TG_JOBS_H

#include <stddef.h>

struct event;

/* 'idle' is made active whenever the count falls to zero. */
void	jobs_init(struct event *idle);
void	job_begin(void);
void	job_end(void);
size_t	jobs_active(void);

#endif
