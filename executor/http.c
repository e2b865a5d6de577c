/*
 * The http backend (CONTRACT.md, "http: a tool that is an HTTP API"):
 * one catalog tool is one HTTP request, made with libcurl's multi
 * interface inside the executor's event loop.  proto/PROTOCOL.md ("HTTP
 * tools") says what is sent and how answers map to outcomes; the why is
 * here.
 *
 * One CURLM for the process keeps the connection cache, so reads and
 * idempotent writes to one API reuse their connections.  curl tells us
 * which sockets to watch (http_socket_cb) and when to call it back
 * (http_timer_cb); both become libevent events, and transfers that ended
 * are collected after every curl_multi_socket_action() (http_collect).
 * No callback of ours ever calls into the multi handle or the caller's
 * callback from inside curl: outcomes are delivered from the loop.
 *
 * "Sent or not": curl calls CURLOPT_PREREQFUNCTION once the connection
 * (TCP, and TLS with its certificate checks) is up and just before it
 * writes the request.  A transfer that failed before that point sent
 * nothing, whatever the error; one that failed after it may have been
 * received and acted on.  That is the only signal used, so an error code
 * we did not foresee errs on the side of "may have acted".  Whether an
 * answer came is CURLINFO_RESPONSE_CODE: 0 until a status line arrived.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <msgpack.h>

#include "common/config.h"
#include "common/frame.h"
#include "common/jsonmp.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "executor/backend.h"
#include "executor/credential.h"

#define HTTP_TIMEOUT_MS		10000	/* when the catalog left it at 0 */
/*
 * Idle connections kept for reuse: as many as calls may run at once would
 * be ideal (fewer and most calls at load open a connection, and for https
 * do a handshake), but each is a descriptor held while idle, counted from
 * the start (fds.h, FDS_CACHE).
 */
#define HTTP_MAXCONNECTS	64
#define HTTP_MSGBODY		200	/* body bytes quoted in a message */
#define HTTP_RETRY_AFTER_MAX_S	3600	/* a longer Retry-After is capped */
#define HTTP_RESEND_MIN_MS	100	/* idempotent_upstream backoff */
#define HTTP_RESEND_MAX_MS	2000
#define HTTP_TRACEPARENT_MAX	128
/* As in toolrun.c: what msgpack may add to JSON that fits max_output. */
#define MSGPACK_SLACK		1024

struct httpreq {
	LIST_ENTRY(httpreq)	 entry;
	tool_done_cb		 cb;
	void			*arg;
	char			*tool;		/* for log lines and messages */
	int			 is_write;
	int			 resend;	/* idempotent_upstream write */
	uint32_t		 timeout_ms;
	struct timespec		 start;
	uint64_t		 deadline;	/* monotonic ms */

	CURL			*easy;
	struct curl_slist	*headers;
	char			 errbuf[CURL_ERROR_SIZE];
	int			 in_multi;

	/* This attempt. */
	int			 prereq;	/* the request went out */
	char			*body;
	size_t			 bodylen;
	size_t			 bodycap;
	size_t			 max_output;
	int			 too_big;

	unsigned		 attempts;
	int			 sent_before;	/* an earlier attempt went out */
	uint32_t		 backoff_ms;

	/* Deferred outcome, or the wait before a resend. */
	struct event		*ev_timer;
	int			 decided;	/* res holds the outcome */
	int			 cancelled;
	int			 expired;
	struct tool_outcome	 res;
};

static LIST_HEAD(, httpreq)	 httpreqs = LIST_HEAD_INITIALIZER(httpreqs);
static size_t			 http_count;
static struct event_base	*http_base;
static CURLM			*http_multi;
static struct event		*http_timer;
static int			 http_expired;	/* no new requests */

static void	http_attempt_done(struct httpreq *, CURLcode);
static void	http_finish(struct httpreq *);
static void	http_send(struct httpreq *);

