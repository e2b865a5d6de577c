/*
 * The audit log: STATE_DIR/audit.log, append-only, one JSON object a line,
 * each with a sequence number and the time.  Only the executor writes it.
 *
 * Sequence numbers come from stored state, never from the time of day: at
 * start the next one is past both the last line of the log and the block
 * reserved in the store (DB_META "audit_seq"), and the store reserves
 * SEQ_BLOCK numbers at a time, so they only grow, across restarts, clock
 * steps and rotated logs; a crash may leave a gap, never a repeat.
 *
 * The log fails closed and never ends the process: a record that cannot
 * be written (ENOSPC, EIO, EFBIG...) leaves no torn line and takes no
 * seq, audit_write says so, and the callers refuse what it would have
 * recorded (see call.c, write.c).  The next record simply tries again.
 *
 * Refusals gatewayd reports (reported_by "gatewayd", not synced) were
 * answered before we hear of them and nothing waits on their outcome: they
 * are queued and the queue of a loop turn is appended with one write(2)
 * at the turn's end, or before any other record, sync, audit_up() or
 * reopen, so the file keeps the order of the seqs and every other record
 * still knows at once whether it is in the log.  A batch is one append:
 * written whole or cut back whole, its records taking their seqs only
 * once it is in.
 *
 * The chain (common/auditchain.h): every line carries, as "prev", the
 * SHA-256 of the line before it, across restarts (the last line's hash is
 * read at open) and reopens (kept in memory).  Every audit.head_every
 * records, audit.head_s seconds after a record, at reopen and at close, a
 * head record signs the seq and hash of the record before it with the
 * audit key (STATE_DIR/audit.key, kept like checkpoint.key; the public
 * half in audit.pub); the head is synced and kept in the store (DB_META
 * "audit_head") so that a log cut or rolled back behind it is seen at the
 * next start.  With a shared store (PostgreSQL) the head is kept there
 * too, off the host: a log rolled back together with the state dir is
 * seen at the next connection.  A line's prev is its chain's state when
 * it is written: a line that is not written leaves the chain as it was.
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
#include <sodium.h>

#include "common/auditchain.h"
#include "common/auditredact.h"
#include "common/canon.h"
#include "common/config.h"
#include "common/credpath.h"
#include "common/jsonout.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "executor/executor.h"
#include "executor/pgstore.h"
#include "executor/response.h"
#include "executor/store.h"
#include "executor/syncer.h"

#define SEQ_BLOCK	4096
#define SEQ_KEY		"audit_seq"
#define TAIL_MAX	65536	/* where the last line of the log is looked for */
#define HEAD_KEY	"audit_head"
#define KEY_FILE	"audit.key"
#define PUB_FILE	"audit.pub"
#define HASHKEY_FILE	"audit.hashkey"

static int		 audit_fd = -1;
static char		 audit_path[4096];
static uint64_t		 audit_seq;	/* the last one written */
static uint64_t		 seq_reserved;	/* numbers up to this are ours */
static struct event	*sync_ev;
static int		 sync_due;
static int		 sync_begun;	/* on the sync thread (syncer.c) */
static int		 begun_rc = -1;	/* its result, when settled early */
static int		 audit_down;	/* the last write or sync failed */
static int		 audit_errno;	/* why */
static int		 sync_failed;	/* down since an fdatasync failed */
static off_t		 torn_at = -1;	/* a torn tail not cut back yet */
static int		 torn_unknown;	/* one we cannot find: open_log cuts it */
static char		 chain[AUDIT_HEX];	/* the hash of the last line */
static uint64_t		 since_head;	/* records since the last head */
static struct event	*head_ev;
static int		 head_armed;
static unsigned char	 audit_sk[crypto_sign_SECRETKEYBYTES];
static unsigned char	 hash_key[AUDITREDACT_KEYLEN];	/* audit.redact */
static struct canon_buf	 redacted;	/* a record's args, redacted */
static char		 chain_state[512] = "ok";
static struct audithead	 last_head;	/* the newest on disk; seq 0: none */
static uint64_t		 log_size;	/* bytes in the file, for rotation */
static struct event	*rotate_ev;
static struct event	*reopen_ev;	/* gatewayd's SIGHUP, held back */
static uint64_t		 reopened_ms;	/* mono_ms() of the last reopen */
/*
 * Queued records: each line without its first members, the seq and prev,
 * which are given when the batch is written.
 */
static struct batch {
	char		*buf;
	size_t		 len, cap;
	size_t		*ends;		/* where each line ends in buf */
	size_t		 n, nmax;
} batch;
static struct event	*batch_ev;
/*
 * audit_hold(): the records that need a sync are queued too, so that a
 * ledger batch's go out in one append (audit_release).  held_failed: one
 * of them is not in the log.
 */
static int		 holding, held_failed, held_sync;
static int		 batch_write(void);
static int		 synced(int);
static int		 append_line(const char *, size_t);
static void		 batch_cb(evutil_socket_t, short, void *);

