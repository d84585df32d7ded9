# KUnit: the suites ran at boot (built in); print each suite's KTAP from debugfs.
kunit_all() {
	local d
	for d in /sys/kernel/debug/kunit/*/; do
		[ -r "$d/results" ] || continue
		cat "$d/results"
	done
}
section kunit kunit_all
