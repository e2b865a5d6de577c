#ifndef EXECUTOR_CAPS_H
#define EXECUTOR_CAPS_H

struct config;

/*
 * Started as root: keep only the capabilities the config needs (caps.c),
 * in every set, bounding included.  Fatal on failure.  Not root: nothing.
 */
void	caps_drop(const struct config *);

#endif
