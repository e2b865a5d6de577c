/*
 * The executor's schema on PostgreSQL, as ordered migrations: migration N
 * takes a database at version N-1 to N, and is never edited once
 * released (a change is a new migration).  At each connection the
 * executor sends them all in one transaction (pg.c, pg_connected), under
 * an advisory lock so that two executors starting together migrate once;
 * each is applied only when tg_schema_version says it is due.  A database
 * newer than this executor is refused: an old executor must not write
 * records it does not understand.
 *
 * What is shared (PROTOCOL.md, "The store on PostgreSQL"): the ledger, the
 * kill switch, the hosts, the approvals, the audit heads.  Runs, pins,
 * approvals' quota and the audit log stay in each host's LMDB store and
 * state dir.
 *
 * Times that decide anything (retention) are the database's now(): the
 * hosts' clocks may disagree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "executor/pg.h"

static const char *const migrations[] = {
	/* 1: the ledger, the kill switch, the hosts. */
	"CREATE TABLE tg_meta (\n"
	"  name text PRIMARY KEY,\n"
	"  value text NOT NULL);\n"
	"INSERT INTO tg_meta VALUES ('writes_off', '0');\n"
	"CREATE TABLE tg_hosts (\n"
	"  host_id text PRIMARY KEY,\n"
	"  instance text NOT NULL,\n"
	"  pubkey text,\n"
	"  seen timestamptz NOT NULL DEFAULT now());\n"
	"CREATE TABLE tg_ledger (\n"
	"  key text PRIMARY KEY,\n"
	"  state text NOT NULL CHECK (state IN\n"
	"    ('running', 'done', 'failed', 'in_doubt')),\n"
	"  rec bytea NOT NULL,\n"
	"  host_id text NOT NULL,\n"
	"  instance text NOT NULL,\n"
	"  note text,\n"
	"  started timestamptz NOT NULL DEFAULT now(),\n"
	"  finished timestamptz);\n"
	"CREATE INDEX tg_ledger_state ON tg_ledger (state, finished);\n"
	/*
	 * An executor is alive while its session is: it connects as
	 * application_name 'toolgate INSTANCE'.  A running record whose
	 * executor is gone will never get its outcome: it is in doubt.
	 */
	"CREATE FUNCTION tg_alive(inst text) RETURNS boolean\n"
	"LANGUAGE sql STABLE AS $f$\n"
	"  SELECT EXISTS (SELECT 1 FROM pg_stat_activity\n"
	"    WHERE application_name = 'toolgate ' || inst) $f$;\n"
	/*
	 * The intents of one loop turn, in one statement (one transaction):
	 * the kill switch row is read (FOR SHARE: the switch waits for us,
	 * we wait for it), then each key is inserted, which fails on an
	 * existing one; that one is looked at to say why.  Keys go in key
	 * order, so two batches that insert the same keys never wait on each
	 * other in a cycle; an existing record is read without a lock and
	 * changed only if it is still as read (else: ask again, 'wait').
	 */
	"CREATE FUNCTION tg_intents(ks text[], rs bytea[], h text, i text)\n"
	"RETURNS TABLE (n integer, verdict text, prior bytea, why text)\n"
	"LANGUAGE plpgsql AS $f$\n"
	"DECLARE\n"
	"  off boolean;\n"
	"  r tg_ledger%ROWTYPE;\n"
	"  j integer;\n"
	"BEGIN\n"
	"  SELECT value <> '0' INTO off FROM tg_meta\n"
	"    WHERE name = 'writes_off' FOR SHARE;\n"
	"  FOR j IN SELECT o FROM unnest(ks) WITH ORDINALITY AS u(k, o)\n"
	"      ORDER BY k LOOP\n"
	"    n := j; prior := NULL; why := NULL;\n"
	"    IF off THEN\n"
	"      verdict := 'off'; RETURN NEXT; CONTINUE;\n"
	"    END IF;\n"
	"    INSERT INTO tg_ledger (key, state, rec, host_id, instance)\n"
	"      VALUES (ks[j], 'running', rs[j], h, i)\n"
	"      ON CONFLICT (key) DO NOTHING;\n"
	"    IF FOUND THEN\n"
	"      verdict := 'run'; RETURN NEXT; CONTINUE;\n"
	"    END IF;\n"
	"    SELECT * INTO r FROM tg_ledger WHERE key = ks[j];\n"
	"    IF NOT FOUND THEN\n"
	"      verdict := 'wait'; RETURN NEXT; CONTINUE;\n"
	"    END IF;\n"
	"    IF r.state = 'failed' THEN\n"
	"      UPDATE tg_ledger SET state = 'running', rec = rs[j],\n"
	"        host_id = h, instance = i, note = NULL, started = now(),\n"
	"        finished = NULL WHERE key = ks[j] AND state = 'failed';\n"
	"      verdict := CASE WHEN FOUND THEN 'run' ELSE 'wait' END;\n"
	"    ELSIF r.state = 'done' THEN\n"
	"      verdict := 'replay'; prior := r.rec;\n"
	"    ELSIF r.state = 'running' AND r.instance <> i\n"
	"        AND tg_alive(r.instance) THEN\n"
	"      verdict := 'wait'; why := r.host_id;\n"
	"    ELSIF r.state = 'running' THEN\n"
	"      r.note := 'its executor on ' || r.host_id ||\n"
	"        ' ended before its outcome was recorded';\n"
	"      UPDATE tg_ledger SET state = 'in_doubt', note = r.note\n"
	"        WHERE key = ks[j] AND state = 'running'\n"
	"        AND instance = r.instance;\n"
	"      verdict := CASE WHEN FOUND THEN 'in_doubt' ELSE 'wait' END;\n"
	"      prior := r.rec; why := r.note;\n"
	"    ELSE\n"
	"      verdict := 'in_doubt'; prior := r.rec; why := r.note;\n"
	"    END IF;\n"
	"    RETURN NEXT;\n"
	"  END LOOP;\n"
	"END $f$;\n"
	/*
	 * Outcomes: only this executor's running record takes its outcome
	 * (one turned in doubt meanwhile stays so), and every host waiting
	 * on the key hears of it when the transaction commits.
	 */
	"CREATE FUNCTION tg_outcomes(ks text[], sts text[], rs bytea[],\n"
	"    notes text[], i text) RETURNS integer\n"
	"LANGUAGE plpgsql AS $f$\n"
	"DECLARE\n"
	"  c integer := 0;\n"
	"BEGIN\n"
	"  FOR j IN 1 .. coalesce(array_length(ks, 1), 0) LOOP\n"
	"    UPDATE tg_ledger SET state = sts[j], rec = rs[j], note = notes[j],\n"
	"      finished = now()\n"
	"      WHERE key = ks[j] AND instance = i AND state = 'running';\n"
	"    IF FOUND THEN\n"
	"      c := c + 1;\n"
	"    END IF;\n"
	"    PERFORM pg_notify('tg_ledger', ks[j]);\n"
	"  END LOOP;\n"
	"  RETURN c;\n"
	"END $f$;\n"
	/*
	 * One loop turn: outcomes first, then intents, one transaction.  An
	 * error among the intents (a deadlock the database broke, say) must
	 * not cost the outcomes: the intents are rolled back to a savepoint
	 * (the inner block) and each is answered 'retry', with the error.
	 */
	"CREATE FUNCTION tg_batch(oks text[], osts text[], ors bytea[],\n"
	"    onotes text[], iks text[], irs bytea[], h text, i text)\n"
	"RETURNS TABLE (n integer, verdict text, prior bytea, why text)\n"
	"LANGUAGE plpgsql AS $f$\n"
	"BEGIN\n"
	"  PERFORM tg_outcomes(oks, osts, ors, onotes, i);\n"
	"  BEGIN\n"
	"    RETURN QUERY SELECT * FROM tg_intents(iks, irs, h, i);\n"
	"  EXCEPTION WHEN OTHERS THEN\n"
	"    RETURN QUERY SELECT g, 'retry'::text, NULL::bytea, SQLERRM\n"
	"      FROM generate_series(1, coalesce(array_length(iks, 1), 0))\n"
	"      AS g;\n"
	"  END;\n"
	"END $f$;\n"
	/*
	 * Retention, by one executor at a time (the others find the lock
	 * taken and skip the turn), on the database's clock: the hosts'
	 * clocks may disagree.
	 */
	"CREATE FUNCTION tg_sweep(retention_s bigint, lim integer)\n"
	"RETURNS integer LANGUAGE plpgsql AS $f$\n"
	"DECLARE\n"
	"  c integer;\n"
	"BEGIN\n"
	"  IF NOT pg_try_advisory_xact_lock(7386415913) THEN\n"
	"    RETURN 0;\n"
	"  END IF;\n"
	"  DELETE FROM tg_ledger WHERE key IN (SELECT key FROM tg_ledger\n"
	"    WHERE state IN ('done', 'failed')\n"
	"    AND finished < now() - make_interval(secs => retention_s)\n"
	"    LIMIT lim);\n"
	"  GET DIAGNOSTICS c = ROW_COUNT;\n"
	"  RETURN c;\n"
	"END $f$;\n"
	/* The kill switch, for every host: the row, then the news. */
	"CREATE FUNCTION tg_set_writes_off(off boolean, who text)\n"
	"RETURNS void LANGUAGE plpgsql AS $f$\n"
	"BEGIN\n"
	"  UPDATE tg_meta SET value = CASE WHEN off THEN '1' ELSE '0' END\n"
	"    WHERE name = 'writes_off';\n"
	"  PERFORM pg_notify('tg_kill',\n"
	"    CASE WHEN off THEN '1 ' ELSE '0 ' END || who);\n"
	"END $f$;\n",

	/*
	 * 2: approvals as rows, so that any host lists and decides them.
	 * rec is the record as LMDB holds it (approval_encode); expires_at
	 * in seconds, as the requesting host set it.  A decision is taken
	 * only on a pending record, and told on tg_approval.
	 */
	"CREATE TABLE tg_approvals (\n"
	"  id text PRIMARY KEY,\n"
	"  state text NOT NULL CHECK (state IN\n"
	"    ('pending', 'approved', 'denied')),\n"
	"  rec bytea NOT NULL,\n"
	"  host_id text NOT NULL,\n"
	"  expires_at bigint NOT NULL,\n"
	"  created timestamptz NOT NULL DEFAULT now(),\n"
	"  decided timestamptz);\n"
	"CREATE INDEX tg_approvals_state ON tg_approvals (state, id);\n"
	/*
	 * An approval is used once, whichever host resumes it: started is
	 * set in the transaction that records its write's intent, and a
	 * resume of a started approval whose write's record is gone (swept)
	 * is 'used', never run anew.  So the intents take the approval of
	 * each write (NULL: none) from this version on.
	 */
	"ALTER TABLE tg_approvals ADD COLUMN started boolean NOT NULL\n"
	"  DEFAULT false;\n"
	"DROP FUNCTION IF EXISTS tg_batch(text[], text[], bytea[], text[],\n"
	"  text[], bytea[], text, text);\n"
	"DROP FUNCTION IF EXISTS tg_intents(text[], bytea[], text, text);\n"
	"CREATE OR REPLACE FUNCTION tg_intents(ks text[], rs bytea[],\n"
	"    aps text[], h text, i text)\n"
	"RETURNS TABLE (n integer, verdict text, prior bytea, why text)\n"
	"LANGUAGE plpgsql AS $f$\n"
	"DECLARE\n"
	"  off boolean;\n"
	"  r tg_ledger%ROWTYPE;\n"
	"  j integer;\n"
	"BEGIN\n"
	"  SELECT value <> '0' INTO off FROM tg_meta\n"
	"    WHERE name = 'writes_off' FOR SHARE;\n"
	"  FOR j IN SELECT o FROM unnest(ks) WITH ORDINALITY AS u(k, o)\n"
	"      ORDER BY k LOOP\n"
	"    n := j; prior := NULL; why := NULL;\n"
	"    IF off THEN\n"
	"      verdict := 'off'; RETURN NEXT; CONTINUE;\n"
	"    END IF;\n"
	"    IF aps[j] IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tg_ledger\n"
	"        WHERE key = ks[j]) AND EXISTS (SELECT 1 FROM tg_approvals\n"
	"        WHERE id = aps[j] AND started) THEN\n"
	"      verdict := 'used'; RETURN NEXT; CONTINUE;\n"
	"    END IF;\n"
	"    INSERT INTO tg_ledger (key, state, rec, host_id, instance)\n"
	"      VALUES (ks[j], 'running', rs[j], h, i)\n"
	"      ON CONFLICT (key) DO NOTHING;\n"
	"    IF FOUND THEN\n"
	"      UPDATE tg_approvals SET started = true WHERE id = aps[j];\n"
	"      verdict := 'run'; RETURN NEXT; CONTINUE;\n"
	"    END IF;\n"
	"    SELECT * INTO r FROM tg_ledger WHERE key = ks[j];\n"
	"    IF NOT FOUND THEN\n"
	"      verdict := 'wait'; RETURN NEXT; CONTINUE;\n"
	"    END IF;\n"
	"    IF r.state = 'failed' THEN\n"
	"      UPDATE tg_ledger SET state = 'running', rec = rs[j],\n"
	"        host_id = h, instance = i, note = NULL, started = now(),\n"
	"        finished = NULL WHERE key = ks[j] AND state = 'failed';\n"
	"      IF FOUND THEN\n"
	"        UPDATE tg_approvals SET started = true WHERE id = aps[j];\n"
	"        verdict := 'run';\n"
	"      ELSE\n"
	"        verdict := 'wait';\n"
	"      END IF;\n"
	"    ELSIF r.state = 'done' THEN\n"
	"      verdict := 'replay'; prior := r.rec;\n"
	"    ELSIF r.state = 'running' AND r.instance <> i\n"
	"        AND tg_alive(r.instance) THEN\n"
	"      verdict := 'wait'; why := r.host_id;\n"
	"    ELSIF r.state = 'running' THEN\n"
	"      r.note := 'its executor on ' || r.host_id ||\n"
	"        ' ended before its outcome was recorded';\n"
	"      UPDATE tg_ledger SET state = 'in_doubt', note = r.note\n"
	"        WHERE key = ks[j] AND state = 'running'\n"
	"        AND instance = r.instance;\n"
	"      verdict := CASE WHEN FOUND THEN 'in_doubt' ELSE 'wait' END;\n"
	"      prior := r.rec; why := r.note;\n"
	"    ELSE\n"
	"      verdict := 'in_doubt'; prior := r.rec; why := r.note;\n"
	"    END IF;\n"
	"    RETURN NEXT;\n"
	"  END LOOP;\n"
	"END $f$;\n"
	"CREATE OR REPLACE FUNCTION tg_batch(oks text[], osts text[],\n"
	"    ors bytea[], onotes text[], iks text[], irs bytea[],\n"
	"    iaps text[], h text, i text)\n"
	"RETURNS TABLE (n integer, verdict text, prior bytea, why text)\n"
	"LANGUAGE plpgsql AS $f$\n"
	"BEGIN\n"
	"  PERFORM tg_outcomes(oks, osts, ors, onotes, i);\n"
	"  BEGIN\n"
	"    RETURN QUERY SELECT * FROM tg_intents(iks, irs, iaps, h, i);\n"
	"  EXCEPTION WHEN OTHERS THEN\n"
	"    RETURN QUERY SELECT g, 'retry'::text, NULL::bytea, SQLERRM\n"
	"      FROM generate_series(1, coalesce(array_length(iks, 1), 0))\n"
	"      AS g;\n"
	"  END;\n"
	"END $f$;\n"
	"CREATE FUNCTION tg_decide(aid text, st text, r bytea)\n"
	"RETURNS boolean LANGUAGE plpgsql AS $f$\n"
	"BEGIN\n"
	"  UPDATE tg_approvals SET state = st, rec = r, decided = now()\n"
	"    WHERE id = aid AND state = 'pending';\n"
	"  IF NOT FOUND THEN\n"
	"    RETURN false;\n"
	"  END IF;\n"
	"  PERFORM pg_notify('tg_approval', aid);\n"
	"  RETURN true;\n"
	"END $f$;\n"
	/* Approvals are swept as the ledger, past expiry and retention. */
	"CREATE OR REPLACE FUNCTION tg_sweep(retention_s bigint, lim integer)\n"
	"RETURNS integer LANGUAGE plpgsql AS $f$\n"
	"DECLARE\n"
	"  c integer;\n"
	"  d integer;\n"
	"BEGIN\n"
	"  IF NOT pg_try_advisory_xact_lock(7386415913) THEN\n"
	"    RETURN 0;\n"
	"  END IF;\n"
	"  DELETE FROM tg_ledger WHERE key IN (SELECT key FROM tg_ledger\n"
	"    WHERE state IN ('done', 'failed')\n"
	"    AND finished < now() - make_interval(secs => retention_s)\n"
	"    LIMIT lim);\n"
	"  GET DIAGNOSTICS c = ROW_COUNT;\n"
	"  DELETE FROM tg_approvals WHERE id IN (SELECT id FROM tg_approvals\n"
	"    WHERE expires_at + retention_s <\n"
	"      extract(epoch FROM now())::bigint LIMIT lim);\n"
	"  GET DIAGNOSTICS d = ROW_COUNT;\n"
	"  RETURN c + d;\n"
	"END $f$;\n",
	/*
	 * 3: each host's audit head (auditchain_head_json), kept off the
	 * host: a log rolled back with its state dir falls short of it.
	 */
	"CREATE TABLE tg_audit_heads (\n"
	"  host_id text PRIMARY KEY,\n"
	"  seq bigint NOT NULL,\n"
	"  head text NOT NULL,\n"
	"  updated timestamptz NOT NULL DEFAULT now());\n",
	/*
	 * 4: a batch locks the kill switch row only once it has an intent
	 * that may run, and a key already done is replayed from a plain
	 * read: a batch of replays (or of outcomes alone) takes no row lock
	 * and, when it writes nothing, commits without a WAL flush.  The
	 * switch is read first without the lock: thrown, every intent is
	 * refused as before; thrown meanwhile, the lock sees it before any
	 * intent that may run.
	 */
	"CREATE OR REPLACE FUNCTION tg_intents(ks text[], rs bytea[],\n"
	"    aps text[], h text, i text)\n"
	"RETURNS TABLE (n integer, verdict text, prior bytea, why text)\n"
	"LANGUAGE plpgsql AS $f$\n"
	"DECLARE\n"
	"  off boolean;\n"
	"  locked boolean := false;\n"
	"  r tg_ledger%ROWTYPE;\n"
	"  j integer;\n"
	"BEGIN\n"
	"  SELECT value <> '0' INTO off FROM tg_meta\n"
	"    WHERE name = 'writes_off';\n"
	"  FOR j IN SELECT o FROM unnest(ks) WITH ORDINALITY AS u(k, o)\n"
	"      ORDER BY k LOOP\n"
	"    n := j; prior := NULL; why := NULL;\n"
	"    IF off THEN\n"
	"      verdict := 'off'; RETURN NEXT; CONTINUE;\n"
	"    END IF;\n"
	"    IF aps[j] IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tg_ledger\n"
	"        WHERE key = ks[j]) AND EXISTS (SELECT 1 FROM tg_approvals\n"
	"        WHERE id = aps[j] AND started) THEN\n"
	"      verdict := 'used'; RETURN NEXT; CONTINUE;\n"
	"    END IF;\n"
	"    SELECT * INTO r FROM tg_ledger WHERE key = ks[j];\n"
	"    IF FOUND AND r.state = 'done' THEN\n"
	"      verdict := 'replay'; prior := r.rec; RETURN NEXT; CONTINUE;\n"
	"    END IF;\n"
	"    IF NOT locked THEN\n"
	"      SELECT value <> '0' INTO off FROM tg_meta\n"
	"        WHERE name = 'writes_off' FOR SHARE;\n"
	"      locked := true;\n"
	"      IF off THEN\n"
	"        verdict := 'off'; RETURN NEXT; CONTINUE;\n"
	"      END IF;\n"
	"    END IF;\n"
	"    INSERT INTO tg_ledger (key, state, rec, host_id, instance)\n"
	"      VALUES (ks[j], 'running', rs[j], h, i)\n"
	"      ON CONFLICT (key) DO NOTHING;\n"
	"    IF FOUND THEN\n"
	"      UPDATE tg_approvals SET started = true WHERE id = aps[j];\n"
	"      verdict := 'run'; RETURN NEXT; CONTINUE;\n"
	"    END IF;\n"
	"    SELECT * INTO r FROM tg_ledger WHERE key = ks[j];\n"
	"    IF NOT FOUND THEN\n"
	"      verdict := 'wait'; RETURN NEXT; CONTINUE;\n"
	"    END IF;\n"
	"    IF r.state = 'failed' THEN\n"
	"      UPDATE tg_ledger SET state = 'running', rec = rs[j],\n"
	"        host_id = h, instance = i, note = NULL, started = now(),\n"
	"        finished = NULL WHERE key = ks[j] AND state = 'failed';\n"
	"      IF FOUND THEN\n"
	"        UPDATE tg_approvals SET started = true WHERE id = aps[j];\n"
	"        verdict := 'run';\n"
	"      ELSE\n"
	"        verdict := 'wait';\n"
	"      END IF;\n"
	"    ELSIF r.state = 'done' THEN\n"
	"      verdict := 'replay'; prior := r.rec;\n"
	"    ELSIF r.state = 'running' AND r.instance <> i\n"
	"        AND tg_alive(r.instance) THEN\n"
	"      verdict := 'wait'; why := r.host_id;\n"
	"    ELSIF r.state = 'running' THEN\n"
	"      r.note := 'its executor on ' || r.host_id ||\n"
	"        ' ended before its outcome was recorded';\n"
	"      UPDATE tg_ledger SET state = 'in_doubt', note = r.note\n"
	"        WHERE key = ks[j] AND state = 'running'\n"
	"        AND instance = r.instance;\n"
	"      verdict := CASE WHEN FOUND THEN 'in_doubt' ELSE 'wait' END;\n"
	"      prior := r.rec; why := r.note;\n"
	"    ELSE\n"
	"      verdict := 'in_doubt'; prior := r.rec; why := r.note;\n"
	"    END IF;\n"
	"    RETURN NEXT;\n"
	"  END LOOP;\n"
	"END $f$;\n",
};

