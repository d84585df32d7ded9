// SPDX-License-Identifier: GPL-2.0
/*
 * close() of an inherited parent event racing a fork() that fails after
 * perf_event_init_task() copied the event into the child's context: the
 * failing fork frees the child's events (perf_event_free_task()) and waits
 * for the child context's references to drop, while the close of the parent
 * event frees the same children from the other side. Every put on the dying
 * context must wake the waiter; upstream commit 74751ef5c191 added the
 * missing wake_up_var(), without which the fork could hang.
 *
 * The fork fails late on purpose: clone3() with a set_tid that is in use
 * fails in alloc_pid() with EEXIST, after the events were inherited. The
 * test runs for a bounded time; a hang fails it through the harness
 * timeout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../kselftest_harness.h"

#define RUN_SECONDS	4

static long perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group)
{
	return syscall(__NR_perf_event_open, attr, pid, cpu, group, PERF_FLAG_FD_CLOEXEC);
}

/* A fork that fails in alloc_pid(), after perf_event_init_task(). */
static long failing_fork(pid_t taken)
{
	struct clone_args args;

	memset(&args, 0, sizeof(args));
	args.exit_signal = SIGCHLD;
	args.set_tid = (uintptr_t)&taken;
	args.set_tid_size = 1;
	return syscall(__NR_clone3, &args, sizeof(args));
}

struct shared {
	atomic_int stop;
	pid_t taken;
	unsigned long forks, eexist, other;
	int other_errno;
};

static void *forker(void *arg)
{
	struct shared *s = arg;

	while (!atomic_load(&s->stop)) {
		long ret = failing_fork(s->taken);

		if (ret == 0)
			_exit(0);	/* must not happen: the tid is taken */
		if (ret > 0) {
			s->other++;
			continue;
		}
		s->forks++;
		if (errno == EEXIST) {
			s->eexist++;
		} else {
			s->other++;
			s->other_errno = errno;
		}
	}
	return NULL;
}

TEST(close_inherited_parent_while_fork_fails)
{
	struct perf_event_attr attr;
	struct shared s = { .taken = getpid() };
	unsigned long opened = 0;
	pthread_t t;
	time_t end;

	/* Is the failure mode there at all? */
	errno = 0;
	if (failing_fork(getpid()) < 0 && (errno == ENOSYS || errno == EPERM))
		SKIP(return, "clone3() with set_tid: %s", strerror(errno));

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_TASK_CLOCK;
	attr.inherit = 1;
	attr.exclude_kernel = 1;

	ASSERT_EQ(0, pthread_create(&t, NULL, forker, &s));
	end = time(NULL) + RUN_SECONDS;
	while (time(NULL) < end) {
		int fd[2], i;

		/* Two inherited events of this process, closed while forks copy them. */
		for (i = 0; i < 2; i++) {
			fd[i] = perf_open(&attr, 0, -1, -1);
			ASSERT_LE(0, fd[i]) TH_LOG("perf_event_open: %s", strerror(errno));
		}
		usleep(100);
		for (i = 0; i < 2; i++)
			close(fd[i]);
		opened += 2;
	}
	atomic_store(&s.stop, 1);
	ASSERT_EQ(0, pthread_join(t, NULL));
	ksft_print_msg("%lu events opened and closed, %lu failed forks (%lu EEXIST)\n",
		       opened, s.forks, s.eexist);
	EXPECT_EQ(0, s.other) TH_LOG("unexpected fork result, errno %s",
				     strerror(s.other_errno));
	EXPECT_GT(s.eexist, 0);
}

TEST_HARNESS_MAIN