static uint64_t
http_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* What the loop sees of a transfer that ended: collect it. */
static void
http_collect(void)
{
	struct httpreq	*hr;
	CURLMsg		*msg;
	CURLcode	 cc;
	char		*p;
	int		 left;

	while ((msg = curl_multi_info_read(http_multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		cc = msg->data.result;
		if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    &p) != CURLE_OK || p == NULL)
			fatalx("%s: a transfer without its request", __func__);
		hr = (struct httpreq *)p;
		http_attempt_done(hr, cc);
	}
}

static void
http_event_cb(evutil_socket_t fd, short what, void *arg)
{
	int	flags = 0, running;

	(void)arg;
	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(http_multi, fd, flags, &running);
	http_collect();
}

static void
http_timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
	int	running;

	(void)fd;
	(void)what;
	(void)arg;
	curl_multi_socket_action(http_multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_collect();
}

/* curl: watch s for 'what' from now on (or no longer). */
static int
http_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp,
    void *socketp)
{
	struct event	*ev = socketp;
	short		 flags = EV_PERSIST;

	(void)easy;
	(void)userp;
	if (what == CURL_POLL_REMOVE) {
		if (ev != NULL)
			event_free(ev);
		return 0;
	}
	if (what & CURL_POLL_IN)
		flags |= EV_READ;
	if (what & CURL_POLL_OUT)
		flags |= EV_WRITE;
	if (ev == NULL) {
		ev = event_new(http_base, s, flags, http_event_cb, NULL);
		if (ev == NULL)
			fatalx("%s: event_new", __func__);
		curl_multi_assign(http_multi, s, ev);
	} else {
		event_del(ev);
		if (event_assign(ev, http_base, s, flags, http_event_cb,
		    NULL) == -1)
			fatalx("%s: event_assign", __func__);
	}
	if (event_add(ev, NULL) == -1)
		fatalx("%s: event_add", __func__);
	return 0;
}

/* curl: call me back in timeout_ms (-1: never mind). */
static int
http_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct timeval	tv;

	(void)multi;
	(void)userp;
	if (timeout_ms < 0) {
		evtimer_del(http_timer);
		return 0;
	}
	/* 0 too goes through the loop: never socket_action from in here. */
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (evtimer_add(http_timer, &tv) == -1)
		fatalx("%s: evtimer_add", __func__);
	return 0;
}

static size_t	 http_maxconn;

/* Idle connections kept: none without an http tool, never past max_tools. */
static size_t
http_cache_size(const struct config *c)
{
	size_t	 i;

	for (i = 0; i < c->ncatalog; i++)
		if (c->catalog[i].backend == TB_HTTP)
			return c->max_tools < HTTP_MAXCONNECTS ?
			    (size_t)c->max_tools : HTTP_MAXCONNECTS;
	return 0;
}

static size_t
http_fds_kept(void)
{
	return http_maxconn;
}

