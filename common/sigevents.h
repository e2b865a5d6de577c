/*
 * Signal events installed from a table, with their priorities: both
 * daemons handle their signals in the event loop, the kill switch at
 * priority 0 so it runs before any request read in the same turn.
 */
#ifndef TG_SIGEVENTS_H
#define TG_SIGEVENTS_H

#include <stddef.h>

#include <event2/event.h>

struct sigdef {
	int			 sig;
	event_callback_fn	 fn;
	int			 prio;
};

/* Install one event per row into evs (n slots); fatal on failure. */
void	sigevents_add(struct event_base *, const struct sigdef *, size_t n,
	    struct event **evs);
void	sigevents_free(struct event **evs, size_t n);

#endif
