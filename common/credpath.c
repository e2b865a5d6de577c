/*
 * Credential paths, in a tree or in systemd's flat credentials directory
 * (credpath.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/credpath.h"
#include "common/xmalloc.h"

#define VAR_REF		"$" CREDENTIALS_DIRECTORY_VAR

/* The service's credentials directory, or NULL outside systemd. */
static const char *
credentials_directory(void)
{
	const char	*d = getenv(CREDENTIALS_DIRECTORY_VAR);

	return d != NULL && d[0] == '/' ? d : NULL;
}

char *
credpath_expand(const char *path, const char **why)
{
	const char	*d, *rest;
	char		*out;
	size_t		 len, outlen;

	len = strlen(VAR_REF);
	if (strncmp(path, VAR_REF, len) != 0 ||
	    (path[len] != '/' && path[len] != '\0'))
		return xstrdup(path);
	rest = path + len;
	if ((d = credentials_directory()) == NULL) {
		*why = "$" CREDENTIALS_DIRECTORY_VAR " is not set (systemd sets"
		    " it for a service with LoadCredential=)";
		return NULL;
	}
	outlen = strlen(d) + strlen(rest) + 1;
	out = xmalloc(outlen);
	snprintf(out, outlen, "%s%s", d, rest);
	return out;
}

/*
 * 'dir' in the credentials directory: 1 when it is the directory itself,
 * 2 when it names an ID in it (files ID_...), 0 when it is elsewhere.
 */
static int
flat_kind(const char *dir)
{
	const char	*d = credentials_directory();
	size_t		 len;

	if (d == NULL)
		return 0;
	len = strlen(d);
	while (len > 1 && d[len - 1] == '/')
		len--;
	if (strncmp(dir, d, len) != 0)
		return 0;
	if (dir[len] == '\0' || strcmp(dir + len, "/") == 0)
		return 1;
	if (dir[len] == '/' && strchr(dir + len + 1, '/') == NULL)
		return 2;
	return 0;
}

int
credpath_flat(const char *dir)
{
	return flat_kind(dir) != 0;
}

int
credpath(char *buf, size_t len, const char *dir, const char *const *comp,
    size_t n, const char **why)
{
	int	kind = flat_kind(dir), r;
	size_t	i, off;

	r = snprintf(buf, len, "%s", dir);
	if (kind == 1)
		while (r > 1 && buf[r - 1] == '/')
			buf[--r] = '\0';
	for (i = 0; i < n && r >= 0 && (size_t)r < len; i++) {
		if (kind != 0 && i + 1 < n && strchr(comp[i], '_') != NULL) {
			*why = "a name with '_' cannot be told apart in the"
			    " flat credentials directory";
			return -1;
		}
		off = (size_t)r;
		r = snprintf(buf + off, len - off, "%c%s",
		    kind == 0 || (kind == 1 && i == 0) ? '/' : '_', comp[i]);
		if (r >= 0)
			r += (int)off;
	}
	if (r < 0 || (size_t)r >= len) {
		*why = "credential path too long";
		return -1;
	}
	return 0;
}
