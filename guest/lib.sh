# Helpers for the guest scripts (sourced). Output goes to the results channel.

# section NAME CMD...: runs CMD between markers the host parses, records its exit code, and
# after the end marker the guest's uptime at its start and end (KH-TIME, outside the section).
section() {
	local name=$1 t0 t1
	shift
	read -r t0 _ </proc/uptime
	echo "KH-BEGIN $name"
	"$@"
	local rc=$?
	read -r t1 _ </proc/uptime
	# A newline first: the output may end without one.
	printf '\nKH-END %s rc=%d\nKH-TIME %s %s %s\n' "$name" "$rc" "$name" "$t0" "$t1"
	return 0
}
