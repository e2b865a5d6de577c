/* Signal events from a table (sigevents.h). */
#include <stddef.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/sigevents.h"

void
sigevents_add(struct event_base *base, const struct sigdef *tab, size_t n,
    struct event **evs)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		evs[i] = evsignal_new(base, tab[i].sig, tab[i].fn, NULL);
		if (evs[i] == NULL ||
		    event_priority_set(evs[i], tab[i].prio) == -1 ||
		    evsignal_add(evs[i], NULL) == -1)
			fatalx("cannot install signal events");
	}
}

void
sigevents_free(struct event **evs, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		event_free(evs[i]);
}
