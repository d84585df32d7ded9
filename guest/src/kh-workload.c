// SPDX-License-Identifier: GPL-2.0
/*
 * kh-workload SPIN_MS SLEEPS [migrate]: burns about SPIN_MS of CPU in
 * kh_spin(), split into SLEEPS slices separated by 5 ms sleeps, so that perf
 * sees CPU samples with a call chain (main -> kh_work -> kh_spin), page faults
 * and context switches. With "migrate", slice i runs pinned to CPU i % ncpus:
 * each change of CPU is one migration (at least SLEEPS - 1 with two CPUs).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

__attribute__((noinline)) static void kh_spin(double ms)
{
	double end = now_ms() + ms;

	while (now_ms() < end)
		for (int i = 0; i < 1000; i++)
			sink += i;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		perror("sched_setaffinity");
		exit(1);
	}
}

__attribute__((noinline)) static void kh_work(double ms, int sleeps, int migrate)
{
	long ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct timespec pause = { .tv_nsec = 5 * 1000 * 1000 };
	/* Touch fresh memory: page faults. */
	char *buf = malloc(4 << 20);

	if (buf)
		memset(buf, 1, 4 << 20);
	for (int i = 0; i < sleeps; i++) {
		if (migrate)
			pin(i % ncpus);
		kh_spin(ms / sleeps);
		nanosleep(&pause, NULL);
	}
	free(buf);
}

int main(int argc, char **argv)
{
	double ms = argc > 1 ? atof(argv[1]) : 200;
	int sleeps = argc > 2 ? atoi(argv[2]) : 10;
	int migrate = argc > 3 && !strcmp(argv[3], "migrate");

	if (argc > 3 && !migrate) {
		fprintf(stderr, "usage: kh-workload SPIN_MS SLEEPS [migrate]\n");
		return 2;
	}
	if (migrate && sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		fprintf(stderr, "kh-workload: migrate needs two online CPUs\n");
		return 1;
	}
	if (sleeps < 1)
		sleeps = 1;
	kh_work(ms, sleeps, migrate);
	return 0;
}
