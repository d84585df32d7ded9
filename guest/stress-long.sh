# make stress: loads in parallel, in rounds of at most 5 minutes, until
# KH_STRESS_MINUTES are over. Every load is bounded in time (and trinity also in
# syscalls) and stops by itself. One "KH-STRESS-ROUND" line per round and a
# "KH-STRESS-SUM" line at the end; the host counts splats, leaks and hangs.
#
#  - kh-stress (guest/src/kh-stress.c) with CPU hotplug;
#  - trinity restricted to perf_event_open and the file operations on perf fds
#    (every other fd provider disabled), as root and as an unprivileged user under
#    a perf_event_paranoid that changes each round (-1, 0, 1, 2);
#  - stress-ng's fork and vfork stressors with --perf (stress-ng opens its own per-task
#    events in every stressor) under `perf stat` with inherited events;
#  - the fault_inject selftest (every allocation of open/fork/mmap failed in turn).

TRINITY_CALLS="-c perf_event_open -c read -c ioctl -c mmap -c munmap -c close -c fcntl -c poll"
TRINITY_FDS="--enable-fds=perf"

trinity_as() {
	# trinity_as USER SECONDS LOGDIR: prints "ran N" (syscalls done).
	local user=$1 secs=$2 dir=$3 cmd
	mkdir -p "$dir"
	chmod 777 "$dir"
	cmd="cd $dir && timeout -s INT -k 20 $secs trinity -q -l off -C 2 -N 200000 $TRINITY_CALLS $TRINITY_FDS"
	if [ "$user" = root ]; then
		bash -c "$cmd --dangerous" >"$dir/out" 2>&1
	else
		setpriv --reuid=65534 --regid=65534 --clear-groups bash -c "$cmd" >"$dir/out" 2>&1
	fi
	local ran
	ran=$(grep -o 'Ran [0-9]* syscalls' "$dir/out" | tail -1 | grep -o '[0-9]*')
	echo "ran ${ran:-0}"
	# A load that did nothing is a failure of the run: show why.
	[ -n "$ran" ] && [ "$ran" -gt 0 ] || tail -15 "$dir/out" >&2
}

# ng_watch SECS: if perf stat or stress-ng still runs after SECS (shortly before
# the wrapper's limit), show what they wait for. The kernel's view first (sysrq w:
# the blocked tasks' stacks on the console; l: every CPU's), since reading another
# process's /proc files can block on its locks (cmdline on its mmap_lock, stack on
# its exec_update_lock; on 2026-12-01 a watch's output was lost when the round stopped
# it mid-way). Then each one's state and wchan (lock-free), its stack and ps, each
# bounded.
ng_watch() {
	sleep "$1"
	local pids p n=0
	pids=$(pgrep -f 'stress-ng|perf stat') || return 0
	: >/tmp/ng.watching
	echo "KH-STRESS-NG-STUCK after $1 s: $(echo $pids | wc -w) perf/stress-ng processes"
	echo w >/proc/sysrq-trigger
	echo l >/proc/sysrq-trigger
	for p in $pids; do
		n=$((n + 1))
		[ $n -le 10 ] || break
		echo "--- $p $(cat /proc/$p/comm 2>/dev/null):" \
			"state $(cut -d' ' -f3 /proc/$p/stat 2>/dev/null)," \
			"wchan $(cat /proc/$p/wchan 2>/dev/null)"
		timeout 5 cat /proc/$p/stack 2>/dev/null || echo "(its stack: no answer in 5 s)"
	done
	timeout 10 ps -eo pid,ppid,stat,wchan:28,time,comm >/tmp/ng.ps 2>&1 ||
		echo "(ps: no answer in 10 s)"
	head -60 /tmp/ng.ps
}