/*
 * The log failed (fail closed: calls are refused while it is down) or
 * works again: one log line each way, not one per record.
 */
static void
set_down(int err)
{
	audit_errno = err;
	if (audit_down)
		return;
	audit_down = 1;
	log_warnx("audit: cannot write %s: %s: calls are refused until it"
	    " can", audit_path, strerror(err));
}

static void
set_up(void)
{
	if (!audit_down)
		return;
	audit_down = 0;
	log_info("audit: %s is written again: calls are served",
	    audit_path);
}

int
audit_up(void)
{
	(void)batch_write();
	return !audit_down;
}

const char *
audit_state(char *buf, size_t len)
{
	if (!audit_down)
		return "ok";
	snprintf(buf, len, "failing: %s", strerror(audit_errno));
	return buf;
}

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
	(void)audit_flush();
}

/*
 * A record that was written but could not be synced may be lost: the log
 * is down until a later record is written (and synced) again.
 */
int
audit_flush(void)
{
	(void)batch_write();
	if (!sync_due || audit_fd == -1)
		return audit_down ? -1 : 0;
	sync_due = 0;
	return synced(fdatasync(audit_fd));
}

/* What a sync's result (0, or -1 with errno) makes of the log's state. */
static int
synced(int rc)
{
	if (rc == -1) {
		set_down(errno);
		sync_failed = 1;
		return -1;
	}
	if (sync_failed) {
		sync_failed = 0;
		set_up();
	}
	return audit_down ? -1 : 0;
}

/*
 * The "seq" of the last whole line of fd's file (0 when there is none),
 * where that line ends, and (when hash is not NULL) its hash for the
 * chain, the genesis when there is none: a torn last line (no newline) is
 * passed over.
 */
static uint64_t
scan_tail(int fd, off_t *endp, char *hash)
{
	char		*buf, *end, *line;
	json_t		*o;
	struct stat	 st;
	uint64_t	 seq = 0;
	ssize_t		 n;
	off_t		 off;

	*endp = 0;
	if (hash != NULL)
		snprintf(hash, AUDIT_HEX, "%s", AUDIT_GENESIS);
	if (fstat(fd, &st) == -1 || st.st_size == 0)
		return 0;
	*endp = st.st_size;
	off = st.st_size > TAIL_MAX ? st.st_size - TAIL_MAX : 0;
	buf = xmalloc(TAIL_MAX + 1);
	n = pread(fd, buf, TAIL_MAX, off);
	if (n > 0) {
		buf[n] = '\0';
		if ((end = strrchr(buf, '\n')) != NULL) {
			*endp = off + (end - buf) + 1;
			*end = '\0';
			line = (line = strrchr(buf, '\n')) ? line + 1 : buf;
			if (hash != NULL)
				auditchain_hash(line, strlen(line), hash);
			if ((o = json_loads(line, 0, NULL)) != NULL) {
				if (json_is_integer(json_object_get(o, "seq")))
					seq = (uint64_t)json_integer_value(
					    json_object_get(o, "seq"));
				json_decref(o);
			}
		} else if (off == 0)
			*endp = 0;	/* one torn line and nothing else */
	}
	free(buf);
	return seq;
}

/*
 * Open the log for appending.  A torn last line (a crash, or an older
 * executor that died on a full disk) is cut off, so the next record never
 * continues it; its seq was never counted.
 */
