/*
 * The state dir (paths.state_dir): checked before the executor opens
 * anything in it, and locked so that one executor at a time uses it.
 */
#ifndef TG_STATEDIR_H
#define TG_STATEDIR_H

/*
 * Refuse (fatalx, naming the path and the problem) a state dir that is not
 * wholly the executor's: it and everything under it must be owned by the
 * effective uid, not writable by group or others, not a symbolic link, and
 * a regular file must have one link.  Someone who could plant a file there
 * could make root append to any file, or sign with a key of their choosing.
 */
void	statedir_check(const char *dir);

/*
 * Take the write lock on STATE_DIR/lock for the life of the process, or
 * exit naming the pid that holds it: two executors on one store would run
 * the same write twice.
 */
void	statedir_lock(const char *dir);

#endif
