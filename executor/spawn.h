/*
 * Starting a child program the way every backend that runs one does
 * (exec tools in toolrun.c, MCP servers in mcpserver.c): as a chosen
 * user, in its own process group, with exactly the environment given,
 * default signal dispositions, stdin/stdout/stderr on pipes and, when
 * given, a credential on fd 3; nothing else inherited.
 */
#ifndef TG_SPAWN_H
#define TG_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#define SPAWN_PATH	"PATH=/usr/local/bin:/usr/bin:/bin"
#define SPAWN_CREDFD	3

/* Who the child runs as: set, or the executor's own ids. */
struct runas {
	int	set;
	uid_t	uid;
	gid_t	gid;
};

/* A started child: its pid (= its process group) and our pipe ends. */
struct spawned {
	pid_t	pid;
	int	fd_in;		/* its stdin */
	int	fd_out;		/* its stdout */
	int	fd_err;		/* its stderr */
};

/*
 * Look 'user' up now, in the executor: the child only switches.  NULL
 * leaves ras unset.  -1 with "cannot start WHAT: no user USER" in msg.
 */
int	spawn_runas(const char *user, const char *what, struct runas *ras,
	    char *msg, size_t msglen);

/*
 * Fork and exec argv[0] (absolute) with envp; credfd (or -1) goes on fd 3.
 * 0 with sp filled (our pipe ends non-blocking, close-on-exec), or -1
 * with "cannot start/execute PATH: why" in msg when it did not start (a
 * failed exec has been reaped already).  'label' names it in the log.
 */
int	spawn_child(const char *label, const struct runas *ras,
	    char *const argv[], char *const envp[], int credfd,
	    struct spawned *sp, char *msg, size_t msglen);

/*
 * Children that their module reaps itself and that live on between
 * tool runs (MCP servers): toolrun's stray sweep, which kills and reaps
 * any other child that is not a running tool, leaves them alone until
 * spawn_release().
 */
/*
 * kill(2) of a child or its process group (-pid) started as any user,
 * with or without CAP_KILL: 0, or -1 with errno.
 */
int	spawn_kill(pid_t target, int sig);

/* Free an environment built for spawn_child (NULL-terminated, malloc'ed). */
void	spawn_env_free(char **envp);
void	spawn_keep(pid_t);
void	spawn_release(pid_t);
int	spawn_is_kept(pid_t);

#endif
