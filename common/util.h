#ifndef TG_UTIL_H
#define TG_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* SHA-256 of a whole file as 64 hex digits; -1 with errno on error. */
int	file_sha256_hex(const char *path, char out[65]);

/* Milliseconds: wall clock (for records) and monotonic (for durations). */
/*
 * A W3C Trace Context traceparent, version 00 as it is written:
 * "00-" 32 lowercase hex (not all zero) "-" 16 (not all zero) "-" 2.
 */
#define TRACEPARENT_LEN	55
int	traceparent_valid(const char *, size_t);

uint64_t now_ms(void);
uint64_t mono_ms(void);

/* 8 bytes big-endian (sortable keys, fixed-size values). */
void	 be64_put(void *buf, uint64_t v);
uint64_t be64_get(const void *buf);

/* The peer of a Unix socket; -1 with errno. */
int	peer_cred(int fd, uid_t *uid, gid_t *gid, pid_t *pid);

/*
 * Bind a listening Unix stream socket at 'path' with 'mode', removing a
 * stale socket left there by an earlier run: one that refuses a connection.
 * A socket a server still answers on, and anything that is not a socket,
 * are never removed.  Returns the fd or -1 with a message in err.
 */
int	unix_listen(const char *path, mode_t mode, char *err, size_t errlen);

/* mkdir -p with the last component getting 'mode'; 0 or -1 with errno. */
int	mkdir_p(const char *path, mode_t mode);

#endif
