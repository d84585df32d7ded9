# make stress-selfcheck: fire each detector that `make stress` counts, once, on the stress
# kernel itself, through LKDTM's test-only crash points (configs/kasan.config); the host
# checks that each report is found and counted where the headline counts it
# (harness/kh/stress.py, SELFCHECK). KH_SELFCHECK picks the boot: "splats" (a WARNING, a
# KASAN report, a refcount_t report, a hung task, a leaked object for the kmemleak part
# that follows), "lockup" (a soft lockup and the RCU stall it causes: CPU 1 never comes
# back, so a boot of its own), "kcsan" (on the KCSAN kernel: a data race between CPUs 0
# and 1). KMALLOC_LEAK and DATA_RACE are LKDTM types of our series.
LKDTM=/sys/kernel/debug/provoke-crash/DIRECT

selfcheck_fire() {
	echo "KH-SELFCHECK-FIRE $1"
	echo "$1" >"$LKDTM"
	echo "KH-SELFCHECK-RETURNED $1 rc=$?"
}

selfcheck_splats() {
	[ -w "$LKDTM" ] || { echo "no $LKDTM (CONFIG_LKDTM, debugfs?)"; return 1; }
	# A task in D state for good: reported after 20 s, checked every 20 s.
	echo 20 >/proc/sys/kernel/hung_task_timeout_secs
	# First, and from a process that exits: a copy of the pointer left in the kernel
	# stack of a live task would keep the object referenced for kmemleak.
	(selfcheck_fire KMALLOC_LEAK)
	echo "KH-SELFCHECK-FIRE HUNG_TASK"
	(echo HUNG_TASK >"$LKDTM") &
	selfcheck_fire WARNING
	selfcheck_fire READ_AFTER_FREE
	selfcheck_fire REFCOUNT_INC_OVERFLOW
	sleep 70
	echo "KH-SELFCHECK-HUNG $(grep -c . /proc/$!/stack 2>/dev/null) stack lines, state" \
		"$(cut -d' ' -f3 /proc/$!/stat 2>/dev/null)"
}

selfcheck_lockup() {
	[ -w "$LKDTM" ] || { echo "no $LKDTM (CONFIG_LKDTM, debugfs?)"; return 1; }
	# A soft lockup after 2 * 5 s; RCU's stall warning after 20 s.
	echo 5 >/proc/sys/kernel/watchdog_thresh
	echo 20 >/sys/module/rcupdate/parameters/rcu_cpu_stall_timeout
	echo "KH-SELFCHECK-FIRE SOFTLOCKUP (CPU 1)"
	taskset -c 1 sh -c "echo SOFTLOCKUP >$LKDTM" &
	sleep 90
}

selfcheck_kcsan() {
	[ -w "$LKDTM" ] || { echo "no $LKDTM (CONFIG_LKDTM, debugfs?)"; return 1; }
	[ -e /sys/kernel/debug/kcsan ] ||
		{ echo "no /sys/kernel/debug/kcsan: not a KCSAN kernel"; return 1; }
	# The caller on CPU 0, LKDTM's kthread on the other online CPU, for 2 s.
	taskset -c 0 sh -c "echo KH-SELFCHECK-FIRE DATA_RACE; echo DATA_RACE >$LKDTM;
		echo KH-SELFCHECK-RETURNED DATA_RACE rc=\$?"
	sleep 5
}

case "${KH_SELFCHECK:-}" in
splats) section selfcheck.splats selfcheck_splats ;;
lockup) section selfcheck.lockup selfcheck_lockup ;;
kcsan) section selfcheck.kcsan selfcheck_kcsan ;;
*) echo "KH_SELFCHECK=${KH_SELFCHECK:-} (want splats, lockup or kcsan)" ;;
esac
