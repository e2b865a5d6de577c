/*
 * The agents' identities, as the kernel tells them to the executor: every
 * agent connection's socket arrives on the peer channel (EXECUTOR_PEER_FD)
 * under gatewayd's id for it; the executor reads SO_PEERCRED and closes
 * it.  A request names its connection, and the executor maps that peer,
 * not gatewayd's claim, to a principal.
 */
#ifndef TG_PEERS_H
#define TG_PEERS_H

#include <stdint.h>
#include <sys/types.h>

void	peers_init(void);
void	peers_shutdown(void);
/* 0 and the peer's ids, or -1 when gatewayd never passed that connection. */
int	peers_lookup(uint64_t conn, uid_t *uid, gid_t *gid);
void	peers_forget(uint64_t conn);
size_t	peers_count(void);

#endif
