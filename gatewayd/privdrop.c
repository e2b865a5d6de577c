/*
 * Dropping privileges, the OpenSSH way: a network namespace of our own,
 * chroot to an empty directory, set groups, gid and uid, then prove the
 * old ids cannot be regained.
 * Every failure is fatal: a gatewayd that is not unprivileged must not run.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "gatewayd/gatewayd.h"

void
privdrop(const char *user, const char *chroot_dir)
{
	struct passwd	*pw;
	struct stat	 st;
	uid_t		 uid, ruid, euid, suid;
	gid_t		 gid, rgid, egid, sgid;

	if ((pw = getpwnam(user)) == NULL)
		fatalx("privdrop: no such user: %s", user);
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (uid == 0)
		fatalx("privdrop: user %s is root", user);

	/* The jail must be ours alone and empty of anything useful. */
	if (stat(chroot_dir, &st) == -1)
		fatal("privdrop: %s", chroot_dir);
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		fatalx("privdrop: %s must be a directory owned by root and"
		    " writable by nobody else", chroot_dir);
	/*
	 * Abstract Unix sockets have no path a chroot could hide: they live
	 * in the network namespace.  In a namespace of our own, gatewayd
	 * cannot connect to another process's (say, to pass the executor a
	 * socket whose peer is some other uid); the sockets we hold already
	 * (agent socket, socketpairs) keep working.  It takes CAP_SYS_ADMIN,
	 * which systemd/toolgate.service does not give (it would be the
	 * executor's for its whole life): there, EPERM says so and we go on
	 * without, as the chroot and the drop still hold.
	 */
	if (unshare(CLONE_NEWNET) == -1) {
		if (errno != EPERM)
			fatal("privdrop: unshare(CLONE_NEWNET)");
		log_info("privdrop: no network namespace of our own (no"
		    " CAP_SYS_ADMIN): abstract Unix sockets stay reachable");
	}
	if (chroot(chroot_dir) == -1 || chdir("/") == -1)
		fatal("privdrop: chroot %s", chroot_dir);

	if (setgroups(1, &gid) == -1)
		fatal("privdrop: setgroups");
	if (setresgid(gid, gid, gid) == -1)
		fatal("privdrop: setresgid");
	if (setresuid(uid, uid, uid) == -1)
		fatal("privdrop: setresuid");

	/* Trust, but verify: none of this may work any more. */
	if (getresuid(&ruid, &euid, &suid) == -1 ||
	    ruid != uid || euid != uid || suid != uid)
		fatalx("privdrop: uids are not all %u", (unsigned)uid);
	if (getresgid(&rgid, &egid, &sgid) == -1 ||
	    rgid != gid || egid != gid || sgid != gid)
		fatalx("privdrop: gids are not all %u", (unsigned)gid);
	if (setuid(0) != -1 || seteuid(0) != -1)
		fatalx("privdrop: root could be regained");
	if (setgid(0) != -1 || setegid(0) != -1)
		fatalx("privdrop: gid 0 could be regained");

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("privdrop: PR_SET_NO_NEW_PRIVS");
	/* No core dumps or ptrace by our own uid: memory holds agents' args. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("privdrop: PR_SET_DUMPABLE");
	log_info("privileges dropped to %s (uid %u gid %u), chroot %s", user,
	    (unsigned)uid, (unsigned)gid, chroot_dir);
}
