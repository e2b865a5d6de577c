#include <sys/resource.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>

#include "common/fdlimit.h"
#include "common/log.h"

/* Scanned when /proc is not there (gatewayd's chroot). */
#define FDLIMIT_SCAN_MAX	65536

static size_t
fdlimit(int raise)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		fatal("getrlimit RLIMIT_NOFILE");
	if (raise && rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			fatal("setrlimit RLIMIT_NOFILE");
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > INT_MAX)
		return INT_MAX;
	return (size_t)rl.rlim_cur;
}

size_t
fdlimit_get(void)
{
	return fdlimit(0);
}

size_t
fdlimit_raise(void)
{
	return fdlimit(1);
}

size_t
fdlimit_open(size_t limit)
{
	struct dirent	*de;
	DIR		*d;
	size_t		 n = 0;
	int		 fd;

	if ((d = opendir("/proc/self/fd")) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				n++;
		closedir(d);
		return n > 0 ? n - 1 : 0;	/* less the directory's own */
	}
	/* At start what is open sits low: the kernel takes the lowest. */
	for (fd = 0; fd < FDLIMIT_SCAN_MAX && (size_t)fd < limit; fd++)
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			n++;
	return n;
}