static void
http_init(struct event_base *base, const struct config *conf)
{

	if (http_base != NULL)
		fatalx("%s: called twice", __func__);
	/* Single threaded still, as curl_global_init() wants. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("%s: curl_global_init", __func__);
	http_base = base;
	http_maxconn = http_cache_size(conf);
	if ((http_multi = curl_multi_init()) == NULL)
		fatalx("%s: curl_multi_init", __func__);
	http_timer = evtimer_new(base, http_timer_event_cb, NULL);
	if (http_timer == NULL)
		fatalx("%s: evtimer_new", __func__);
	if (curl_multi_setopt(http_multi, CURLMOPT_SOCKETFUNCTION,
	    http_socket_cb) != CURLM_OK ||
	    curl_multi_setopt(http_multi, CURLMOPT_TIMERFUNCTION,
	    http_timer_cb) != CURLM_OK ||
	    curl_multi_setopt(http_multi, CURLMOPT_MAXCONNECTS,
	    (long)http_maxconn) != CURLM_OK ||
	    curl_multi_setopt(http_multi, CURLMOPT_PIPELINING,
	    (long)CURLPIPE_NOTHING) != CURLM_OK)
		fatalx("%s: curl_multi_setopt", __func__);
}

/* curl: the connection is up (TLS verified) and the request goes now. */
static int
http_prereq_cb(void *clientp, char *primary_ip, char *local_ip,
    int primary_port, int local_port)
{
	struct httpreq	*hr = clientp;

	(void)primary_ip;
	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	hr->prereq = 1;
	return CURL_PREREQFUNC_OK;
}

/* curl: response body bytes.  Past max_output the transfer stops. */
static size_t
http_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct httpreq	*hr = userp;
	size_t		 n = size * nmemb, cap;

	if (n > hr->max_output - hr->bodylen) {
		hr->too_big = 1;
		return CURL_WRITEFUNC_ERROR;
	}
	if (hr->bodycap - hr->bodylen < n) {
		cap = hr->bodycap * 2 > hr->bodylen + n ?
		    hr->bodycap * 2 : hr->bodylen + n;
		if (cap > hr->max_output)
			cap = hr->max_output;
		hr->body = xreallocarray(hr->body, cap, 1);
		hr->bodycap = cap;
	}
	memcpy(hr->body + hr->bodylen, data, n);
	hr->bodylen += n;
	return n;
}

/*
 * Headers the gateway sets on every request, or that frame it: a
 * catalog header must not replace or repeat them (the config loader's
 * list, common/config_backend.c, checked again here).
 */
static const char *const http_own_headers[] = {
	"Authorization", "Idempotency-Key", "Content-Type", "Content-Length",
	"Host", "Transfer-Encoding", "Connection", "Expect", "traceparent",
	"Proxy-Authorization", "Cookie",
};

/*
 * A catalog header as curl wants it, or NULL with msg set: "Name: value",
 * a token for the name, no control characters but tab in the value.  The
 * config loader checks this too; this is the last word before it is sent.
 */
static char *
http_header_line(const char *h, char *msg, size_t msglen)
{
	const char	*colon, *v;
	char		*line;
	size_t		 namelen, i;

	if ((colon = strchr(h, ':')) == NULL || colon == h)
		goto bad;
	namelen = colon - h;
	for (i = 0; i < namelen; i++)
		if (!isalnum((unsigned char)h[i]) &&
		    strchr("!#$%&'*+-.^_`|~", h[i]) == NULL)
			goto bad;
	for (i = 0; i < sizeof(http_own_headers) / sizeof(http_own_headers[0]);
	    i++)
		if (strlen(http_own_headers[i]) == namelen &&
		    strncasecmp(h, http_own_headers[i], namelen) == 0) {
			snprintf(msg, msglen, "catalog header %s is set by "
			    "the gateway", http_own_headers[i]);
			return NULL;
		}
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (i = 0; v[i] != '\0'; i++)
		if (((unsigned char)v[i] < 0x20 && v[i] != '\t') ||
		    v[i] == 0x7f)
			goto bad;
	/* curl sends "Name;" as a header with an empty value. */
	if (*v == '\0')
		xasprintf(&line, "%.*s;", (int)namelen, h);
	else
		xasprintf(&line, "%.*s: %s", (int)namelen, h, v);
	return line;
 bad:
	snprintf(msg, msglen, "a catalog header is not \"Name: value\"");
	return NULL;
}

static void
http_add_header(struct httpreq *hr, const char *line)
{
	struct curl_slist	*l;

	if ((l = curl_slist_append(hr->headers, line)) == NULL)
		fatalx("%s: curl_slist_append", __func__);
	hr->headers = l;
}

/* A value from the caller that goes into a header: one printable line. */
static int
http_value_ok(const char *s, size_t max)
{
	size_t	i;

	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f || i >= max)
			return 0;
	return i > 0;
}

/*
 * Every header of the request.  -1 with res.message set when a catalog
 * header is refused or the credential cannot be read (fail closed: no
 * credential, no request).
 */
