// SPDX-License-Identifier: GPL-2.0
/*
 * The arm64 PMUv3 driver (drivers/perf/arm_pmuv3.c, arm_pmu.c) under the perf
 * core: what the 2022 context rewrite (bd2756811766 "perf: Rewrite core
 * context handling") once broke on arm, checked with a loop of known length
 * (2 * N user instructions). Built for arm64 only; it needs a PMUv3 PMU with
 * INST_RETIRED, which QEMU's TCG emulates for -cpu max in -icount mode.
 *
 * - counts_on_every_supported_cpu: pmu->filter() returns true to keep a PMU's
 *   events off a CPU. The rewrite replaced ->filter_match() (true: may run)
 *   by ->filter() of the opposite sense and arm_pmu had to follow: got wrong,
 *   events never run on their own CPUs (or run on foreign ones). A task's
 *   pinned INST_RETIRED and CPU_CYCLES events, run on each CPU of the PMU's
 *   "cpus" mask in turn, must run whenever enabled and count the loop there.
 *   (The other half, CPUs outside the mask, needs a heterogeneous system:
 *   hw_groups' pmu_filter checks it on a test PMU.)
 *
 * - chained_events: config1 bit 0 ("long") asks for a 64-bit counter. Where
 *   event counters are 32 bits wide (PMUv3 before v3p5) the driver chains an
 *   even/odd pair of counters for it; where they are 64 bits (PMUv3p5) a long
 *   event takes one counter. So a group holds either half as many long
 *   events as plain ones, or as many; either way the long events count the
 *   loop like plain ones. The test prints which kind this PMU is
 *   ("KH-ARM-PMU-LONG chained|64-bit"); the harness knows which one QEMU's
 *   CPU model has.
 *
 * - sampling_32bit, sampling_long: a sampling event overflows once per
 *   period of the loop, a long one through the high half of its chained
 *   pair (or its 64-bit counter).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "pmu_type.h"

#define INST_RETIRED	0x08
#define CPU_CYCLES	0x11
#define LOOP_N		5000000UL	/* the loop runs 2 * LOOP_N instructions */
#define TOLERANCE	100		/* per ten thousand: 1 % */
#define MAX_GROUP	32
#define PERIODS		10		/* of the sampling event, in one loop */
#define REPEAT		5		/* loops counted, the least count taken */

static long perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group)
{
	return syscall(__NR_perf_event_open, attr, pid, cpu, group, PERF_FLAG_FD_CLOEXEC);
}

/* Exactly 2 * n user instructions. */
static void loop(unsigned long n)
{
#if defined(__aarch64__)
	asm volatile("cbz %0, 2f\n"
		     "1: subs %0, %0, #1\n"
		     "b.ne 1b\n"
		     "2:" : "+r"(n) : : "cc");
#else
	(void)n;
#endif
}

/* The first registered PMU named "armv8_*" (armv8_pmuv3_0, armv8_cortex_a57, ...). */
static int pmuv3(char *name, size_t len)
{
	struct dirent *d;
	DIR *dir = opendir("/sys/bus/event_source/devices");
	int type = -1;

	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		if (strncmp(d->d_name, "armv8_", 6))
			continue;
		snprintf(name, len, "%s", d->d_name);
		type = pmu_type(d->d_name);
		break;
	}
	closedir(dir);
	return type;
}

