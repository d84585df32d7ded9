# make crossings (harness/kh/crossings.py): each workload of KH_CROSS_WORKLOADS for
# KH_CROSS_N operations between two sched_get_priority_min() markers, one workload after the other.
crossings_run() {
	local w
	# As make bench: one rotation per 1 ms loop of the multiplex workload.
	echo 1 > /sys/bus/event_source/devices/test_hw_a/perf_event_mux_interval_ms || return 1
	for w in $KH_CROSS_WORKLOADS; do
		KH_BENCH_MARK=1 /kh/bin/kh-bench "$w" "$KH_CROSS_N" || {
			echo "kh-bench $w exited $?"
			return 1
		}
	done
}
section crossings crossings_run
