/* SPDX-License-Identifier: GPL-2.0 */
/* The perf type-config of a tracepoint, shared by the perf_events selftests. */
#ifndef _PERF_EVENTS_TRACEPOINT_ID_H
#define _PERF_EVENTS_TRACEPOINT_ID_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The id of a tracepoint ("group/name"), or -1 if tracefs is not there. */
static inline long tracepoint_id(const char *name)
{
	char path[256], buf[32];
	long id = -1;
	int fd;

	snprintf(path, sizeof(path), "/sys/kernel/tracing/events/%s/id", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	if (read(fd, buf, sizeof(buf) - 1) > 0)
		id = strtol(buf, NULL, 10);
	close(fd);
	return id;
}

#endif /* _PERF_EVENTS_TRACEPOINT_ID_H */
