// SPDX-License-Identifier: GPL-2.0
/*
 * kh-timeout SECS KILL_AFTER CMD [ARGS]: timeout(1) -k KILL_AFTER SECS CMD, except for
 * signals that come from elsewhere. coreutils' timeout takes any SIGALRM for its own timer
 * (and exits 124 after killing CMD) and acts on SIGTERM, SIGINT, SIGHUP, ...; under
 * `make stress` some other process's signal made it end stress-ng early and report a timeout
 * that had not happened. kh-timeout measures its limit with CLOCK_MONOTONIC, reports every
 * signal it did not cause on stderr ("kh-timeout: signal N (NAME) from pid P (COMM),
 * si_code C, after S s: not acted on") and keeps waiting.
 *
 * Exit status as timeout's: CMD's, 124 if the limit was reached (CMD and its process group
 * got SIGTERM, CMD SIGKILL KILL_AFTER seconds later if still there), 128 + N if CMD died of
 * signal N, 125 on a usage or system error, 127 if CMD could not be executed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void comm_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "r");
	if (!f || !fgets(buf, len, f))
		snprintf(buf, len, "gone");
	if (f)
		fclose(f);
	buf[strcspn(buf, "\n")] = 0;
}

int main(int argc, char **argv)
{
	double start, deadline, secs, kill_after;
	int timed_out = 0, killed = 0, status;
	sigset_t all;
	pid_t child;

	if (argc < 4) {
		fprintf(stderr, "usage: kh-timeout SECS KILL_AFTER CMD [ARGS]\n");
		return 125;
	}
	secs = atof(argv[1]);
	kill_after = atof(argv[2]);
	/* Everything is taken with sigtimedwait(): nothing is delivered asynchronously. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	/* As timeout(1): a process group of its own, so that CMD's tree can be killed. */
	setpgid(0, 0);
	child = fork();
	if (child < 0) {
		perror("kh-timeout: fork");
		return 125;
	}
	if (!child) {
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		execvp(argv[3], argv + 3);
		fprintf(stderr, "kh-timeout: %s: %s\n", argv[3], strerror(errno));
		_exit(127);
	}
	start = now();
	deadline = start + secs;
	for (;;) {
		double left = deadline - now();
		struct timespec ts;
		siginfo_t si;
		int sig;

		if (left <= 0) {
			if (!timed_out) {
				timed_out = 1;
				/* CMD and, as timeout(1) does, the rest of the group. */
				kill(child, SIGTERM);
				kill(0, SIGTERM);
				deadline = now() + kill_after;
			} else if (!killed) {
				killed = 1;
				kill(child, SIGKILL);
				deadline = now() + 3600;
			}
			continue;
		}
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - ts.tv_sec) * 1e9);
		sig = sigtimedwait(&all, &si, &ts);
		if (sig < 0)
			continue;	/* EAGAIN: the deadline; EINTR */
		if (sig == SIGCHLD) {
			pid_t w = waitpid(child, &status, WNOHANG);

			if (w != child)
				continue;
			break;
		}
		if (si.si_code == SI_USER && si.si_pid == getpid())
			continue;	/* our own SIGTERM to the group */
		if (si.si_code >= POLL_IN && si.si_code <= POLL_HUP) {
			/* send_sigio(): a file with O_ASYNC whose owner (F_SETOWN) is us. */
			fprintf(stderr, "kh-timeout: signal %d (%s) from an O_ASYNC file owned by "
				"us (si_code %d, its fd %d in its process), after %.0f s: not "
				"acted on\n", sig, strsignal(sig), si.si_code, si.si_fd,
				now() - start);
		} else {
			char comm[64];

			comm_of(si.si_pid, comm, sizeof(comm));
			fprintf(stderr, "kh-timeout: signal %d (%s) from pid %d (%s), si_code %d, "
				"after %.0f s: not acted on\n", sig, strsignal(sig), si.si_pid, comm,
				si.si_code, now() - start);
		}
	}
	if (timed_out)
		return 124;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}