static int
http_headers(struct httpreq *hr, const struct tool_req *req)
{
	const struct tool_http	*th = &req->tool->http;
	char			*line, *cred;
	size_t			 i;

	http_add_header(hr, "Content-Type: application/json");
	/* No "Expect: 100-continue" round trip for large bodies. */
	http_add_header(hr, "Expect:");
	/* What we read is JSON, unless the catalog asks otherwise. */
	for (i = 0; i < th->nheaders; i++)
		if (strncasecmp(th->headers[i], "Accept:", 7) == 0)
			break;
	if (i == th->nheaders)
		http_add_header(hr, "Accept: application/json");
	for (i = 0; i < th->nheaders; i++) {
		if ((line = http_header_line(th->headers[i], hr->res.message,
		    sizeof(hr->res.message))) == NULL) {
			log_warnx("tool %s: %s", hr->tool, hr->res.message);
			return -1;
		}
		http_add_header(hr, line);
		free(line);
	}
	if (req->idempotency_key != NULL) {
		if (!http_value_ok(req->idempotency_key, 1024)) {
			snprintf(hr->res.message, sizeof(hr->res.message),
			    "the idempotency key cannot be sent as a header");
			return -1;
		}
		xasprintf(&line, "Idempotency-Key: %s", req->idempotency_key);
		http_add_header(hr, line);
		free(line);
	}
	if (req->traceparent != NULL) {
		/* gatewayd checked it; a bad one is dropped, not fatal. */
		if (http_value_ok(req->traceparent, HTTP_TRACEPARENT_MAX)) {
			xasprintf(&line, "traceparent: %s", req->traceparent);
			http_add_header(hr, line);
			free(line);
		} else
			log_warnx("tool %s: traceparent not sent", hr->tool);
	}
	if (credential_read(req->credentials_dir, req->tenant, req->env,
	    req->tool->name, &cred, hr->res.message,
	    sizeof(hr->res.message)) == -1)
		return -1;
	if (cred != NULL) {
		xasprintf(&line, "Authorization: Bearer %s", cred);
		http_add_header(hr, line);
		explicit_bzero(line, strlen(line));
		explicit_bzero(cred, strlen(cred));
		free(line);
		free(cred);
	}
	return 0;
}

/* The easy handle: every option but the per-attempt timeout. */
static int
http_easy(struct httpreq *hr, const struct tool_req *req)
{
	const struct tool_http	*th = &req->tool->http;
	const char		*method = th->method ? th->method : "POST";
	CURL			*e;
	int			 ok = 1;

	if ((e = hr->easy = curl_easy_init()) == NULL)
		fatalx("%s: curl_easy_init", __func__);
#define SET(opt, val)	(ok = ok && curl_easy_setopt(e, opt, val) == CURLE_OK)
	SET(CURLOPT_PRIVATE, (char *)hr);
	SET(CURLOPT_ERRORBUFFER, hr->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	/*
	 * A transfer ended while its name is still being resolved would
	 * otherwise wait, on the loop, for the resolver thread to finish;
	 * this leaves that thread to end on its own.
	 */
	SET(CURLOPT_QUICK_EXIT, 1L);
	SET(CURLOPT_URL, th->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	/* The request goes where the catalog says, not via the environment. */
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (th->ca_file != NULL)
		SET(CURLOPT_CAINFO, th->ca_file);
	SET(CURLOPT_USERAGENT, "toolgate");
	SET(CURLOPT_HTTPHEADER, hr->headers);
	/* The args are the body whatever the method (PROTOCOL.md). */
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->inputlen);
	SET(CURLOPT_COPYPOSTFIELDS, req->input != NULL ? req->input : "");
	if (strcmp(method, "POST") != 0)
		SET(CURLOPT_CUSTOMREQUEST, method);
	SET(CURLOPT_WRITEFUNCTION, http_write_cb);
	SET(CURLOPT_WRITEDATA, hr);
	SET(CURLOPT_PREREQFUNCTION, http_prereq_cb);
	SET(CURLOPT_PREREQDATA, hr);
	/*
	 * curl sends a request again by itself when it went out on a reused
	 * connection that then closed without a byte of answer: the
	 * keep-alive race.  The API may have acted on the first: a write
	 * that may not be sent twice always opens a connection of its own.
	 * And no other request may join that connection while the write is
	 * on it (HTTP/2 multiplexing), which would make it "reused" too:
	 * libcurl 7.88 has no CURLOPT_FORBID_RETRY_ON_REUSE (8.16), so the
	 * multi handle multiplexes nothing (http_init, CURLPIPE_NOTHING).
	 * test_http2 saw a write sent twice that way.
	 */
	if (hr->is_write && !hr->resend)
		SET(CURLOPT_FRESH_CONNECT, 1L);
#undef SET
	if (!ok) {
		snprintf(hr->res.message, sizeof(hr->res.message),
		    "cannot set up the request to %s's API", hr->tool);
		return -1;
	}
	return 0;
}

/* The callback comes from the loop: now, or after 'ms'. */
static void
http_later(struct httpreq *hr, uint64_t ms,
    void (*fn)(evutil_socket_t, short, void *))
{
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (hr->ev_timer != NULL)
		event_free(hr->ev_timer);
	hr->ev_timer = evtimer_new(http_base, fn, hr);
	if (hr->ev_timer == NULL || evtimer_add(hr->ev_timer, &tv) == -1)
		fatalx("%s: evtimer", __func__);
}

static void
http_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	http_finish(arg);
}

