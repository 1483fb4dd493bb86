// SPDX-License-Identifier: MIT
/*
 * net_queued_parse on tables as the kernel prints /proc/PID/net/{tcp,tcp6,udp}:
 * a listener's backlog, unread bytes, the container's own loopback left out,
 * wake_on=data counting bytes only, and text that is no such table.
 */
#include <errno.h>
#include <string.h>

#include "dozed/net_queued.h"
#include "harness.h"

#define TCP_HEADER                                                                                 \
	"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "      \
	"timeout inode\n"

/* busybox httpd on :80, idle: a listener with nothing waiting. */
static const char idle_tcp[] = TCP_HEADER
    "   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        "
    "0 1234 1 0000000000000000 100 0 0 10 0\n";

/* The listener's backlog holds one connection, which has 79 unread bytes. */
static const char waiting_tcp[] = TCP_HEADER
    "   0: 00000000:0050 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        "
    "0 1234 1 0000000000000000 100 0 0 10 0\n"
    "   1: 0758580A:0050 0158580A:A0A2 01 00000000:0000004F 00:00000000 00000000     0        "
    "0 0 1 0000000000000000 20 4 30 10 -1\n";

TEST(test_an_idle_listener_is_nothing_waiting)
{
	char who[96] = "";
	ASSERT_EQ_U(net_queued_parse(idle_tcp, false, false, who, sizeof(who)), 0);
	ASSERT_STREQ(who, "");
}

TEST(test_a_backlog_and_unread_bytes_wait_and_are_named)
{
	char who[96] = "";
	ASSERT_EQ_U(net_queued_parse(waiting_tcp, false, false, who, sizeof(who)), 2);
	ASSERT_STREQ(who, "a connection not yet accepted on 0.0.0.0:80");
	/* With wake_on=data only the bytes count, and the client is named. */
	ASSERT_EQ_U(net_queued_parse(waiting_tcp, false, true, who, sizeof(who)), 1);
	ASSERT_STREQ(who, "a client from 10.88.88.1:41122 with 79 unread bytes");
}

TEST(test_a_connect_only_client_waits_only_without_wake_on_data)
{
	static const char text[] = TCP_HEADER
	    "   0: 00000000:0050 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0  "
	    "      0 1234 1 0000000000000000 100 0 0 10 0\n"
	    "   1: 0758580A:0050 0158580A:A0A2 01 00000000:00000000 00:00000000 00000000     0  "
	    "      0 0 1 0000000000000000 20 4 30 10 -1\n";
	ASSERT_EQ_U(net_queued_parse(text, false, false, NULL, 0), 1);
	ASSERT_EQ_U(net_queued_parse(text, false, true, NULL, 0), 0);
}

TEST(test_the_containers_own_loopback_is_left_out)
{
	static const char text[] = TCP_HEADER
	    "   0: 0100007F:1F90 0100007F:C350 01 00000000:00000010 00:00000000 00000000     0  "
	    "      0 77 1 0000000000000000 20 4 30 10 -1\n"
	    "   1: 0100007F:1F90 00000000:0000 0A 00000000:00000002 00:00000000 00000000     0  "
	    "      0 78 1 0000000000000000 100 0 0 10 0\n";
	ASSERT_EQ_U(net_queued_parse(text, false, false, NULL, 0), 0);
}

TEST(test_ipv6_peers_and_close_wait_count)
{
	static const char text[] = TCP_HEADER
	    "   0: 00000000000000000000000000000000:0050 "
	    "B80D0120000000000000000001000000:D431 08 00000000:00000005 00:00000000 00000000     "
	    "0        0 0 1 0000000000000000 20 4 30 10 -1\n"
	    "   1: 00000000000000000000000001000000:0050 "
	    "00000000000000000000000001000000:D432 01 00000000:00000009 00:00000000 00000000     "
	    "0        0 0 1 0000000000000000 20 4 30 10 -1\n";
	char who[96] = "";
	ASSERT_EQ_U(net_queued_parse(text, false, true, who, sizeof(who)), 1);
	ASSERT_STREQ(who, "a client from [2001:db8::1]:54321 with 5 unread bytes");
}

TEST(test_a_queued_datagram_counts_with_either_wake_on)
{
	static const char text[] =
	    "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
	    "timeout inode ref pointer drops\n"
	    "  100: 00000000:14E9 00000000:0000 07 00000000:00000300 00:00000000 00000000     0  "
	    "      0 999 2 0000000000000000 0\n";
	char who[96] = "";
	ASSERT_EQ_U(net_queued_parse(text, true, true, who, sizeof(who)), 1);
	ASSERT_STREQ(who, "768 unread bytes of datagrams on 0.0.0.0:5353");
}

TEST(test_text_that_is_no_table_is_refused)
{
	ASSERT_ERR(net_queued_parse("", false, false, NULL, 0), EINVAL);
	ASSERT_ERR(net_queued_parse("hello\nworld\n", false, false, NULL, 0), EINVAL);
	/* A table of rows it cannot read counts nothing. */
	ASSERT_EQ_U(net_queued_parse(TCP_HEADER "   0: zz:yy\n garbage\n", false, false, NULL, 0),
		    0);
}

TEST(test_a_process_that_is_gone_is_an_error)
{
	char who[8];
	int r = net_queued(999999999, false, who, sizeof(who));
	ASSERT_TRUE(r < 0);
}
