/*
 * gatewayctl audit head and audit verify: run here, on the log's files,
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

#include <jansson.h>
#include <sodium.h>

#include "common/auditchain.h"
#include "ctl/ctl.h"

#define DEFAULT_LOG	"/var/lib/toolgate/audit.log"

static __attribute__((noreturn)) void
audit_usage(void)
{
	fprintf(stderr, "usage: gatewayctl audit head [--log PATH]\n"
	    "       gatewayctl audit verify [--log PATH] [--head FILE]"
	    " [--key HEX]\n");
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

int
ctl_audit(int argc, char **argv, int json)
{
	struct audithead	 kept, *kp = NULL;
	unsigned char		 key[32], *keyp = NULL;
	const char		*log = DEFAULT_LOG, *headf = NULL, *keyhex = NULL;
	const char		*why;
	char			 msg[1024], *text, *out;
	uint64_t		 lines, heads;
	size_t			 len;
	int			 i, rc;

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
	if (strcmp(argv[1], "head") == 0) {
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
