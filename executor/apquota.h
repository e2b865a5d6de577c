/*
 * Quotas on pending approvals, per tenant: how many, and how many bytes of
 * args they hold.  Kept in the store (DB_PENDING), in the transaction that
 * records, decides or expires the approval, so the counts survive a
 * restart and always agree with the approvals they count.
 *
 *   'c' TENANT               -> be64 count, be64 bytes
 *   'e' be64 expires_at ID   -> be64 bytes, TENANT
 *
 * An approval counts from its request until it is decided or its
 * expires_at (wall clock, seconds) has passed and the sweeper has seen it.
 */
#ifndef TG_APQUOTA_H
#define TG_APQUOTA_H

#include <stddef.h>
#include <stdint.h>

struct store;
struct store_txn;

#define APQUOTA_COUNT	(-30201)	/* past max_pending_per_tenant */
#define APQUOTA_BYTES	(-30202)	/* past max_pending_bytes_per_tenant */

/* Count a new pending approval, or refuse it: 0, APQUOTA_*, or an error. */
int	apquota_add(struct store_txn *, const char *tenant,
	    const char *id, uint64_t expires_at, uint64_t bytes,
	    uint64_t max_count, uint64_t max_bytes);
/* It is pending no more (decided): 0 whether it was counted or not. */
int	apquota_drop(struct store_txn *, const char *id,
	    uint64_t expires_at);
/* What a tenant has pending, as counted. */
int	apquota_get(struct store *, const char *tenant, uint64_t *count,
	    uint64_t *bytes);
/*
 * Stop counting approvals whose expires_at is at or before now_s, at most
 * batch in one transaction (which may use the store's reserve); *removed
 * gets how many.
 */
int	apquota_sweep(struct store *, uint64_t now_s, size_t batch,
	    size_t *removed);

#endif
