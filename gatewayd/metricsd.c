/*
 * metrics.listen: Prometheus text format 0.0.4 at GET /metrics, served
 * with libevent's HTTP server (PROTOCOL.md, "Metrics").
 *
 * Each scrape serves gatewayd's families (metrics.c) and the executor's,
 * which the executor renders itself when asked: the scrape sends
 * MSG_METRICS and waits METRICS_EXEC_WAIT_MS for MSG_METRICS_ANS.  An
 * executor that does not answer in time costs the scrape only its
 * families: ours are served with toolgate_executor_up 0.  The executor
 * never sees HTTP.
 *
 * The endpoint is an external peer's: a malformed request gets libevent's
 * 400 and the connection closes; headers and bodies are bounded, an idle
 * or slow connection is closed after METRICS_TIMEOUT_S, and no more than
 * METRICS_MAX_CONNS are open at once (accepting pauses until one closes).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "gatewayd/gatewayd.h"

#define METRICS_TIMEOUT_S	10	/* a connection's request, read or idle */
#define METRICS_MAX_CONNS	16
#define METRICS_MAX_HEADERS	8192
#define METRICS_MAX_BODY	1024
#define METRICS_EXEC_WAIT_MS	2000	/* then the executor is taken as down */
#define METRICS_SWEEP_MS	200	/* closed connections are counted out */

/* The endpoint. */
static int			 listen_fd = -1;
static struct evhttp		*http;
static struct evhttp_bound_socket *bound;

/*
 * Open connections: evhttp says nothing when it frees one, so each
 * bufferevent we hand it carries a reference of ours; once evhttp has
 * freed it (its callbacks are cleared) the sweep drops ours, which
 * closes the socket, and counts it out.
 */
struct hconn {
	TAILQ_ENTRY(hconn)	 entry;
	struct bufferevent	*bev;
};
static TAILQ_HEAD(, hconn)	 hconns = TAILQ_HEAD_INITIALIZER(hconns);
static size_t			 nhconns;
static int			 paused;
static struct event		*sweep_ev;

/* A scrape waiting for the executor's families. */
struct scrape {
	LIST_ENTRY(scrape)	 entry;
	struct evhttp_request	*req;
	uint64_t		 exec_id;
	struct event		*timer;
};
static LIST_HEAD(, scrape)	 scrapes = LIST_HEAD_INITIALIZER(scrapes);

