/*
 * The kill switch (killswitch.h): stored, told to gatewayd, audited.
 */
#include <stddef.h>
#include <stdio.h>

#include "common/log.h"
#include "proto/proto.h"
#include "executor/executor.h"
#include "executor/response.h"
#include "executor/pgstore.h"
#include "executor/store.h"
#include "executor/killswitch.h"

int
ks_writes_on(void)
{
	return ex->conf->writes_enabled && !ex->writes_off;
}

static void
send_writes_state(void)
{
	struct msgbuf	mb;
	struct mpmap	body;

	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_WRITES_STATE, 0, &body);
	mpmap_bool(&body, "writes_enabled", ks_writes_on());
	mpmap_end(&body);
	gw_send(&mb);
	msgbuf_free(&mb);
}

int
ks_set_writes_off(int off, const char *who)
{
	struct audit_rec	ar = { .event = "writes", .uid = -1 };
	int			rc, shared = 0;

	/* Disabling takes effect in memory first, whatever the disk says. */
	if (off)
		ex->writes_off = 1;
	/*
	 * Shared (PostgreSQL): every host's switch.  Enabling needs the
	 * database, or one host would write while the others stay off;
	 * disabling holds here at once and reaches the others when it can.
	 */
	if (pgstore_on() && (shared = pgstore_set_writes_off(off, who)) ==
	    -1 && !off) {
		log_warnx("kill switch: the shared store cannot be reached:"
		    " writes stay disabled");
		return -1;
	}
	if ((rc = store_set_writes_off(ex->store, off)) != 0) {
		log_warnx("kill switch: cannot store the state: %s",
		    store_strerror(rc));
		if (!off)
			return -1;
	}
	ex->writes_off = off;
	log_info("writes %s by %s", off ? "disabled" : "enabled", who);
	ar.decision = off ? "disabled" : "enabled";
	ar.approver = who;
	(void)audit_write(&ar, 1);
	send_writes_state();
	return rc == 0 && shared == 0 ? 0 : -1;
}

void
ks_apply_shared(int off, const char *who)
{
	struct audit_rec	ar = { .event = "writes", .uid = -1 };
	char			by[256];
	int			rc;

	if (off == ex->writes_off)
		return;
	ex->writes_off = off;
	/* Kept here too: a restart without the database stays off. */
	if ((rc = store_set_writes_off(ex->store, off)) != 0)
		log_warnx("kill switch: cannot store the state: %s",
		    store_strerror(rc));
	snprintf(by, sizeof(by), "%s (shared store)", who);
	log_info("writes %s by %s", off ? "disabled" : "enabled", by);
	ar.decision = off ? "disabled" : "enabled";
	ar.approver = by;
	(void)audit_write(&ar, 1);
	send_writes_state();
}
