/*
 * The audit log: STATE_DIR/audit.log, append-only, one JSON object a line,
 * each with a sequence number and the time.  Only the executor writes it.
 *
 * Sequence numbers come from stored state, never from the time of day: at
 * start the next one is past both the last line of the log and the block
 * reserved in the store (DB_META "audit_seq"), and the store reserves
 * SEQ_BLOCK numbers at a time, so they only grow, across restarts, clock
 * steps and rotated logs; a crash may leave a gap, never a repeat.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <lmdb.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "executor/executor.h"
#include "executor/store.h"

#define SEQ_BLOCK	4096
#define SEQ_KEY		"audit_seq"
#define TAIL_MAX	65536	/* where the last line of the log is looked for */

static int		 audit_fd = -1;
static char		 audit_path[4096];
static uint64_t		 audit_seq;	/* the last one written */
static uint64_t		 seq_reserved;	/* numbers up to this are ours */
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

/* The "seq" of the last whole line of the log; 0 when there is none. */
static uint64_t
last_logged_seq(void)
{
	char		*buf, *end, *line;
	json_t		*o;
	struct stat	 st;
	uint64_t	 seq = 0;
	ssize_t		 n;
	off_t		 off;
	int		 fd;

	if ((fd = open(audit_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return 0;
	if (fstat(fd, &st) == -1 || st.st_size == 0) {
		close(fd);
		return 0;
	}
	off = st.st_size > TAIL_MAX ? st.st_size - TAIL_MAX : 0;
	buf = xmalloc(TAIL_MAX + 1);
	n = pread(fd, buf, TAIL_MAX, off);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		/* A torn last line (no newline) is passed over. */
		if ((end = strrchr(buf, '\n')) != NULL) {
			*end = '\0';
			line = (line = strrchr(buf, '\n')) ? line + 1 : buf;
			if ((o = json_loads(line, 0, NULL)) != NULL) {
				if (json_is_integer(json_object_get(o, "seq")))
					seq = (uint64_t)json_integer_value(
					    json_object_get(o, "seq"));
				json_decref(o);
			}
		}
	}
	free(buf);
	return seq;
}

/* Make the numbers up to past 'seq' ours in the store; -1 if it cannot. */
static int
seq_reserve(uint64_t seq)
{
	int	rc;

	if ((rc = store_put_u64(ex->store, SEQ_KEY, seq + SEQ_BLOCK)) != 0) {
		log_warnx("audit: cannot reserve sequence numbers: %s",
		    mdb_strerror(rc));
		return -1;
	}
	seq_reserved = seq + SEQ_BLOCK;
	return 0;
}

static void
seq_init(void)
{
	uint64_t	stored = 0, logged;
	int		rc;

	if ((rc = store_get_u64(ex->store, SEQ_KEY, &stored)) != 0)
		fatalx("audit: cannot read the sequence: %s", mdb_strerror(rc));
	logged = last_logged_seq();
	audit_seq = stored > logged ? stored : logged;
	if (seq_reserve(audit_seq) == -1)
		fatalx("audit: the sequence cannot be kept");
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
	seq_init();
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
	/*
	 * Past the block, reserve the next; if the store cannot, go on in
	 * memory (still increasing) and try again at the next record.
	 */
	if (audit_seq + 1 >= seq_reserved)
		(void)seq_reserve(audit_seq + 1);
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
	set_str(o, "reported_by", r->reported_by);
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
