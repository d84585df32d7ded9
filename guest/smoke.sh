# The main job: Debian's perf on a real workload: software events everywhere; where the
# guest has a hardware PMU (KH_HW_PMU=1: arm64, QEMU's PMUv3) also cycles and instructions.
# Sourced by main.sh; the host parses each section (harness/kh/parsers.py).
W=/kh/bin/kh-workload

# The workload moves between the CPUs 20 times (KH_SMOKE_SLICES): cpu-migrations must count
# at least one per change of CPU.
KH_SMOKE_SLICES=20
smoke_stat() {
	echo "KH-SMOKE-SLICES $KH_SMOKE_SLICES"
	perf stat -e task-clock,context-switches,cpu-migrations,page-faults -- \
		$W 200 $KH_SMOKE_SLICES migrate
}
# perf stat -p: events attached to a task that is already running (the context created for
# another task, not at fork or exec). Counted for 2 s after perf has opened them, so that
# the result does not depend on how long perf takes to start (perf test's 'stat -p test'
# does: harness/kh/parsers.py, PERF_TEST_PRECONDITIONS).
smoke_stat_pid() {
	local pid rc
	$W 120000 2400 &
	pid=$!
	echo "KH-SMOKE-PID $pid"
	perf stat -e task-clock,context-switches -p "$pid" --timeout 2000
	rc=$?
	kill "$pid"
	wait "$pid" 2>/dev/null
	return $rc
}
smoke_group() {
	perf stat -e '{task-clock,context-switches,page-faults}' -- $W 100 10
}
# slow_watch SECONDS: if still running then, /proc/interrupts twice, 10 s apart, and
# /proc/softirqs (issue 21: a CPU stuck in perf_event_exec() under QEMU's icount mode while
# perf record starts its workload; the other CPU can still say which interrupt storms).
slow_watch() {
	sleep "$1" || return
	echo "KH-SLOW still running after $1 s; /proc/interrupts:"
	cat /proc/interrupts
	slow_tasks
	sleep 10
	echo "KH-SLOW 10 s later; /proc/interrupts, /proc/softirqs:"
	cat /proc/interrupts /proc/softirqs
	slow_tasks
}
# The sample-rate limits perf's throttling has reached, and the workload's tasks: state,
# utime and stime (clock ticks), last CPU, schedstat (ns on CPU, ns waiting, slices) and
# kernel stack, so that two snapshots 10 s apart say whether a stuck task gets CPU time.
slow_tasks() {
	echo "KH-SLOW perf_event_max_sample_rate $(cat /proc/sys/kernel/perf_event_max_sample_rate)" \
		"perf_cpu_time_max_percent $(cat /proc/sys/kernel/perf_cpu_time_max_percent)"
	dmesg | grep -E 'perf: interrupt took|hrtimer: interrupt took' | tail -n 5
	local d
	for d in /proc/[0-9]*; do
		case "$(cat "$d/comm" 2>/dev/null)" in
		perf-exec | kh-workload) ;;
		*) continue ;;
		esac
		echo "KH-SLOW task ${d#/proc/} $(cat "$d/comm"): state utime stime cpu" \
			"$(cut -d' ' -f3,14,15,39 "$d/stat"), schedstat $(cat "$d/schedstat")"
		cat "$d/stack" 2>/dev/null
	done
}
smoke_record() {
	local watch rc
	slow_watch 40 &
	watch=$!
	perf record -e cpu-clock -g -o /tmp/perf.data -- $W 400 5
	rc=$?
	kill $watch 2>/dev/null
	wait $watch 2>/dev/null
	[ $rc -eq 0 ] || return $rc
	# The flat profile (every symbol of 2 % or more), then kh_spin's call chains alone: with
	# the chains of every entry in one report, a kernel-heavy profile (a debug kernel's RCU
	# callbacks run in the workload's softirqs) pushed kh_spin past the lines shown.
	perf report --stdio --no-children --percent-limit 2 -i /tmp/perf.data \
		--sort comm,dso,sym -g none >/tmp/perf.report 2>&1 || return
	head -n 60 /tmp/perf.report
	echo "KH-CALLCHAIN kh_spin"
	perf report --stdio --no-children -i /tmp/perf.data --sort sym --symbols kh_spin \
		-g caller >/tmp/perf.kh_spin 2>&1 || return
	grep -v '^#' /tmp/perf.kh_spin | grep -v '^$' | head -n 30
}

# Hardware events through the Rust core and the arm64 PMUv3 driver: perf stat as a user
# would run it, then instructions:u of kh-loop 0 and kh-loop N, three times each: their
# difference is the loop's 2 * N instructions (the host checks it, on the least of the runs).
KH_LOOP_N=10000000
smoke_hw() {
	perf stat -e cycles,instructions -- /kh/bin/kh-loop $KH_LOOP_N || return
	local n i
	echo "KH-LOOP-N $KH_LOOP_N"
	for i in 1 2 3; do
		for n in 0 $KH_LOOP_N; do
			perf stat -x, -e cycles:u,instructions:u -o /tmp/loop.csv -- /kh/bin/kh-loop $n ||
				return
			sed -n "s/^[0-9<]/kh-loop $n: &/p" /tmp/loop.csv
		done
	done
}

section smoke.stat smoke_stat
section smoke.stat_pid smoke_stat_pid
section smoke.group smoke_group
section smoke.record smoke_record
if [ -n "${KH_HW_PMU:-}" ]; then
	section smoke.hw smoke_hw
fi
