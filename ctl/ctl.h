/*
 * gatewayctl's printers of answers that a person reads as a table or as
 * lines to paste (tools.c); every other answer is printed by
 * gatewayctl.c as key: value lines.  Each returns the exit status.
 */
#ifndef TG_CTL_H
#define TG_CTL_H

#include <msgpack.h>

/*
 * A command line as a request map: its op, at most three string fields,
 * a limit (lists) and dry_run (compensate).
 */
struct request {
	const char	*op;
	const char	*k1, *v1;
	const char	*k2, *v2;
	const char	*k3, *v3;
	unsigned long	 limit;		/* 0: none given */
	int		 dry_run;
	unsigned long	 wait_s;	/* compensate --wait; 0: none given */
};

__attribute__((noreturn)) void usage(void);

int	print_tools(const msgpack_object *ans);
/* forensics, compensate (ctl/forensics.c). */
void	forensics_parse(int argc, char **argv, struct request *);
int	print_forensics(const msgpack_object *ans);
int	print_compensate(const msgpack_object *ans);
int	compensate_rc(const msgpack_object *ans);
int	print_mcp_tools(const msgpack_object *ans);
/* audit head, audit verify: on the log's files, no socket (ctl/audit.c). */
int	ctl_audit(int argc, char **argv, int json);

#endif
