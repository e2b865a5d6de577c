/* The job count (jobs.h). */
#include <stddef.h>

#include <event2/event.h>

#include "common/log.h"
#include "executor/jobs.h"

static struct event	*idle_ev;
static size_t		 njobs;

void
jobs_init(struct event *idle)
{
	idle_ev = idle;
}

void
job_begin(void)
{
	njobs++;
}

void
job_end(void)
{
	if (njobs == 0)
		fatalx("job_end: no job is running");
	if (--njobs == 0 && idle_ev != NULL)
		event_active(idle_ev, EV_TIMEOUT, 0);
}

size_t
jobs_active(void)
{
	return njobs;
}
