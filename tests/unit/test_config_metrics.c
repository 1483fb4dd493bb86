// SPDX-License-Identifier: MIT
/* metrics-listen as an option and a config key: off by default, the address
 * parsed once, refusals naming the key, the value and the forms. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dozed/config.h"
#include "dozed/macro.h"
#include "harness.h"

static void config_free(void *arg)
{
	dozed_config_free(arg);
	free(arg);
}

static struct dozed_config *config_new(void)
{
	struct dozed_config *c = calloc(1, sizeof(*c));
	if (!c)
		FAIL("out of memory");
	test_defer(config_free, c);
	ASSERT_OK(dozed_config_defaults(c));
	return c;
}

static const char *temp_config(const char *text)
{
	static char path[] = "/tmp/dozed-conf.XXXXXX";
	snprintf(path, sizeof(path), "/tmp/dozed-conf.XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd) < 0)
		FAIL("cannot write a config file");
	return path;
}

TEST(test_metrics_listen_is_off_by_default)
{
	struct dozed_config *c = config_new();
	ASSERT_TRUE(c->metrics_listen == NULL);
	ASSERT_CONTAINS(dozed_config_usage(), "--metrics-listen ADDR:PORT");
}

TEST(test_metrics_listen_option_parses_the_address)
{
	struct dozed_config *c = config_new();
	char *argv[] = {"dozed", "--metrics-listen", "127.0.0.1:9321"}, *msg = NULL;
	ASSERT_OK(dozed_config_parse_args(c, 3, argv, &msg));
	ASSERT_STREQ(c->metrics_listen, "127.0.0.1:9321");
	const struct sockaddr_in *in = (const struct sockaddr_in *)&c->metrics_addr;
	ASSERT_EQ_U(in->sin_family, AF_INET);
	ASSERT_EQ_U(ntohs(in->sin_port), 9321);
	ASSERT_EQ_U(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);

	char *argv6[] = {"dozed", "--metrics-listen=[::1]:9400"};
	ASSERT_OK(dozed_config_parse_args(c, 2, argv6, &msg));
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&c->metrics_addr;
	ASSERT_EQ_U(in6->sin6_family, AF_INET6);
	ASSERT_EQ_U(ntohs(in6->sin6_port), 9400);
	ASSERT_STREQ(c->metrics_listen, "[::1]:9400");
}

TEST(test_a_bad_metrics_listen_option_names_it_and_the_forms)
{
	struct dozed_config *c = config_new();
	char *argv[] = {"dozed", "--metrics-listen", "localhost:9321"}, *msg = NULL;
	ASSERT_ERR(dozed_config_parse_args(c, 3, argv, &msg), EINVAL);
	ASSERT_STREQ(msg, "--metrics-listen localhost:9321: localhost is not an IPv4 address; "
			  "expected ADDR:PORT with a numeric address, like 127.0.0.1:9321 or "
			  "[::1]:9321");
	free(msg);
	ASSERT_TRUE(c->metrics_listen == NULL);
}

TEST(test_metrics_listen_in_the_file_either_spelling)
{
	struct dozed_config *c = config_new();
	char *msg = NULL;
	const char *path = temp_config("# a comment\nmetrics_listen = 0.0.0.0:9321\n");
	int r = dozed_config_load_file(c, path, true, &msg);
	unlink(path);
	ASSERT_OK(r);
	ASSERT_STREQ(c->metrics_listen, "0.0.0.0:9321");
	path = temp_config("metrics-listen = [::]:1\n");
	r = dozed_config_load_file(c, path, true, &msg);
	unlink(path);
	ASSERT_OK(r);
	ASSERT_STREQ(c->metrics_listen, "[::]:1");
}

TEST(test_a_bad_metrics_listen_in_the_file_names_the_line)
{
	struct dozed_config *c = config_new();
	char *msg = NULL;
	const char *path = temp_config("\nmetrics-listen = 127.0.0.1:0\n");
	char want[256];
	snprintf(want, sizeof(want),
		 "%s:2: metrics-listen = 127.0.0.1:0: expected a port 1-65535 after the address, "
		 "like 127.0.0.1:9321",
		 path);
	int r = dozed_config_load_file(c, path, true, &msg);
	unlink(path);
	ASSERT_ERR(r, EINVAL);
	ASSERT_STREQ(msg, want);
	free(msg);
}

/* The command line wins; the file's value is still checked. */
TEST(test_the_command_line_wins_over_the_file)
{
	struct dozed_config *c = config_new();
	char *argv[] = {"dozed", "--metrics-listen", "127.0.0.1:9000"}, *msg = NULL;
	ASSERT_OK(dozed_config_parse_args(c, 3, argv, &msg));
	const char *path = temp_config("metrics-listen = 127.0.0.1:9321\n");
	int r = dozed_config_load_file(c, path, true, &msg);
	unlink(path);
	ASSERT_OK(r);
	ASSERT_STREQ(c->metrics_listen, "127.0.0.1:9000");
	path = temp_config("metrics-listen = nowhere\n");
	r = dozed_config_load_file(c, path, true, &msg);
	unlink(path);
	ASSERT_ERR(r, EINVAL);
	ASSERT_CONTAINS(msg, "metrics-listen = nowhere: expected ADDR:PORT");
	free(msg);
}
