// SPDX-License-Identifier: MIT
#include <errno.h>
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
	ASSERT_ERR(proc_signal_parse("SIGRTMIN+3"), EINVAL);
	ASSERT_ERR(proc_signal_parse(""), EINVAL);
	ASSERT_ERR(proc_signal_parse("SIG"), EINVAL);
}

TEST(test_proc_signal_reads_sigcgt_from_a_status_text)
{
	/* Recorded from /proc/PID/status of a shell with `trap : TERM` (bit 15,
	 * plus INT and CHLD). */
	static const char status[] = "Name:\tsh\nSigQ:\t0/95533\nSigPnd:\t0000000000000000\n"
				     "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000004\n"
				     "SigCgt:\t0000000000014002\nCapInh:\t0000000000000000\n";
	ASSERT_EQ_U(proc_signal_caught_in_status(status, strlen(status), SIGTERM), 1);
	ASSERT_EQ_U(proc_signal_caught_in_status(status, strlen(status), SIGINT), 1);
	ASSERT_EQ_U(proc_signal_caught_in_status(status, strlen(status), SIGQUIT), 0);
	ASSERT_EQ_U(proc_signal_caught_in_status(status, strlen(status), SIGHUP), 0);
	ASSERT_ERR(proc_signal_caught_in_status("Name:\tx\n", 8, SIGTERM), EBADMSG);
	ASSERT_ERR(proc_signal_caught_in_status("SigCgt:\tzz\n", 11, SIGTERM), EBADMSG);
	/* Cut in the middle of the line: the number is still read, or refused. */
	ASSERT_EQ_U(proc_signal_caught_in_status(status, strlen(status) - 23, SIGTERM), 1);
	ASSERT_ERR(proc_signal_caught_in_status("SigCgt:", 7, SIGTERM), EBADMSG);
}

static void on_term(int sig)
{
	(void)sig;
}

TEST(test_proc_signal_sees_a_real_process_handler)
{
	int ready[2];
	ASSERT_OK(pipe(ready));
	pid_t child = fork();
	ASSERT_TRUE(child >= 0);
	if (child == 0) {
		signal(SIGTERM, on_term);
		(void)!write(ready[1], "x", 1);
		pause();
		_exit(0);
	}
	char c;
	ASSERT_EQ_U(read(ready[0], &c, 1), 1);
	ASSERT_EQ_U(proc_signal_caught(child, SIGTERM), 1);
	ASSERT_EQ_U(proc_signal_caught(child, SIGUSR2), 0);
	ASSERT_EQ_U(proc_signal_caught(getpid(), SIGTERM), 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	ASSERT_ERR(proc_signal_caught(child, SIGTERM), ENOENT);
	close(ready[0]);
	close(ready[1]);
}
