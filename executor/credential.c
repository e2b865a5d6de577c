/*
 * Scoped credentials (credential.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/credpath.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "executor/credential.h"

/*
 * A path component from the config must not climb out of the
 * credentials directory.
 */
static int
component_ok(const char *s)
{
	return s != NULL && *s != '\0' && strcmp(s, ".") != 0 &&
	    strcmp(s, "..") != 0 && strchr(s, '/') == NULL;
}

int
credential_open(const char *dir, const char *tenant, const char *env,
    const char *name, int *fdp, char *msg, size_t msglen)
{
	char		 path[PATH_MAX];
	const char	*comp[3] = { tenant, env, name }, *why = NULL;
	struct stat	 sb;
	int		 fd;

	*fdp = -1;
	if (dir == NULL)
		return 0;
	if (!component_ok(tenant) || !component_ok(env) ||
	    !component_ok(name)) {
		log_warnx("%s: no credential path for tenant \"%s\" env \"%s\"",
		    name ? name : "", tenant ? tenant : "", env ? env : "");
		snprintf(msg, msglen, "cannot look up the tool's credential");
		return -1;
	}
	/* In systemd's flat directory: ID_TENANT_ENV_NAME (credpath.h). */
	if (credpath(path, sizeof(path), dir, comp, 3, &why) == -1) {
		log_warnx("%s: credential of tenant \"%s\" env \"%s\": %s",
		    name, tenant, env, why);
		snprintf(msg, msglen, "cannot look up the tool's credential");
		return -1;
	}

	/*
	 * O_NONBLOCK so that a FIFO planted there cannot hang the executor;
	 * it is refused below and cleared for the regular file we accept.
	 */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1) {
		if (errno == ENOENT)
			return 0;
		log_warn("%s: credential %s", name, path);
		snprintf(msg, msglen, "cannot open the tool's credential");
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    fcntl(fd, F_SETFL, 0) == -1) {
		log_warnx("%s: credential %s is not a readable regular file",
		    name, path);
		snprintf(msg, msglen, "cannot open the tool's credential");
		close(fd);
		return -1;
	}
	*fdp = fd;
	return 0;
}

int
credential_read(const char *dir, const char *tenant, const char *env,
    const char *name, char **valp, char *msg, size_t msglen)
{
	char		*buf;
	size_t		 len = 0, i;
	ssize_t		 n;
	int		 fd;

	*valp = NULL;
	if (credential_open(dir, tenant, env, name, &fd, msg, msglen) == -1)
		return -1;
	if (fd == -1)
		return 0;
	buf = xmalloc(CREDENTIAL_MAX + 1);
	for (;;) {
		n = read(fd, buf + len, CREDENTIAL_MAX + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > CREDENTIAL_MAX)
			break;
	}
	close(fd);
	if (n == -1 || len > CREDENTIAL_MAX) {
		log_warnx("%s: credential for %s/%s: %s", name, tenant, env,
		    n == -1 ? strerror(errno) : "too large");
		snprintf(msg, msglen, "cannot read the tool's credential");
		free(buf);
		return -1;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
	    buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	/* A header or a variable: a newline or a NUL inside would split it. */
	for (i = 0; i < len; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
			log_warnx("%s: credential for %s/%s holds a control "
			    "character", name, tenant, env);
			snprintf(msg, msglen, "cannot use the tool's "
			    "credential");
			free(buf);
			return -1;
		}
	*valp = buf;
	return 0;
}
