/*
 * A listening socket on the event loop that pauses instead of spinning
 * when the process runs out of descriptors (tmux, memcached): accept(2)
 * failing with EMFILE leaves the connection queued, so the listener is
 * disabled for a second and then tried again.
 */
#ifndef TG_LISTEN_H
#define TG_LISTEN_H

#include <event2/listener.h>

struct listener;

/* Takes ownership of fd; 'name' is for the log.  Fatal on failure. */
struct listener	*listener_new(struct event_base *, int fd,
		    evconnlistener_cb cb, void *arg, const char *name);
void		 listener_free(struct listener *);

#endif
