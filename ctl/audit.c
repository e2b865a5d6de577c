/*
 * gatewayctl audit head, audit verify and audit show: run here, on the log's files,
 * not in the executor.  An operator who can read the state directory (or
 * a copy of the log shipped elsewhere) verifies with the daemon down, and
 * a compromised executor cannot answer for its own log.  The executor's
 * public key is the kept head's (--head), else --key, else audit.pub
 * beside the log; the executor checks the log the same way at start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "common/auditchain.h"
#include "common/timearg.h"
#include "common/util.h"
#include "ctl/ctl.h"

#define DEFAULT_LOG	"/var/lib/toolgate/audit.log"

static __attribute__((noreturn)) void
audit_usage(void)
{
	fprintf(stderr, "usage: gatewayctl audit head [--log PATH]\n"
	    "       gatewayctl audit verify [--log PATH] [--head FILE]"
	    " [--key HEX]\n"
	    "       gatewayctl audit show [--run RUN_ID] [--tool TOOL]"
	    " [--since TIME] [--json] [--log PATH]\n");
	exit(2);
}

/* The whole of a small file (a head, a key), NUL-terminated. */
static char *
slurp(const char *path, size_t *lenp)
{
	FILE	*f;
	char	*buf;
	size_t	 n;

	if ((f = fopen(path, "re")) == NULL)
		return NULL;
	buf = calloc(1, AUDIT_LINE_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, AUDIT_LINE_MAX, f);
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	*lenp = n;
	return buf;
}

static int
key_hex(const char *hex, size_t len, unsigned char *key)
{
	size_t	got;

	return sodium_hex2bin(key, 32, hex, len, NULL, &got, NULL) == 0 &&
	    got == 32 ? 0 : -1;
}

/* The key audit.pub beside the log names; -1 when there is none. */
static int
key_beside(const char *log, unsigned char *key)
{
	char	path[4200], *slash, *text;
	size_t	len;
	int	rc;

	snprintf(path, sizeof(path), "%s", log);
	if ((slash = strrchr(path, '/')) != NULL)
		slash[1] = '\0';
	else
		path[0] = '\0';
	strncat(path, "audit.pub", sizeof(path) - strlen(path) - 1);
	if ((text = slurp(path, &len)) == NULL)
		return -1;
	rc = key_hex(text, len, key);
	free(text);
	return rc;
}

/* What audit show keeps, and what it has seen. */
struct show {
	const char	*run, *tool;
	uint64_t	 since_ms;
	int		 json;
	uint64_t	 shown, bad;
};

static const char *
member(json_t *o, const char *key)
{
	json_t	*v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* At most w bytes of s, "-" for none. */
static void
cell(const char *s, int w)
{
	printf("%-*.*s ", w, w, s != NULL ? s : "-");
}

static void
show_row(json_t *o)
{
	json_t		*ts = json_object_get(o, "ts_ms");
	const char	*why, *outcome;
	char		 when[32], who[64], seq[24];
	time_t		 t;
	struct tm	 tm;

	t = (time_t)(json_integer_value(ts) / 1000);
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "-");
	snprintf(seq, sizeof(seq), "%lld",
	    (long long)json_integer_value(json_object_get(o, "seq")));
	if ((why = member(o, "stop_reason")) == NULL)
		why = member(o, "error");
	outcome = member(o, "outcome");
	if (json_is_true(json_object_get(o, "replayed")))
		outcome = "replayed";
	if (member(o, "approver") != NULL)
		snprintf(who, sizeof(who), "%s", member(o, "approver"));
	else if (member(o, "reported_by") != NULL)
		snprintf(who, sizeof(who), "(%s)", member(o, "reported_by"));
	else
		snprintf(who, sizeof(who), "-");
	cell(seq, 8);
	cell(when, 20);
	cell(member(o, "event"), 10);
	cell(member(o, "tenant"), 10);
	cell(member(o, "run_id"), 16);
	cell(member(o, "tool"), 20);
	cell(member(o, "decision"), 9);
	cell(why, 18);
	cell(outcome, 8);
	printf("%s\n", who);
}

static void
show_line(void *arg, const char *line, size_t len)
{
	struct show	*sh = arg;
	json_t		*o, *ts;
	const char	*ev;

	if ((o = json_loadb(line, len, 0, NULL)) == NULL ||
	    !json_is_object(o)) {
		sh->bad++;
		json_decref(o);
		return;
	}
	ev = member(o, "event");
	ts = json_object_get(o, "ts_ms");
	/* Heads are the chain's, not anyone's doing: verify shows them. */
	if ((ev != NULL && strcmp(ev, "head") == 0) ||
	    (sh->run != NULL && (member(o, "run_id") == NULL ||
	    strcmp(member(o, "run_id"), sh->run) != 0)) ||
	    (sh->tool != NULL && (member(o, "tool") == NULL ||
	    strcmp(member(o, "tool"), sh->tool) != 0)) ||
	    (sh->since_ms > 0 && (!json_is_integer(ts) ||
	    (uint64_t)json_integer_value(ts) < sh->since_ms))) {
		json_decref(o);
		return;
	}
	if (sh->json)
		printf("%.*s\n", (int)len, line);
	else {
		if (sh->shown == 0)
			printf("%-8s %-20s %-10s %-10s %-16s %-20s %-9s %-18s"
			    " %-8s %s\n", "SEQ", "TIME", "EVENT", "TENANT",
			    "RUN", "TOOL", "DECISION", "REASON", "OUTCOME",
			    "BY");
		show_row(o);
	}
	sh->shown++;
	json_decref(o);
}

static __attribute__((noreturn)) void
show_bad(const char *flag, const char *what)
{
	fprintf(stderr, "gatewayctl: audit show: %s: %s\n", flag, what);
	exit(2);
}

