/*
 * An LD_PRELOAD shim for tests: fdatasync(2) of a file whose name ends in
 * "audit.log" fails with EIO while the file named by $FAILSYNC_TRIGGER
 * exists.  Every other fdatasync (the LMDB store's) goes through.  This is
 * how a disk that takes a write and then fails its sync is made on demand.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int	fdatasync(int);

int
fdatasync(int fd)
{
	static int	(*real)(int);
	const char	*trigger = getenv("FAILSYNC_TRIGGER");
	char		 link[64], path[4096];
	ssize_t		 n;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "fdatasync");
	if (trigger != NULL && access(trigger, F_OK) == 0) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, path, sizeof(path) - 1);
		if (n >= 9 && memcmp(path + n - 9, "audit.log", 9) == 0) {
			errno = EIO;
			return -1;
		}
	}
	return real(fd);
}