/* The CPUs of the PMU's "cpus" file (a list like "0-3" or "0,2"). */
static int pmu_cpus(const char *name, cpu_set_t *set)
{
	char path[320], buf[256], *p;
	FILE *f;
	int a, b, n;

	snprintf(path, sizeof(path), "/sys/bus/event_source/devices/%s/cpus", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	CPU_ZERO(set);
	for (p = strtok(buf, ",\n"); p; p = strtok(NULL, ",\n")) {
		n = sscanf(p, "%d-%d", &a, &b);
		if (n < 1)
			return -1;
		if (n == 1)
			b = a;
		for (; a <= b; a++)
			CPU_SET(a, set);
	}
	return CPU_COUNT(set);
}

static void init_attr(struct perf_event_attr *attr, int type, uint64_t config, int is_long)
{
	memset(attr, 0, sizeof(*attr));
	attr->size = sizeof(*attr);
	attr->type = type;
	attr->config = config;
	attr->config1 = is_long ? 1 : 0;
	attr->exclude_kernel = 1;
	attr->exclude_hv = 1;
	attr->read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
}

#define SKIP_WITHOUT_PMUV3(type, name)						\
	do {									\
		type = pmuv3(name, sizeof(name));				\
		if (type < 0)							\
			SKIP(return, "no PMUv3 PMU registered");		\
	} while (0)

/* |got - want| within TOLERANCE (per ten thousand) of want. */
static int near(uint64_t got, uint64_t want)
{
	uint64_t d = got > want ? got - want : want - got;

	return d * 10000 <= want * TOLERANCE;
}

/*
 * The loop's count on @fd: the count across a loop of LOOP_N less the count
 * across an empty loop (what the reads around it cost in user space), the
 * least of REPEAT tries: QEMU's PMU counts from its global instruction count,
 * so what the other vCPU runs while the counter is on (a timer tick) only
 * ever adds.
 */
static uint64_t loop_count(struct __test_metadata *_metadata, int fd, uint64_t *running,
			   uint64_t *enabled)
{
	uint64_t first[3], a[3], b[3], c[3], n, best = UINT64_MAX;
	int i;

	ASSERT_EQ((ssize_t)sizeof(first), read(fd, first, sizeof(first)));
	for (i = 0; i < REPEAT; i++) {
		ASSERT_EQ((ssize_t)sizeof(a), read(fd, a, sizeof(a)));
		loop(0);
		ASSERT_EQ((ssize_t)sizeof(b), read(fd, b, sizeof(b)));
		loop(LOOP_N);
		ASSERT_EQ((ssize_t)sizeof(c), read(fd, c, sizeof(c)));
		n = (c[0] - b[0]) - (b[0] - a[0]);
		if (n < best)
			best = n;
	}
	*enabled = c[1] - first[1];
	*running = c[2] - first[2];
	return best;
}

TEST(counts_on_every_supported_cpu)
{
	struct perf_event_attr attr;
	char name[256];
	cpu_set_t cpus, old, one;
	uint64_t n, ins_run, ins_en, cyc[3];
	int type, cpu, fd, cfd, seen = 0;

	SKIP_WITHOUT_PMUV3(type, name);
	ASSERT_LT(0, pmu_cpus(name, &cpus)) TH_LOG("%s has no cpus file", name);
	ASSERT_EQ(0, sched_getaffinity(0, sizeof(old), &old));

	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &cpus) || !CPU_ISSET(cpu, &old))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		ASSERT_EQ(0, sched_setaffinity(0, sizeof(one), &one));

		init_attr(&attr, type, INST_RETIRED, 0);
		attr.pinned = 1;
		fd = perf_open(&attr, 0, -1, -1);
		ASSERT_LE(0, fd) TH_LOG("%s INST_RETIRED: %s", name, strerror(errno));
		init_attr(&attr, type, CPU_CYCLES, 0);
		attr.pinned = 1;
		cfd = perf_open(&attr, 0, -1, -1);
		ASSERT_LE(0, cfd) TH_LOG("%s CPU_CYCLES: %s", name, strerror(errno));

		n = loop_count(_metadata, fd, &ins_run, &ins_en);
		ASSERT_EQ((ssize_t)sizeof(cyc), read(cfd, cyc, sizeof(cyc)));

		EXPECT_TRUE(near(n, 2 * LOOP_N))
			TH_LOG("CPU %d: the loop counted %llu instructions, not %lu", cpu,
			       (unsigned long long)n, 2 * LOOP_N);
		EXPECT_LT(0ULL, ins_run) TH_LOG("CPU %d: INST_RETIRED never ran", cpu);
		EXPECT_EQ(ins_en, ins_run) TH_LOG("CPU %d: INST_RETIRED filtered off", cpu);
		EXPECT_LT(0ULL, cyc[0]) TH_LOG("CPU %d: no cycles", cpu);
		EXPECT_EQ(cyc[1], cyc[2]) TH_LOG("CPU %d: CPU_CYCLES filtered off", cpu);
		ksft_print_msg("CPU %d: %lu-instruction loop counted %llu, %llu cycles in all\n",
			       cpu, 2 * LOOP_N, (unsigned long long)n, (unsigned long long)cyc[0]);
		close(cfd);
		close(fd);
		seen++;
	}
	EXPECT_LT(0, seen) TH_LOG("no CPU of %s is ours", name);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(old), &old));
}