static int
open_log(uint64_t *seqp, char *chainp)
{
	struct stat	st;
	uint64_t	seq;
	off_t		end;
	int		fd;

	/* Never through a link: root would append to whatever it names. */
	fd = open(audit_path,
	    O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		return -1;
	seq = scan_tail(fd, &end, chainp);
	if (fstat(fd, &st) == 0 && st.st_size > end) {
		log_warnx("audit: %s ends in a torn line: cut back to %lld"
		    " bytes", audit_path, (long long)end);
		if (ftruncate(fd, end) == -1)
			log_warn("audit: ftruncate %s", audit_path);
	}
	if (seqp != NULL)
		*seqp = seq;
	if (fstat(fd, &st) == 0)
		log_size = (uint64_t)st.st_size;
	return fd;
}

/* Make the numbers up to past 'seq' ours in the store; -1 if it cannot. */
static int
seq_reserve(uint64_t seq)
{
	int	rc;

	if ((rc = store_put_u64(ex->store, SEQ_KEY, seq + SEQ_BLOCK)) != 0) {
		log_warnx("audit: cannot reserve sequence numbers: %s",
		    store_strerror(rc));
		return -1;
	}
	seq_reserved = seq + SEQ_BLOCK;
	return 0;
}

static void
seq_init(uint64_t logged_seq)
{
	uint64_t	stored = 0, logged;
	int		rc;

	if ((rc = store_get_u64(ex->store, SEQ_KEY, &stored)) != 0)
		fatalx("audit: cannot read the sequence: %s", store_strerror(rc));
	logged = logged_seq;
	audit_seq = stored > logged ? stored : logged;
	if (seq_reserve(audit_seq) == -1)
		fatalx("audit: the sequence cannot be kept");
}

/*
 * The audit key: a 64-byte Ed25519 secret key, as checkpoint.key is: from
 * the credentials directory when it holds audit.key (systemd's
 * LoadCredential=, flat as ID_audit.key; never written there), else
 * STATE_DIR/audit.key, made at first start.  Its public half, in hex, goes
 * to audit.pub for gatewayctl audit verify.
 */
static void
audit_key_init(const char *state_dir, const char *creds_dir)
{
	unsigned char	 pk[crypto_sign_PUBLICKEYBYTES];
	char		 path[4200], pub[4200], hex[AUDIT_PKHEX + 1];
	const char	*comp[1] = { KEY_FILE }, *why = NULL;
	ssize_t		 n;
	int		 fd;

	if (creds_dir == NULL || credpath(path, sizeof(path), creds_dir,
	    comp, 1, &why) == -1 || access(path, F_OK) == -1)
		snprintf(path, sizeof(path), "%s/%s", state_dir, KEY_FILE);
	snprintf(pub, sizeof(pub), "%s/%s", state_dir, PUB_FILE);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) != -1) {
		n = read(fd, audit_sk, sizeof(audit_sk));
		close(fd);
		if (n != (ssize_t)sizeof(audit_sk))
			fatalx("%s: not an audit key", path);
	} else if (errno != ENOENT)
		fatal("%s", path);
	else {
		crypto_sign_keypair(pk, audit_sk);
		if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
		    O_NOFOLLOW, 0600)) == -1 ||
		    write(fd, audit_sk, sizeof(audit_sk)) !=
		    (ssize_t)sizeof(audit_sk) || fsync(fd) == -1)
			fatal("%s", path);
		close(fd);
		log_info("audit key created in %s", path);
	}
	crypto_sign_ed25519_sk_to_pk(pk, audit_sk);
	log_info("audit key from %s", path);
	sodium_bin2hex(hex, AUDIT_PKHEX, pk, sizeof(pk));
	strcat(hex, "\n");
	/* Rewritten at every start: it must say what the key is now. */
	unlink(pub);
	if ((fd = open(pub, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1 ||
	    write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex))
		log_warn("audit: %s", pub);
	if (fd != -1)
		close(fd);
}

/*
 * The key of the hashes that stand for redacted args (audit.redact): 32
 * random bytes of the executor's own, kept as the audit key is (the
 * credentials directory's audit.hashkey, else STATE_DIR/audit.hashkey,
 * made at first start, 0600).  It never leaves the executor: gatewayctl
 * audit hash asks the executor to hash a value.
 */
static void
hash_key_init(const char *state_dir, const char *creds_dir)
{
	char		 path[4200];
	const char	*comp[1] = { HASHKEY_FILE }, *why = NULL;
	ssize_t		 n;
	int		 fd;

	if (creds_dir == NULL || credpath(path, sizeof(path), creds_dir,
	    comp, 1, &why) == -1 || access(path, F_OK) == -1)
		snprintf(path, sizeof(path), "%s/%s", state_dir, HASHKEY_FILE);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) != -1) {
		n = read(fd, hash_key, sizeof(hash_key));
		close(fd);
		if (n != (ssize_t)sizeof(hash_key))
			fatalx("%s: not an audit hash key", path);
		return;
	}
	if (errno != ENOENT)
		fatal("%s", path);
	randombytes_buf(hash_key, sizeof(hash_key));
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1 ||
	    write(fd, hash_key, sizeof(hash_key)) != (ssize_t)sizeof(hash_key) ||
	    fsync(fd) == -1)
		fatal("%s", path);
	close(fd);
	log_info("audit hash key created in %s", path);
}

void
audit_args(struct audit_rec *r, const struct canon_buf *json)
{
	if (!ex->conf->audit_args || json->data == NULL || json->len == 0)
		return;
	if (ex->conf->naudit_redact == 0) {
		r->args = json->data;
		r->argslen = json->len;
		return;
	}
	/* Canonical JSON is one object: were it not, say nothing of it. */
	if (auditredact_args(json->data, json->len, ex->conf->audit_redact,
	    ex->conf->naudit_redact, hash_key, &redacted) == -1) {
		log_warnx("audit: the args of a record could not be redacted:"
		    " left out");
		return;
	}
	r->args = redacted.data;
	r->argslen = redacted.len;
}

void
audit_hash(const char *json, size_t len, char *out)
{
	auditredact_mac(hash_key, json, len, out);
}

static int
head_get_txn(struct store_txn *stx, void *arg)
{
	struct audithead	*h = arg;
	struct store_val	 k = { strlen(HEAD_KEY), HEAD_KEY }, v;
	const char		*why;
	int			 rc;

	if ((rc = stx_get(stx, DB_META, &k, &v)) != 0)
		return rc;
	return auditchain_head_parse(v.data, v.size, h, &why) == 0 ? 0 :
	    STORE_CORRUPT;
}

