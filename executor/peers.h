/*
 * The agents' identities, as the kernel tells them to the executor: every
 * agent connection's socket arrives on the peer channel (EXECUTOR_PEER_FD)
 * under gatewayd's id for it.  The executor checks that it was accepted on
 * the agent socket, reads SO_PEERCRED, and keeps its own copy until
 * CONN_GONE, so it sees an agent hang up itself.  A request names its
 * connection, and the executor maps that peer, not gatewayd's claim, to a
 * principal.
 */
#ifndef TG_PEERS_H
#define TG_PEERS_H

#include <stdint.h>
#include <sys/types.h>

/*
 * agent_socket: the path the agent socket is bound to (ours, not
 * gatewayd's).  hung_up: what the entry function ends when an agent
 * hangs up, called as soon as the kernel says so.
 */
void	peers_init(const char *agent_socket, void (*hung_up)(uint64_t conn));
void	peers_shutdown(void);
/*
 * 0 and the peer's ids, -1 when gatewayd never passed that connection, or
 * -2 when it was refused (no descriptor was left to keep its socket).
 */
int	peers_lookup(uint64_t conn, uid_t *uid, gid_t *gid);
/* 1 when conn was refused: its requests are answered unavailable. */
int	peers_refused(uint64_t conn);
/* 1 when the agent hung up (or was refused), 0 while connected, -1 when never passed. */
int	peers_hung_up(uint64_t conn);
void	peers_forget(uint64_t conn);
/* Sockets held (refused connections hold none). */
size_t	peers_count(void);
/*
 * How many connections of peers with no principal gatewayd ever passed:
 * it answers each one request at most, so no more refusals of them.
 */
uint64_t peers_strangers(void);

#endif
