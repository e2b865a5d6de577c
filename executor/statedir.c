/*
 * The state dir: who owns what is in it, and one executor at a time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/log.h"
#include "executor/statedir.h"

#define STATEDIR_LOCK		"lock"
#define STATEDIR_MAXDEPTH	8	/* db/ is one level down: plenty */

/*
 * Never closed: closing any descriptor of the lock file would drop the
 * POSIX lock, so nothing else in the executor opens that file.
 */
static int	statedir_lock_fd = -1;

static void
statedir_entry(const char *path, const struct stat *st, uid_t uid)
{
	if (S_ISLNK(st->st_mode))
		fatalx("%s: a symbolic link: refusing the state dir", path);
	if (st->st_uid != uid)
		fatalx("%s: owned by uid %u, not by the executor's uid %u:"
		    " refusing the state dir", path, (unsigned)st->st_uid,
		    (unsigned)uid);
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode) &&
	    !S_ISSOCK(st->st_mode))
		fatalx("%s: not a file or a directory: refusing the state dir",
		    path);
	/* A socket's mode only says who may connect: it holds no data. */
	if (!S_ISSOCK(st->st_mode) && (st->st_mode & (S_IWGRP | S_IWOTH)))
		fatalx("%s: writable by group or others: refusing the state"
		    " dir", path);
	/* A hard link made before we looked could point anywhere. */
	if (S_ISREG(st->st_mode) && st->st_nlink != 1)
		fatalx("%s: %ju hard links: refusing the state dir", path,
		    (uintmax_t)st->st_nlink);
}

/* Everything under the directory open on dfd, which this closes. */
static void
statedir_walk(int dfd, const char *path, uid_t uid, int depth)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	char		 sub[PATH_MAX];
	int		 fd;

	if (depth > STATEDIR_MAXDEPTH)
		fatalx("%s: nested too deep: refusing the state dir", path);
	if ((d = fdopendir(dfd)) == NULL)
		fatal("%s", path);
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >=
		    (int)sizeof(sub))
			fatalx("%s: path too long", path);
		if (fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1)
			fatal("%s", sub);
		statedir_entry(sub, &st, uid);
		if (!S_ISDIR(st.st_mode))
			continue;
		fd = openat(dirfd(d), de->d_name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1)
			fatal("%s", sub);
		statedir_walk(fd, sub, uid, depth + 1);
	}
	if (errno != 0)
		fatal("%s: readdir", path);
	closedir(d);
}

void
statedir_check(const char *dir)
{
	struct stat	st, fst;
	uid_t		uid = geteuid();
	int		fd;

	if (lstat(dir, &st) == -1)
		fatal("%s", dir);
	statedir_entry(dir, &st, uid);
	if (!S_ISDIR(st.st_mode))
		fatalx("%s: not a directory: refusing the state dir", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		fatal("%s", dir);
	/* The directory we open is the one we looked at. */
	if (fstat(fd, &fst) == -1)
		fatal("%s", dir);
	if (fst.st_dev != st.st_dev || fst.st_ino != st.st_ino)
		fatalx("%s: replaced while being checked", dir);
	statedir_walk(fd, dir, uid, 0);
}

void
statedir_lock(const char *dir)
{
	struct flock	fl;
	struct stat	st;
	char		path[PATH_MAX];
	int		fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, STATEDIR_LOCK) >=
	    (int)sizeof(path))
		fatalx("%s: path too long", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		fatal("%s", path);
	if (fstat(fd, &st) == -1)
		fatal("%s", path);
	statedir_entry(path, &st, geteuid());
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;		/* start 0, length 0: the whole file */
	if (fcntl(fd, F_SETLK, &fl) == 0) {
		statedir_lock_fd = fd;
		return;
	}
	if (errno != EACCES && errno != EAGAIN)
		fatal("%s: lock", path);
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
		fatalx("%s: held by pid %ld: another executor uses this state"
		    " dir", path, (long)fl.l_pid);
	fatalx("%s: held by another executor", path);
}
