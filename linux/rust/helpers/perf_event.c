// SPDX-License-Identifier: GPL-2.0

#include <linux/perf_event.h>

__rust_helper int rust_helper_perf_allow_cpu(void)
{
	return perf_allow_cpu();
}
