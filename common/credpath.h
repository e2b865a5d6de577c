/*
 * Where a credential lives: CREDENTIALS_DIR/TENANT/ENV/NAME, or, in the
 * directory systemd makes for the service ($CREDENTIALS_DIRECTORY,
 * LoadCredential=), the flat name systemd gives that tree: a directory
 * loaded as LoadCredential=ID:/etc/toolgate/credentials arrives as files
 * ID_TENANT_ENV_NAME.  Config paths may begin with $CREDENTIALS_DIRECTORY
 * (proto/CONFIG.md); paths.credentials_dir is then
 * $CREDENTIALS_DIRECTORY/ID.
 */
#ifndef TG_CREDPATH_H
#define TG_CREDPATH_H

#include <stddef.h>

#define CREDENTIALS_DIRECTORY_VAR	"CREDENTIALS_DIRECTORY"

/*
 * A config path with a leading $CREDENTIALS_DIRECTORY replaced by the
 * variable's value: a copy to free, or NULL with why set when the
 * variable is not set or not an absolute path.  Other paths are copied.
 */
char	*credpath_expand(const char *path, const char **why);

/* Is 'dir' systemd's flat credentials directory, or an ID in it? */
int	credpath_flat(const char *dir);

/*
 * The file of the components comp[0..n-1] under 'dir', in buf: joined by
 * '/' in a tree, by '_' in systemd's flat directory.  In the flat one a
 * component that holds a '_', but the last, is refused (tenant "a_b" env
 * "c" would be tenant "a" env "b_c"): -1 with why set, as when the
 * path is too long.
 */
int	credpath(char *buf, size_t len, const char *dir,
	    const char *const *comp, size_t n, const char **why);

#endif
