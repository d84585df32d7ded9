/* SPDX-License-Identifier: GPL-2.0 */
/* CPU hotplug and small sysfs reads, shared by the perf_events selftests. */
#ifndef _PERF_EVENTS_CPU_ONLINE_H
#define _PERF_EVENTS_CPU_ONLINE_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The number a sysfs file starts with (a CPU in a cpumask, a hotplug state), or -1. */
static inline int sysfs_int(const char *path)
{
	char buf[32] = "";
	int fd, n;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || buf[0] < '0' || buf[0] > '9')
		return -1;
	return atoi(buf);
}

/* @cpu's online file opened for writing, or -1 (no CPU hotplug, or a CPU that cannot go). */
static inline int cpu_online_fd(int cpu)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	return open(path, O_WRONLY);
}

/* Writes @on to @cpu's online file: 0 or -errno; EBUSY/EAGAIN are retried. */
static inline int set_online(int cpu, int on)
{
	int fd, i, err = 0;

	fd = cpu_online_fd(cpu);
	if (fd < 0)
		return -errno;
	for (i = 0; i < 10; i++) {
		err = write(fd, on ? "1" : "0", 1) == 1 ? 0 : -errno;
		if (err != -EBUSY && err != -EAGAIN)
			break;
		usleep(10000);
	}
	close(fd);
	return err;
}

#endif /* _PERF_EVENTS_CPU_ONLINE_H */
