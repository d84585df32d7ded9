/* SPDX-License-Identifier: GPL-2.0 */
/* The dynamic type of a PMU, shared by the perf_events selftests. */
#ifndef _PERF_EVENTS_PMU_TYPE_H
#define _PERF_EVENTS_PMU_TYPE_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The type of PMU @name from sysfs, or -1 if it is not registered. */
static inline int pmu_type(const char *name)
{
	char path[320], buf[32];
	int fd, type = -1;

	snprintf(path, sizeof(path), "/sys/bus/event_source/devices/%s/type", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	if (read(fd, buf, sizeof(buf) - 1) > 0)
		type = atoi(buf);
	close(fd);
	return type;
}

#endif /* _PERF_EVENTS_PMU_TYPE_H */
