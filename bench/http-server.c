/*
 * bench-http-server: the trivial HTTP API behind make bench's http
 * scenario.  libevent's evhttp on 127.0.0.1, HTTP/1.1 with keep-alive;
 * every request, whatever its method and path, gets 200 and the body {}
 * (application/json).  One thread: evhttp answers far faster than the
 * gateway asks, so it is never what the bench measures (its CPU time per
 * request is printed beside the scenario to show it).
 *
 *   bench-http-server PORT_FILE
 *
 * Listens on an ephemeral port and writes its number, and a newline, to
 * PORT_FILE (by a rename, so a reader never sees half of it).  Ends on
 * SIGTERM or SIGINT.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

static void
fatal(const char *what)
{
	fprintf(stderr, "bench-http-server: %s\n", what);
	exit(1);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct evbuffer	*body = arg;

	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	/* The body buffer is drained by each send: fill it every time. */
	evbuffer_add(body, "{}", 2);
	evhttp_send_reply(req, 200, "OK", body);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

static void
write_port(const char *path, unsigned port)
{
	char	 tmp[4096];
	FILE	*f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		fatal("port file name too long");
	if ((f = fopen(tmp, "w")) == NULL || fprintf(f, "%u\n", port) < 0 ||
	    fclose(f) != 0 || rename(tmp, path) == -1)
		fatal("cannot write the port file");
}

int
main(int argc, char *argv[])
{
	struct event_base		*base;
	struct evhttp			*http;
	struct evhttp_bound_socket	*bound;
	struct evbuffer			*body;
	struct event			*sigterm, *sigint;
	struct sockaddr_in		 sin;
	socklen_t			 slen = sizeof(sin);

	if (argc != 2) {
		fprintf(stderr, "usage: bench-http-server PORT_FILE\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL ||
	    (http = evhttp_new(base)) == NULL ||
	    (body = evbuffer_new()) == NULL)
		fatal("libevent setup");
	evhttp_set_gencb(http, on_request, body);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE);
	if ((bound = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0)) ==
	    NULL)
		fatal("cannot listen on 127.0.0.1");
	if (getsockname(evhttp_bound_socket_get_fd(bound),
	    (struct sockaddr *)&sin, &slen) == -1)
		fatal("getsockname");
	write_port(argv[1], ntohs(sin.sin_port));
	if ((sigterm = evsignal_new(base, SIGTERM, on_signal, base)) == NULL ||
	    (sigint = evsignal_new(base, SIGINT, on_signal, base)) == NULL ||
	    event_add(sigterm, NULL) == -1 || event_add(sigint, NULL) == -1)
		fatal("signals");
	event_base_dispatch(base);
	event_free(sigterm);
	event_free(sigint);
	evhttp_free(http);
	evbuffer_free(body);
	event_base_free(base);
	return 0;
}
