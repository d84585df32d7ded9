# Helpers for the guest scripts (sourced). Output goes to the results channel.

# section NAME CMD...: runs CMD between markers the host parses, records its exit code.
section() {
	local name=$1
	shift
	echo "KH-BEGIN $name"
	"$@"
	local rc=$?
	# A newline first: the output may end without one.
	printf '\nKH-END %s rc=%d\n' "$name" "$rc"
	return 0
}
