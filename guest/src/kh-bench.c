// SPDX-License-Identifier: GPL-2.0
/*
 * kh-bench WORKLOAD ITERATIONS: latency of perf_event_open()+close() and of
 * operations on an open event, as the median of per-batch averages.
 *
 *   open-task      a task event of this process (task context, epc alloc/free)
 *   open-cpu-local a per-CPU event on the CPU we run on (CPU context)
 *   open-cpu-remote a per-CPU event on another CPU (IPI to install/remove)
 *   open-group4    a group of 4 task events (one leader, three siblings)
 *   read           read() of an enabled task counter
 *   enable-disable PERF_EVENT_IOC_ENABLE + PERF_EVENT_IOC_DISABLE
 *
 * Prints "KH-BENCH <workload> <ns/op>". Pinned to CPU 0.
 *
 * With KH_BENCH_MARK set, a sched_get_priority_min() just before the first and just
 * after the last operation marks them in QEMU's execution log (make crossings,
 * harness/kh/crossings.py).
 */
#define _GNU_SOURCE
#include <linux/perf_event.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BATCH 50

static int perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group)
{
	int fd = syscall(__NR_perf_event_open, attr, pid, cpu, group, PERF_FLAG_FD_CLOEXEC);

	if (fd < 0) {
		perror("perf_event_open");
		exit(1);
	}
	return fd;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct perf_event_attr attr;
	const char *w = argc > 1 ? argv[1] : "";
	long iters = argc > 2 ? atol(argv[2]) : 1000;
	long batches = iters / BATCH, b, i;
	int ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	double *avg;
	uint64_t val;
	cpu_set_t set;
	int fd = -1, mark = getenv("KH_BENCH_MARK") != NULL;

	if (batches < 1)
		batches = 1;
	avg = calloc(batches, sizeof(*avg));
	if (!avg) {
		perror("calloc");
		return 1;
	}
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		perror("sched_setaffinity");
		return 1;
	}

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_CPU_CLOCK;

	if (!strcmp(w, "read") || !strcmp(w, "enable-disable"))
		fd = perf_open(&attr, 0, -1, -1);
	if (!strcmp(w, "open-cpu-remote") && ncpu < 2) {
		fprintf(stderr, "open-cpu-remote needs 2 CPUs\n");
		return 1;
	}

	if (mark)
		syscall(__NR_sched_get_priority_min, SCHED_OTHER);
	for (b = 0; b < batches; b++) {
		uint64_t t0 = now_ns();

		for (i = 0; i < BATCH; i++) {
			if (!strcmp(w, "open-task")) {
				close(perf_open(&attr, 0, -1, -1));
			} else if (!strcmp(w, "open-cpu-local")) {
				close(perf_open(&attr, -1, 0, -1));
			} else if (!strcmp(w, "open-cpu-remote")) {
				close(perf_open(&attr, -1, 1, -1));
			} else if (!strcmp(w, "open-group4")) {
				int g[4], k;

				g[0] = perf_open(&attr, 0, -1, -1);
				for (k = 1; k < 4; k++)
					g[k] = perf_open(&attr, 0, -1, g[0]);
				for (k = 3; k >= 0; k--)
					close(g[k]);
			} else if (!strcmp(w, "read")) {
				if (read(fd, &val, sizeof(val)) != sizeof(val)) {
					perror("read");
					return 1;
				}
			} else if (!strcmp(w, "enable-disable")) {
				if (ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)) {
					perror("PERF_EVENT_IOC_ENABLE");
					return 1;
				}
				if (ioctl(fd, PERF_EVENT_IOC_DISABLE, 0)) {
					perror("PERF_EVENT_IOC_DISABLE");
					return 1;
				}
			} else {
				fprintf(stderr, "unknown workload '%s'\n", w);
				return 2;
			}
		}
		avg[b] = (double)(now_ns() - t0) / BATCH;
	}
	if (mark)
		syscall(__NR_sched_get_priority_min, SCHED_OTHER);
	qsort(avg, batches, sizeof(*avg), cmp);
	printf("KH-BENCH %s %.1f\n", w, avg[batches / 2]);
	return 0;
}