static int
head_put_txn(struct store_txn *stx, void *arg)
{
	char			*json = arg;
	struct store_val	 k = { strlen(HEAD_KEY), HEAD_KEY },
				 v = { strlen(json), json };

	return stx_put(stx, DB_META, &k, &v);
}

/* A head to the shared store, when there is one; sent again at connect. */
static void
head_publish(const struct audithead *h)
{
	char	*json;

	if (!pgstore_on() || (json = auditchain_head_json(h)) == NULL)
		return;
	json[strlen(json) - 1] = '\0';
	(void)pgstore_audit_head_put(h->seq, json);
	free(json);
}

/*
 * The log checked against itself and against a head kept off it (by
 * 'where'), or none: a log that does not verify is said loudly (and in
 * status), and the service goes on.  0 when it verifies.
 */
static int
chain_verify(const struct audithead *kp, const char *where)
{
	unsigned char		 pk[crypto_sign_PUBLICKEYBYTES];
	char			 msg[480];
	uint64_t		 lines, heads;

	crypto_sign_ed25519_sk_to_pk(pk, audit_sk);
	if (auditchain_verify_log(audit_path, pk, kp, msg, sizeof(msg),
	    &lines, &heads) == 0) {
		log_info("audit: %s verifies%s%s: %llu records, %llu heads",
		    audit_path, kp != NULL ? " against the head in " : "",
		    kp != NULL ? where : "", (unsigned long long)lines,
		    (unsigned long long)heads);
		return 0;
	}
	snprintf(chain_state, sizeof(chain_state), "broken: %s", msg);
	log_warnx("audit: THE AUDIT LOG DOES NOT VERIFY: %s", msg);
	return -1;
}

/* The log at start, against the head the local store kept. */
static void
chain_check(void)
{
	struct audithead	 kept, *kp = NULL;
	int			 rc;

	if ((rc = store_read(ex->store, head_get_txn, &kept)) == 0) {
		kp = &kept;
		last_head = kept;
	} else if (rc != STORE_NOTFOUND)
		log_warnx("audit: the kept head cannot be read: %s",
		    store_strerror(rc));
	if (chain_verify(kp, "the local store") == 0)
		snprintf(chain_state, sizeof(chain_state), "ok");
}

/*
 * The head the shared store keeps for this host (store.backend:
 * postgresql), read at each connection; NULL when it has none.  Newer
 * than the one the log was checked against (a log rolled back together
 * with the state dir that held both), the log is checked against it.
 * Then ours is published if it is the newer: the database never takes
 * a head older than the one it has.
 */
void
audit_shared_head(const char *text, size_t len)
{
	struct audithead	 h;
	const char		*why;
	uint64_t		 have = 0;

	if (text != NULL && auditchain_head_parse(text, len, &h, &why) == -1)
		log_warnx("audit: the head in the shared store cannot be"
		    " read: %s", why);
	else if (text != NULL) {
		have = h.seq;
		if ((h.seq > last_head.seq || (h.seq == last_head.seq &&
		    strcmp(h.hash, last_head.hash) != 0)) &&
		    chain_verify(&h, "the shared store") == 0)
			last_head = h;
	}
	if (last_head.seq > have)
		head_publish(&last_head);
}

const char *
audit_chain_state(void)
{
	return chain_state;
}

static void	head_cb(evutil_socket_t, short, void *);
static void	rotate_cb(evutil_socket_t, short, void *);
static void	reopen_cb(evutil_socket_t, short, void *);

