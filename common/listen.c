#include <errno.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "common/listen.h"
#include "common/log.h"
#include "common/xmalloc.h"

struct listener {
	struct evconnlistener	*l;
	struct event		*resume;
	const char		*name;
	evconnlistener_cb	 cb;
	void			*arg;
};

/* libevent hands both callbacks the same argument: ours, then the user's. */
static void
listener_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener	*ln = arg;

	ln->cb(l, fd, sa, salen, ln->arg);
}

static void
listener_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listener	*ln = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(ln->l);
}

static void
listener_error(struct evconnlistener *l, void *arg)
{
	struct listener	*ln = arg;
	struct timeval	 tv = { 1, 0 };

	if (errno != EMFILE && errno != ENFILE) {
		log_warn("%s: accept", ln->name);
		return;
	}
	log_warn("%s: accept paused for a second", ln->name);
	evconnlistener_disable(l);
	evtimer_add(ln->resume, &tv);
}

struct listener *
listener_new(struct event_base *base, int fd, evconnlistener_cb cb,
    void *arg, const char *name)
{
	struct listener	*ln = xcalloc(1, sizeof(*ln));

	ln->name = name;
	ln->cb = cb;
	ln->arg = arg;
	ln->l = evconnlistener_new(base, listener_accept, ln,
	    LEV_OPT_CLOSE_ON_FREE, -1, fd);
	ln->resume = evtimer_new(base, listener_resume, ln);
	if (ln->l == NULL || ln->resume == NULL)
		fatalx("%s: cannot listen", name);
	evconnlistener_set_error_cb(ln->l, listener_error);
	return ln;
}

void
listener_free(struct listener *ln)
{
	if (ln == NULL)
		return;
	evconnlistener_free(ln->l);
	event_free(ln->resume);
	free(ln);
}
