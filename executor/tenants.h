/*
 * The tenants of the config, numbered: the rate limits and the breaker
 * keep state per tenant in arrays, so their memory is bounded by the
 * config, never by what agents send.
 */
#ifndef TG_TENANTS_H
#define TG_TENANTS_H

#include <stddef.h>

struct config;

void	tenants_init(const struct config *);
/* How many; and a tenant's number, or -1 for a name the config lacks. */
size_t	tenants_count(void);
int	tenant_index(const char *tenant);
void	tenants_shutdown(void);

#endif
