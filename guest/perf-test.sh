# `perf test`: the subset listed in /kh/perf-test-subset.tsv, or every test (KH_FULL=1).
perf_test_numbers() {
	perf test list >/tmp/perf-test-list 2>&1
	while IFS=$'\t' read -r action name _; do
		case "$action" in run) ;; skip) [ -n "${KH_FULL:-}" ] || continue ;; *) continue ;; esac
		awk -v want="$name" '$1 ~ /^[0-9]+:$/ {
			line = $0; sub(/^ *[0-9]+: /, "", line)
			if (line == want) { n = $1; sub(":", "", n); print n }
		}' /tmp/perf-test-list
	done </kh/perf-test-subset.tsv
}
perf_test_run() {
	local nums
	# arm64: let user space read the PMU counters (mmap interface tests 2-5); off by default.
	[ -w /proc/sys/kernel/perf_user_access ] && echo 1 >/proc/sys/kernel/perf_user_access
	nums=$(perf_test_numbers | tr '\n' ' ')
	echo "# perf test numbers: $nums"
	if [ -z "${nums// /}" ]; then
		echo "no perf test matched perf-test-subset.tsv"
		return 1
	fi
	if [ -z "${KH_FULL:-}" ]; then
		# shellcheck disable=SC2086
		timeout 2400 perf test -S $nums 2>&1
		return
	fi
	# The whole list: one test at a time with its own time limit (e.g. 'perf ftrace tests'
	# traces every kernel function, which under TCG runs for far longer than CI allows).
	local n rc
	for n in $nums; do
		timeout 300 perf test -S "$n" 2>&1
		rc=$?
		if [ $rc -eq 124 ]; then
			printf '%s: %s : FAILED! (timed out after 300 s)\n' "$n" \
				"$(awk -v n="$n:" '$1 == n { sub(/^ *[0-9]+: /, ""); print; exit }' /tmp/perf-test-list)"
		fi
	done
}
section perf-test perf_test_run
