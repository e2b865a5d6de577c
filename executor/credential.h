/*
 * Scoped credentials: CREDENTIALS_DIR/TENANT/ENV/NAME, where NAME is a
 * catalog tool (exec, http) or an MCP server (scope tenant_env).  Every
 * backend finds them here, the same way.
 */
#ifndef TG_CREDENTIAL_H
#define TG_CREDENTIAL_H

#include <stddef.h>

/* The largest credential credential_read() accepts. */
#define CREDENTIAL_MAX	65536

/*
 * Open the credential of NAME for tenant and env.  Sets *fdp to the
 * descriptor, or to -1 when there is no such file (or dir is NULL).  Any
 * other problem is -1 with msg set for the agent and the details logged:
 * a tool must not run without the credential it was given.
 */
int	credential_open(const char *dir, const char *tenant, const char *env,
	    const char *name, int *fdp, char *msg, size_t msglen);

/*
 * The same credential as a string, for a header or an environment
 * variable: one line, trailing newlines and spaces removed, no control
 * characters.  *valp is NULL when there is no such file; free it.
 */
int	credential_read(const char *dir, const char *tenant, const char *env,
	    const char *name, char **valp, char *msg, size_t msglen);

#endif
