/*
 * gatewayctl: the operator's tool.  One command per invocation, sent to
 * the executor's control socket as a msgpack map; the answer is printed
 * for a person, or as JSON with --json.  Exit 0 done, 1 refused or failed,
 * 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <msgpack.h>

#include "common/canon.h"
#include "common/frame.h"
#include "common/jsonmp.h"
#include "common/mpack.h"
#include "proto/proto.h"
#include "ctl/ctl.h"

#define DEFAULT_SOCKET	"/run/toolgate/control.sock"
/*
 * The largest answer we read.  The largest is "approval ID": its args in
 * full, as the msgpack the agent sent, so at most limits.max_frame (up to
 * 64 MiB), plus a few fields; a list is a page of items with their args
 * cut short.
 */
#define MAX_ANSWER	((64u << 20) + (1u << 20))
#define PAGE_MAX	1000

__attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr,
	    "usage: gatewayctl [-s SOCKET] [--json] COMMAND\n"
	    "commands:\n"
	    "  status\n"
	    "  writes disable | writes enable\n"
	    "  approvals [--limit N] [--after CURSOR]\n"
	    "  approval ID\n"
	    "  approve ID [--note TEXT]\n"
	    "  deny ID [--note TEXT]\n"
	    "  audit head [--log PATH]\n"
	    "  audit verify [--log PATH] [--head FILE] [--key HEX]\n"
	    "  audit show [--run RUN_ID] [--tool TOOL] [--since TIME]"
	    " [--log PATH]\n"
	    "  audit hash [--json] VALUE\n"
	    "  forensics RUN_ID [--tenant T]\n"
	    "  compensate RUN_ID [--tool T] [--tenant T] [--dry-run] [--wait S]\n"
	    "  ledger [--limit N] [--after CURSOR]\n"
	    "  resolve KEY done|failed\n"
	    "  keys rotate\n"
	    "  tools | tools accept TOOL\n"
	    "  mcp tools SERVER\n");
	exit(2);
}

/*
 * Turn the command line into a request map (struct request, ctl.h).
 */

/* A list's flags: [--limit N] [--after CURSOR], in any order. */
static void
page_opts(int argc, char **argv, struct request *r)
{
	char	*end;
	int	 i;

	for (i = 1; i < argc; i += 2) {
		if (i + 1 == argc)
			usage();
		if (strcmp(argv[i], "--limit") == 0 && r->limit == 0) {
			errno = 0;
			r->limit = strtoul(argv[i + 1], &end, 10);
			if (errno != 0 || *end != '\0' || argv[i + 1][0] == '-' ||
			    r->limit < 1 || r->limit > PAGE_MAX)
				usage();
		} else if (strcmp(argv[i], "--after") == 0 && r->v1 == NULL) {
			r->k1 = "after";
			r->v1 = argv[i + 1];
		} else
			usage();
	}
}

static const char *
note_opt(int argc, char **argv, int i, const char *flag)
{
	if (i == argc)
		return NULL;
	if (i + 2 == argc && strcmp(argv[i], flag) == 0)
		return argv[i + 1];
	usage();
}

