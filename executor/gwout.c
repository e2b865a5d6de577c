/*
 * The one way out to gatewayd, and what holds it back.
 *
 * The audit records of a loop turn go to the log in one write at the end
 * of the turn (audit.c's queue).  An answer that may not reach the agent
 * without its record (a read's result, a replay) is made in that turn
 * too, before the record is in the log: so while records are queued,
 * everything for gatewayd waits here, in order, and goes out once the
 * queue is written.  Should that write fail, each such answer is replaced
 * by the refusal made with it (error/unavailable, the result withheld);
 * the rest goes out as made.  Nothing waits past the turn: the queue is
 * written before the loop waits for events again.
 *
 * What goes out is written to gatewayd's socket at the end of the loop
 * turn that made it (flush_ev), in as few write(2)s as the socket takes;
 * only what it does not take waits for it to be writable (wev).  The
 * bufferevent of ex->gw only reads: writing through it would cost an
 * epoll_ctl pair and a turn of the loop for every turn that answers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/executor.h"
#include "executor/response.h"

struct held {
	size_t	 at;		/* where the answer begins in 'waiting' */
	size_t	 len;
	char	*alt;		/* what goes instead if its record is lost */
	size_t	 altlen;
};

static struct evbuffer	*waiting;
static struct held	*held;
static size_t		 nheld, maxheld;
static struct evbuffer	*out;		/* for gatewayd, written at flush */
static struct event	*flush_ev, *wev;

/* Write what is for gatewayd; what the socket does not take waits. */
static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (ex->gw == NULL)
		return;
	while (evbuffer_get_length(out) > 0) {
		if (evbuffer_write(out, bufferevent_getfd(ex->gw)) >= 0 ||
		    errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			event_add(wev, NULL);
			return;
		}
		/* Gone: the read side sees the end and shuts down. */
		log_warn("gatewayd: write");
		evbuffer_drain(out, evbuffer_get_length(out));
	}
	event_del(wev);
}

/* The evbuffer gatewayd's bytes go to; flushed at the end of the turn. */
static struct evbuffer *
out_buf(void)
{
	if (out != NULL)
		return out;
	if ((out = evbuffer_new()) == NULL ||
	    (flush_ev = event_new(ex->base, -1, 0, flush_cb, NULL)) == NULL ||
	    (wev = event_new(ex->base, bufferevent_getfd(ex->gw), EV_WRITE,
	    flush_cb, NULL)) == NULL)
		fatalx("%s: out of memory", __func__);
	return out;
}

static void
out_kick(void)
{
	if (!event_pending(wev, EV_WRITE, NULL))
		event_active(flush_ev, EV_TIMEOUT, 0);
}

static void
hold(const char *p, size_t len, const char *alt, size_t altlen)
{
	if (waiting == NULL && (waiting = evbuffer_new()) == NULL)
		fatalx("%s: evbuffer_new", __func__);
	if (alt != NULL) {
		if (nheld == maxheld) {
			maxheld = maxheld ? maxheld * 2 : 64;
			held = xreallocarray(held, maxheld, sizeof(*held));
		}
		held[nheld].at = evbuffer_get_length(waiting);
		held[nheld].len = len;
		held[nheld].alt = xmalloc(altlen);
		memcpy(held[nheld].alt, alt, altlen);
		held[nheld++].altlen = altlen;
	}
	if (evbuffer_add(waiting, p, len) == -1)
		fatalx("%s: evbuffer_add", __func__);
}

void
gw_send_guarded(struct msgbuf *mb, struct msgbuf *alt)
{
	const char	*p, *a = NULL;
	size_t		 len, altlen = 0;

	p = msgbuf_finish(mb, &len);
	if (alt != NULL)
		a = msgbuf_finish(alt, &altlen);
	if (ex->gw == NULL)
		return;
	if (audit_queued() ||
	    (waiting != NULL && evbuffer_get_length(waiting) > 0))
		hold(p, len, a, altlen);
	else {
		if (evbuffer_add(out_buf(), p, len) == -1)
			fatalx("%s: evbuffer_add", __func__);
		out_kick();
	}
}

void
gw_send(struct msgbuf *mb)
{
	gw_send_guarded(mb, NULL);
}

/* audit.c wrote its queue (written 1) or could not (0). */
void
gw_release(int written)
{
	struct evbuffer	*dst;
	size_t		 i, done = 0;

	if (waiting == NULL || evbuffer_get_length(waiting) == 0)
		return;
	if (ex->gw == NULL) {
		evbuffer_drain(waiting, evbuffer_get_length(waiting));
		written = 1;
	}
	dst = ex->gw != NULL ? out_buf() : NULL;
	for (i = 0; i < nheld; i++) {
		if (!written) {
			/* What precedes it as made, then its refusal. */
			if (evbuffer_remove_buffer(waiting, dst,
			    held[i].at - done) != (int)(held[i].at - done) ||
			    evbuffer_drain(waiting, held[i].len) == -1 ||
			    evbuffer_add(dst, held[i].alt, held[i].altlen) == -1)
				fatalx("%s: evbuffer", __func__);
			done = held[i].at + held[i].len;
		}
		free(held[i].alt);
	}
	nheld = 0;
	if (dst != NULL) {
		if (evbuffer_add_buffer(dst, waiting) == -1)
			fatalx("%s: evbuffer_add_buffer", __func__);
		out_kick();
	}
}

/* gatewayd's socket is about to close (shutdown): nothing more goes. */
void
gw_close(void)
{
	if (out == NULL)
		return;
	event_del(wev);
	event_del(flush_ev);
	evbuffer_drain(out, evbuffer_get_length(out));
}

void
gw_shutdown(void)
{
	gw_release(1);
	if (waiting != NULL)
		evbuffer_free(waiting);
	waiting = NULL;
	free(held);
	held = NULL;
	maxheld = 0;
	if (out != NULL) {
		event_free(wev);
		event_free(flush_ev);
		evbuffer_free(out);
	}
	out = NULL;
	wev = flush_ev = NULL;
}
