// SPDX-License-Identifier: GPL-2.0
/*
 * exec() of a task that has per-task events: perf_event_exec() pins the
 * task's context (perf_pin_task_context()), enables the enable_on_exec
 * events and un-clones the context, removes the remove_on_exec events
 * (under ctx->mutex, un-cloning again) and walks the event list for the
 * address filters under rcu_read_lock() -- the walk that once ran without
 * it and made PROVE_RCU complain ("perf/core: Fix missing read-side RCU
 * protection in perf_event_exec()", 2025); a debug kernel with PROVE_RCU
 * turns a regression into a console splat, which the test harness reports.
 *
 * enable_and_remove: a child opens, on itself, a disabled enable_on_exec
 * event, a remove_on_exec event and a plain tracepoint event, then execs
 * this program, which checks from the new image that the first now counts,
 * the second is gone (POLLHUP, its count frozen) and the third counted the
 * exec itself.
 *
 * inherited_exec_chains: the test process opens inherited events (one of
 * them enable_on_exec, one remove_on_exec) and forks children that exec
 * themselves repeatedly, so that every exec finds a context cloned from the
 * parent's and un-clones it, while the parent keeps enabling, disabling and
 * reading its events. Afterwards the parent's counts must include its
 * children's exec() (sched:sched_process_exec fired once per exec).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "tracepoint_id.h"

#define NR_CHILDREN	8
#define EXECS_PER_CHILD	25

static long perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group)
{
	/* No CLOEXEC: the descriptors must survive the exec under test. */
	return syscall(__NR_perf_event_open, attr, pid, cpu, group, 0);
}

static void sw_attr(struct perf_event_attr *attr, unsigned long long config)
{
	memset(attr, 0, sizeof(*attr));
	attr->size = sizeof(*attr);
	attr->type = PERF_TYPE_SOFTWARE;
	attr->config = config;
	attr->exclude_kernel = 1;
}

static uint64_t count_of(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return (uint64_t)-1;
	return v;
}

static void spin(void)
{
	unsigned long i;

	/* The empty asm keeps the compiler from dropping the loop. */
	for (i = 0; i < 20000000UL; i++)
		__asm__ __volatile__("" : "+r"(i));
}

/*
 * The image after exec in enable_and_remove: argv = "exec_check", the three
 * descriptors. Exit code 0 when all holds, else the number of the check that
 * failed (printed).
 */
static int exec_check(char **argv)
{
	int en = atoi(argv[1]), rm = atoi(argv[2]), tp = atoi(argv[3]);
	struct pollfd pfd = { .fd = rm, .events = POLLIN };
	uint64_t a, b;

	spin();
	a = count_of(en);
	if (a == 0 || a == (uint64_t)-1) {
		fprintf(stderr, "enable_on_exec event did not count after exec: %llu\n",
			(unsigned long long)a);
		return 1;
	}
	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLHUP)) {
		fprintf(stderr, "remove_on_exec event not hung up after exec (revents %#x)\n",
			pfd.revents);
		return 2;
	}
	a = count_of(rm);
	spin();
	b = count_of(rm);
	if (a != b) {
		fprintf(stderr, "remove_on_exec event still counts after exec: %llu -> %llu\n",
			(unsigned long long)a, (unsigned long long)b);
		return 3;
	}
	if (tp >= 0 && count_of(tp) != 1) {
		fprintf(stderr, "sched_process_exec counted %llu execs, want 1\n",
			(unsigned long long)count_of(tp));
		return 4;
	}
	return 0;
}

/* The image after exec in inherited_exec_chains: argv = "exec_chain", execs left. */
static int exec_chain(char **argv)
{
	int left = atoi(argv[1]);
	char buf[16];

	if (left <= 0)
		return 0;
	snprintf(buf, sizeof(buf), "%d", left - 1);
	execl("/proc/self/exe", "exec_chain", buf, NULL);
	perror("exec");
	return 1;
}