# proc_line P: from /proc/P by shell builtins (false if P is gone): PL, one line (pid,
# comm, state, user and system CPU time in clock ticks, last CPU, wchan); PT, that CPU
# time; PP, its parent; PC, its comm.
proc_line() {
	local st f w=""
	{ read -r st </proc/$1/stat; } 2>/dev/null || return 1
	f=(${st##*) }) PC=${st#* (}
	PC=${PC%%) *}
	{ read -r w </proc/$1/wchan; } 2>/dev/null || :   # (no newline: read says EOF)
	PL="$1 $PC: state ${f[0]} utime ${f[11]} stime ${f[12]} cpu ${f[36]}, wchan $w"
	PT=$((f[11] + f[12])) PP=${f[1]}
}

# ng_scan: the perf and stress-ng processes, by builtins (pgrep took minutes of a starved
# CPU here: it reads every process's /proc files, and under KASAN each close costs a
# stack walk): NG_PIDS, NG_N of them, NG_TICKS their CPU time, NG_LINES their lines.
ng_scan() {
	local p PL PT PP PC
	NG_PIDS="" NG_N=0 NG_TICKS=0 NG_LINES=""
	for p in /proc/[0-9]*; do
		proc_line ${p#/proc/} || continue
		case $PC in perf | stress-ng*) ;; *) continue ;; esac
		NG_PIDS="$NG_PIDS ${p#/proc/}" NG_N=$((NG_N + 1)) NG_TICKS=$((NG_TICKS + PT))
		NG_LINES="$NG_LINES$PL"$'\n'
	done
}

# ng_where WHEN: ng_scan's lines, each prefixed with WHEN.
ng_where() {
	local ln
	ng_scan
	echo "$1: $NG_N perf and stress-ng processes, $NG_TICKS ticks"
	while read -r ln; do
		[ -z "$ln" ] || echo "$1: $ln"
	done <<<"$NG_LINES"
}

# rt_watch MT0: every 10 s, at SCHED_FIFO (a CPU-bound load cannot starve it) and
# with shell builtins only (a stalled fork cannot stop it): the uptime since MT0, the
# runnable and blocked counts of /proc/stat, the load average, and how late the 5 s
# sampler's heartbeat (/tmp/ng.beat) is. When the sampler is 60 s late, and 200 s: the
# sampler's stack, the kernel's view (sysrq w, l) and, bounded, ps with scheduling classes.
# It also judges perf stat -- stress-ng's progress (below).
rt_watch() {
	local up k v r b l beat sp dumped=0 ticks=-1 since=0
	local NG_STALL=${KH_NG_STALL:-240} NG_PIDS NG_N NG_TICKS NG_LINES
	[ -p /tmp/rt.fifo ] || mkfifo /tmp/rt.fifo
	exec 9<>/tmp/rt.fifo
	while :; do
		read -r -t 10 -u 9 _
		read -r up _ </proc/uptime
		up=$((${up%.*} - $1))
		while read -r k v _; do
			case $k in procs_running) r=$v ;; procs_blocked) b=$v ;; esac
		done </proc/stat
		read -r l </proc/loadavg
		read -r beat </tmp/ng.beat 2>/dev/null || beat=0
		echo "+$up s: running $r blocked $b load $l sampler +$beat s"
		# perf stat -- stress-ng's progress: their CPU time (ng_scan) unchanged for
		# NG_STALL s while the wrapper runs means none of them ran: a stall, whatever
		# the wrapper's limit says. Say so, show them, kill them (the round fails).
		if [ ! -e /tmp/ng.rc ]; then
			ng_scan
			if [ $NG_N -eq 0 ] || [ "$NG_TICKS" != "$ticks" ]; then
				ticks=$NG_TICKS since=$up
			elif [ $((up - since)) -ge $NG_STALL ] && [ ! -e /tmp/ng.noprogress ]; then
				echo "no progress for $((up - since)) s (+$since s to +$up s):" \
					"$NG_N perf and stress-ng processes, $NG_TICKS ticks" >/tmp/ng.noprogress
				echo "KH-STRESS-NG-NO-PROGRESS $(</tmp/ng.noprogress)"
				echo -n "$NG_LINES"
				echo w >/proc/sysrq-trigger
				echo l >/proc/sysrq-trigger
				kill -KILL $NG_PIDS
			fi
		fi
		if [ $((up - beat)) -ge $((60 + 140 * dumped)) ] && [ $dumped -lt 2 ]; then
			dumped=$((dumped + 1))
			echo "KH-STRESS-SAMPLER-LATE +$up s: last beat +$beat s"
			read -r sp </tmp/ng.sampler 2>/dev/null && rt_where $sp
			echo w >/proc/sysrq-trigger
			echo l >/proc/sysrq-trigger
			timeout 30 ps -eo pid,ppid,cls,rtprio,ni,stat,pcpu,time,psr,wchan:24,comm \
				--sort=-pcpu 2>&1 | head -30 || echo "(ps: no answer in 30 s)"
		fi
	done
}