/*
 * gatewayctl audit show: the records of the log and its rotated files,
 * oldest first, those of a run, a tool, since a time; a table, or the
 * lines themselves (JSON Lines) with --json.
 */
static int
audit_show(int argc, char **argv, int json)
{
	struct show	 sh;
	const char	*log = DEFAULT_LOG, *why;
	char		 msg[4400];
	int		 i;

	memset(&sh, 0, sizeof(sh));
	sh.json = json;
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			sh.json = 1;
			continue;
		}
		if (strcmp(argv[i], "--run") != 0 &&
		    strcmp(argv[i], "--tool") != 0 &&
		    strcmp(argv[i], "--since") != 0 &&
		    strcmp(argv[i], "--log") != 0)
			show_bad(argv[i], "not an option of audit show");
		if (i + 1 == argc)
			show_bad(argv[i], "a value is needed");
		if (strcmp(argv[i], "--run") == 0 && sh.run == NULL)
			sh.run = argv[i + 1];
		else if (strcmp(argv[i], "--tool") == 0 && sh.tool == NULL)
			sh.tool = argv[i + 1];
		else if (strcmp(argv[i], "--log") == 0)
			log = argv[i + 1];
		else if (strcmp(argv[i], "--since") == 0 && sh.since_ms == 0) {
			if (timearg_parse(argv[i + 1], now_ms(), &sh.since_ms,
			    &why) == -1)
				show_bad("--since", why);
			/* The epoch itself: every record, as no --since. */
		} else
			show_bad(argv[i], "given twice");
		if (argv[i + 1][0] == '\0')
			show_bad(argv[i], "empty");
		i++;
	}
	if (auditchain_each_line(log, show_line, &sh, msg, sizeof(msg)) ==
	    -1) {
		fprintf(stderr, "gatewayctl: %s\n", msg);
		return 1;
	}
	if (sh.bad > 0) {
		fprintf(stderr, "gatewayctl: %llu lines of %s are not JSON"
		    " objects: gatewayctl audit verify says where\n",
		    (unsigned long long)sh.bad, log);
		return 1;
	}
	return 0;
}

/* audit head: the latest signed head of the log, as JSON. */
static int
audit_head(const char *log)
{
	struct audithead	 kept;
	char			*out;

	memset(&kept, 0, sizeof(kept));
	if (auditchain_last_head(log, &kept) == -1) {
		fprintf(stderr, "gatewayctl: %s: no signed head\n", log);
		return 1;
	}
	if ((out = auditchain_head_json(&kept)) == NULL)
		return 1;
	fputs(out, stdout);
	free(out);
	return 0;
}

/*
 * audit verify: every link and signature of the log, and with headf that
 * it still reaches that kept head.  The key: keyhex, else the audit.pub
 * beside the log unless a kept head names its own.
 */
static int
audit_verify(const char *log, const char *headf, const char *keyhex,
    int json)
{
	struct audithead	 kept, *kp = NULL;
	unsigned char		 key[32], *keyp = NULL;
	const char		*why;
	char			 msg[1024], *text, *out;
	uint64_t		 lines, heads;
	size_t			 len;
	int			 rc;

	if (headf != NULL) {
		if ((text = slurp(headf, &len)) == NULL) {
			fprintf(stderr, "gatewayctl: %s: %s\n", headf,
			    strerror(errno));
			return 1;
		}
		rc = auditchain_head_parse(text, len, &kept, &why);
		free(text);
		if (rc == -1) {
			fprintf(stderr, "gatewayctl: %s: %s\n", headf, why);
			return 1;
		}
		kp = &kept;
	}
	if (keyhex != NULL) {
		if (key_hex(keyhex, strlen(keyhex), key) == -1) {
			fprintf(stderr, "gatewayctl: --key: not 64 hex digits\n");
			return 1;
		}
		keyp = key;
	} else if (kp == NULL && key_beside(log, key) == 0)
		keyp = key;
	rc = auditchain_verify_log(log, keyp, kp, msg, sizeof(msg), &lines,
	    &heads);
	if (json) {
		json_t	*o = json_pack("{s:b,s:I,s:I,s:s}", "ok", rc == 0,
		    "records", (json_int_t)lines, "heads", (json_int_t)heads,
		    "message", msg);

		if (o != NULL && (out = json_dumps(o, JSON_INDENT(2))) != NULL) {
			printf("%s\n", out);
			free(out);
		}
		json_decref(o);
	} else if (rc == 0)
		printf("%s\n", msg);
	else
		fprintf(stderr, "gatewayctl: %s\n", msg);
	return rc == 0 ? 0 : 1;
}

int
ctl_audit(int argc, char **argv, int json)
{
	const char	*log = DEFAULT_LOG, *headf = NULL, *keyhex = NULL;
	int		 i;

	if (argc >= 2 && strcmp(argv[1], "show") == 0)
		return audit_show(argc, argv, json);
	if (argc < 2 || (strcmp(argv[1], "head") != 0 &&
	    strcmp(argv[1], "verify") != 0))
		audit_usage();
	for (i = 2; i < argc; i += 2) {
		if (i + 1 == argc)
			audit_usage();
		if (strcmp(argv[i], "--log") == 0)
			log = argv[i + 1];
		else if (strcmp(argv[i], "--head") == 0 &&
		    strcmp(argv[1], "verify") == 0)
			headf = argv[i + 1];
		else if (strcmp(argv[i], "--key") == 0 &&
		    strcmp(argv[1], "verify") == 0)
			keyhex = argv[i + 1];
		else
			audit_usage();
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "gatewayctl: sodium_init failed\n");
		return 1;
	}
	if (strcmp(argv[1], "head") == 0)
		return audit_head(log);
	return audit_verify(log, headf, keyhex, json);
}