/* The largest group of INST_RETIRED events (long or not) the driver accepts. */
static int max_group(struct __test_metadata *_metadata, int type, int is_long)
{
	struct perf_event_attr attr;
	int fd[MAX_GROUP], n, i;

	for (n = 0; n < MAX_GROUP; n++) {
		init_attr(&attr, type, INST_RETIRED, is_long);
		fd[n] = perf_open(&attr, 0, -1, n ? fd[0] : -1);
		if (fd[n] < 0) {
			/* arm_pmu's validate_group(): the group does not fit. */
			EXPECT_EQ(EINVAL, errno) TH_LOG("member %d: %s", n, strerror(errno));
			break;
		}
	}
	for (i = n - 1; i >= 0; i--)
		close(fd[i]);
	return n;
}

/* The records of @type in a sampling event's ring buffer. */
static int count_records(struct perf_event_mmap_page *pg, size_t data_size, uint32_t type)
{
	uint64_t head = __atomic_load_n(&pg->data_head, __ATOMIC_ACQUIRE);
	uint64_t pos = pg->data_tail;
	char *data = (char *)pg + pg->data_offset;
	int n = 0;

	while (pos < head) {
		struct perf_event_header *h = (void *)(data + pos % data_size);

		if (h->type == type)
			n++;
		if (!h->size)
			break;
		pos += h->size;
	}
	return n;
}

static FILE *sysctl_open(const char *name, const char *mode)
{
	char path[128];

	snprintf(path, sizeof(path), "/proc/sys/kernel/%s", name);
	return fopen(path, mode);
}

/* Reads a sysctl of kernel/ into @buf (NUL-terminated); 0 on success. */
static int sysctl_get(const char *name, char *buf, size_t len)
{
	FILE *f = sysctl_open(name, "r");
	int ok;

	if (!f)
		return -1;
	ok = fgets(buf, len, f) != NULL;
	fclose(f);
	return ok ? 0 : -1;
}

static int sysctl_set(const char *name, const char *val)
{
	FILE *f = sysctl_open(name, "w");
	int ret;

	if (!f)
		return -1;
	ret = fputs(val, f) < 0 ? -1 : 0;
	return fclose(f) || ret ? -1 : 0;
}

TEST(chained_events)
{
	struct perf_event_attr attr;
	char name[256];
	uint64_t run, en, n;
	int type, plain, lng, fd;

	SKIP_WITHOUT_PMUV3(type, name);

	plain = max_group(_metadata, type, 0);
	lng = max_group(_metadata, type, 1);
	ASSERT_LT(1, plain) TH_LOG("a group of INST_RETIRED events holds %d", plain);
	/* 32-bit counters: pairs; 64-bit counters: one each. */
	ASSERT_TRUE(lng == plain || lng == plain / 2)
		TH_LOG("%d plain events fit a group but %d long ones", plain, lng);
	ksft_print_msg("KH-ARM-PMU-LONG %s (a group holds %d plain, %d long events)\n",
		       lng == plain ? "64-bit" : "chained", plain, lng);

	/* A long event counts the loop as a plain one does. */
	init_attr(&attr, type, INST_RETIRED, 1);
	attr.pinned = 1;
	fd = perf_open(&attr, 0, -1, -1);
	ASSERT_LE(0, fd) TH_LOG("long INST_RETIRED: %s", strerror(errno));
	n = loop_count(_metadata, fd, &run, &en);
	EXPECT_TRUE(near(n, 2 * LOOP_N)) TH_LOG("long event: the loop counted %llu, not %lu",
						(unsigned long long)n, 2 * LOOP_N);
	EXPECT_EQ(en, run) TH_LOG("long event did not run all the time");
	ksft_print_msg("long event: loop of %lu instructions counted %llu\n", 2 * LOOP_N,
		       (unsigned long long)n);
	close(fd);
}