static void
http_resend_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpreq	*hr = arg;

	(void)fd;
	(void)what;
	if (http_now_ms() >= hr->deadline) {
		hr->decided = 1;
		hr->res.status = TR_TIMEOUT;
		snprintf(hr->res.message, sizeof(hr->res.message),
		    "no answer from %s's API within %u ms (%u attempts)",
		    hr->tool, (unsigned)hr->timeout_ms, hr->attempts);
		http_finish(hr);
		return;
	}
	http_send(hr);
}

static void
http_fail(struct httpreq *hr, enum tool_status st)
{
	hr->decided = 1;
	hr->res.status = st;
	http_later(hr, 0, http_finish_cb);
}

static void
http_start(const struct tool_req *req, tool_done_cb cb, void *arg)
{
	struct httpreq	*hr;
	uint32_t	 t;

	if (http_base == NULL)
		fatalx("%s: http_init() was not called", __func__);
	hr = xcalloc(1, sizeof(*hr));
	hr->cb = cb;
	hr->arg = arg;
	hr->tool = xstrdup(req->tool->name);
	hr->is_write = req->idempotency_key != NULL;
	hr->resend = hr->is_write && req->tool->http.idempotent_upstream;
	hr->max_output = req->max_output;
	t = req->tool->timeout_ms;
	hr->timeout_ms = t != 0 ? t : HTTP_TIMEOUT_MS;
	clock_gettime(CLOCK_MONOTONIC, &hr->start);
	hr->deadline = http_now_ms() + hr->timeout_ms;
	hr->backoff_ms = HTTP_RESEND_MIN_MS;
	hr->res.wstatus = -1;
	LIST_INSERT_HEAD(&httpreqs, hr, entry);
	http_count++;

	if (req->tool->backend != TB_HTTP || req->tool->http.url == NULL) {
		snprintf(hr->res.message, sizeof(hr->res.message),
		    "tool %s has no URL", req->tool->name);
		http_fail(hr, TR_FAILED);
		return;
	}
	if (http_expired) {
		snprintf(hr->res.message, sizeof(hr->res.message),
		    "not sent: the executor is shutting down");
		http_fail(hr, TR_FAILED);
		return;
	}
	if (http_headers(hr, req) == -1 || http_easy(hr, req) == -1) {
		http_fail(hr, TR_FAILED);
		return;
	}
	http_send(hr);
}

