/*
 * The config's tenants, sorted once, found by bsearch (tenants.h).
 */
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/xmalloc.h"
#include "executor/tenants.h"

static char	**names;
static size_t	  nnames;

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
tenants_init(const struct config *conf)
{
	size_t	i, n = 0;

	names = xcalloc(conf->nprincipals + 1, sizeof(*names));
	for (i = 0; i < conf->nprincipals; i++)
		names[n++] = conf->principals[i].tenant;
	qsort(names, n, sizeof(*names), cmp_name);
	/* Several principals share a tenant: keep one of each. */
	for (i = 0, nnames = 0; i < n; i++)
		if (nnames == 0 || strcmp(names[nnames - 1], names[i]) != 0)
			names[nnames++] = names[i];
}

size_t
tenants_count(void)
{
	return nnames;
}

int
tenant_index(const char *tenant)
{
	char	**p;

	if (nnames == 0)
		return -1;
	p = bsearch(&tenant, names, nnames, sizeof(*names), cmp_name);
	return p == NULL ? -1 : (int)(p - names);
}

void
tenants_shutdown(void)
{
	/* The names belong to the config. */
	free(names);
	names = NULL;
	nnames = 0;
}
