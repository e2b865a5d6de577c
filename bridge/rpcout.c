/*
 * Everything toolgate-mcp writes on stdout: one JSON-RPC message a line,
 * compact, so no newline can appear inside one (jansson escapes control
 * characters in strings).  stdout is the protocol: logs go to stderr.
 *
 * Writes never block the loop: lines wait in a buffer until stdout takes
 * them, and the reader of stdin pauses while too much waits
 * (toolgate-mcp.c), so a client that stops reading stops being read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "common/jsonrpc.h"
#include "common/log.h"
#include "bridge/bridge.h"

static struct evbuffer	*out;
static struct event	*ev_out;

static void
out_writable(int fd, short what, void *arg)
{
	(void)what;
	(void)arg;
	if (evbuffer_write(out, fd) == -1 && errno != EAGAIN &&
	    errno != EINTR) {
		/* The client is gone: nobody is left to answer. */
		log_warn("stdout");
		exit(0);
	}
	if (evbuffer_get_length(out) > 0)
		event_add(ev_out, NULL);
	bridge_check();
}

static int	out_flags;

/*
 * O_NONBLOCK belongs to the open file, which a terminal shares with the
 * shell that started us: put it back as it was.
 */
static void
out_restore(void)
{
	(void)fcntl(STDOUT_FILENO, F_SETFL, out_flags);
}

void
out_init(void)
{
	if ((out_flags = fcntl(STDOUT_FILENO, F_GETFL)) == -1 ||
	    fcntl(STDOUT_FILENO, F_SETFL, out_flags | O_NONBLOCK) == -1)
		fatal("stdout");
	atexit(out_restore);
	if ((out = evbuffer_new()) == NULL ||
	    (ev_out = event_new(base, STDOUT_FILENO, EV_WRITE, out_writable,
	    NULL)) == NULL)
		fatalx("out_init: out of memory");
}

size_t
out_pending(void)
{
	return out == NULL ? 0 : evbuffer_get_length(out);
}

static void
send_msg(json_t *msg)
{
	char	*s;

	if ((s = json_dumps(msg, JSON_COMPACT)) == NULL) {
		/* Only a value jansson cannot print: say so instead. */
		log_warnx("an answer could not be written as JSON");
		json_decref(msg);
		return;
	}
	json_decref(msg);
	if (evbuffer_add(out, s, strlen(s)) == -1 ||
	    evbuffer_add(out, "\n", 1) == -1)
		fatalx("send_msg: out of memory");
	free(s);
	event_add(ev_out, NULL);
}

static json_t *
envelope(json_t *id)
{
	json_t	*m;

	m = json_pack("{s:s}", "jsonrpc", "2.0");
	if (m == NULL || json_object_set(m, "id",
	    id == NULL ? json_null() : id) == -1)
		fatalx("envelope: out of memory");
	return m;
}

void
out_result(json_t *id, json_t *result)
{
	json_t	*m = envelope(id);

	if (result == NULL || json_object_set_new(m, "result", result) == -1)
		fatalx("out_result: out of memory");
	send_msg(m);
}

void
out_error(json_t *id, int code, const char *fmt, ...)
{
	va_list	 ap;
	char	 text[512], clean[512];
	json_t	*m = envelope(id), *e;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/*
	 * A message cut in the middle of a character is no JSON string:
	 * the cleaning drops what was cut (and control characters).
	 */
	jsonrpc_text_clean(clean, sizeof(clean), text, strlen(text));
	if ((e = json_pack("{s:i,s:s}", "code", code, "message", clean)) ==
	    NULL) {
		log_warnx("an error message was not UTF-8: sent without it");
		e = json_pack("{s:i,s:s}", "code", code, "message", "error");
	}
	if (e == NULL || json_object_set_new(m, "error", e) == -1)
		fatalx("out_error: out of memory");
	send_msg(m);
}

void
out_notify(const char *method, json_t *params)
{
	json_t	*m;

	m = json_pack("{s:s,s:s,s:o}", "jsonrpc", "2.0", "method", method,
	    "params", params);
	if (m == NULL)
		fatalx("out_notify: out of memory");
	send_msg(m);
}
