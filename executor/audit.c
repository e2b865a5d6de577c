/*
 * The audit log: STATE_DIR/audit.log, append-only, one JSON object a line,
 * each with a sequence number and the time.  Only the executor writes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "executor/executor.h"

static int		 audit_fd = -1;
static char		 audit_path[4096];
static uint64_t		 audit_seq;
static struct event	*sync_ev;
static int		 sync_due;

/*
 * Records that matter reach the disk together, once per turn of the event
 * loop (group commit, as the ledger does), instead of one fdatasync each.
 */
static void
audit_sync_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	audit_flush();
}

void
audit_flush(void)
{
	if (!sync_due || audit_fd == -1)
		return;
	sync_due = 0;
	if (fdatasync(audit_fd) == -1)
		fatal("audit: fdatasync %s", audit_path);
}

void
audit_open(const char *state_dir, struct event_base *base)
{
	snprintf(audit_path, sizeof(audit_path), "%s/audit.log", state_dir);
	/* Never through a link: root would append to whatever it names. */
	audit_fd = open(audit_path,
	    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (audit_fd == -1)
		fatal("%s", audit_path);
	audit_seq = now_ms() * 1000;
	if ((sync_ev = event_new(base, -1, 0, audit_sync_cb, NULL)) == NULL)
		fatalx("audit: event_new");
}

static void
set_str(json_t *o, const char *key, const char *val)
{
	if (val != NULL)
		json_object_set_new(o, key, json_string(val));
}

void
audit_write(const struct audit_rec *r, int sync)
{
	json_t	*o;
	char	*line;
	size_t	 len;
	ssize_t	 n;

	if (audit_fd == -1)
		return;
	o = json_object();
	json_object_set_new(o, "seq", json_integer((json_int_t)++audit_seq));
	json_object_set_new(o, "ts_ms", json_integer((json_int_t)now_ms()));
	set_str(o, "event", r->event);
	set_str(o, "tenant", r->tenant);
	set_str(o, "env", r->env);
	if (r->uid >= 0)
		json_object_set_new(o, "uid", json_integer(r->uid));
	set_str(o, "run_id", r->run_id);
	set_str(o, "step_id", r->step_id);
	set_str(o, "tool", r->tool);
	set_str(o, "args_hash", r->args_hash);
	set_str(o, "idempotency_key", r->idempotency_key);
	set_str(o, "decision", r->decision);
	set_str(o, "reason", r->reason);
	set_str(o, "approver", r->approver);
	set_str(o, "note", r->note);
	line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (line == NULL)
		fatalx("audit: cannot encode a record");
	len = strlen(line);
	line[len++] = '\n';	/* json_dumps leaves room: we own the NUL */
	/* One write(2) per record so concurrent readers never see half. */
	n = write(audit_fd, line, len);
	free(line);
	if (n != (ssize_t)len)
		fatal("audit: write %s", audit_path);
	if (sync && !sync_due) {
		sync_due = 1;
		event_active(sync_ev, EV_TIMEOUT, 0);
	}
}

/* After logrotate moved audit.log away: flush, close, open it anew. */
void
audit_reopen(void)
{
	int	fd;

	audit_flush();
	fd = open(audit_path,
	    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		log_warn("audit: reopen %s: keeping the old file", audit_path);
		return;
	}
	if (audit_fd != -1)
		close(audit_fd);
	audit_fd = fd;
	log_info("audit: %s reopened", audit_path);
}

void
audit_close(void)
{
	audit_flush();
	if (sync_ev != NULL)
		event_free(sync_ev);
	sync_ev = NULL;
	if (audit_fd != -1)
		close(audit_fd);
	audit_fd = -1;
}