/* One attempt: the time left is its timeout. */
static void
http_send(struct httpreq *hr)
{
	uint64_t	now = http_now_ms(), left;

	left = hr->deadline > now ? hr->deadline - now : 1;
	hr->prereq = 0;
	hr->too_big = 0;
	hr->bodylen = 0;
	hr->errbuf[0] = '\0';
	hr->attempts++;
	if (curl_easy_setopt(hr->easy, CURLOPT_TIMEOUT_MS, (long)left) !=
	    CURLE_OK)
		fatalx("%s: CURLOPT_TIMEOUT_MS", __func__);
	if (curl_multi_add_handle(http_multi, hr->easy) != CURLM_OK)
		fatalx("%s: curl_multi_add_handle", __func__);
	hr->in_multi = 1;
	log_debug("tool %s: http attempt %u", hr->tool, hr->attempts);
}

static void
http_remove(struct httpreq *hr)
{
	if (!hr->in_multi)
		return;
	curl_multi_remove_handle(http_multi, hr->easy);
	hr->in_multi = 0;
}

/* A short, printable part of what the API said, for a message. */
static void
http_body_excerpt(struct httpreq *hr, char *out, size_t outlen)
{
	size_t	n = hr->bodylen;

	while (n > 0 && isspace((unsigned char)hr->body[n - 1]))
		n--;
	if (n == 0) {
		snprintf(out, outlen, "(no body)");
		return;
	}
	log_sanitize(out, outlen, hr->body, n > HTTP_MSGBODY ?
	    HTTP_MSGBODY : n);
}

/* The API answered with a status: what it means. */
static void
http_status_outcome(struct httpreq *hr, CURLcode cc, long code)
{
	struct tool_outcome	*res = &hr->res;
	curl_off_t		 ra = 0;
	char			 excerpt[400];

	if (code >= 200 && code < 300) {
		/* The API says it acted: only the body can be wrong. */
		if (hr->too_big) {
			res->status = TR_BAD_OUTPUT;
			snprintf(res->message, sizeof(res->message),
			    "response body larger than %zu bytes",
			    hr->max_output);
		} else if (cc == CURLE_OPERATION_TIMEDOUT) {
			res->status = TR_TIMEOUT;
			snprintf(res->message, sizeof(res->message),
			    "HTTP %ld: body not read within %u ms", code,
			    (unsigned)hr->timeout_ms);
		} else if (cc != CURLE_OK) {
			res->status = TR_BAD_OUTPUT;
			snprintf(res->message, sizeof(res->message),
			    "HTTP %ld: the body was cut off: %s", code,
			    hr->errbuf[0] ? hr->errbuf :
			    curl_easy_strerror(cc));
		} else
			res->status = TR_OK;	/* JSON checked in finish */
		return;
	}
	/* An answer that says it failed: the body only explains. */
	res->status = TR_FAILED;
	res->may_have_acted = 0;
	http_body_excerpt(hr, excerpt, sizeof(excerpt));
	if (code == 429 || code >= 500) {
		res->retryable = 1;
		if (curl_easy_getinfo(hr->easy, CURLINFO_RETRY_AFTER, &ra) ==
		    CURLE_OK && ra > 0) {
			if (ra > HTTP_RETRY_AFTER_MAX_S)
				ra = HTTP_RETRY_AFTER_MAX_S;
			res->retry_after_ms = (uint64_t)ra * 1000;
		}
	}
	if (code >= 300 && code < 400)
		snprintf(res->message, sizeof(res->message),
		    "HTTP %ld (redirects are not followed): %s", code, excerpt);
	else
		snprintf(res->message, sizeof(res->message), "HTTP %ld: %s",
		    code, excerpt);
}

static int
http_tls_error(CURLcode cc)
{
	switch (cc) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_USE_SSL_FAILED:
		return 1;
	default:
		return 0;
	}
}

/*
 * No answer and nothing went out on this attempt.  Refused by us (TLS,
 * the URL) is a failure that will not pass by itself; anything else
 * (DNS, connect, a connect that outlasted timeout_ms) is the API being
 * out of reach: unavailable, and a write may run again.
 */