# rt_where PID: where PID and its children are (proc_line, and the stack).
rt_where() {
	local p ln kids="" PL PT PP PC
	for p in /proc/[0-9]*; do
		proc_line ${p#/proc/} && [ "$PP" = "$1" ] && kids="$kids ${p#/proc/}"
	done
	for p in $1 $kids; do
		proc_line $p || continue
		echo "-- $PL"
		while read -r ln; do echo "   $ln"; done </proc/$p/stack 2>/dev/null
	done
}

# load_failed WHAT: counts a failed load of the current round into stress_long's
# `failed` and names it for the host (KH-STRESS-FAILED lines).
load_failed() {
	failed=$((failed + 1))
	echo "KH-STRESS-FAILED round $round: $*"
}

stress_long() {
	local minutes=${KH_STRESS_MINUTES:-30} end round=0 slot left level
	local levels=(-1 0 1 2) sum_ops=0 sum_unexp=0 sum_trinity=0 sum_ng=0 fi_fail=0 failed=0
	end=$((SECONDS + minutes * 60))
	echo "stress: ${minutes} min, $(nproc) CPUs"
	# The hang detectors (configs/kasan.config): soft lockups after 2 * watchdog_thresh s
	# of a CPU in the kernel without a schedule; 30 (60 s, as RCU's stall timeout) rather
	# than the default 10, since a KASAN kernel under TCG is some 50 times slower. The host
	# fails the run if one of them is off.
	echo 30 >/proc/sys/kernel/watchdog_thresh
	echo "KH-STRESS-DETECTORS" \
		"hung_task_timeout_secs=$(cat /proc/sys/kernel/hung_task_timeout_secs 2>/dev/null || echo 0)" \
		"watchdog_thresh=$(cat /proc/sys/kernel/watchdog_thresh 2>/dev/null || echo 0)" \
		"soft_watchdog=$(cat /proc/sys/kernel/soft_watchdog 2>/dev/null || echo 0)" \
		"rcu_cpu_stall_timeout=$(cat /sys/module/rcupdate/parameters/rcu_cpu_stall_timeout 2>/dev/null || echo 0)"
	local ut0
	ut0=$(cut -d. -f1 /proc/uptime)
	while :; do
		left=$((end - SECONDS))
		[ $left -ge 30 ] || break
		slot=$((left < 300 ? left : 300))
		round=$((round + 1))
		level=${levels[$((round % 4))]}
		local rt0 mt0
		rt0=$(date +%s)
		mt0=$(cut -d. -f1 /proc/uptime)
		echo "$level" >/proc/sys/kernel/perf_event_paranoid
		/kh/bin/kh-stress --hotplug "$slot" >/tmp/khs.out 2>&1 &
		local p_khs=$!
		trinity_as root "$slot" /tmp/trinity-root >/tmp/tr-root.res 2>&1 &
		local p_trr=$!
		trinity_as nobody "$slot" /tmp/trinity-user >/tmp/tr-user.res 2>&1 &
		local p_tru=$!
		# stress-ng winds down slowly under KASAN: stop it a little early, and give the
		# wrapper room. (Its exec stressor refuses to run as root; exec is kh-stress's.)
		# The room: ng_limit s, a cap only. How long `perf stat -- stress-ng --timeout
		# 270s` takes is the CPU share it gets: 448-635 s of a 300 s round here, on both
		# cores (2026-12-01/02), with 6-21 runnable tasks, none blocked, on 2 vCPUs of
		# which CPU 1 is offline half the time. A stall is judged by progress instead
		# (rt_watch: their CPU time unchanged for 240 s), kernel hangs by the detectors
		# (configs/detectors.config); 3 * slot, at least 600 s, only bounds the round. (A
		# short last round had slot + 120 until 2026-12-08, when the C control's hour
		# beside the Rust core's took 218 s for a 63 s round: stress-ng's start-up, some
		# 135 s on a quiet host, does not shrink with the slot.)
		local ng_limit=$((slot * 3 > 600 ? slot * 3 : 600))
		rm -f /tmp/ng.rc /tmp/ng.watching /tmp/ng.noprogress
		# The wrapper's exit status and when it ended, in seconds since the round began
		# (mt0, by the uptime; it starts right after kh-stress and trinity). kh-timeout, not
		# timeout(1): that one takes any SIGALRM for its own limit; kh-timeout reports
		# signals from elsewhere (kh-timeout: lines in ng.out) and keeps waiting.
		(
			/kh/bin/kh-timeout $ng_limit 20 perf stat -o /tmp/ng.stat \
				-e task-clock,context-switches,cpu-migrations,page-faults -- \
				stdbuf -oL -eL stress-ng --perf --fork 2 --vfork 1 \
				--timeout "$((slot * 9 / 10))s" --metrics-brief -v >/tmp/ng.out 2>&1
			rc=$?
			echo "$rc $(($(cut -d. -f1 /proc/uptime) - mt0))" >/tmp/ng.rc
			exit $rc
		) &
		local p_ng=$!
		# When each line of stress-ng's output appeared, to 5 s, from mt0 (stress-ng
		# counts its run from the dispatch of its stressors, not from its start; its
		# output is line-buffered, stdbuf below: a file would get it in blocks, at exit),
		# and every 30 s where perf and stress-ng are (ng_where).
		(
			last=0 next=0
			echo $BASHPID >/tmp/ng.sampler
			while sleep 5; do
				read -r t _ </proc/uptime
				t=$((${t%.*} - mt0))
				echo $t >/tmp/ng.beat
				n=$(wc -l </tmp/ng.out 2>/dev/null) || n=0
				[ "$n" = "$last" ] || echo "+$t s: line $n: $(sed -n "${n}p" /tmp/ng.out | cut -c1-80)"
				last=$n
				[ $t -lt $next ] || { ng_where "+$t s"; next=$((t + 30)); }
			done
		) >/tmp/ng.times 2>&1 &
		local p_ngt=$!
		rm -f /tmp/ng.beat
		rt_watch $mt0 >/tmp/rt.watch 2>&1 &
		local p_rtw=$!
		chrt -f -p 90 $p_rtw >/dev/null || echo "chrt: cannot make the watch SCHED_FIFO"
		ng_watch $((ng_limit - 20)) >/tmp/ng.watch 2>&1 &
		local p_ngw=$!
		local rc
		wait $p_khs
		rc=$?
		if [ $rc -ne 0 ]; then
			load_failed "kh-stress exited $rc"
			tail -20 /tmp/khs.out
		fi
		wait $p_trr
		wait $p_tru
		cat /tmp/tr-root.res /tmp/tr-user.res | grep -v '^ran' | head -30
		wait $p_ng
		rc=$?
		# A watch that has started dumping is waited for (its reads are bounded);
		# one still asleep is stopped.
		[ -e /tmp/ng.watching ] || kill $p_ngw 2>/dev/null
		wait $p_ngw 2>/dev/null
		kill $p_ngt $p_rtw 2>/dev/null
		wait $p_ngt $p_rtw 2>/dev/null
		echo "--- round $round, the SCHED_FIFO watch:"
		head -100 /tmp/rt.watch
		cat /tmp/ng.watch
		local ng_secs
		ng_secs=$(cut -d' ' -f2 /tmp/ng.rc 2>/dev/null)
		if [ -e /tmp/ng.noprogress ]; then
			load_failed "perf stat -- stress-ng: $(</tmp/ng.noprogress), killed"
		elif [ $rc -eq 124 ] && [ "${ng_secs:-0}" -ge $ng_limit ]; then
			load_failed "perf stat -- stress-ng timed out (exit 124), $ng_secs s into the round"
		elif [ $rc -ne 0 ]; then
			load_failed "perf stat -- stress-ng exited $rc, ${ng_secs:-?} s into the round"
		fi
		# Signals that reached the wrapper from elsewhere (not acted on): say so.
		grep '^kh-timeout: signal' /tmp/ng.out | sed "s/^/KH-STRESS-SIGNAL round $round: /"
		if [ $rc -ne 0 ]; then
			head -60 /tmp/ng.times
			grep -v 'metrc:\|[0-9] .* /sec' /tmp/ng.out | head -30
			tail -15 /tmp/ng.out
			tail -12 /tmp/ng.stat 2>/dev/null
		fi
		local ops unexp tr_r tr_u ng fi
		ops=$(awk '/^KH-STRESS-TOTAL/ { print $2 }' /tmp/khs.out)
		unexp=$(awk '/^KH-STRESS-TOTAL/ { print $4 }' /tmp/khs.out)
		tr_r=$(awk '/^ran/ { print $2 }' /tmp/tr-root.res)
		tr_u=$(awk '/^ran/ { print $2 }' /tmp/tr-user.res)
		[ "${tr_r:-0}" -gt 0 ] || load_failed "trinity as root ran no syscall"
		[ "${tr_u:-0}" -gt 0 ] || load_failed "trinity as nobody ran no syscall"
		ng=$(awk '/stress-ng: metrc: \[[0-9]+\] +(fork|vfork) / { s += $5 } END { print s + 0 }' \
			/tmp/ng.out)
		[ "$ng" -gt 0 ] || { load_failed "stress-ng reported no fork or vfork op"; tail -15 /tmp/ng.out; }
		timeout 600 /kh/selftests/perf_events/fault_inject >/tmp/fi.out 2>&1
		fi=$?
		[ $fi -eq 0 ] || { fi_fail=$((fi_fail + 1)); tail -20 /tmp/fi.out; }
		[ -n "$ops" ] || { ops=0; unexp=1; tail -20 /tmp/khs.out; }
		# The guest's wall clock against its uptime over the round: a jump of one
		# against the other makes timeouts fire early or late.
		echo "KH-STRESS-CLOCK round $round: realtime +$(($(date +%s) - rt0)) s," \
			"uptime +$(($(cut -d. -f1 /proc/uptime) - mt0)) s"
		echo "KH-STRESS-ROUND $round paranoid=$level secs=$slot" \
			"kh-stress=$ops unexpected=$unexp trinity-root=$tr_r trinity-user=$tr_u" \
			"stress-ng=$ng fault_inject=$([ $fi -eq 0 ] && echo pass || echo FAIL)"
		grep '^unexpected' /tmp/khs.out | head -5
		sum_ops=$((sum_ops + ops + tr_r + tr_u + ng))
		sum_unexp=$((sum_unexp + unexp))
		sum_trinity=$((sum_trinity + tr_r + tr_u))
		sum_ng=$((sum_ng + ng))
	done
	echo 2 >/proc/sys/kernel/perf_event_paranoid
	echo "KH-STRESS-SUM rounds=$round ops=$sum_ops unexpected=$sum_unexp" \
		"trinity=$sum_trinity stress-ng=$sum_ng fault_inject_failures=$fi_fail failed=$failed" \
		"secs=$(($(cut -d. -f1 /proc/uptime) - ut0))"
	[ $sum_unexp -eq 0 ] && [ $fi_fail -eq 0 ] && [ $failed -eq 0 ] && [ $round -gt 0 ]
}
section stress-long stress_long
