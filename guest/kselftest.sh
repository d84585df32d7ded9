# tools/testing/selftests/perf_events, built on the host against this kernel's headers.
# KH_KSELFTESTS: only these programs (space-separated), e.g. on a second arm64 CPU model.

# run_one PROG [ARGS]: PROG under `timeout` in a session of its own; whatever it leaves behind is
# killed before the next program runs (e.g. remove_on_exec's children, which spin until a
# signal comes, when the test process died first).
run_one() {
	local rc
	setsid -w sh -c 'echo $$ >/tmp/kselftest.pgid; exec timeout 300 "$0" "$@"' "$@" </dev/null
	rc=$?
	kill -KILL -- "-$(cat /tmp/kselftest.pgid)" 2>/dev/null
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