static void
parse_command(int argc, char **argv, struct request *r)
{
	const char	*cmd = argv[0];

	memset(r, 0, sizeof(*r));
	if (strcmp(cmd, "status") == 0 && argc == 1)
		r->op = "status";
	else if (strcmp(cmd, "writes") == 0 && argc == 2 &&
	    strcmp(argv[1], "disable") == 0)
		r->op = "writes_disable";
	else if (strcmp(cmd, "writes") == 0 && argc == 2 &&
	    strcmp(argv[1], "enable") == 0)
		r->op = "writes_enable";
	else if (strcmp(cmd, "approvals") == 0) {
		r->op = "approvals";
		page_opts(argc, argv, r);
	} else if (strcmp(cmd, "approval") == 0 && argc == 2) {
		r->op = "approval";
		r->k1 = "approval_id";
		r->v1 = argv[1];
	}
	else if ((strcmp(cmd, "approve") == 0 || strcmp(cmd, "deny") == 0) &&
	    argc >= 2) {
		r->op = cmd;
		r->k1 = "approval_id";
		r->v1 = argv[1];
		r->k2 = "note";
		r->v2 = note_opt(argc, argv, 2, "--note");
	} else if (strcmp(cmd, "audit") == 0 && argc == 3 &&
	    strcmp(argv[1], "hash") == 0) {
		r->op = "audit_hash";
		r->k1 = "value";
		r->v1 = argv[2];
	} else if (strcmp(cmd, "audit") == 0 && argc == 4 &&
	    strcmp(argv[1], "hash") == 0 && strcmp(argv[2], "--json") == 0) {
		r->op = "audit_hash";
		r->k1 = "json";
		r->v1 = argv[3];
	} else if (strcmp(cmd, "forensics") == 0 ||
	    strcmp(cmd, "compensate") == 0)
		forensics_parse(argc, argv, r);
	else if (strcmp(cmd, "keys") == 0 && argc == 2 &&
	    strcmp(argv[1], "rotate") == 0)
		r->op = "keys_rotate";
	else if (strcmp(cmd, "ledger") == 0) {
		r->op = "ledger";
		page_opts(argc, argv, r);
	}
	else if (strcmp(cmd, "resolve") == 0 && argc == 3 &&
	    (strcmp(argv[2], "done") == 0 || strcmp(argv[2], "failed") == 0)) {
		r->op = "resolve";
		r->k1 = "key";
		r->v1 = argv[1];
		r->k2 = "outcome";
		r->v2 = argv[2];
	} else if (strcmp(cmd, "tools") == 0 && argc == 1)
		r->op = "tools";
	else if (strcmp(cmd, "tools") == 0 && argc == 3 &&
	    strcmp(argv[1], "accept") == 0) {
		r->op = "tools_accept";
		r->k1 = "tool";
		r->v1 = argv[2];
	} else if (strcmp(cmd, "mcp") == 0 && argc == 3 &&
	    strcmp(argv[1], "tools") == 0) {
		r->op = "mcp_tools";
		r->k1 = "server";
		r->v1 = argv[2];
	} else
		usage();
}

/* The answer is waited for 60 s, or wait_s and 10 more (compensate). */
static int
connect_to(const char *path, unsigned long wait_s)
{
	struct sockaddr_un	sun;
	struct timeval		tv = { 60, 0 };
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "gatewayctl: %s: path too long\n", path);
		exit(1);
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "gatewayctl: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	if (wait_s != 0)
		tv.tv_sec = (time_t)wait_s + 10;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static int
