#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static int	 log_foreground = 1;
static int	 log_verbosity;
static char	 log_procname[32] = "toolgate";
static int	 log_journal;	/* stderr is the journal: <N> prefixes */

/*
 * Under systemd, stderr may be a stream to journald, which says so in
 * JOURNAL_STREAM ("DEV:INO" of that stream).  A line starting "<N>"
 * there is kept at syslog priority N; without it every line would be
 * info.  Only when stderr is that very stream: a stderr redirected
 * elsewhere by a child's parent keeps its plain lines.
 */
static int
stderr_is_journal(void)
{
	const char		*js = getenv("JOURNAL_STREAM");
	unsigned long long	 dev, ino;
	struct stat		 st;
	char			 end;

	if (js == NULL || sscanf(js, "%llu:%llu%c", &dev, &ino, &end) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_init(const char *procname, int foreground, int verbose)
{
	log_foreground = foreground;
	log_verbosity = verbose;
	log_setproc(procname);
	log_journal = stderr_is_journal();
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
	if (log_foreground && log_journal)
		fprintf(stderr, "<%d>%s[%d]: %s\n", pri, log_procname,
		    (int)getpid(), msg);
	else if (log_foreground)
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
