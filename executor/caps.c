/*
 * The executor's capabilities.  Started as root, it stays uid 0 (it owns
 * the state dir and the credentials) but keeps only the capabilities its
 * config needs, dropped from the bounding, permitted, effective and
 * inheritable sets (and the ambient set cleared), so neither it nor
 * anything it starts can use the rest.  The raw capset(2) and prctl(2)
 * calls: no libcap for this.
 *
 * What needs a capability:
 * - CAP_SETUID, CAP_SETGID: starting a tool program or an MCP server as
 *   its user (tool_user by default; never root, config_check.c), and
 *   spawn_kill()'s kill as that user (spawn.c), which sets our effective
 *   uid for the call and back (the effective set comes back from the
 *   permitted one).  Only when the config has an exec tool or an MCP
 *   server: HTTP tools run in-process.
 * Not needed: CAP_KILL (spawn_kill signals as the tool's uid),
 * CAP_DAC_OVERRIDE and CAP_CHOWN (the state dir, the control socket and
 * the credentials are root's own, or refused: statedir.c, credpath.c),
 * CAP_SYS_RESOURCE (RLIMIT_NOFILE is raised to its hard limit only).
 * Under systemd, CapabilityBoundingSet= bounds what is there to keep.
 */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "executor/caps.h"

static uint64_t
caps_needed(const struct config *c)
{
	size_t	i;

	if (c->nmcp_servers > 0)
		return (1ULL << CAP_SETUID) | (1ULL << CAP_SETGID);
	for (i = 0; i < c->ncatalog; i++)
		if (c->catalog[i].backend == TB_EXEC)
			return (1ULL << CAP_SETUID) | (1ULL << CAP_SETGID);
	return 0;
}

static void
caps_get(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct	h;

	memset(&h, 0, sizeof(h));
	h.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capget, &h, d) == -1)
		fatal("capget");
}

void
caps_drop(const struct config *c)
{
	struct __user_cap_header_struct	h;
	struct __user_cap_data_struct	d[2];
	uint64_t			keep, prm;
	char				names[64];
	int				cap;

	if (geteuid() != 0)
		return;		/* development mode: nothing to drop */
	caps_get(d);
	prm = (uint64_t)d[0].permitted | (uint64_t)d[1].permitted << 32;
	/* What systemd or our parent did not give cannot be kept. */
	keep = caps_needed(c) & prm;

	/* The bounding set first: it takes CAP_SETPCAP, dropped below. */
	for (cap = 0; cap < 64; cap++) {
		if (keep & (1ULL << cap))
			continue;
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 1)
			continue;	/* not there, or past the last one */
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1)
			fatal("PR_CAPBSET_DROP %d", cap);
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 &&
	    errno != EINVAL)
		fatal("PR_CAP_AMBIENT_CLEAR_ALL");

	memset(&h, 0, sizeof(h));
	memset(d, 0, sizeof(d));
	h.version = _LINUX_CAPABILITY_VERSION_3;
	d[0].effective = d[0].permitted = (uint32_t)keep;
	d[1].effective = d[1].permitted = (uint32_t)(keep >> 32);
	if (syscall(SYS_capset, &h, d) == -1)
		fatal("capset");

	/* Trust, but verify. */
	caps_get(d);
	if (((uint64_t)d[0].permitted | (uint64_t)d[1].permitted << 32) !=
	    keep || ((uint64_t)d[0].effective |
	    (uint64_t)d[1].effective << 32) != keep ||
	    d[0].inheritable != 0 || d[1].inheritable != 0)
		fatalx("capabilities: not what was set");

	snprintf(names, sizeof(names), "%s",
	    keep == 0 ? "none" : "CAP_SETUID CAP_SETGID (tools run as their"
	    " user)");
	log_info("capabilities: kept %s; every other one dropped from the"
	    " bounding set", names);
}