void
audit_open(const char *state_dir, struct event_base *base)
{
	char		rot[4200];
	uint64_t	logged;
	off_t		end;
	int		fd;

	snprintf(audit_path, sizeof(audit_path), "%s/audit.log", state_dir);
	audit_key_init(state_dir, ex->conf->credentials_dir);
	hash_key_init(state_dir, ex->conf->credentials_dir);
	if ((audit_fd = open_log(&logged, chain)) == -1)
		fatal("%s", audit_path);
	/* A new file after a rotation chains to the last of the old. */
	snprintf(rot, sizeof(rot), "%s.1", audit_path);
	if (strcmp(chain, AUDIT_GENESIS) == 0 &&
	    (fd = open(rot, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) != -1) {
		uint64_t	rseq = scan_tail(fd, &end, chain);

		if (rseq > logged)
			logged = rseq;
		close(fd);
	}
	seq_init(logged);
	chain_check();
	if ((sync_ev = event_new(base, -1, 0, audit_sync_cb, NULL)) == NULL ||
	    (batch_ev = event_new(base, -1, 0, batch_cb, NULL)) == NULL ||
	    (head_ev = event_new(base, -1, 0, head_cb, NULL)) == NULL ||
	    (rotate_ev = event_new(base, -1, 0, rotate_cb, NULL)) == NULL ||
	    (reopen_ev = evtimer_new(base, reopen_cb, NULL)) == NULL)
		fatalx("audit: event_new");
}

/*
 * A signed head: the seq and hash of the last record, written as a record
 * of its own, synced, and kept in the store.  Nothing to sign (no record
 * since the last head) writes none.  A head that cannot be written puts
 * the log down as any record would.
 */
static void
jsonout_lit(struct jsonout *o, const char *s)
{
	jsonout_raw(o, s, strlen(s));
}

static void
head_write(void)
{
	struct audithead	 h;
	struct jsonout		 o = { NULL, 0, 0 };
	char			 pk[AUDIT_PKHEX], sig[AUDIT_SIGHEX];
	char			*json;
	int			 rc;

	if (audit_fd == -1 || since_head == 0)
		return;
	memset(&h, 0, sizeof(h));
	h.seq = audit_seq;
	snprintf(h.hash, sizeof(h.hash), "%s", chain);
	h.ts_ms = now_ms();
	auditchain_head_sign(&h, audit_sk);
	sodium_bin2hex(pk, sizeof(pk), h.pk, sizeof(h.pk));
	sodium_bin2hex(sig, sizeof(sig), h.sig, sizeof(h.sig));
	if (audit_seq + 1 >= seq_reserved)
		(void)seq_reserve(audit_seq + 1);
	jsonout_lit(&o, "{\"seq\":");
	jsonout_int(&o, (long long)(audit_seq + 1));
	jsonout_lit(&o, ",\"prev\":\"");
	jsonout_raw(&o, chain, 64);
	jsonout_lit(&o, "\",\"ts_ms\":");
	jsonout_int(&o, (long long)h.ts_ms);
	jsonout_lit(&o, ",\"event\":\"head\",\"head_seq\":");
	jsonout_int(&o, (long long)h.seq);
	jsonout_lit(&o, ",\"head_hash\":\"");
	jsonout_raw(&o, h.hash, 64);
	jsonout_lit(&o, "\",\"public_key\":\"");
	jsonout_raw(&o, pk, 64);
	jsonout_lit(&o, "\",\"signature\":\"");
	jsonout_raw(&o, sig, 128);
	jsonout_lit(&o, "\"}\n");
	rc = append_line(o.buf, o.len);
	if (rc == -1) {
		set_down(errno);
		free(o.buf);
		return;
	}
	audit_seq++;
	auditchain_hash(o.buf, o.len - 1, chain);
	free(o.buf);
	since_head = 0;
	/*
	 * On disk before the store keeps it: a head the store has and the
	 * log lost in a crash would read as a cut tail at the next start.
	 */
	if (fdatasync(audit_fd) == -1) {
		(void)synced(-1);
		return;
	}
	last_head = h;
	head_publish(&h);
	if ((json = auditchain_head_json(&h)) == NULL)
		return;
	json[strlen(json) - 1] = '\0';
	if ((rc = store_write_reserve(ex->store, head_put_txn, json)) != 0)
		log_warnx("audit: cannot keep the head in the store: %s",
		    store_strerror(rc));
	free(json);
}

static void
head_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	head_armed = 0;
	(void)batch_write();
	head_write();
}

/*
 * After each record: a head when enough were written, or a timer for one.
 * The head is written from the loop, not here: a record may be written in
 * the middle of a write's path, and a head syncs and commits to the store.
 */
static void
head_due(void)
{
	struct timeval	tv;

	if (since_head >= ex->conf->audit_head_every && head_ev != NULL) {
		event_active(head_ev, EV_TIMEOUT, 0);
		return;
	}
	if (!head_armed && head_ev != NULL) {
		tv.tv_sec = (time_t)ex->conf->audit_head_s;
		tv.tv_usec = 0;
		event_add(head_ev, &tv);
		head_armed = 1;
	}
}

/*
 * Append one whole line with one write(2), so concurrent readers never see
 * half.  A short write (the disk filled in the middle) is cut back to where
 * the line began; if even that fails, it is cut before the next record is
 * written, and nothing is appended after a torn tail.
 */
static int
append_line(const char *line, size_t len)
{
	struct stat	st;
	ssize_t		n;
	off_t		at;
	int		err;

	if (torn_unknown) {
		errno = EIO;
		return -1;
	}
	if (torn_at != -1) {
		if (ftruncate(audit_fd, torn_at) == -1)
			return -1;
		torn_at = -1;
	}
	if ((n = write(audit_fd, line, len)) == (ssize_t)len) {
		log_size += len;
		if (ex->conf->audit_max_bytes > 0 && rotate_ev != NULL &&
		    log_size >= ex->conf->audit_max_bytes)
			event_active(rotate_ev, EV_TIMEOUT, 0);
		return 0;
	}
	err = n == -1 ? errno : ENOSPC;
	/*
	 * Where the line began is asked only now, not before every write:
	 * O_APPEND put the offset at the end and the n bytes went there, so
	 * it is n bytes back from the offset (or from the size, should the
	 * offset not be told).
	 */
	if (n > 0) {
		if ((at = lseek(audit_fd, 0, SEEK_CUR)) == -1 &&
		    fstat(audit_fd, &st) == 0)
			at = st.st_size;
		if (at == -1)
			torn_unknown = 1;	/* nothing more until a reopen */
		else if (ftruncate(audit_fd, at - n) == -1)
			torn_at = at - n;
	}
	errno = err;
	return -1;
}