/* A sampling INST_RETIRED event (long or not) of the loop: one sample per period. */
static void sampling(struct __test_metadata *_metadata, int is_long)
{
	struct perf_event_attr attr;
	char name[256], pct[32], rate[32];
	long page = sysconf(_SC_PAGESIZE);
	struct perf_event_mmap_page *pg;
	int type, fd, samples, throttled;

	SKIP_WITHOUT_PMUV3(type, name);
	/*
	 * Interrupts are slow under emulation: the core lowers
	 * perf_event_max_sample_rate as they take long and then throttles
	 * events at rate / HZ samples per tick. Neither is what is tested
	 * here: lift both for the test (root), restore them after. The rate
	 * can only be written while the time limit is on: rate first.
	 */
	ASSERT_EQ(0, sysctl_get("perf_cpu_time_max_percent", pct, sizeof(pct)));
	ASSERT_EQ(0, sysctl_get("perf_event_max_sample_rate", rate, sizeof(rate)));
	if (sysctl_set("perf_event_max_sample_rate", "100000") ||
	    sysctl_set("perf_cpu_time_max_percent", "0"))
		SKIP(return, "cannot lift the sample rate limit (not root?)");

	init_attr(&attr, type, INST_RETIRED, is_long);
	attr.sample_period = 2 * LOOP_N / PERIODS;
	attr.sample_type = PERF_SAMPLE_IP;
	attr.disabled = 1;
	fd = perf_open(&attr, 0, -1, -1);
	ASSERT_LE(0, fd) TH_LOG("INST_RETIRED with a period: %s", strerror(errno));
	pg = mmap(NULL, 17 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, pg) TH_LOG("mmap: %s", strerror(errno));
	ASSERT_EQ(0, ioctl(fd, PERF_EVENT_IOC_ENABLE, 0));
	loop(LOOP_N);
	ASSERT_EQ(0, ioctl(fd, PERF_EVENT_IOC_DISABLE, 0));
	samples = count_records(pg, 16 * page, PERF_RECORD_SAMPLE);
	throttled = count_records(pg, 16 * page, PERF_RECORD_THROTTLE);
	EXPECT_EQ(0, sysctl_set("perf_cpu_time_max_percent", pct));
	EXPECT_EQ(0, sysctl_set("perf_event_max_sample_rate", rate));
	ksft_print_msg("%s event: %d samples of period %llu, loop of %lu, throttled %d times\n",
		       is_long ? "long" : "32-bit", samples,
		       (unsigned long long)attr.sample_period, 2 * LOOP_N, throttled);
	EXPECT_EQ(0, throttled);
	/*
	 * The loop is PERIODS periods; the user instructions around it (the
	 * ioctls' wrappers) add a few dozen: the last overflow falls on the
	 * boundary, on either side.
	 */
	EXPECT_LE(PERIODS - 1, samples) TH_LOG("%d samples for %d periods", samples, PERIODS);
	EXPECT_GE(PERIODS + 1, samples) TH_LOG("%d samples for %d periods", samples, PERIODS);
	munmap(pg, 17 * page);
	close(fd);
}

TEST(sampling_32bit)
{
	sampling(_metadata, 0);
}

/* A chained pair overflows through its odd (high) counter; a 64-bit one at 2^64. */
TEST(sampling_long)
{
	sampling(_metadata, 1);
}

TEST_HARNESS_MAIN
