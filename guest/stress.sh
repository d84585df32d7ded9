# Concurrent `perf record` of short programs for a bounded time (the find/put race of
# 4f64a6c9f6f1 from user space); every run must succeed.
stress_perf_record() {
	local end=$((SECONDS + ${KH_STRESS_SECONDS:-20})) i pids=() fails=0 runs=0
	for i in 1 2 3 4; do
		(
			n=0
			while [ $SECONDS -lt $end ]; do
				perf record -q -e cpu-clock -o /tmp/stress$i.data -- \
					/kh/bin/kh-workload 2 1 >/dev/null 2>&1 || exit 1
				n=$((n + 1))
			done
			echo "loop $i: $n runs"
		) &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || fails=$((fails + 1))
	done
	echo "failed loops: $fails"
	[ $fails -eq 0 ]
}
section stress.perf-record stress_perf_record

# Our concurrency stress program (guest/src/kh-stress.c): task, CPU and group events
# opened, toggled, read, mapped and closed from three threads while another forks and
# execs children with inherited events, another migrates the openers and another takes
# CPU 1 offline and online. Bounded in time; any unexpected errno fails it.
# CPU hotplug where the guest has it (x86_64; the arm64 guest is built without: see
# configs/arm64-base.config).
hotplug=
[ -w /sys/devices/system/cpu/cpu1/online ] && hotplug=--hotplug
echo "KH-STRESS-HOTPLUG ${hotplug:-no}"
section stress.kh-stress /kh/bin/kh-stress $hotplug "${KH_STRESS_SECONDS:-60}"