#define NMIGRATIONS	((int)(sizeof(migrations) / sizeof(migrations[0])))

int
pgschema_version(void)
{
	return NMIGRATIONS;
}

/*
 * All migrations, each guarded by the version, in one transaction (sent
 * with PQsendQuery: several statements).  Built once.
 */
const char *
pgschema_sql(void)
{
	static char	*sql;
	char		*s, *t;
	int		 i;

	if (sql != NULL)
		return sql;
	xasprintf(&s, "BEGIN;\n"
	    "SELECT pg_advisory_xact_lock(7386415912);\n"
	    "CREATE TABLE IF NOT EXISTS tg_schema_version (\n"
	    "  version integer NOT NULL);\n"
	    "DO $do$ BEGIN\n"
	    "IF (SELECT coalesce(max(version), 0) FROM tg_schema_version)"
	    " > %d THEN\n"
	    "  RAISE EXCEPTION 'the toolgate schema is newer (version %%)"
	    " than this executor knows (%d)',\n"
	    "    (SELECT max(version) FROM tg_schema_version);\n"
	    "END IF;\nEND $do$;\n", NMIGRATIONS, NMIGRATIONS);
	for (i = 0; i < NMIGRATIONS; i++) {
		xasprintf(&t, "%sDO $do$ BEGIN\n"
		    "IF (SELECT coalesce(max(version), 0) FROM"
		    " tg_schema_version) < %d THEN\n"
		    "EXECUTE $m$%s$m$;\n"
		    "INSERT INTO tg_schema_version VALUES (%d);\n"
		    "END IF;\nEND $do$;\n", s, i + 1, migrations[i], i + 1);
		free(s);
		s = t;
	}
	xasprintf(&sql, "%sCOMMIT;\n", s);
	free(s);
	return sql;
}
