# kmemleak, after every other suite: two scans (an object is reported once it has been
# seen unreferenced, and is older than 5 s), then the report and a count line.
kmemleak_report() {
	local f=/sys/kernel/debug/kmemleak n
	if [ ! -w "$f" ]; then
		echo "kmemleak: $f missing (CONFIG_DEBUG_KMEMLEAK, debugfs?)"
		return 2
	fi
	sleep 6
	echo scan >"$f"
	sleep 6
	echo scan >"$f"
	cat "$f"
	n=$(grep -c '^unreferenced object' "$f")
	echo "KH-KMEMLEAK $n unreferenced objects"
}
section kmemleak kmemleak_report
