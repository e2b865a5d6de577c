/*
 * gatewayctl's printers of answers that a person reads as a table or as
 * lines to paste (tools.c); every other answer is printed by
 * gatewayctl.c as key: value lines.  Each returns the exit status.
 */
#ifndef TG_CTL_H
#define TG_CTL_H

#include <msgpack.h>

int	print_tools(const msgpack_object *ans);
int	print_mcp_tools(const msgpack_object *ans);
/* audit head, audit verify: on the log's files, no socket (ctl/audit.c). */
int	ctl_audit(int argc, char **argv, int json);

#endif
