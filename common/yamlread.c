/*
 * The YAML reader: the config file is read whole (so that an unreadable
 * or oversized one gets its own message rather than a YAML "input
 * error"), then loaded by libyaml into one document.  A second document
 * is refused: it would be ignored, and nothing the operator wrote may be.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <yaml.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "common/yamlread.h"

#define VALUE_SHOWN	48		/* of a bad value, in messages */

static void	yread_error(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static void
yread_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int
open_regular(const char *file, char *err, size_t errlen, struct stat *st)
{
	int	 fd;

	/* O_NONBLOCK: a FIFO must not hang us before the S_ISREG check. */
	if ((fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		yread_error(err, errlen, "%s: cannot open: %s", file,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, st) == -1) {
		yread_error(err, errlen, "%s: cannot open: %s", file,
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		yread_error(err, errlen, "%s: cannot open: %s", file,
		    S_ISDIR(st->st_mode) ? strerror(EISDIR) :
		    "not a regular file");
		close(fd);
		return -1;
	}
	return fd;
}

static unsigned char *
read_file(const char *file, size_t *lenp, char *err, size_t errlen)
{
	struct stat	 st;
	unsigned char	*buf;
	size_t		 len = 0, cap;
	ssize_t		 n;
	int		 fd;

	if ((fd = open_regular(file, err, errlen, &st)) == -1)
		return NULL;
	cap = (size_t)st.st_size + 1;
	if (cap > YREAD_MAX_SIZE)
		cap = YREAD_MAX_SIZE + 1;
	buf = xmalloc(cap);
	/* Read to EOF: the size may have changed since fstat(). */
	while ((n = read(fd, buf + len, cap - len)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			yread_error(err, errlen, "%s: cannot read: %s", file,
			    strerror(errno));
			goto fail;
		}
		len += (size_t)n;
		if (len > YREAD_MAX_SIZE) {
			yread_error(err, errlen, "%s: larger than %llu bytes",
			    file, (unsigned long long)YREAD_MAX_SIZE);
			goto fail;
		}
		if (len == cap) {
			cap = cap * 2 > YREAD_MAX_SIZE + 1 ?
			    YREAD_MAX_SIZE + 1 : cap * 2;
			buf = xreallocarray(buf, cap, 1);
		}
	}
	close(fd);
	*lenp = len;
	return buf;
 fail:
	close(fd);
	free(buf);
	return NULL;
}

static void
syntax_error(const char *file, const yaml_parser_t *parser,
    const unsigned char *buf, size_t len, char *err, size_t errlen)
{
	size_t		 line, i;
	const char	*problem;

	if (parser->error == YAML_MEMORY_ERROR)
		fatalx("%s: yaml: out of memory", file);
	problem = parser->problem != NULL ? parser->problem : "cannot parse";
	if (parser->error == YAML_READER_ERROR) {
		/* The reader knows a byte offset, not a line. */
		line = 1;
		for (i = 0; i < parser->problem_offset && i < len; i++)
			if (buf[i] == '\n')
				line++;
	} else
		line = parser->problem_mark.line + 1;
	if (parser->context != NULL)
		yread_error(err, errlen, "%s:%zu: syntax error: %s (%s at line "
		    "%zu)", file, line, problem, parser->context,
		    (size_t)parser->context_mark.line + 1);
	else
		yread_error(err, errlen, "%s:%zu: syntax error: %s", file,
		    line, problem);
}

static int
parse_yaml(struct ydoc *yd, const unsigned char *buf, size_t len, char *err,
    size_t errlen)
{
	yaml_parser_t	 parser;
	yaml_document_t	 extra;
	yaml_node_t	*root;
	int		 rv = -1;

	if (!yaml_parser_initialize(&parser))
		fatalx("%s: yaml: out of memory", yd->file);
	yaml_parser_set_input_string(&parser, buf, len);
	if (!yaml_parser_load(&parser, &yd->doc)) {
		syntax_error(yd->file, &parser, buf, len, err, errlen);
		yaml_parser_delete(&parser);
		return -1;
	}
	if (!yaml_parser_load(&parser, &extra)) {
		syntax_error(yd->file, &parser, buf, len, err, errlen);
		goto out;
	}
	if ((root = yaml_document_get_root_node(&extra)) != NULL)
		yread_error(err, errlen, "%s:%zu: (top level): a second YAML "
		    "document; a config is one document", yd->file,
		    ynode_line(root));
	else
		rv = 0;
	yaml_document_delete(&extra);
 out:
	yaml_parser_delete(&parser);
	if (rv == -1)
		yaml_document_delete(&yd->doc);
	return rv;
}

int
yread_load(struct ydoc *yd, const char *file, char *err, size_t errlen)
{
	unsigned char	*buf;
	size_t		 len;
	int		 rv;

	memset(yd, 0, sizeof(*yd));
	yd->file = file;
	if ((buf = read_file(file, &len, err, errlen)) == NULL)
		return -1;
	rv = parse_yaml(yd, buf, len, err, errlen);
	free(buf);
	if (rv == 0)
		yd->root = yaml_document_get_root_node(&yd->doc);
	return rv;
}

void
yread_free(struct ydoc *yd)
{
	yaml_document_delete(&yd->doc);
	yd->root = NULL;
}

size_t
ynode_line(const yaml_node_t *node)
{
	return (size_t)node->start_mark.line + 1;
}

const char *
ynode_str(const yaml_node_t *node)
{
	return (const char *)node->data.scalar.value;
}

/* A plain scalar that YAML reads as null: "key:" with nothing after it. */
int
ynode_is_null(const yaml_node_t *node)
{
	const char	*s;

	if (node->type != YAML_SCALAR_NODE ||
	    node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	s = ynode_str(node);
	return s[0] == '\0' || strcmp(s, "~") == 0 ||
	    strcasecmp(s, "null") == 0;
}

int
ynode_is_quoted(const yaml_node_t *node)
{
	return node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
}

const char *
ynode_describe(const yaml_node_t *node, char *buf, size_t len)
{
	char	 safe[VALUE_SHOWN];

	switch (node->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_SCALAR_NODE:
		if (ynode_is_null(node))
			return "an empty value";
		log_sanitize(safe, sizeof(safe), node->data.scalar.value,
		    node->data.scalar.length);
		snprintf(buf, len, "\"%s\"", safe);
		return buf;
	default:
		return "nothing";
	}
}

/*
 * Every node must carry the tag YAML gives it by default.  An explicit
 * tag (!!int "5", !custom x) would make the text mean something else than
 * what the loader reads, so the loader refuses it rather than ignore it.
 */
int
ynode_has_tag(const yaml_node_t *node)
{
	const char	*want;

	switch (node->type) {
	case YAML_MAPPING_NODE:
		want = YAML_DEFAULT_MAPPING_TAG;
		break;
	case YAML_SEQUENCE_NODE:
		want = YAML_DEFAULT_SEQUENCE_TAG;
		break;
	default:
		want = YAML_DEFAULT_SCALAR_TAG;
		break;
	}
	return node->tag != NULL && strcmp((const char *)node->tag, want) != 0;
}

size_t
yseq_len(const yaml_node_t *node)
{
	return (size_t)(node->data.sequence.items.top -
	    node->data.sequence.items.start);
}

yaml_node_t *
yseq_item(struct ydoc *yd, const yaml_node_t *node, size_t i)
{
	return yaml_document_get_node(&yd->doc,
	    node->data.sequence.items.start[i]);
}

size_t
ymap_len(const yaml_node_t *node)
{
	return (size_t)(node->data.mapping.pairs.top -
	    node->data.mapping.pairs.start);
}