static void
http_unsent_outcome(struct httpreq *hr, CURLcode cc)
{
	struct tool_outcome	*res = &hr->res;
	const char		*why = hr->errbuf[0] ? hr->errbuf :
				    curl_easy_strerror(cc);

	res->may_have_acted = 0;
	if (http_tls_error(cc)) {
		res->status = TR_FAILED;
		snprintf(res->message, sizeof(res->message),
		    "TLS with %s's API failed, nothing was sent: %s",
		    hr->tool, why);
	} else if (cc == CURLE_URL_MALFORMAT ||
	    cc == CURLE_UNSUPPORTED_PROTOCOL) {
		res->status = TR_FAILED;
		snprintf(res->message, sizeof(res->message),
		    "tool %s: bad URL, nothing was sent: %s", hr->tool, why);
	} else {
		res->status = TR_UNAVAILABLE;
		snprintf(res->message, sizeof(res->message),
		    "cannot reach %s's API, nothing was sent: %s", hr->tool,
		    why);
	}
}

/*
 * An attempt ended: decide, or (an idempotent_upstream write that got no
 * answer) send it again with the same key after a pause.
 */
static void
http_attempt_done(struct httpreq *hr, CURLcode cc)
{
	struct tool_outcome	*res = &hr->res;
	const char		*why = hr->errbuf[0] ? hr->errbuf :
				    curl_easy_strerror(cc);
	long			 code = 0;
	uint64_t		 now, wait;

	http_remove(hr);
	if (curl_easy_getinfo(hr->easy, CURLINFO_RESPONSE_CODE, &code) !=
	    CURLE_OK)
		code = 0;
	/* A 1xx alone (102 Processing) is no answer yet. */
	if (code >= 200) {
		http_status_outcome(hr, cc, code);
		hr->decided = 1;
		http_finish(hr);
		return;
	}
	if (!hr->prereq && !hr->sent_before) {
		http_unsent_outcome(hr, cc);
		hr->decided = 1;
		http_finish(hr);
		return;
	}
	hr->sent_before |= hr->prereq;

	/* It may have been received: no answer is not "did nothing". */
	now = http_now_ms();
	if (hr->resend && now < hr->deadline && !http_tls_error(cc)) {
		wait = hr->backoff_ms;
		if (wait > hr->deadline - now)
			wait = hr->deadline - now;
		hr->backoff_ms = hr->backoff_ms * 2 > HTTP_RESEND_MAX_MS ?
		    HTTP_RESEND_MAX_MS : hr->backoff_ms * 2;
		log_info("tool %s: no answer (%s); sending again with the "
		    "same Idempotency-Key in %llu ms", hr->tool, why,
		    (unsigned long long)wait);
		http_later(hr, wait, http_resend_cb);
		return;
	}
	hr->decided = 1;
	if (cc == CURLE_OPERATION_TIMEDOUT || now >= hr->deadline) {
		res->status = TR_TIMEOUT;
		snprintf(res->message, sizeof(res->message),
		    "no answer from %s's API within %u ms", hr->tool,
		    (unsigned)hr->timeout_ms);
	} else {
		res->status = TR_FAILED;
		res->may_have_acted = 1;
		snprintf(res->message, sizeof(res->message),
		    "the request to %s's API was sent and got no answer: %s",
		    hr->tool, why);
		if (hr->is_write)
			log_warnx("tool %s: write sent, no answer: in doubt",
			    hr->tool);
	}
	http_finish(hr);
}

