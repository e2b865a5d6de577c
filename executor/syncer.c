/*
 * The sync thread (syncer.h).  A mutex and a condition variable hand it
 * one descriptor at a time and hand back fdatasync's result; the loop
 * thread always waits for the result before it goes on, so there is never
 * more than one request and no queue.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "executor/syncer.h"

static pthread_t	thread;
static pthread_mutex_t	lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	cond = PTHREAD_COND_INITIALIZER;
static int		started;
static int		quit;
static int		pending_fd = -1;	/* asked, not begun */
static int		busy;		/* asked or running */
static int		result, result_errno;

static void *
syncer_main(void *arg)
{
	int	fd, rc, err;

	(void)arg;
	pthread_mutex_lock(&lock);
	for (;;) {
		while (pending_fd == -1 && !quit)
			pthread_cond_wait(&cond, &lock);
		if (pending_fd == -1 && quit)
			break;
		fd = pending_fd;
		pending_fd = -1;
		pthread_mutex_unlock(&lock);
		rc = fdatasync(fd);
		err = errno;
		pthread_mutex_lock(&lock);
		result = rc;
		result_errno = err;
		busy = 0;
		pthread_cond_broadcast(&cond);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

void
syncer_init(void)
{
	sigset_t	all, old;
	int		rc;

	/* Signals are the loop thread's (libevent's): none come here. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&thread, NULL, syncer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		fatalx("syncer: pthread_create: %s", strerror(rc));
	started = 1;
}

void
syncer_begin(int fd)
{
	/* Without the thread (a program that links us alone): at once. */
	if (!started) {
		result = fdatasync(fd);
		result_errno = errno;
		return;
	}
	pthread_mutex_lock(&lock);
	if (busy)
		fatalx("syncer: a sync begun before the last was waited for");
	pending_fd = fd;
	busy = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

int
syncer_wait(void)
{
	int	rc, err;

	if (!started) {
		errno = result_errno;
		return result;
	}
	pthread_mutex_lock(&lock);
	while (busy)
		pthread_cond_wait(&cond, &lock);
	rc = result;
	err = result_errno;
	pthread_mutex_unlock(&lock);
	if (rc == -1)
		errno = err;
	return rc;
}

void
syncer_shutdown(void)
{
	if (!started)
		return;
	pthread_mutex_lock(&lock);
	quit = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	started = 0;
}
