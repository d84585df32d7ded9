# make crossings (harness/kh/crossings.py): each workload of KH_CROSS_WORKLOADS for
# KH_CROSS_N operations between two sched_get_priority_min() markers, one workload after the other.
crossings_run() {
	local w
	for w in $KH_CROSS_WORKLOADS; do
		KH_BENCH_MARK=1 /kh/bin/kh-bench "$w" "$KH_CROSS_N" || {
			echo "kh-bench $w exited $?"
			return 1
		}
	done
}
section crossings crossings_run
