# tools/testing/selftests/perf_events, built on the host against this kernel's headers.
for t in /kh/selftests/perf_events/*; do
	[ -x "$t" ] || continue
	section "kselftest.$(basename "$t")" timeout 300 "$t"
done