static void
reply_text(struct evhttp_request *req, int code, const char *reason,
    const char *text)
{
	struct evbuffer	*b = evbuffer_new();

	if (b == NULL)
		fatalx("evbuffer_new");
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; charset=utf-8");
	evbuffer_add(b, text, strlen(text));
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

/* Our families, then the executor's (NULL: it did not answer in time). */
static void
scrape_finish(struct scrape *s, const char *exec_text)
{
	struct evbuffer	*b;
	FILE		*fp;
	char		*text = NULL;
	size_t		 len = 0;

	LIST_REMOVE(s, entry);
	event_free(s->timer);
	if ((fp = open_memstream(&text, &len)) == NULL)
		fatal("open_memstream");
	metrics_render(fp, exec_text != NULL);
	if (fclose(fp) != 0)
		fatal("metrics");
	if ((b = evbuffer_new()) == NULL)
		fatalx("evbuffer_new");
	evbuffer_add(b, text, len);
	if (exec_text != NULL)
		evbuffer_add(b, exec_text, strlen(exec_text));
	free(text);
	evhttp_add_header(evhttp_request_get_output_headers(s->req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	/* A client gone meanwhile: libevent frees the request here. */
	evhttp_send_reply(s->req, HTTP_OK, "OK", b);
	evbuffer_free(b);
	free(s);
}

static void
scrape_answered(const struct proto_msg *m, void *arg)
{
	scrape_finish(arg, m->metrics_ans.text);
}

static void
scrape_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct scrape	*s = arg;

	(void)fd;
	(void)what;
	log_warnx("metrics: the executor did not answer in %d ms: serving"
	    " gatewayd's families alone", METRICS_EXEC_WAIT_MS);
	exec_forget(s->exec_id);
	scrape_finish(s, NULL);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct timeval		 tv;
	struct scrape		*s;

	(void)arg;
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		reply_text(req, HTTP_NOTFOUND, "Not Found",
		    "not found: the metrics are at /metrics\n");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET");
		reply_text(req, 405, "Method Not Allowed",
		    "method not allowed: GET /metrics\n");
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->req = req;
	s->timer = evtimer_new(gw->base, scrape_timeout, s);
	if (s->timer == NULL)
		fatalx("metrics: evtimer_new");
	tv.tv_sec = METRICS_EXEC_WAIT_MS / 1000;
	tv.tv_usec = (METRICS_EXEC_WAIT_MS % 1000) * 1000;
	evtimer_add(s->timer, &tv);
	LIST_INSERT_HEAD(&scrapes, s, entry);
	s->exec_id = exec_metrics(scrape_answered, s);
}

/* Connections: counted in when evhttp asks for a bufferevent. */

static void
accepting(int on)
{
	struct evconnlistener	*l = evhttp_bound_socket_get_listener(bound);
	static uint64_t		 last_ms;

	if (on && paused) {
		evconnlistener_enable(l);
		paused = 0;
	} else if (!on && !paused) {
		/* Said at most once a minute: a peer could toggle it. */
		if (last_ms == 0 || mono_ms() - last_ms >= 60000) {
			log_warnx("metrics: %d connections open: accepting"
			    " pauses until one closes", METRICS_MAX_CONNS);
			last_ms = mono_ms();
		}
		evconnlistener_disable(l);
		paused = 1;
	}
}

static void
hconn_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct hconn		*h, *next;
	bufferevent_data_cb	 rcb, wcb;
	bufferevent_event_cb	 ecb;
	struct timeval		 tv = { 0, METRICS_SWEEP_MS * 1000 };

	(void)fd;
	(void)what;
	(void)arg;
	for (h = TAILQ_FIRST(&hconns); h != NULL; h = next) {
		next = TAILQ_NEXT(h, entry);
		bufferevent_getcb(h->bev, &rcb, &wcb, &ecb, NULL);
		if (rcb != NULL || wcb != NULL || ecb != NULL)
			continue;
		TAILQ_REMOVE(&hconns, h, entry);
		bufferevent_decref(h->bev);
		free(h);
		nhconns--;
	}
	if (nhconns < METRICS_MAX_CONNS)
		accepting(1);
	if (nhconns > 0)
		evtimer_add(sweep_ev, &tv);
}

static struct bufferevent *
hconn_new(struct event_base *base, void *arg)
{
	struct hconn	*h;
	struct timeval	 tv = { 0, METRICS_SWEEP_MS * 1000 };

	(void)arg;
	h = xcalloc(1, sizeof(*h));
	if ((h->bev = bufferevent_socket_new(base, -1,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("metrics: bufferevent_socket_new");
	bufferevent_incref(h->bev);
	TAILQ_INSERT_TAIL(&hconns, h, entry);
	if (++nhconns >= METRICS_MAX_CONNS)
		accepting(0);
	if (!evtimer_pending(sweep_ev, NULL))
		evtimer_add(sweep_ev, &tv);
	return h->bev;
}

/* Setting up. */

static int
tcp_listen(const char *spec, char *err, size_t errlen)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	const char		*port = strrchr(spec, ':');
	socklen_t		 sslen;
	int			 fd, on = 1;

	memset(&ss, 0, sizeof(ss));
	/* config_sect.c let through these two hosts and a port alone. */
	if (port == NULL)
		goto bad;
	if (strncmp(spec, "127.0.0.1:", 10) == 0 && port == spec + 9) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)atoi(port + 1));
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sslen = sizeof(*sin);
	} else if (strncmp(spec, "[::1]:", 6) == 0 && port == spec + 5) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)atoi(port + 1));
		sin6->sin6_addr = in6addr_loopback;
		sslen = sizeof(*sin6);
	} else
		goto bad;
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
		    sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, sslen) == -1 ||
	    listen(fd, 64) == -1) {
		snprintf(err, errlen, "%s: %s", spec, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
bad:
	snprintf(err, errlen, "%s: only 127.0.0.1:PORT, [::1]:PORT or"
	    " unix:PATH", spec);
	return -1;
}

/*
 * Before the drop: the socket is bound while the address is ours to
 * bind and the path reachable (the chroot is empty, and the network
 * namespace gatewayd moves to has no loopback of the host's).
 */
void
metrics_bind(void)
{
	const char	*spec = gw->conf->metrics_listen;
	char		 err[512];

	/* Counted whether or not they are served: the cost is the same. */
	metrics_init();
	if (spec == NULL)
		return;
	/* Anyone who may reach loopback may read them: so may the path. */
	if (strncmp(spec, "unix:", 5) == 0)
		listen_fd = unix_listen(spec + 5, 0666, err, sizeof(err));
	else
		listen_fd = tcp_listen(spec, err, sizeof(err));
	if (listen_fd == -1)
		fatalx("metrics.listen: %s", err);
}

/* Once the executor answered HELLO: its families can be asked for. */
void
metrics_start(void)
{
	if (listen_fd == -1)
		return;
	if ((http = evhttp_new(gw->base)) == NULL ||
	    (sweep_ev = evtimer_new(gw->base, hconn_sweep, NULL)) == NULL)
		fatalx("metrics: evhttp_new");
	evhttp_set_max_headers_size(http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(http, METRICS_MAX_BODY);
	evhttp_set_timeout(http, METRICS_TIMEOUT_S);
	/* Methods libevent knows reach us, to be answered 405. */
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(http, on_request, NULL);
	evhttp_set_bevcb(http, hconn_new, NULL);
	if ((bound = evhttp_accept_socket_with_handle(http, listen_fd)) ==
	    NULL)
		fatalx("metrics: cannot serve on %s", gw->conf->metrics_listen);
	log_info("metrics: serving /metrics on %s", gw->conf->metrics_listen);
}

void
metrics_stop(void)
{
	struct scrape	*s;
	struct hconn	*h;

	while ((s = LIST_FIRST(&scrapes)) != NULL) {
		LIST_REMOVE(s, entry);
		exec_forget(s->exec_id);
		event_free(s->timer);
		reply_text(s->req, HTTP_SERVUNAVAIL, "Service Unavailable",
		    "shutting down\n");
		free(s);
	}
	if (http != NULL)
		evhttp_free(http);	/* closes the listening socket */
	else if (listen_fd != -1)
		close(listen_fd);
	http = NULL;
	listen_fd = -1;
	while ((h = TAILQ_FIRST(&hconns)) != NULL) {
		TAILQ_REMOVE(&hconns, h, entry);
		bufferevent_decref(h->bev);
		free(h);
	}
	nhconns = 0;
	if (sweep_ev != NULL)
		event_free(sweep_ev);
	sweep_ev = NULL;
	metrics_free();
}