/*
 * A record's line, made for every call: written out directly, in the
 * bytes json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII) made of the same
 * members in the same order, and a string jansson would refuse (not
 * UTF-8) left out as json_object_set_new() left it out.
 */
static struct jsonout	recline;

static void
put_str(const char *key, const char *val)
{
	size_t	at = recline.len;

	if (val == NULL)
		return;
	jsonout_raw(&recline, ",\"", 2);
	jsonout_raw(&recline, key, strlen(key));
	jsonout_raw(&recline, "\":", 2);
	if (jsonout_str(&recline, val) == -1)
		recline.len = at;
}

static void
put_int(const char *key, long long val)
{
	jsonout_raw(&recline, ",\"", 2);
	jsonout_raw(&recline, key, strlen(key));
	jsonout_raw(&recline, "\":", 2);
	jsonout_int(&recline, val);
}

static void
put_lit(const char *key, const char *lit)
{
	jsonout_raw(&recline, ",\"", 2);
	jsonout_raw(&recline, key, strlen(key));
	jsonout_raw(&recline, "\":", 2);
	jsonout_raw(&recline, lit, strlen(lit));
}

/* The line, newline included, valid until the next one is made. */
static const char *
encode(const struct audit_rec *r, uint64_t seq, const char *prev,
    size_t *lenp)
{
	recline.len = 0;
	jsonout_raw(&recline, "{\"seq\":", 7);
	jsonout_int(&recline, (long long)seq);
	jsonout_raw(&recline, ",\"prev\":\"", 9);
	jsonout_raw(&recline, prev, 64);
	jsonout_raw(&recline, "\"", 1);
	put_int("ts_ms", (long long)now_ms());
	put_str("event", r->event);
	put_str("tenant", r->tenant);
	put_str("env", r->env);
	if (r->uid >= 0)
		put_int("uid", r->uid);
	put_str("run_id", r->run_id);
	put_str("step_id", r->step_id);
	put_str("traceparent", r->traceparent);
	put_str("tool", r->tool);
	put_str("mode", r->mode);
	put_str("backend", r->backend);
	put_str("args_hash", r->args_hash);
	if (r->args != NULL) {
		jsonout_raw(&recline, ",\"args\":", 8);
		jsonout_raw(&recline, r->args, r->argslen);
	}
	put_str("idempotency_key", r->idempotency_key);
	put_str("decision", r->decision);
	/* Named as the answer names it: "error" for an error, else a stop. */
	put_str(r->decision != NULL && strcmp(r->decision, ST_ERROR) == 0 ?
	    "error" : "stop_reason", r->reason);
	put_str("approval_id", r->approval_id);
	put_str("approver", r->approver);
	if (r->replayed != 0)
		put_lit("replayed", r->replayed == 2 ? "true" : "false");
	put_str("outcome", r->outcome);
	if (r->has_duration)
		put_int("duration_ms", (long long)r->duration_ms);
	put_str("note", r->note);
	put_str("reported_by", r->reported_by);
	put_str("compensates", r->compensates);
	if (r->count > 0) {
		put_int("count", (long long)r->count);
		put_int("first_ms", (long long)r->first_ms);
		put_int("last_ms", (long long)r->last_ms);
	}
	jsonout_raw(&recline, "}\n", 2);
	*lenp = recline.len;
	return recline.buf;
}

/*
 * Every queued line starts so; the seq and prev go in when it is written.
 */
#define SEQ_HEAD	"{\"seq\":0,\"prev\":\"" AUDIT_GENESIS "\","
#define BATCH_MAX	1024		/* records; then it is written at once */
#define BATCH_BYTES	(1024 * 1024)

static void
batch_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	(void)batch_write();
}

int
audit_queued(void)
{
	return batch.n > 0;
}

/* Queue a record; written at the end of the loop turn. */
static int
batch_add(const struct audit_rec *r)
{
	const char	*text;
	size_t		 len, tail;

	if (audit_fd == -1)
		return -1;
	text = encode(r, 0, AUDIT_GENESIS, &len);
	if (strncmp(text, SEQ_HEAD, strlen(SEQ_HEAD)) != 0)
		fatalx("audit: a record does not begin with its seq");
	tail = len - strlen(SEQ_HEAD);
	if (batch.len + tail > batch.cap) {
		batch.cap = (batch.len + tail) * 2;
		batch.buf = xreallocarray(batch.buf, 1, batch.cap);
	}
	memcpy(batch.buf + batch.len, text + strlen(SEQ_HEAD), tail);
	batch.len += tail;
	if (batch.n == batch.nmax) {
		batch.nmax = batch.nmax ? batch.nmax * 2 : 64;
		batch.ends = xreallocarray(batch.ends, batch.nmax,
		    sizeof(*batch.ends));
	}
	batch.ends[batch.n++] = batch.len;
	if (batch.n >= BATCH_MAX || batch.len >= BATCH_BYTES)
		return batch_write();
	event_active(batch_ev, EV_TIMEOUT, 0);
	return audit_down ? -1 : 0;
}