TEST(enable_and_remove)
{
	long tp_id = tracepoint_id("sched/sched_process_exec");
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct perf_event_attr attr;
		char s_en[16], s_rm[16], s_tp[16];
		int en, rm, tp = -1;

		sw_attr(&attr, PERF_COUNT_SW_TASK_CLOCK);
		attr.disabled = 1;
		attr.enable_on_exec = 1;
		en = perf_open(&attr, 0, -1, -1);
		sw_attr(&attr, PERF_COUNT_SW_TASK_CLOCK);
		attr.remove_on_exec = 1;
		rm = perf_open(&attr, 0, -1, -1);
		if (en < 0 || rm < 0)
			_exit(10);
		if (tp_id >= 0) {
			memset(&attr, 0, sizeof(attr));
			attr.size = sizeof(attr);
			attr.type = PERF_TYPE_TRACEPOINT;
			attr.config = tp_id;
			tp = perf_open(&attr, 0, -1, -1);
			if (tp < 0)
				_exit(11);
		}
		/* Disabled until the exec. */
		spin();
		if (count_of(en) != 0)
			_exit(12);
		snprintf(s_en, sizeof(s_en), "%d", en);
		snprintf(s_rm, sizeof(s_rm), "%d", rm);
		snprintf(s_tp, sizeof(s_tp), "%d", tp);
		execl("/proc/self/exe", "exec_check", s_en, s_rm, s_tp, NULL);
		_exit(13);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0) {
		TH_LOG("child failed check %d (10-13: before exec)", WEXITSTATUS(status));
	}
	if (tp_id < 0)
		TH_LOG("no tracefs: the tracepoint check did not run");
}

TEST(inherited_exec_chains)
{
	long tp_id = tracepoint_id("sched/sched_process_exec");
	struct perf_event_attr attr;
	pid_t pids[NR_CHILDREN];
	int en, rm, tp, i, status, toggles = 0;
	uint64_t execs;

	if (tp_id < 0)
		SKIP(return, "no tracefs (sched/sched_process_exec)");
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_TRACEPOINT;
	attr.config = tp_id;
	attr.inherit = 1;
	tp = perf_open(&attr, 0, -1, -1);
	ASSERT_GE(tp, 0);
	sw_attr(&attr, PERF_COUNT_SW_TASK_CLOCK);
	attr.inherit = 1;
	attr.disabled = 1;
	attr.enable_on_exec = 1;
	en = perf_open(&attr, 0, -1, -1);
	ASSERT_GE(en, 0);
	sw_attr(&attr, PERF_COUNT_SW_CONTEXT_SWITCHES);
	attr.inherit = 1;
	attr.remove_on_exec = 1;
	rm = perf_open(&attr, 0, -1, -1);
	ASSERT_GE(rm, 0);

	for (i = 0; i < NR_CHILDREN; i++) {
		char buf[16];

		pids[i] = fork();
		ASSERT_GE(pids[i], 0);
		if (pids[i] == 0) {
			snprintf(buf, sizeof(buf), "%d", EXECS_PER_CHILD - 1);
			execl("/proc/self/exe", "exec_chain", buf, NULL);
			_exit(1);
		}
	}
	/* Meanwhile, toggle and read the parent's events (ctx->mutex, ctx->lock). */
	for (;;) {
		pid_t w = waitpid(-1, &status, WNOHANG);

		if (w > 0) {
			EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
			for (i = 0; i < NR_CHILDREN; i++)
				if (pids[i] == w)
					pids[i] = 0;
			continue;
		}
		if (w < 0 && errno == ECHILD)
			break;
		ASSERT_EQ(ioctl(rm, PERF_EVENT_IOC_DISABLE, 0), 0);
		ASSERT_EQ(ioctl(rm, PERF_EVENT_IOC_ENABLE, 0), 0);
		ASSERT_NE(count_of(tp), (uint64_t)-1);
		toggles++;
	}
	for (i = 0; i < NR_CHILDREN; i++)
		EXPECT_EQ(pids[i], 0);
	/* Inherited counts fold back into the parent when the children exit. */
	execs = count_of(tp);
	EXPECT_EQ(execs, (uint64_t)NR_CHILDREN * EXECS_PER_CHILD);
	/* The children's copies of the enable_on_exec event were enabled by their exec. */
	EXPECT_GT(count_of(en), 0);
	TH_LOG("%d children x %d execs: sched_process_exec counted %llu, %d toggles",
	       NR_CHILDREN, EXECS_PER_CHILD, (unsigned long long)execs, toggles);
	close(rm);
	close(en);
	close(tp);
}

#define main test_main
TEST_HARNESS_MAIN
#undef main
int main(int argc, char *argv[])
{
	if (!strcmp(argv[0], "exec_check") && argc == 4)
		return exec_check(argv);
	if (!strcmp(argv[0], "exec_chain") && argc == 2)
		return exec_chain(argv);
	return test_main(argc, argv);
}
