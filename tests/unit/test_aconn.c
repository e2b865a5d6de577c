/*
 * toolgate-mcp's connection to the gate (bridge/agent.c) against a
 * listening socket this test owns: the gate's refusal at accept is what
 * the call is answered with, even when the request's write fails first
 * (EPIPE, the gate having closed) and the refusal is still unread.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <msgpack.h>

#include "common/frame.h"
#include "bridge/bridge.h"
#include "tests/unit/test.h"

/* What toolgate-mcp.c defines for the bridge's files. */
struct options		 opts;
struct event_base	*base;

struct outcome {
	int	done;
	char	why[400];
};

static void
on_answer(void *arg, const msgpack_object *ans, const char *why)
{
	struct outcome	*o = arg;

	o->done = 1;
	snprintf(o->why, sizeof(o->why), "%s", ans != NULL ? "an answer" :
	    why);
}

static int
listen_at(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -1;
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, 8) == -1)
		return -1;
	return fd;
}

/* The gate's refusal at accept, as gatewayd sends it: one frame. */
static void
refuse(int lfd)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	unsigned char	 hdr[FRAME_HDR];
	int		 fd;

	if ((fd = accept(lfd, NULL, NULL)) == -1)
		return;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "status", 6);
	msgpack_pack_str_with_body(&pk, "error", 5);
	msgpack_pack_str_with_body(&pk, "error", 5);
	msgpack_pack_str_with_body(&pk, "unavailable", 11);
	msgpack_pack_str_with_body(&pk, "message", 7);
	msgpack_pack_str_with_body(&pk, "too many (cap)", 14);
	frame_put_len(hdr, (uint32_t)sb.size);
	(void)send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL);
	(void)send(fd, sb.data, sb.size, MSG_NOSIGNAL);
	msgpack_sbuffer_destroy(&sb);
	close(fd);
}

/*
 * The gate accepts, answers and closes before the request is written:
 * the write fails with EPIPE while the refusal waits in the socket.
 * Either order of the two events must end in the refusal.
 */
static void
test_refusal_before_the_write(void)
{
	char		 dir[] = "/tmp/test_aconn.XXXXXX";
	char		 path[128], err[256];
	struct outcome	 o;
	struct aconn	*ac;
	json_t		*args;
	int		 lfd, i, rounds;

	ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/agent.sock", dir);
	opts.socket = path;
	snprintf(opts.run_id, sizeof(opts.run_id), "run-1");
	ASSERT((lfd = listen_at(path)) != -1);
	for (i = 0; i < 20; i++) {
		memset(&o, 0, sizeof(o));
		ac = aconn_open(on_answer, &o, err, sizeof(err));
		ASSERT(ac != NULL);
		refuse(lfd);
		args = json_object();
		ASSERT_EQ_INT(aconn_call(ac, "t.read", args, err,
		    sizeof(err)), 0);
		json_decref(args);
		for (rounds = 0; !o.done && rounds < 100; rounds++)
			event_base_loop(base, EVLOOP_ONCE);
		aconn_free(ac);
		ASSERT(o.done);
		if (strstr(o.why, "too many (cap)") == NULL)
			fprintf(stderr, "round %d: %s\n", i, o.why);
		ASSERT(strstr(o.why, "too many (cap)") != NULL);
	}
	close(lfd);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		return 1;
	RUN(test_refusal_before_the_write);
	event_base_free(base);
	return tests_failed != 0;
}
