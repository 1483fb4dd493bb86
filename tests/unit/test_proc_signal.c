// SPDX-License-Identifier: MIT
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dozed/proc_signal.h"
#include "harness.h"

TEST(test_proc_signal_parse_takes_names_and_numbers)
{
	ASSERT_EQ_U(proc_signal_parse("SIGTERM"), SIGTERM);
	ASSERT_EQ_U(proc_signal_parse("TERM"), SIGTERM);
	ASSERT_EQ_U(proc_signal_parse("sigint"), SIGINT);
	ASSERT_EQ_U(proc_signal_parse("15"), 15);
	ASSERT_EQ_U(proc_signal_parse("SIGWINCH"), SIGWINCH);
	ASSERT_EQ_U(proc_signal_parse("64"), 64);
	ASSERT_ERR(proc_signal_parse("0"), EINVAL);
	ASSERT_ERR(proc_signal_parse("65"), EINVAL);
	ASSERT_ERR(proc_signal_parse("15x"), EINVAL);
	ASSERT_EQ_U(proc_signal_parse("SIGRTMIN+3"), 35);
	ASSERT_EQ_U(proc_signal_parse("RTMIN"), 32);
	ASSERT_EQ_U(proc_signal_parse("SIGRTMAX-1"), 63);
	ASSERT_ERR(proc_signal_parse("SIGRTMIN-1"), EINVAL);
	ASSERT_ERR(proc_signal_parse("SIGRTMIN+33"), EINVAL);
	ASSERT_ERR(proc_signal_parse("SIGRTMIN+"), EINVAL);
	ASSERT_ERR(proc_signal_parse("SIGFOO"), EINVAL);
	ASSERT_ERR(proc_signal_parse(""), EINVAL);
	ASSERT_ERR(proc_signal_parse("SIG"), EINVAL);
}

TEST(test_proc_signal_reads_sigcgt_and_sigign_from_a_status_text)
{
	/* Recorded from /proc/PID/status of a shell with `trap : TERM` (bit 15,
	 * plus INT and CHLD) that ignores QUIT, as the init of a namespace. */
	static const char status[] = "Name:\tsh\nNSpid:\t4242\t1\nSigQ:\t0/95533\n"
				     "SigPnd:\t0000000000000000\nSigBlk:\t0000000000000000\n"
				     "SigIgn:\t0000000000000004\nSigCgt:\t0000000000014002\n"
				     "CapInh:\t0000000000000000\n";
	ASSERT_EQ_U(proc_signal_noop_in_status(status, strlen(status), SIGTERM), 0);
	ASSERT_EQ_U(proc_signal_noop_in_status(status, strlen(status), SIGINT), 0);
	ASSERT_EQ_U(proc_signal_noop_in_status(status, strlen(status), SIGQUIT), 1);
	/* Neither caught nor ignored, by a namespace's init: the kernel drops it. */
	ASSERT_EQ_U(proc_signal_noop_in_status(status, strlen(status), SIGHUP), 1);
	ASSERT_ERR(proc_signal_noop_in_status("Name:\tx\n", 8, SIGTERM), EBADMSG);
	ASSERT_ERR(proc_signal_noop_in_status("SigIgn:\tzz\n", 11, SIGTERM), EBADMSG);
	ASSERT_ERR(proc_signal_noop_in_status("SigCgt:", 7, SIGTERM), EBADMSG);
}

/* The init of a container's PID namespace (NSpid ends in 1), as busybox
 * httpd -f runs: nothing caught, nothing ignored. */
static const char httpd_init[] = "Name:\thttpd\nNSpid:\t15602\t1\nSigQ:\t0/95533\n"
				 "SigIgn:\t0000000000000000\nSigCgt:\t0000000000000000\n";

