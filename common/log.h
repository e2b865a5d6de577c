/*
 * Logging in the OpenBSD daemon style: log_warn() and fatal() append
 * strerror(errno), the -x forms do not.  In the foreground everything goes
 * to stderr; otherwise to syslog.
 */
#ifndef TG_LOG_H
#define TG_LOG_H

#include <stdarg.h>

void	log_init(const char *procname, int foreground, int verbose);
void	log_setproc(const char *procname);
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/*
 * Copy at most 'max' bytes of untrusted input into 'out' as printable
 * ASCII (everything else as \xNN), for log lines about bad client input.
 */
void	log_sanitize(char *out, size_t outlen, const void *in, size_t inlen);

#endif
