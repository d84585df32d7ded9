# One benchmark round (make bench): every workload once, "KH-BENCH <name> <value>" lines.
# Values are per operation (µs/op from perf bench, ns/op from kh-bench, ms for messaging).
B=/kh/bin/kh-bench
N_PIPE=${KH_BENCH_PIPE:-5000}
N_OPS=${KH_BENCH_OPS:-2000}
N_SLOW=${KH_BENCH_SLOW_OPS:-200}
N_MEM=${KH_BENCH_MEM_TASKS:-1000}

# Every workload prints "KH-BENCH <name> <value>", or "KH-BENCH-FAIL <name> <why>" and the
# round fails: the host requires every workload of bench.WORKLOADS from both cores.
fail=0
emit() {
	case "$2" in
	[0-9]*) echo "KH-BENCH $1 $2" ;;
	*) echo "KH-BENCH-FAIL $1 no number in the output"; fail=1 ;;
	esac
}
pipe_usecs() {
	awk '/usecs\/op/ { print $1; exit }'
}
total_ms() {
	awk '/Total time:/ { print $3 * 1000; exit }'
}
bench_round() {
	local v
	# No address-space randomisation: where the stack, the heap and the mappings land
	# decides how many page-table pages a fork copies and an exit frees, so with it the
	# same kernel's fork-inherit floor moved between 201 and 216 µs from one kh-bench
	# process to the next (under icount, 2026-12-03); without it 190-196 µs. Both cores
	# run the same setting.
	echo 0 > /proc/sys/kernel/randomize_va_space ||
		{ echo "KH-BENCH-FAIL all cannot turn off randomize_va_space"; return 1; }
	# 1/2: context switches with per-task inherited events, and the floor without events.
	# Both ends of the pipe share CPU 1, so every round trip is two context switches on
	# one CPU (with two CPUs, where the scheduler puts the ends varies from run to run
	# and the spread swamps the difference, even under icount).
	v=$(taskset -c 1 perf stat -o /dev/null -e task-clock,context-switches,page-faults -- \
		perf bench sched pipe -l "$N_PIPE" 2>&1 | pipe_usecs)
	emit sched-pipe "$v"
	v=$(taskset -c 1 perf stat -o /dev/null -e task-clock,context-switches,page-faults -- \
		perf bench sched pipe -T -l "$N_PIPE" 2>&1 | pipe_usecs)
	emit sched-pipe-threaded "$v"
	v=$(taskset -c 1 perf bench sched pipe -l "$N_PIPE" 2>&1 | pipe_usecs)
	emit floor:sched-pipe "$v"
	v=$(taskset -c 1 perf bench sched pipe -T -l "$N_PIPE" 2>&1 | pipe_usecs)
	emit floor:sched-pipe-threaded "$v"
	# 3: fork/exit with inherited events (pipe mode: the guest has no sockets), and its
	# floor; on CPU 1 too, for the same reason.
	v=$(taskset -c 1 perf stat -o /dev/null -e task-clock -- \
		perf bench sched messaging -p -g 2 -l 20 2>&1 | total_ms)
	emit messaging "$v"
	v=$(taskset -c 1 perf bench sched messaging -p -g 2 -l 20 2>&1 | total_ms)
	emit floor:messaging "$v"
	# 4/5: perf_event_open + close, read, enable/disable.
	for w in open-task open-cpu-local open-cpu-remote open-group4 read enable-disable; do
		$B "$w" "$N_OPS" || { echo "KH-BENCH-FAIL $w kh-bench exited $?"; fail=1; }
	done
	# 6: the paths of the coming slices, each with its floor: fork + exit with an
	# inherited counter, exec with enable_on_exec/remove_on_exec counters, the swap of
	# cloned contexts at a context switch, and rotation (multiplexing, the mux timer at
	# 1 ms so that every 1 ms loop of kh-bench sees about one rotation).
	echo 1 > /sys/bus/event_source/devices/test_hw_a/perf_event_mux_interval_ms ||
		{ echo "KH-BENCH-FAIL multiplex cannot set test_hw_a's mux interval"; fail=1; }
	for w in fork-inherit exec ctx-swap multiplex; do
		n=$N_SLOW
		[ "$w" = ctx-swap ] && n=$N_OPS
		for v in "$w" "floor:$w"; do
			$B "$v" "$n" || { echo "KH-BENCH-FAIL $v kh-bench exited $?"; fail=1; }
		done
	done
	# 7: memory, the same on both cores or the Rust core costs memory per object: the
	# slab growth per task counter, each on its own task (one context, one epc, one
	# event and its file each).
	$B mem "$N_MEM" || { echo "KH-BENCH-FAIL mem-task-event kh-bench exited $?"; fail=1; }
	return $fail
}
section bench bench_round
