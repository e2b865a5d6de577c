/*
 * toolgate-mcp [-s AGENT_SOCKET] [--run-id ID] [--approval-wait-ms N]
 *     [--raw-names] [-v]
 *
 * An MCP server on stdin/stdout (CONTRACT.md, "Agents that speak MCP"),
 * started by an MCP client as the agent's own user; see bridge.h for
 * the files.  Here: the options, stdin (read in pieces into lines,
 * paused while answers wait to be written), the loop, and the end: at
 * the end of stdin the bridge finishes what is in flight, writes it,
 * and exits.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "bridge/bridge.h"

#define DEFAULT_SOCKET		"/run/toolgate/agent.sock"
#define DEFAULT_WAIT_MS		30000
#define MAX_WAIT_MS		(24ull * 3600 * 1000)
#define RUN_ID_MAX		256
/* The reader pauses while this much output waits, and goes on below. */
#define OUT_HIGH		(8u << 20)
#define OUT_LOW			(1u << 20)

struct options		 opts;
struct event_base	*base;

static struct linebuf	 lines;
static struct event	*ev_in;
static int		 in_eof, in_paused, started;

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr, "usage: toolgate-mcp [-s AGENT_SOCKET] [--run-id ID]"
	    " [--approval-wait-ms N] [--raw-names] [-v]\n");
	exit(2);
}

/* A run of our own: "mcp-" and 32 hex digits from the kernel. */
static void
fresh_run_id(char *out, size_t outlen)
{
	unsigned char	r[16];
	size_t		i;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		fatal("getrandom");
	snprintf(out, outlen, "mcp-");
	for (i = 0; i < sizeof(r); i++)
		snprintf(out + 4 + 2 * i, outlen - 4 - 2 * i, "%02x", r[i]);
}

void
bridge_check(void)
{
	if (in_paused && out_pending() < OUT_LOW) {
		in_paused = 0;
		event_add(ev_in, NULL);
	}
	if (in_eof && TAILQ_EMPTY(&inflight) && out_pending() == 0) {
		log_debug("stdin closed and nothing left to do: exiting");
		exit(0);
	}
}

static void
stdin_readable(int fd, short what, void *arg)
{
	char	buf[65536];
	ssize_t	n;

	(void)what;
	(void)arg;
	n = read(fd, buf, sizeof(buf));
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (n == -1)
			log_warn("stdin");
		event_del(ev_in);
		linebuf_eof(&lines, methods_line, NULL);
		linebuf_free(&lines);
		in_eof = 1;
		bridge_check();
		return;
	}
	linebuf_feed(&lines, buf, (size_t)n, methods_line, NULL);
	if (out_pending() > OUT_HIGH) {
		in_paused = 1;
		event_del(ev_in);
	}
}

static void
on_signal(int sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	log_info("signal %d: exiting (running reads end with us; a write"
	    " the gate admitted runs to its end)", sig);
	exit(0);
}

/* The first tools answer: names that cannot be shown refuse the start. */
static void
tools_ready(void *arg, const char *err)
{
	(void)arg;
	if (err != NULL)
		fatalx("not starting: %s", err);
	log_info("run %s: %zu tools; serving MCP on stdin/stdout", opts.run_id,
	    tools.n);
	started = 1;
	event_add(ev_in, NULL);
}

static void
parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "run-id", required_argument, NULL, 'r' },
		{ "approval-wait-ms", required_argument, NULL, 'w' },
		{ "raw-names", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	unsigned long long	 ms;
	char			*end;
	int			 ch, verbose = 0;

	opts.socket = DEFAULT_SOCKET;
	opts.approval_wait_ms = DEFAULT_WAIT_MS;
	while ((ch = getopt_long(argc, argv, "s:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			opts.socket = optarg;
			break;
		case 'r':
			if (optarg[0] == '\0' || strlen(optarg) > RUN_ID_MAX) {
				fprintf(stderr, "toolgate-mcp: --run-id: 1 to"
				    " %d bytes\n", RUN_ID_MAX);
				exit(2);
			}
			snprintf(opts.run_id, sizeof(opts.run_id), "%s",
			    optarg);
			break;
		case 'w':
			errno = 0;
			ms = strtoull(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || optarg[0] == '-' ||
			    optarg[0] == '\0' || ms > MAX_WAIT_MS) {
				fprintf(stderr, "toolgate-mcp: --approval-wait-ms:"
				    " 0 to %llu\n", MAX_WAIT_MS);
				exit(2);
			}
			opts.approval_wait_ms = ms;
			break;
		case 'n':
			opts.raw_names = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	/* stdout is the protocol: every word of ours goes to stderr. */
	log_init(BRIDGE_NAME, 1, verbose);
	if (opts.run_id[0] == '\0')
		fresh_run_id(opts.run_id, sizeof(opts.run_id));
}

int
main(int argc, char *argv[])
{
	struct event_config	*cfg;
	struct event		*ev_term, *ev_int;

	parse_options(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Not epoll: stdin may be a regular file (toolgate-mcp < requests),
	 * which epoll refuses; poll takes it.  A handful of descriptors.
	 */
	if ((cfg = event_config_new()) == NULL ||
	    event_config_avoid_method(cfg, "epoll") == -1 ||
	    (base = event_base_new_with_config(cfg)) == NULL)
		fatalx("libevent: cannot make an event base");
	event_config_free(cfg);
	out_init();
	linebuf_init(&lines, BRIDGE_LINE_MAX);
	if ((ev_in = event_new(base, STDIN_FILENO, EV_READ | EV_PERSIST,
	    stdin_readable, NULL)) == NULL ||
	    (ev_term = evsignal_new(base, SIGTERM, on_signal, NULL)) == NULL ||
	    (ev_int = evsignal_new(base, SIGINT, on_signal, NULL)) == NULL ||
	    evsignal_add(ev_term, NULL) == -1 || evsignal_add(ev_int, NULL) == -1)
		fatalx("libevent: cannot make events");
	tools_fetch(tools_ready, NULL);
	event_base_dispatch(base);
	return started ? 0 : 1;
}