/*
 * The queued records, numbered now, in one append: all in the log with
 * their seqs, or none and no seq taken (the log is down, as for any
 * record that cannot be written).
 */
static int
batch_write(void)
{
	char	*out, next[AUDIT_HEX];
	size_t	 i, start = 0, len = 0, n = batch.n, at;
	int	 rc;

	if (n == 0)
		return 0;
	batch.n = 0;
	if (audit_seq + n >= seq_reserved)
		(void)seq_reserve(audit_seq + n);
	out = xmalloc(batch.len + n * 112);
	snprintf(next, sizeof(next), "%s", chain);
	for (i = 0; i < n; i++) {
		at = len;
		len += (size_t)snprintf(out + len, 112,
		    "{\"seq\":%llu,\"prev\":\"%s\",",
		    (unsigned long long)(audit_seq + 1 + i), next);
		memcpy(out + len, batch.buf + start, batch.ends[i] - start);
		len += batch.ends[i] - start;
		start = batch.ends[i];
		auditchain_hash(out + at, len - at - 1, next);
	}
	batch.len = 0;
	rc = append_line(out, len);
	free(out);
	if (rc == -1) {
		set_down(errno);
		gw_release(0);
		held_failed = 1;
		return -1;
	}
	gw_release(1);
	audit_seq += n;
	snprintf(chain, sizeof(chain), "%s", next);
	since_head += n;
	/* As for any record: after a failed sync, up once one succeeds. */
	if (sync_failed) {
		if (!sync_due) {
			sync_due = 1;
			event_active(sync_ev, EV_TIMEOUT, 0);
		}
	} else
		set_up();
	head_due();
	return 0;
}

/*
 * Returns 0, or -1 when the record is not in the log: the log is down and
 * the caller fails closed.  A record that is not written takes no seq, so
 * the numbers stay consecutive across a failure.
 */
int
audit_write(const struct audit_rec *r, int sync)
{
	const char	*text;
	size_t		 len;
	int		 rc;

	if (audit_fd == -1) {
		held_failed = 1;
		return -1;
	}
	if (holding) {
		held_sync |= sync;
		(void)batch_add(r);
		return held_failed ? -1 : 0;
	}
	/*
	 * What needs no sync goes in the loop turn's one write: gatewayd's
	 * reports always, ours while the log is up (once it is down, each
	 * of ours is written at once: the next try that brings it up).
	 * Answers that must not go without their record wait for it
	 * (gwout.c).
	 */
	if (!sync && (!audit_down || (r->reported_by != NULL &&
	    strcmp(r->reported_by, "gatewayd") == 0)))
		return batch_add(r);
	/* The queue first: the file keeps the order of the seqs. */
	(void)batch_write();
	/*
	 * Past the block, reserve the next; if the store cannot, go on in
	 * memory (still increasing) and try again at the next record.
	 */
	if (audit_seq + 1 >= seq_reserved)
		(void)seq_reserve(audit_seq + 1);
	text = encode(r, audit_seq + 1, chain, &len);
	rc = append_line(text, len);
	if (rc == -1) {
		set_down(errno);
		return -1;
	}
	audit_seq++;
	auditchain_hash(text, len - 1, chain);
	since_head++;
	/* After a failed sync, the log is up again once a sync succeeds. */
	if (sync_failed)
		sync = 1;
	else
		set_up();
	if (sync && !sync_due) {
		sync_due = 1;
		event_active(sync_ev, EV_TIMEOUT, 0);
	}
	head_due();
	return 0;
}

/*
 * The records of a ledger batch (write.c, flush_cb), its intents and its
 * outcomes' answers, are written as one append instead of one write(2)
 * each: between audit_hold() and audit_release() every record is queued.
 * They are all in the log or none is (audit_release: 0 or -1), so the
 * batch is refused whole when the log fails; each is synced by the
 * audit_sync_begin() that follows, as it was.
 */
void
audit_hold(void)
{
	holding = 1;
	held_failed = held_sync = 0;
}

int
audit_release(void)
{
	holding = 0;
	(void)batch_write();
	/* Synced as any record that asks: audit_sync_begin() takes it. */
	if (held_sync && !held_failed && !sync_due) {
		sync_due = 1;
		event_active(sync_ev, EV_TIMEOUT, 0);
	}
	return held_failed ? -1 : 0;
}

/*
 * The records written so far start for the disk on the sync thread, while
 * the caller commits the ledger (or waits for the database: write.c,
 * commit_shared); audit_sync_end() waits for them.  Records written in
 * between are not covered: they are synced as any other (sync_due).
 */
void
audit_sync_begin(void)
{
	(void)batch_write();
	sync_due = 0;
	if (audit_fd == -1)
		return;
	syncer_begin(audit_fd);
	sync_begun = 1;
	begun_rc = -1;
}

/*
 * The sync begun is waited for now, before its file is closed; the
 * audit_sync_end() to come gets its result.
 */
static void
sync_settle(void)
{
	if (!sync_begun)
		return;
	sync_begun = 0;
	begun_rc = synced(syncer_wait());
}

