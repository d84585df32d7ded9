# tools/testing/selftests/perf_events, built on the host against this kernel's headers.
# KH_KSELFTESTS: only these programs (space-separated), e.g. on a second arm64 CPU model.

# run_one PROG: PROG under `timeout` in a session of its own; whatever it leaves behind is
# killed before the next program runs (e.g. remove_on_exec's children, which spin until a
# signal comes, when the test process died first).
run_one() {
	local rc
	setsid -w sh -c 'echo $$ >/tmp/kselftest.pgid; exec timeout 300 "$0"' "$1"
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
