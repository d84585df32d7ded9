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
	nums=$(perf_test_numbers | tr '\n' ' ')
	echo "# perf test numbers: $nums"
	if [ -z "${nums// /}" ]; then
		echo "no perf test matched perf-test-subset.tsv"
		return 1
	fi
	# shellcheck disable=SC2086
	timeout 2400 perf test -S $nums 2>&1
}
section perf-test perf_test_run
