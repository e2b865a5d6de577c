/*
 * Tool admission (admit.h).  Tenants come from the config, so there are
 * few: a short list of the ones with tools running is enough.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "executor/executor.h"
#include "executor/fds.h"
#include "executor/admit.h"

struct tenant_runs {
	char		*tenant;
	size_t		 running;
};

static struct tenant_runs	*tenants;
static size_t			 ntenants, running;

static struct tenant_runs *
tenant_find(const char *tenant)
{
	size_t	i;

	for (i = 0; i < ntenants; i++)
		if (strcmp(tenants[i].tenant, tenant) == 0)
			return &tenants[i];
	return NULL;
}

int
admit_tool(const char *tenant, char *msg, size_t msglen)
{
	struct tenant_runs	*t = tenant_find(tenant);
	size_t			 mine = t != NULL ? t->running : 0;

	if (running >= ex->conf->max_tools) {
		snprintf(msg, msglen, "too many tools are running"
		    " (limits.max_tools is %llu): nothing was run, try again"
		    " later", (unsigned long long)ex->conf->max_tools);
		return -1;
	}
	if (mine >= ex->conf->max_tools_per_tenant) {
		snprintf(msg, msglen, "tenant %s has %zu tools running"
		    " (limits.max_tools_per_tenant): nothing was run, try"
		    " again later", tenant, mine);
		return -1;
	}
	if (!fds_room(FDS_TOOL)) {
		log_warnx("tool for tenant %s refused: %zu of %zu descriptors"
		    " in use", tenant, fds_held(), fds_limit());
		snprintf(msg, msglen, "the executor is out of file"
		    " descriptors: nothing was run, try again later");
		return -1;
	}
	if (t == NULL) {
		tenants = xreallocarray(tenants, ntenants + 1,
		    sizeof(*tenants));
		t = &tenants[ntenants++];
		t->tenant = xstrdup(tenant);
		t->running = 0;
	}
	t->running++;
	running++;
	fds_hold(FDS_TOOL);
	return 0;
}

void
admit_done(const char *tenant)
{
	struct tenant_runs	*t = tenant_find(tenant);

	if (t == NULL || t->running == 0 || running == 0)
		fatalx("%s: tenant %s has no tool running", __func__, tenant);
	t->running--;
	running--;
	fds_release(FDS_TOOL);
	if (t->running == 0) {
		/* Keep the list to the tenants with tools running. */
		free(t->tenant);
		*t = tenants[--ntenants];
	}
}

void
admit_shutdown(void)
{
	size_t	i;

	for (i = 0; i < ntenants; i++)
		free(tenants[i].tenant);
	free(tenants);
	tenants = NULL;
	ntenants = running = 0;
}
