#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/util.h"

int
file_sha256_hex(const char *path, char out[65])
{
	crypto_hash_sha256_state	st;
	unsigned char			buf[8192], h[crypto_hash_sha256_BYTES];
	ssize_t				n;
	int				fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	crypto_hash_sha256_init(&st);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		crypto_hash_sha256_update(&st, buf, (size_t)n);
	}
	close(fd);
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(out, 65, h, sizeof(h));
	return 0;
}

static int
lower_hex(const char *s, size_t n, int nonzero)
{
	size_t	 i;
	int	 any = 0;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
		any |= s[i] != '0';
	}
	return !nonzero || any;
}

/*
 * Only version 00, which is all there is: a later version may add fields
 * we would pass on without knowing them.  It goes into an HTTP header and
 * the audit log, so nothing else gets through.
 */
int
traceparent_valid(const char *s, size_t len)
{
	return len == TRACEPARENT_LEN && s[0] == '0' && s[1] == '0' &&
	    s[2] == '-' && lower_hex(s + 3, 32, 1) && s[35] == '-' &&
	    lower_hex(s + 36, 16, 1) && s[52] == '-' &&
	    lower_hex(s + 53, 2, 0);
}

uint64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
be64_put(void *buf, uint64_t v)
{
	unsigned char	*p = buf;
	int		 i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

uint64_t
be64_get(const void *buf)
{
	const unsigned char	*p = buf;
	uint64_t		 v = 0;
	int			 i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

uint64_t
mono_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
peer_cred(int fd, uid_t *uid, gid_t *gid, pid_t *pid)
{
	struct ucred	cr;
	socklen_t	len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == -1)
		return -1;
	*uid = cr.uid;
	*gid = cr.gid;
	*pid = cr.pid;
	return 0;
}

/*
 * Whether the socket at sun may be replaced: only when nobody answers on
 * it.  Unlinking a live server's socket would let two of us serve the same
 * path (and run the same write twice).  A full backlog (EAGAIN) is a live
 * server too, and any other error is taken as one: fail closed.
 */
static int
unix_stale(const struct sockaddr_un *sun, char *err, size_t errlen)
{
	int	fd, rc, saved;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	saved = errno;
	close(fd);
	if (rc == -1 && (saved == ECONNREFUSED || saved == ENOENT))
		return 0;
	if (rc == 0 || saved == EAGAIN || saved == EINPROGRESS)
		snprintf(err, errlen, "%s: a server is answering on it"
		    " (another gatewayd?)", sun->sun_path);
	else
		snprintf(err, errlen, "%s: cannot tell whether a server"
		    " answers on it: %s", sun->sun_path, strerror(saved));
	return -1;
}

int
unix_listen(const char *path, mode_t mode, char *err, size_t errlen)
{
	struct sockaddr_un	sun;
	struct stat		st;
	mode_t			old;
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -1;
	}
	strncpy(sun.sun_path, path, sizeof(sun.sun_path) - 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s: exists and is not a socket",
			    path);
			return -1;
		}
		if (unix_stale(&sun, err, errlen) == -1)
			return -1;
		if (unlink(path) == -1 && errno != ENOENT) {
			snprintf(err, errlen, "%s: unlink: %s", path,
			    strerror(errno));
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* Bind under a tight umask, then open up exactly as asked. */
	old = umask(0077);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		snprintf(err, errlen, "%s: bind: %s", path, strerror(errno));
		umask(old);
		close(fd);
		return -1;
	}
	umask(old);
	if (chmod(path, mode) == -1 || listen(fd, 128) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
mkdir_p(const char *path, mode_t mode)
{
	char	tmp[4096], *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}
