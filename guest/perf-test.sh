# `perf test`: the subset listed in /kh/perf-test-subset.tsv, or every test (KH_FULL=1).
# perf_test_why OUTPUT: each test that FAILED, or skipped without saying why, in OUTPUT runs
# again with -v; its lines that say what failed or why it skips are printed as
# "KH-PERF-TEST-WHY N: ..." (the host takes them as the signature, compared with the C
# core's), each followed by the line after it as "KH-PERF-TEST-THEN N: ..." (not part of
# the signature: the host checks it against the preconditions of harness/kh/parsers.py).
perf_test_why() {
	local n pin why
	for n in $(sed -n -e 's/^ *\([0-9][0-9]*\): .* : FAILED!$/\1/p' \
		-e 's/^ *\([0-9][0-9]*\): .* : Skip$/\1/p' "$1"); do
		pin=
		case " $pinned " in *" $n "*) pin="taskset -c 0" ;; esac
		# A failure's lines that say what failed; a skip's that say why it skips.
		why='\[Skip|[Ss]kip(ped|ping)?[ :]'
		grep -q -E "^ *$n: .* : FAILED!$" "$1" && why='\[Fail|[Ff]ailed[ !:]|FAILED'
		# Up to 3 such lines, each with the next non-empty line after it (a shell test
		# prints the failed command's own output there: the host reads it as evidence).
		$pin timeout 600 perf test -v "$n" 2>&1 | KH_WHY="$why" awk -v n="$n" '
			BEGIN { why = ENVIRON["KH_WHY"] }
			want && NF { print "KH-PERF-TEST-THEN " n ": " $0; want = 0 }
			$0 ~ why && $0 !~ /: (FAILED!|Skip)$|(Failed|Skipped|Passed) tests *:|List of [a-z]+ tests/ {
				if (++k > 3) exit
				print "KH-PERF-TEST-WHY " n ": " $0
				want = 1
			}'
	done
}

# perf_test_numbers run|run-cpu0: the numbers of the subset's tests of that action. With
# KH_FULL: every top-level test of `perf test list` ("run": all but the run-cpu0 ones of the
# subset), and with KH_PART=k/N only those numbered n with (n - 1) mod N = k - 1 (the host
# compares the same part of the baseline: suites.in_perf_test_part()).
perf_test_numbers() {
	local action name
	perf test list >/tmp/perf-test-list 2>&1
	if [ -n "${KH_FULL:-}" ]; then
		: >/tmp/perf-test-cpu0
		while IFS=$'\t' read -r action name _; do
			[ "$action" = run-cpu0 ] && printf '%s\n' "$name" >>/tmp/perf-test-cpu0
		done </kh/perf-test-subset.tsv
		awk -v want="$1" -v part="${KH_PART:-1/1}" '
			BEGIN { split(part, p, "/"); k = p[1]; n = p[2] }
			FILENAME != ARGV[2] { cpu0[$0] = 1; next }
			$1 ~ /^[0-9]+:$/ {
				line = $0; sub(/^ *[0-9]+: /, "", line)
				num = $1; sub(":", "", num)
				if ((num - 1) % n != k - 1) next
				if ((want == "run-cpu0") == (line in cpu0)) print num
			}' /tmp/perf-test-cpu0 /tmp/perf-test-list
		return
	fi
	while IFS=$'\t' read -r action name _; do
		case "$action" in "#"*|"") continue ;; esac
		[ "$action" = "$1" ] || continue
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
	nums=$(perf_test_numbers run | tr '\n' ' ')
	pinned=$(perf_test_numbers run-cpu0 | tr '\n' ' ')
	echo "# perf test numbers: $nums; on CPU 0: $pinned"
	if [ -z "${nums// /}${pinned// /}" ]; then
		echo "no perf test matched perf-test-subset.tsv"
		return 1
	fi
	if [ -z "${KH_FULL:-}" ]; then
		local rc=0 st
		# Through tee: the results channel sees each test as it ends (the host's hang
		# watchdog counts a long silence as a hang).
		# shellcheck disable=SC2086
		timeout 2400 perf test -S $nums 2>&1 | tee /tmp/perf-test.out
		st=${PIPESTATUS[0]}
		[ "$st" -eq 0 ] || rc=$st
		if [ -n "${pinned// /}" ]; then
			# shellcheck disable=SC2086
			timeout 600 taskset -c 0 perf test -S $pinned 2>&1 | tee -a /tmp/perf-test.out
			st=${PIPESTATUS[0]}
			[ "$st" -eq 0 ] || rc=$st
		fi
		perf_test_why /tmp/perf-test.out
		return $rc
	fi
	# The whole list: one test at a time with its own time limit (e.g. 'perf ftrace tests'
	# traces every kernel function, which under TCG runs for far longer than CI allows).
	# A test that ran out of time gets no -v rerun (its signature is the time-out).
	echo "# perf test part ${KH_PART:-1/1} of the whole list"
	local n
	: >/tmp/perf-test.out
	for n in $nums $pinned; do
		perf_test_one "$n" | tee -a /tmp/perf-test.out
	done
	perf_test_why /tmp/perf-test.out
}
# perf_test_one N: test N alone (on CPU 0 if the subset pins it), 300 s at most; a test
# that ran out of time gets a FAILED line that says so (and no -v rerun).
perf_test_one() {
	local rc
	case " $pinned " in
	*" $1 "*) timeout -k 10 300 taskset -c 0 perf test -S "$1" 2>&1 ;;
	*) timeout -k 10 300 perf test -S "$1" 2>&1 ;;
	esac
	rc=$?
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		printf '%s: %s : FAILED! (timed out after 300 s)\n' "$1" \
			"$(awk -v n="$1:" '$1 == n { sub(/^ *[0-9]+: /, ""); print; exit }' /tmp/perf-test-list)"
	fi
	return 0
}
section perf-test perf_test_run

# Tests that give either result on the C core (baselines/<arch>/reasons.tsv: 'repeat') are
# compared by their pass counts: the lines of /kh/repeat.tsv that name perf-test (perf-test
# TAB <number> <description>) each run KH_REPEAT_N more times, one section a run
# (perf-test-repeat.<number>.<i>); the host counts the runs whose result line says Ok.
if [ -s /kh/repeat.tsv ]; then
	while IFS=$'\t' read -r prog test; do
		[ "$prog" = perf-test ] || continue
		for i in $(seq "${KH_REPEAT_N:-10}"); do
			section "perf-test-repeat.${test%% *}.$i" perf_test_one "${test%% *}"
		done
	done </kh/repeat.tsv
fi