/* -1 if the records written before audit_sync_begin() may not be on disk. */
int
audit_sync_end(void)
{
	int	rc;

	if (!sync_begun) {
		rc = begun_rc;
		begun_rc = -1;
		return rc;
	}
	sync_begun = 0;
	return synced(syncer_wait());
}

/*
 * The records written so far reach the disk now (a write's intent record,
 * before its ledger intent and its tool); -1 if they may not have.
 */
int
audit_sync(void)
{
	if (audit_fd == -1)
		return -1;
	sync_due = 1;
	return audit_flush();
}

/* After logrotate moved audit.log away: flush, close, open it anew. */
void
audit_reopen(void)
{
	int	fd;

	(void)audit_flush();
	/* The old file ends in a head; the new one chains to it. */
	head_write();
	if ((fd = open_log(NULL, NULL)) == -1) {
		log_warn("audit: reopen %s: keeping the old file", audit_path);
		return;
	}
	/* A tail torn in the old file stays cut there or is cut now. */
	if (torn_at != -1 && ftruncate(audit_fd, torn_at) == -1)
		log_warn("audit: cannot cut the torn tail of the old log");
	torn_at = -1;
	torn_unknown = 0;
	sync_settle();
	if (audit_fd != -1)
		close(audit_fd);
	audit_fd = fd;
	reopened_ms = mono_ms();
	log_info("audit: %s reopened", audit_path);
}

static void
reopen_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	audit_reopen();
}

/*
 * gatewayd asks for a reopen when SIGHUP reaches it.  Each reopen writes
 * a head (a sync and a commit), so a gatewayd that asks in a loop gets at
 * most one a second: one asked sooner is done when the second is up, and
 * those asked meanwhile are that one.
 */
void
audit_reopen_asked(void)
{
	struct timeval	tv;
	uint64_t	now = mono_ms();

	if (reopen_ev == NULL || evtimer_pending(reopen_ev, NULL))
		return;
	if (reopened_ms == 0 || now >= reopened_ms + 1000) {
		audit_reopen();
		return;
	}
	tv.tv_sec = 0;
	tv.tv_usec = (suseconds_t)(reopened_ms + 1000 - now) * 1000;
	evtimer_add(reopen_ev, &tv);
}

/*
 * audit.max_bytes reached: the old file ends in a head, the rotated files
 * move up one (the one past audit.keep goes), and a new audit.log chains
 * to the old one's last line.  Run from the loop, never inside a write's
 * commit, so no sync of the old descriptor is under way.
 */
static void
rotate_cb(evutil_socket_t fd, short what, void *arg)
{
	char		from[4200], to[4200];
	uint64_t	k;

	(void)fd;
	(void)what;
	(void)arg;
	if (audit_fd == -1 || log_size < ex->conf->audit_max_bytes)
		return;
	/* The last reopen failed: the file was moved already, open it anew. */
	if (access(audit_path, F_OK) == -1) {
		audit_reopen();
		return;
	}
	(void)audit_flush();
	head_write();
	snprintf(from, sizeof(from), "%s.%llu", audit_path,
	    (unsigned long long)ex->conf->audit_keep);
	if (unlink(from) == -1 && errno != ENOENT)
		log_warn("audit: %s", from);
	for (k = ex->conf->audit_keep; k > 1; k--) {
		snprintf(from, sizeof(from), "%s.%llu", audit_path,
		    (unsigned long long)(k - 1));
		snprintf(to, sizeof(to), "%s.%llu", audit_path,
		    (unsigned long long)k);
		if (rename(from, to) == -1 && errno != ENOENT)
			log_warn("audit: rename %s", from);
	}
	snprintf(to, sizeof(to), "%s.1", audit_path);
	if (rename(audit_path, to) == -1) {
		log_warn("audit: cannot rotate %s", audit_path);
		return;
	}
	log_info("audit: %s rotated at %llu bytes", audit_path,
	    (unsigned long long)log_size);
	audit_reopen();
}

void
audit_close(void)
{
	(void)audit_flush();
	head_write();
	if (head_ev != NULL)
		event_free(head_ev);
	head_ev = NULL;
	if (rotate_ev != NULL)
		event_free(rotate_ev);
	rotate_ev = NULL;
	if (reopen_ev != NULL)
		event_free(reopen_ev);
	reopen_ev = NULL;
	sodium_memzero(audit_sk, sizeof(audit_sk));
	sodium_memzero(hash_key, sizeof(hash_key));
	canon_buf_free(&redacted);
	if (sync_ev != NULL)
		event_free(sync_ev);
	sync_ev = NULL;
	if (batch_ev != NULL)
		event_free(batch_ev);
	batch_ev = NULL;
	free(batch.buf);
	free(batch.ends);
	free(recline.buf);
	memset(&recline, 0, sizeof(recline));
	memset(&batch, 0, sizeof(batch));
	sync_settle();
	if (audit_fd != -1)
		close(audit_fd);
	audit_fd = -1;
}