/* A 2xx body: one JSON value, as msgpack within max_output. */
static void
http_result(struct httpreq *hr, msgpack_sbuffer *sb)
{
	struct tool_outcome	*res = &hr->res;
	msgpack_packer		 pk;
	char			 err[256];

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (json_to_msgpack(hr->body != NULL ? hr->body : "", hr->bodylen,
	    &pk, err, sizeof(err)) == -1) {
		res->status = TR_BAD_OUTPUT;
		snprintf(res->message, sizeof(res->message),
		    "response body is not one JSON value: %s", err);
	} else if (sb->size > hr->max_output + MSGPACK_SLACK) {
		res->status = TR_BAD_OUTPUT;
		snprintf(res->message, sizeof(res->message),
		    "response is %zu bytes as msgpack, more than"
		    " limits.max_output (%zu)", sb->size, hr->max_output);
	} else if (mp_check_depth(sb->data, sb->size, VALUE_MAX_DEPTH) < 0) {
		res->status = TR_BAD_OUTPUT;
		snprintf(res->message, sizeof(res->message),
		    "response nests deeper than %d levels", VALUE_MAX_DEPTH);
	} else {
		res->result = sb->data;
		res->resultlen = sb->size;
	}
}

/* Call back once, from the loop, then free everything. */
static void
http_finish(struct httpreq *hr)
{
	msgpack_sbuffer		 sb;
	struct curl_slist	*l;
	struct timespec		 now;
	uint64_t		 ms;

	msgpack_sbuffer_init(&sb);
	http_remove(hr);
	if (hr->cancelled) {
		memset(&hr->res, 0, sizeof(hr->res));
		hr->res.status = TR_CANCELLED;
		snprintf(hr->res.message, sizeof(hr->res.message),
		    "cancelled");
	} else if (hr->expired && !hr->decided) {
		hr->res.status = TR_TIMEOUT;
		snprintf(hr->res.message, sizeof(hr->res.message),
		    "request ended at shutdown (limits.shutdown_s)");
	} else if (hr->res.status == TR_OK)
		http_result(hr, &sb);
	hr->res.wstatus = -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (uint64_t)(now.tv_sec - hr->start.tv_sec) * 1000;
	ms += now.tv_nsec / 1000000;
	ms -= hr->start.tv_nsec / 1000000;
	hr->res.duration_ms = ms;

	LIST_REMOVE(hr, entry);
	http_count--;
	if (hr->ev_timer != NULL)
		event_free(hr->ev_timer);

	hr->cb(&hr->res, hr->arg);

	msgpack_sbuffer_destroy(&sb);
	if (hr->easy != NULL)
		curl_easy_cleanup(hr->easy);
	/* The credential was in one of these lines. */
	for (l = hr->headers; l != NULL; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(hr->headers);
	free(hr->body);
	free(hr->tool);
	free(hr);
}

static int
http_cancel(const void *arg)
{
	struct httpreq	*hr;

	LIST_FOREACH(hr, &httpreqs, entry)
		if (hr->arg == arg && !hr->cancelled)
			break;
	if (hr == NULL)
		return 0;
	hr->cancelled = 1;
	http_remove(hr);
	http_later(hr, 0, http_finish_cb);
	return 1;
}

static size_t
http_expire(void)
{
	struct httpreq	*hr;
	size_t		 n = 0;

	http_expired = 1;
	LIST_FOREACH(hr, &httpreqs, entry) {
		if (hr->decided || hr->cancelled || hr->expired)
			continue;
		/* Ended as its timeout ends it: a write is in doubt. */
		hr->expired = 1;
		http_remove(hr);
		http_later(hr, 0, http_finish_cb);
		n++;
	}
	return n;
}

static size_t
http_active(void)
{
	return http_count;
}

static void
http_shutdown(void)
{
	if (http_base == NULL)
		return;
	/* Closes the cached connections; their events go in socket_cb. */
	curl_multi_cleanup(http_multi);
	http_multi = NULL;
	event_free(http_timer);
	http_timer = NULL;
	curl_global_cleanup();
	http_base = NULL;
}

const struct backend_ops	backend_http = {
	.name = "http",
	.init = http_init,
	.fds_kept = http_fds_kept,
	.start = http_start,
	.cancel = http_cancel,
	.expire = http_expire,
	.active = http_active,
	.shutdown = http_shutdown,
};
