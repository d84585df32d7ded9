# tools/testing/selftests/perf_events, built on the host against this kernel's headers.
# KH_KSELFTESTS: only these programs (space-separated), e.g. on a second arm64 CPU model.

# kill_session SID: SIGKILL to every process of session SID. A process-group kill is not
# enough: the kselftest harness runs each test in a process group of its own (setpgrp()), so
# when a test process dies (remove_on_exec's fork+exec cases on arm64: SIGSEGV), its
# children, which spin until a signal comes, live on in that group. Left running they took
# both CPUs for the rest of an arm64 run (three `exe` processes at 250-330 s of CPU each in
# the sysrq dump of 2026-12-01's stall in smoke.record: issue 21).
kill_session() {
	local sid=$1 d st
	for d in /proc/[0-9]*; do
		read -r st <"$d/stat" 2>/dev/null || continue
		# Fields after "(comm) ": state ppid pgrp session ...
		set -- ${st##*) }
		[ "$4" = "$sid" ] && kill -KILL "${d#/proc/}" 2>/dev/null
	done
}

# run_one PROG [ARGS]: PROG under `timeout` in a session of its own; whatever it leaves behind is
# killed before the next program runs.
run_one() {
	local rc sid
	setsid -w sh -c 'echo $$ >/tmp/kselftest.sid; exec timeout 300 "$0" "$@"' "$@" </dev/null
	rc=$?
	sid=$(cat /tmp/kselftest.sid)
	# Twice: a process that forked while the first pass walked /proc has its child killed now.
	kill_session "$sid"
	kill_session "$sid"
	return $rc
}

for t in /kh/selftests/perf_events/*; do
	[ -x "$t" ] || continue
	case " ${KH_KSELFTESTS:-$(basename "$t")} " in
	*" $(basename "$t") "*) ;;
	*) continue ;;
	esac
	section "kselftest.$(basename "$t")" run_one "$t"
done

# Cases that give either result on the C core (baselines/<arch>/reasons.tsv: 'repeat') are
# compared by their pass counts: /kh/repeat.tsv lists them (<program> TAB <fixture.test>),
# each runs KH_REPEAT_N times on its own (the harness's -r), one section a run.
if [ -s /kh/repeat.tsv ]; then
	while IFS=$'\t' read -r prog test; do
		[ "$prog" = perf-test ] && continue    # guest/perf-test.sh repeats those
		case " ${KH_KSELFTESTS:-$prog} " in
		*" $prog "*) ;;
		*) continue ;;
		esac
		for i in $(seq "${KH_REPEAT_N:-10}"); do
			section "kselftest-repeat.$prog.$test.$i" run_one \
				"/kh/selftests/perf_events/$prog" -r "$test"
		done
	done </kh/repeat.tsv
fi
