# The main job: Debian's perf on a real workload (software events; x86 TCG has no HW PMU).
# Sourced by main.sh; the host parses each section (harness/kh/parsers.py).
W=/kh/bin/kh-workload

smoke_stat() {
	perf stat -e task-clock,context-switches,cpu-migrations,page-faults -- $W 200 20
}
smoke_group() {
	perf stat -e '{task-clock,context-switches,page-faults}' -- $W 100 10
}
smoke_record() {
	perf record -e cpu-clock -g -o /tmp/perf.data -- $W 400 5 || return
	perf report --stdio --no-children --percent-limit 2 -i /tmp/perf.data \
		--sort comm,dso,sym >/tmp/perf.report 2>&1
	local rc=$?
	head -n 80 /tmp/perf.report
	return $rc
}

section smoke.stat smoke_stat
section smoke.group smoke_group
section smoke.record smoke_record