read_full(int fd, void *buf, size_t len)
{
	char	*p = buf;
	ssize_t	 n;

	while (len > 0) {
		n = read(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
write_full(int fd, const void *buf, size_t len)
{
	const char	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
print_value(const char *key, const msgpack_object *v)
{
	char	*j;

	if (v->type == MSGPACK_OBJECT_STR) {
		printf("%s: %.*s\n", key, (int)v->via.str.size, v->via.str.ptr);
		return;
	}
	if ((j = msgpack_to_json(v, v->type == MSGPACK_OBJECT_ARRAY ||
	    v->type == MSGPACK_OBJECT_MAP ? 2 : 0)) == NULL)
		return;
	printf("%s: %s\n", key, j);
	free(j);
}

/*
 * "approval ID" answers its args as the msgpack map they are (its size is
 * bounded by the agent's frame, JSON's is not): shown, like a list's, as
 * the canonical JSON string.  Returns 1 with the answer repacked into sb
 * (the caller destroys it), 0 when there is nothing to convert, -1 when
 * the args do not convert.
 */
static int
args_as_json(const msgpack_object *ans, msgpack_sbuffer *sb)
{
	const msgpack_object	*args = mp_get(ans, "args");
	struct canon_buf	 json = { NULL, 0, 0 };
	msgpack_packer		 pk;
	char			 err[128];
	uint32_t		 i;

	if (args == NULL || args->type != MSGPACK_OBJECT_MAP)
		return 0;
	if (canon_json(args, 1, &json, err, sizeof(err)) == -1) {
		fprintf(stderr, "gatewayctl: the args: %s\n", err);
		return -1;
	}
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, ans->via.map.size);
	for (i = 0; i < ans->via.map.size; i++) {
		msgpack_pack_object(&pk, ans->via.map.ptr[i].key);
		if (mp_streq(&ans->via.map.ptr[i].key, "args")) {
			msgpack_pack_str(&pk, json.len);
			msgpack_pack_str_body(&pk, json.data, json.len);
		} else
			msgpack_pack_object(&pk, ans->via.map.ptr[i].val);
	}
	canon_buf_free(&json);
	return 1;
}

static int
answer_ok(const msgpack_object *ans)
{
	const msgpack_object	*ok = mp_get(ans, "ok");

	return ok != NULL && ok->type == MSGPACK_OBJECT_BOOLEAN &&
	    ok->via.boolean;
}

/* Print the answer; returns the exit status. */
static int
print_answer(const msgpack_object *ans, int json)
{
	const msgpack_object	*ok = mp_get(ans, "ok");
	const msgpack_object	*err = mp_get(ans, "error");
	const msgpack_object	*items = mp_get(ans, "items");
	const msgpack_object	*next;
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	msgpack_unpacked	 u;
	uint32_t		 i, n = 0;
	char			 key[128], *j;

	if (ok == NULL || ok->type != MSGPACK_OBJECT_BOOLEAN || !ok->via.boolean) {
		if (err != NULL && err->type == MSGPACK_OBJECT_STR)
			fprintf(stderr, "gatewayctl: %.*s\n",
			    (int)err->via.str.size, err->via.str.ptr);
		else
			fprintf(stderr, "gatewayctl: refused\n");
		/* --json: every command prints JSON, a refusal too. */
		if (json && err != NULL && (j = msgpack_to_json(err, 0)) != NULL) {
			printf("{\"error\": %s}\n", j);
			free(j);
		}
		return 1;
	}
	if (json && items != NULL) {
		if ((j = msgpack_to_json(items, 2)) != NULL)
			printf("%s\n", j);
		free(j);
		/* stdout stays the array; where the next page starts: */
		if ((next = mp_get(ans, "next")) != NULL &&
		    next->type == MSGPACK_OBJECT_STR)
			fprintf(stderr, "next: %.*s\n", (int)next->via.str.size,
			    next->via.str.ptr);
		return 0;
	}
	if (json) {
		/* The answer without its "ok", as one JSON object. */
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		for (i = 0; i < ans->via.map.size; i++)
			if (!mp_streq(&ans->via.map.ptr[i].key, "ok"))
				n++;
		msgpack_pack_map(&pk, n);
		for (i = 0; i < ans->via.map.size; i++) {
			if (mp_streq(&ans->via.map.ptr[i].key, "ok"))
				continue;
			msgpack_pack_object(&pk, ans->via.map.ptr[i].key);
			msgpack_pack_object(&pk, ans->via.map.ptr[i].val);
		}
		msgpack_unpacked_init(&u);
		if (msgpack_unpack_next(&u, sb.data, sb.size, NULL) ==
		    MSGPACK_UNPACK_SUCCESS &&
		    (j = msgpack_to_json(&u.data, 2)) != NULL) {
			printf("%s\n", j);
			free(j);
		}
		msgpack_unpacked_destroy(&u);
		msgpack_sbuffer_destroy(&sb);
		return 0;
	}
	for (i = 0; i < ans->via.map.size; i++) {
		const msgpack_object_kv *kv = &ans->via.map.ptr[i];

		if (mp_streq(&kv->key, "ok") || kv->key.type != MSGPACK_OBJECT_STR)
			continue;
		snprintf(key, sizeof(key), "%.*s", (int)kv->key.via.str.size,
		    kv->key.via.str.ptr);
		print_value(key, &kv->val);
	}
	return 0;
}

/*
 * The catalog commands' answers print for a person in a form of their
 * own (ctl/tools.c); every other answer, and any with --json, as is.
 */
static int
print_for(const char *op, const msgpack_object *ans, int json)
{
	if (!json && answer_ok(ans) && strcmp(op, "tools") == 0)
		return print_tools(ans);
	if (!json && answer_ok(ans) && strcmp(op, "mcp_tools") == 0)
		return print_mcp_tools(ans);
	if (!json && answer_ok(ans) && strcmp(op, "forensics") == 0)
		return print_forensics(ans);
	if (!json && answer_ok(ans) && strcmp(op, "compensate") == 0)
		return print_compensate(ans);
	/* A compensation refused or failed exits 1, in JSON too. */
	if (answer_ok(ans) && strcmp(op, "compensate") == 0)
		return print_answer(ans, json) | compensate_rc(ans);
	return print_answer(ans, json);
}

/*
 * One request on the control socket and its answer frame's body (*n
 * bytes, to free), or NULL once the trouble is said on stderr.
 */
static char *
exchange(const char *sock, const char *frame, size_t len, uint32_t *n,
    unsigned long wait_s)
{
	unsigned char	 hdr[FRAME_HDR];
	char		*ans = NULL;
	int		 fd;

	/*
	 * The executor refuses a non-operator at accept and closes at once:
	 * the refusal may be waiting while our write fails, so read it.
	 */
	signal(SIGPIPE, SIG_IGN);
	fd = connect_to(sock, wait_s);
	if (write_full(fd, frame, len) == -1 && errno != EPIPE &&
	    errno != ECONNRESET) {
		fprintf(stderr, "gatewayctl: write: %s\n", strerror(errno));
		close(fd);
		return NULL;
	}
	if (read_full(fd, hdr, sizeof(hdr)) == -1) {
		fprintf(stderr, "gatewayctl: the executor closed the"
		    " connection without answering\n");
		close(fd);
		return NULL;
	}
	*n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | hdr[3];
	if (*n == 0 || *n > MAX_ANSWER || (ans = malloc(*n)) == NULL ||
	    read_full(fd, ans, *n) == -1) {
		fprintf(stderr, "gatewayctl: bad answer\n");
		free(ans);
		close(fd);
		return NULL;
	}
	close(fd);
	return ans;
}

/* The command's request map: op and the fields it was given. */
static void
pack_request(struct msgbuf *mb, const struct request *r)
{
	uint32_t	nf;

	msgbuf_init(mb);
	nf = 1 + (r->v1 != NULL) + (r->v2 != NULL) + (r->v3 != NULL) +
	    (r->limit != 0) + r->dry_run + (r->wait_s != 0);
	msgpack_pack_map(&mb->pk, nf);
	pk_kv_str(&mb->pk, "op", r->op);
	if (r->limit != 0)
		pk_kv_uint(&mb->pk, "limit", r->limit);
	if (r->v1 != NULL)
		pk_kv_str(&mb->pk, r->k1, r->v1);
	if (r->v2 != NULL)
		pk_kv_str(&mb->pk, r->k2, r->v2);
	if (r->v3 != NULL)
		pk_kv_str(&mb->pk, r->k3, r->v3);
	if (r->dry_run) {
		pk_str(&mb->pk, "dry_run");
		msgpack_pack_true(&mb->pk);
	}
	if (r->wait_s != 0)
		pk_kv_uint(&mb->pk, "wait_ms", r->wait_s * 1000);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 }
	};
	const char		*sock = DEFAULT_SOCKET;
	struct request		 r;
	struct msgbuf		 mb;
	msgpack_unpacked	 u, u2;
	msgpack_sbuffer		 sb;
	const char		*frame, *why;
	char			*ans;
	size_t			 len;
	uint32_t		 n;
	int			 ch, json = 0, rc;

	/* "+": options stop at the command, whose own flags follow it. */
	while ((ch = getopt_long(argc, argv, "+s:j", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': sock = optarg; break;
		case 'j': json = 1; break;
		default: usage();
		}
	}
	if (optind == argc)
		usage();
	/* Read from the log's files, not asked of the executor. */
	if (argc - optind >= 2 && strcmp(argv[optind], "audit") == 0 &&
	    (strcmp(argv[optind + 1], "head") == 0 ||
	    strcmp(argv[optind + 1], "verify") == 0 ||
	    strcmp(argv[optind + 1], "show") == 0))
		return ctl_audit(argc - optind, argv + optind, json);
	parse_command(argc - optind, argv + optind, &r);

	pack_request(&mb, &r);
	frame = msgbuf_finish(&mb, &len);

	ans = exchange(sock, frame, len, &n, r.wait_s);
	msgbuf_free(&mb);
	if (ans == NULL)
		return 1;
	if (frame_unpack_map(ans, n, &u, &why) == -1) {
		fprintf(stderr, "gatewayctl: bad answer: %s\n", why);
		return 1;
	}
	if ((rc = args_as_json(&u.data, &sb)) == 1) {
		msgpack_unpacked_init(&u2);
		if (msgpack_unpack_next(&u2, sb.data, sb.size, NULL) ==
		    MSGPACK_UNPACK_SUCCESS)
			rc = print_answer(&u2.data, json);
		else
			rc = 1;
		msgpack_unpacked_destroy(&u2);
		msgpack_sbuffer_destroy(&sb);
	} else if (rc == 0)
		rc = print_for(r.op, &u.data, json);
	else
		rc = 1;
	msgpack_unpacked_destroy(&u);
	free(ans);
	return rc;
}
