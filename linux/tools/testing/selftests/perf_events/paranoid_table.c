// SPDX-License-Identifier: GPL-2.0
/*
 * Who may open what, for each value of kernel.perf_event_paranoid: an
 * unprivileged user (uid/gid 65534, no capabilities) and root try the same
 * five opens and must get exactly the result upstream documents
 * (Documentation/admin-guide/perf-security.rst, include/linux/perf_event.h
 * perf_allow_cpu()/perf_allow_kernel(), and Debian's level 3, which refuses
 * every open without CAP_SYS_ADMIN):
 *
 *   open                       -1   0   1   2   3   (unprivileged)
 *   task, self, user only      ok  ok  ok  ok  EACCES
 *   task, self, with kernel    ok  ok  ok  EACCES  EACCES
 *   task, another user's       EACCES at every level (ptrace check)
 *   CPU 0, user only           ok  ok  EACCES  EACCES  EACCES
 *   CPU 0, with kernel         ok  ok  EACCES  EACCES  EACCES
 *
 * and root: ok everywhere. The CPU rows go through find_get_context()'s
 * perf_allow_cpu() check, the task rows through find_get_context()'s task
 * context lookup: both moved to the Rust core, whose errors must be C's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../kselftest_harness.h"

#define PARANOID	"/proc/sys/kernel/perf_event_paranoid"
#define NOBODY		65534

enum probe { SELF_USER, SELF_KERNEL, OTHER_TASK, CPU_USER, CPU_KERNEL, NR_PROBES };

static const char * const probe_name[NR_PROBES] = {
	"task, self, user only", "task, self, with kernel", "task, another user's",
	"CPU 0, user only", "CPU 0, with kernel",
};

static const int levels[] = { -1, 0, 1, 2, 3 };
#define NR_LEVELS	ARRAY_SIZE(levels)

/* Expected result for the unprivileged user: 0 or the errno. */
static const int unpriv_want[NR_LEVELS][NR_PROBES] = {
	/* -1 */ { 0, 0, EACCES, 0, 0 },
	/*  0 */ { 0, 0, EACCES, 0, 0 },
	/*  1 */ { 0, 0, EACCES, EACCES, EACCES },
	/*  2 */ { 0, EACCES, EACCES, EACCES, EACCES },
	/*  3 */ { EACCES, EACCES, EACCES, EACCES, EACCES },
};

static int try_open(enum probe p, pid_t other)
{
	struct perf_event_attr attr;
	pid_t pid = 0;
	int cpu = -1, fd;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_TASK_CLOCK;
	attr.exclude_kernel = 1;
	attr.exclude_hv = 1;
	switch (p) {
	case SELF_KERNEL:
		attr.exclude_kernel = 0;
		attr.exclude_hv = 0;
		break;
	case OTHER_TASK:
		pid = other;
		break;
	case CPU_KERNEL:
	case CPU_USER:
		if (p == CPU_KERNEL) {
			attr.exclude_kernel = 0;
			attr.exclude_hv = 0;
		}
		attr.config = PERF_COUNT_SW_CPU_CLOCK;
		pid = -1;
		cpu = 0;
		break;
	default:
		break;
	}
	fd = syscall(__NR_perf_event_open, &attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int write_paranoid(int level)
{
	char buf[16];
	int fd, n, ret = 0;

	fd = open(PARANOID, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%d\n", level);
	if (write(fd, buf, n) != n)
		ret = -errno;
	close(fd);
	return ret;
}

static int read_paranoid(void)
{
	char buf[16] = "";
	int fd = open(PARANOID, O_RDONLY);

	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
		return -100;
	close(fd);
	return atoi(buf);
}

/* Results of the unprivileged user, from a child that dropped root. */
static int unpriv_results(int res[NR_PROBES])
{
	pid_t parent = getpid(), pid;
	int pfd[2], status;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int p, r[NR_PROBES];

		close(pfd[0]);
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
			_exit(2);
		for (p = 0; p < NR_PROBES; p++)
			r[p] = try_open(p, parent);
		_exit(write(pfd[1], r, sizeof(r)) == sizeof(r) ? 0 : 3);
	}
	close(pfd[1]);
	if (read(pfd[0], res, sizeof(int) * NR_PROBES) != sizeof(int) * NR_PROBES)
		res[0] = -1;
	close(pfd[0]);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return -1;
	return res[0] == -1 ? -1 : 0;
}

static const char *show(int r)
{
	return r ? strerror(r) : "ok";
}

FIXTURE(paranoid)
{
	int saved;
};

FIXTURE_SETUP(paranoid)
{
	if (geteuid() != 0)
		SKIP(return, "needs root to set " PARANOID " and drop to uid %d", NOBODY);
	self->saved = read_paranoid();
	ASSERT_GE(self->saved, -1);
}

FIXTURE_TEARDOWN(paranoid)
{
	if (geteuid() == 0)
		EXPECT_EQ(write_paranoid(self->saved), 0);
}

TEST_F(paranoid, table)
{
	/* Some process of another user (root) for the unprivileged child: this one. */
	unsigned int l, p;
	int bad = 0;

	for (l = 0; l < NR_LEVELS; l++) {
		int res[NR_PROBES];

		ASSERT_EQ(write_paranoid(levels[l]), 0);
		ASSERT_EQ(read_paranoid(), levels[l]);
		ASSERT_EQ(unpriv_results(res), 0);
		for (p = 0; p < NR_PROBES; p++) {
			int root = try_open(p, getppid());

			TH_LOG("paranoid %2d  %-24s unprivileged %-24s root %s", levels[l],
			       probe_name[p], show(res[p]), show(root));
			if (res[p] != unpriv_want[l][p]) {
				TH_LOG("  unprivileged: want %s", show(unpriv_want[l][p]));
				bad++;
			}
			if (root != 0) {
				TH_LOG("  root: want ok");
				bad++;
			}
		}
	}
	EXPECT_EQ(bad, 0);
}

TEST_HARNESS_MAIN
