#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static int	 log_foreground = 1;
static int	 log_verbosity;
static char	 log_procname[32] = "toolgate";

void
log_init(const char *procname, int foreground, int verbose)
{
	log_foreground = foreground;
	log_verbosity = verbose;
	log_setproc(procname);
	if (!foreground)
		openlog(log_procname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	tzset();
}

void
log_setproc(const char *procname)
{
	snprintf(log_procname, sizeof(log_procname), "%s", procname);
}

static void
vlog(int pri, const char *fmt, va_list ap, int with_errno, int saved_errno)
{
	char	msg[2048];
	int	n;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if (with_errno && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved_errno));
	if (log_foreground)
		fprintf(stderr, "%s[%d]: %s\n", log_procname, (int)getpid(),
		    msg);
	else
		syslog(pri, "%s", msg);
}

void
log_warn(const char *fmt, ...)
{
	int	e = errno;
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, 1, e);
	va_end(ap);
	errno = e;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, 0, 0);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap, 0, 0);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (!log_verbosity)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap, 0, 0);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	int	e = errno;
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, 1, e);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, 0, 0);
	va_end(ap);
	exit(1);
}

void
log_sanitize(char *out, size_t outlen, const void *in, size_t inlen)
{
	const unsigned char	*p = in;
	size_t			 i, o = 0;

	if (outlen == 0)
		return;
	for (i = 0; i < inlen && o + 5 < outlen; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			out[o++] = p[i];
		else
			o += snprintf(out + o, outlen - o, "\\x%02x", p[i]);
	}
	if (i < inlen && o + 4 < outlen)
		o += snprintf(out + o, outlen - o, "...");
	out[o] = '\0';
}
