# Helpers for the guest scripts (sourced). Output goes to the results channel.

# section NAME CMD...: runs CMD between markers the host parses, records its exit code.
section() {
	local name=$1
	shift
	echo "KH-BEGIN $name"
	"$@"
	local rc=$?
	echo "KH-END $name rc=$rc"
	return 0
}