TEST(test_proc_signal_an_uncaught_signal_to_a_namespace_init_does_nothing)
{
	ASSERT_EQ_U(proc_signal_noop_in_status(httpd_init, strlen(httpd_init), SIGTERM), 1);
	/* SIGKILL always does. */
	ASSERT_EQ_U(proc_signal_noop_in_status(httpd_init, strlen(httpd_init), SIGKILL), 0);
	/* The same process in our own PID namespace dies of it. */
	static const char host[] = "Name:\thttpd\nNSpid:\t15602\nSigIgn:\t0000000000000000\n"
				   "SigCgt:\t0000000000000000\n";
	ASSERT_EQ_U(proc_signal_noop_in_status(host, strlen(host), SIGTERM), 0);
	/* A shell with trap ... TERM catches it: it may be shutting down. */
	static const char trap[] = "Name:\tsh\nNSpid:\t900\t1\nSigIgn:\t0000000000000004\n"
				   "SigCgt:\t0000000000014002\n";
	ASSERT_EQ_U(proc_signal_noop_in_status(trap, strlen(trap), SIGTERM), 0);
	/* Ignored (SIG_IGN) anywhere: nothing. */
	ASSERT_EQ_U(proc_signal_noop_in_status(trap, strlen(trap), SIGQUIT), 1);
	ASSERT_ERR(proc_signal_noop_in_status("Name:\tx\n", 8, SIGTERM), EBADMSG);
	static const char no_nspid[] = "SigIgn:\t0\nSigCgt:\t0\n";
	ASSERT_ERR(proc_signal_noop_in_status(no_nspid, strlen(no_nspid), SIGTERM), EBADMSG);
}

static void on_term(int sig)
{
	(void)sig;
}

static void on_term_exit(int sig)
{
	(void)sig;
	_exit(0);
}

TEST(test_proc_signal_sees_a_real_process_handler)
{
	int ready[2];
	ASSERT_OK(pipe(ready));
	pid_t child = fork();
	ASSERT_TRUE(child >= 0);
	if (child == 0) {
		signal(SIGTERM, on_term);
		signal(SIGUSR2, SIG_IGN);
		(void)!write(ready[1], "x", 1);
		pause();
		_exit(0);
	}
	char c;
	ASSERT_EQ_U(read(ready[0], &c, 1), 1);
	/* Caught, and in our own namespace either way: it may act. */
	ASSERT_EQ_U(proc_signal_noop(child, SIGTERM), 0);
	ASSERT_EQ_U(proc_signal_noop(getpid(), SIGTERM), 0);
	/* Ignored: it can do nothing. */
	ASSERT_EQ_U(proc_signal_noop(child, SIGUSR2), 1);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	ASSERT_ERR(proc_signal_noop(child, SIGTERM), ENOENT);
	close(ready[0]);
	close(ready[1]);
}

/* The kernel's own rule, on a real PID namespace: its init without a handler
 * survives SIGTERM, as proc_signal_noop says; with one it does not. */
TEST(test_proc_signal_a_namespace_init_survives_an_uncaught_sigterm)
{
	for (int catches = 0; catches <= 1; catches++) {
		int ready[2];
		ASSERT_OK(pipe(ready));
		pid_t outer = fork();
		ASSERT_TRUE(outer >= 0);
		if (outer == 0) {
			/* The child of this one is the init of a new namespace. */
			if (unshare(CLONE_NEWPID) < 0)
				_exit(2);
			pid_t init = fork();
			if (init == 0) {
				if (catches)
					signal(SIGTERM, on_term_exit);
				(void)!write(ready[1], "x", 1);
				for (;;)
					pause();
			}
			int status;
			waitpid(init, &status, 0);
			_exit(WIFSIGNALED(status) ? 100 + WTERMSIG(status) : WEXITSTATUS(status));
		}
		char c;
		ASSERT_EQ_U(read(ready[0], &c, 1), 1);
		/* The init's pid as we see it: the outer child's only child. */
		char path[64], kids[64] = "";
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)outer, (int)outer);
		FILE *f = fopen(path, "r");
		ASSERT_TRUE(f != NULL);
		ASSERT_TRUE(fgets(kids, sizeof(kids), f) != NULL);
		fclose(f);
		pid_t init = (pid_t)atoi(kids);
		ASSERT_TRUE(init > 0);
		ASSERT_EQ_U(proc_signal_noop(init, SIGTERM), catches ? 0 : 1);
		ASSERT_OK(kill(init, SIGTERM));
		/* Caught: it exits 0 at once. Not caught: the kernel dropped it,
		 * and only SIGKILL ends it. */
		if (!catches) {
			struct timespec t = {0, 50 * 1000 * 1000};
			nanosleep(&t, NULL); /* a dropped signal has no event to wait for */
			ASSERT_EQ_U(kill(init, 0), 0);
			ASSERT_OK(kill(init, SIGKILL));
		}
		int status;
		ASSERT_EQ_U(waitpid(outer, &status, 0), outer);
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ_U(WEXITSTATUS(status), catches ? 0 : 100 + SIGKILL);
		close(ready[0]);
		close(ready[1]);
	}
}
