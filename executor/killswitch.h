/*
 * The kill switch: writes are off while it is thrown (SIGUSR1, gatewayd's
 * WRITES_OFF, an operator), whatever the config enables.  Its state is
 * kept in the store, so a restart keeps it.
 */
#ifndef TG_KILLSWITCH_H
#define TG_KILLSWITCH_H

/* Writes are possible: the config enables them and the kill switch is off. */
int	ks_writes_on(void);
/*
 * Turn the kill switch: persist it, tell gatewayd, audit it.  'who' names
 * the cause for the log and the audit log.  Returns 0 or -1 when the state
 * could not be stored (writes stay off in memory regardless when disabling).
 */
int	ks_set_writes_off(int off, const char *who);
/*
 * The shared store (pgstore.c) says the switch is now 'off' (thrown on
 * some host, or as read at connection): follow it, tell gatewayd, audit.
 */
void	ks_apply_shared(int off, const char *who);

#endif
