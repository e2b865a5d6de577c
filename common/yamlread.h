/*
 * The YAML reader under the config loader: a file read whole, checked for
 * being a regular file of sane size, loaded by libyaml into one document
 * whose nodes carry their line numbers.  It knows nothing of toolgate's
 * keys; common/config.c walks the tree it returns.
 */
#ifndef TG_YAMLREAD_H
#define TG_YAMLREAD_H

#include <stddef.h>

#include <yaml.h>

#define YREAD_MAX_SIZE	(16ULL * 1024 * 1024)	/* no sane config is larger */

struct ydoc {
	const char	*file;
	yaml_document_t	 doc;
	yaml_node_t	*root;		/* NULL: an empty document */
};

/*
 * Load 'file' into 'yd'.  On error return -1 with one message in 'err':
 * "FILE: cannot open: ...", "FILE:LINE: syntax error: ...", or
 * "FILE:LINE: (top level): a second YAML document...".  On success the
 * caller frees the document with yread_free().
 */
int		 yread_load(struct ydoc *, const char *file, char *err,
		    size_t errlen);
void		 yread_free(struct ydoc *);

/* Node helpers.  Lines count from 1. */
size_t		 ynode_line(const yaml_node_t *);
const char	*ynode_str(const yaml_node_t *);
int		 ynode_is_null(const yaml_node_t *);
int		 ynode_is_quoted(const yaml_node_t *);
/* What a node is, for "expected X, got Y": "a list", "\"yes\"", ... */
const char	*ynode_describe(const yaml_node_t *, char *buf, size_t len);
/* An explicit tag other than YAML's default for the node's kind. */
int		 ynode_has_tag(const yaml_node_t *);
size_t		 yseq_len(const yaml_node_t *);
yaml_node_t	*yseq_item(struct ydoc *, const yaml_node_t *, size_t);
size_t		 ymap_len(const yaml_node_t *);

#endif
