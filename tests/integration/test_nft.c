// SPDX-License-Identifier: MIT
/*
 * Our nftables table on the real kernel, in a private network namespace:
 * what `nft -j list` shows, set changes, and real redirected connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture.h"
#include "dozed/macro.h"
#include "dozed/nft.h"
#include "harness.h"
#include "netns.h"
#include "tcp.h"

#define TABLE	       "dozedtest"
#define MARK	       0x1d0
#define ACTIVATOR_PORT 15001
#define SERVICE_PORT   18080
#define LOCAL_ADDR     "10.211.0.1"
#define PEER_ADDR      "10.211.0.2"

static void ctx_free(void *c)
{
	nft_ctx_free(c);
}

static void json_put(void *j)
{
	json_object_put(j);
}

/* A context in a fresh private namespace, its table created. */
static struct nft_ctx *table_new(void)
{
	ASSERT_OK(netns_enter_private());
	struct nft_ctx *ctx = NULL;
	ASSERT_OK(nft_ctx_new(&ctx, TABLE, MARK, ACTIVATOR_PORT));
	test_defer(ctx_free, ctx);
	ASSERT_OK(nft_table_create(ctx));
	return ctx;
}

/* `nft -j list ruleset`, parsed: the array under "nftables". */
static struct json_object *ruleset_json(void)
{
	const char *argv[] = {"nft", "-j", "list", "ruleset", NULL};
	_cleanup_free_ char *out = NULL;
	int r = run_cmd(-1, argv, &out);
	if (r != 0)
		FAIL("nft -j list ruleset exited with %d (is nftables installed?)", r);
	struct json_object *root = json_tokener_parse(out);
	if (!root)
		FAIL("nft -j output is not JSON: %s", out);
	test_defer(json_put, root);
	struct json_object *items;
	ASSERT_TRUE(json_object_object_get_ex(root, "nftables", &items));
	ASSERT_TRUE(json_object_is_type(items, json_type_array));
	return items;
}

/* The objects of one kind ("table", "chain", "set", "rule") in our table. */
static size_t ruleset_find(struct json_object *items, const char *kind, struct json_object **out,
			   size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		struct json_object *obj, *table, *name_or_family;
		if (!json_object_object_get_ex(json_object_array_get_idx(items, i), kind, &obj))
			continue;
		const char *key = strcmp(kind, "table") == 0 ? "name" : "table";
		if (!json_object_object_get_ex(obj, key, &table) ||
		    strcmp(json_object_get_string(table), TABLE) != 0)
			continue;
		if (!json_object_object_get_ex(obj, "family", &name_or_family) ||
		    strcmp(json_object_get_string(name_or_family), "inet") != 0)
			continue;
		if (n < max)
			out[n] = obj;
		n++;
	}
	return n;
}

static const char *json_str(struct json_object *obj, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(obj, key, &v) ? json_object_get_string(v) : NULL;
}

static int64_t json_int(struct json_object *obj, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(obj, key, &v))
		FAIL("no \"%s\" in %s", key, json_object_to_json_string(obj));
	return json_object_get_int64(v);
}

static struct json_object *chain_named(struct json_object *items, const char *name)
{
	struct json_object *chains[8];
	size_t n = ruleset_find(items, "chain", chains, ARRAY_SIZE(chains));
	for (size_t i = 0; i < n && i < ARRAY_SIZE(chains); i++)
		if (strcmp(json_str(chains[i], "name"), name) == 0)
			return chains[i];
	FAIL("no chain %s in table inet %s", name, TABLE);
}

/* The expression list of rule idx of a chain, as nft prints it; the chain must
 * have n_rules rules. */
static const char *rule_exprs_at(struct json_object *items, const char *chain, size_t idx,
				 size_t n_rules)
{
	struct json_object *rules[8];
	size_t n = ruleset_find(items, "rule", rules, ARRAY_SIZE(rules));
	const char *found = NULL;
	size_t in_chain = 0;
	for (size_t i = 0; i < n && i < ARRAY_SIZE(rules); i++) {
		if (strcmp(json_str(rules[i], "chain"), chain) != 0)
			continue;
		struct json_object *expr;
		ASSERT_TRUE(json_object_object_get_ex(rules[i], "expr", &expr));
		if (in_chain++ == idx)
			found = json_object_to_json_string_ext(expr, JSON_C_TO_STRING_PLAIN);
	}
	if (in_chain != n_rules)
		FAIL("chain %s has %zu rules, expected %zu", chain, in_chain, n_rules);
	return found;
}

/* The redirect, the last rule of its chain (prerouting first skips loopback). */
static const char *rule_exprs_of(struct json_object *items, const char *chain)
{
	bool pre = strcmp(chain, "prerouting") == 0;
	return rule_exprs_at(items, chain, pre ? 1 : 0, pre ? 2 : 1);
}

static void assert_chain(struct json_object *items, const char *name, const char *type,
			 const char *hook, int64_t prio)
{
	struct json_object *c = chain_named(items, name);
	ASSERT_STREQ(json_str(c, "type"), type);
	ASSERT_STREQ(json_str(c, "hook"), hook);
	ASSERT_EQ_U(json_int(c, "prio"), prio);
	ASSERT_STREQ(json_str(c, "policy"), "accept");
}

/* tcp flags & (syn | ack) == syn: only first packets are redirected. */
#define SYN_ONLY                                                                                   \
	"{\"match\":{\"op\":\"==\",\"left\":{\"&\":[{\"payload\":{\"protocol\":\"tcp\","           \
	"\"field\":\"flags\"}},[\"syn\",\"ack\"]]},\"right\":\"syn\"}}"

TEST(test_create_makes_set_chains_hooks_priorities_and_rules)
{
	table_new();
	struct json_object *items = ruleset_json();
	struct json_object *found[4];
	ASSERT_EQ_U(ruleset_find(items, "table", found, 4), 1);

	ASSERT_EQ_U(ruleset_find(items, "set", found, 4), 1);
	ASSERT_STREQ(json_str(found[0], "name"), "sleeping");
	ASSERT_STREQ(json_str(found[0], "type"), "inet_service");

	assert_chain(items, "prerouting", "nat", "prerouting", -110);
	assert_chain(items, "output", "nat", "output", -110);
	assert_chain(items, "input", "filter", "input", 0);

	/* meta mark != 0x1d0 fib daddr type local tcp dport @sleeping redirect to :15001,
	 * in prerouting too: a connection routed through us for another host is
	 * never taken (no open proxy). */
	const char *pre = rule_exprs_of(items, "prerouting");
	ASSERT_CONTAINS(pre, "{\"match\":{\"op\":\"!=\",\"left\":{\"meta\":{\"key\":\"mark\"}},"
			     "\"right\":464}}");
	ASSERT_CONTAINS(pre, "{\"match\":{\"op\":\"==\",\"left\":{\"fib\":{\"result\":\"type\","
			     "\"flags\":[\"daddr\"]}},\"right\":\"local\"}}");
	ASSERT_CONTAINS(pre, "{\"match\":{\"op\":\"==\",\"left\":{\"payload\":{\"protocol\":"
			     "\"tcp\",\"field\":\"dport\"}},\"right\":\"@sleeping\"}}");
	ASSERT_CONTAINS(pre, "{\"redirect\":{\"port\":15001}}");
	ASSERT_CONTAINS(pre, SYN_ONLY);
	/* Before it: meta nfproto ipv4 ip daddr 127.0.0.0/8 return, so a
	 * neighbour routing 127.0.0.1 here never reaches a loopback-only
	 * service through the activator (CVE-2020-8558). */
	const char *skip = rule_exprs_at(items, "prerouting", 0, 2);
	/* (nft folds meta nfproto ipv4 into ip daddr, its dependency) */
	ASSERT_CONTAINS(skip, "{\"match\":{\"op\":\"==\",\"left\":{\"payload\":{\"protocol\":"
			      "\"ip\",\"field\":\"daddr\"}},\"right\":{\"prefix\":{\"addr\":"
			      "\"127.0.0.0\",\"len\":8}}}}");
	ASSERT_CONTAINS(skip, "{\"return\":null}");

	const char *out = rule_exprs_of(items, "output");
	ASSERT_CONTAINS(out, "{\"match\":{\"op\":\"!=\",\"left\":{\"meta\":{\"key\":\"mark\"}},"
			     "\"right\":464}}");
	ASSERT_CONTAINS(out, "{\"match\":{\"op\":\"==\",\"left\":{\"fib\":{\"result\":\"type\","
			     "\"flags\":[\"daddr\"]}},\"right\":\"local\"}}");
	ASSERT_CONTAINS(out, "\"right\":\"@sleeping\"");
	ASSERT_CONTAINS(out, SYN_ONLY);
	ASSERT_CONTAINS(out, "{\"redirect\":{\"port\":15001}}");

	/* tcp dport 15001 ct status & dnat != dnat drop */
	const char *in = rule_exprs_of(items, "input");
	ASSERT_CONTAINS(in, "{\"match\":{\"op\":\"==\",\"left\":{\"payload\":{\"protocol\":"
			    "\"tcp\",\"field\":\"dport\"}},\"right\":15001}}");
	ASSERT_CONTAINS(in, "{\"ct\":{\"key\":\"status\"}}");
	ASSERT_CONTAINS(in, "dnat");
	ASSERT_CONTAINS(in, "{\"drop\":null}");
}

static void assert_ports(struct nft_ctx *ctx, const uint16_t *want, size_t n_want)
{
	_cleanup_free_ uint16_t *ports = NULL;
	size_t n = 0;
	ASSERT_OK(nft_set_list_ports(ctx, &ports, &n));
	ASSERT_EQ_U(n, n_want);
	for (size_t i = 0; i < n; i++)
		ASSERT_EQ_U(ports[i], want[i]);
}

TEST(test_add_three_ports_list_them_remove_one_list_two)
{
	struct nft_ctx *ctx = table_new();
	assert_ports(ctx, NULL, 0);
	uint16_t ports[] = {8080, 443, 5432};
	ASSERT_OK(nft_set_add_ports(ctx, ports, 3));
	assert_ports(ctx, (uint16_t[]){443, 5432, 8080}, 3);
	ASSERT_OK(nft_set_remove_ports(ctx, &ports[1], 1));
	assert_ports(ctx, (uint16_t[]){5432, 8080}, 2);
}

TEST(test_adding_present_and_removing_absent_ports_is_not_an_error)
{
	struct nft_ctx *ctx = table_new();
	uint16_t ports[] = {8080, 8081};
	ASSERT_OK(nft_set_add_ports(ctx, ports, 2));
	ASSERT_OK(nft_set_add_ports(ctx, ports, 2));
	uint16_t absent[] = {9999, 8080};
	ASSERT_OK(nft_set_remove_ports(ctx, absent, 2));
	assert_ports(ctx, (uint16_t[]){8081}, 1);
	ASSERT_OK(nft_set_remove_ports(ctx, absent, 2));
	assert_ports(ctx, (uint16_t[]){8081}, 1);
}

TEST(test_batch_of_10000_ports_added_and_removed)
{
	struct nft_ctx *ctx = table_new();
	static uint16_t ports[10000];
	for (size_t i = 0; i < ARRAY_SIZE(ports); i++)
		ports[i] = (uint16_t)(20000 + i);
	ASSERT_OK(nft_set_add_ports(ctx, ports, ARRAY_SIZE(ports)));
	_cleanup_free_ uint16_t *listed = NULL;
	size_t n = 0;
	ASSERT_OK(nft_set_list_ports(ctx, &listed, &n));
	ASSERT_EQ_U(n, ARRAY_SIZE(ports));
	ASSERT_EQ_U(memcmp(listed, ports, sizeof(ports)), 0);
	ASSERT_OK(nft_set_remove_ports(ctx, ports, ARRAY_SIZE(ports)));
	assert_ports(ctx, NULL, 0);
}

TEST(test_port_zero_is_refused_with_a_message)
{
	struct nft_ctx *ctx = table_new();
	uint16_t zero = 0;
	capture_stderr_begin();
	int r = nft_set_add_ports(ctx, &zero, 1);
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_ERR(r, EINVAL);
	ASSERT_CONTAINS(log, "port 0");
}

/* --- real connections ---------------------------------------------------- */

struct listeners {
	int activator, service;
};

static void listeners_close(void *arg)
{
	struct listeners *l = arg;
	close(l->activator);
	close(l->service);
	free(l);
}

static struct listeners *listeners_new(void)
{
	struct listeners *l = calloc(1, sizeof(*l));
	ASSERT_TRUE(l);
	l->activator = tcp_listen("0.0.0.0", ACTIVATOR_PORT);
	l->service = tcp_listen("0.0.0.0", SERVICE_PORT);
	ASSERT_TRUE(l->activator >= 0 && l->service >= 0);
	test_defer(listeners_close, l);
	return l;
}

/* Which listener got the connection (waiting for it, 5 s at most), and the
 * original destination it saw. */
static int accepted_by(struct listeners *l, struct sockaddr_in *orig)
{
	struct pollfd p[2] = {{.fd = l->activator, .events = POLLIN},
			      {.fd = l->service, .events = POLLIN}};
	int n = poll(p, 2, 5000);
	if (n < 0)
		FAIL("poll on the listeners: %s", strerror(errno));
	if (n == 0)
		FAIL("neither listener got the connection within 5 s");
	if (p[0].revents & POLLIN) {
		int fd = tcp_accept_within(l->activator, 0);
		if (fd < 0)
			FAIL("accept on the activator's listener: %s", strerror(-fd));
		socklen_t len = sizeof(*orig);
		int r = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, orig, &len);
		close(fd);
		if (r < 0)
			FAIL("SO_ORIGINAL_DST on a redirected connection: %s", strerror(errno));
		return l->activator;
	}
	int fd = tcp_accept_within(l->service, 0);
	if (fd < 0)
		FAIL("accept on the service's listener: %s", strerror(-fd));
	close(fd);
	return l->service;
}

static void assert_redirected(struct listeners *l, int client_fd, const char *orig_addr)
{
	ASSERT_TRUE(client_fd >= 0);
	close(client_fd);
	struct sockaddr_in orig = {0};
	ASSERT_EQ_U(accepted_by(l, &orig), l->activator);
	char text[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &orig.sin_addr, text, sizeof(text));
	ASSERT_STREQ(text, orig_addr);
	ASSERT_EQ_U(ntohs(orig.sin_port), SERVICE_PORT);
}

static void assert_direct(struct listeners *l, int client_fd)
{
	ASSERT_TRUE(client_fd >= 0);
	close(client_fd);
	struct sockaddr_in orig;
	ASSERT_EQ_U(accepted_by(l, &orig), l->service);
}

/* A connection from the peer namespace, through our prerouting hook. */
static int connect_from_peer(int peer_fd, const char *addr, uint16_t port)
{
	fflush(NULL);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		if (setns(peer_fd, CLONE_NEWNET) < 0)
			_exit(2);
		int fd = tcp_connect(addr, port, 0);
		_exit(fd >= 0 ? 0 : 1);
	}
	int status;
	ASSERT_TRUE(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECONNREFUSED;
}

TEST(test_sleeping_port_is_redirected_with_its_original_destination)
{
	struct nft_ctx *ctx = table_new();
	int peer_fd;
	ASSERT_OK(netns_add_peer(LOCAL_ADDR "/24", PEER_ADDR "/24", &peer_fd));
	struct listeners *l = listeners_new();
	uint16_t port = SERVICE_PORT;
	ASSERT_OK(nft_set_add_ports(ctx, &port, 1));

	/* Output hook: local clients, over loopback and to our own veth address. */
	assert_redirected(l, tcp_connect("127.0.0.1", SERVICE_PORT, 0), "127.0.0.1");
	assert_redirected(l, tcp_connect(LOCAL_ADDR, SERVICE_PORT, 0), LOCAL_ADDR);
	/* Prerouting hook: a client on another host. */
	ASSERT_OK(connect_from_peer(peer_fd, LOCAL_ADDR, SERVICE_PORT));
	assert_redirected(l, 0 /* closed by the child */, LOCAL_ADDR);
	close(peer_fd);
}

TEST(test_removed_port_reaches_the_service_again)
{
	struct nft_ctx *ctx = table_new();
	int peer_fd;
	ASSERT_OK(netns_add_peer(LOCAL_ADDR "/24", PEER_ADDR "/24", &peer_fd));
	struct listeners *l = listeners_new();
	uint16_t port = SERVICE_PORT;
	ASSERT_OK(nft_set_add_ports(ctx, &port, 1));
	ASSERT_OK(nft_set_remove_ports(ctx, &port, 1));
	assert_direct(l, tcp_connect("127.0.0.1", SERVICE_PORT, 0));
	assert_direct(l, tcp_connect(LOCAL_ADDR, SERVICE_PORT, 0));
	ASSERT_OK(connect_from_peer(peer_fd, LOCAL_ADDR, SERVICE_PORT));
	assert_direct(l, 0);
	close(peer_fd);
}

TEST(test_socket_with_our_mark_bypasses_the_redirect)
{
	struct nft_ctx *ctx = table_new();
	struct listeners *l = listeners_new();
	uint16_t port = SERVICE_PORT;
	ASSERT_OK(nft_set_add_ports(ctx, &port, 1));
	assert_direct(l, tcp_connect("127.0.0.1", SERVICE_PORT, MARK));
	/* Another mark is no pass. */
	assert_redirected(l, tcp_connect("127.0.0.1", SERVICE_PORT, MARK + 1), "127.0.0.1");
}

TEST(test_connection_straight_to_activator_port_is_dropped)
{
	table_new();
	struct listeners *l = listeners_new();
	ASSERT_TRUE(!tcp_connect_completes("127.0.0.1", ACTIVATOR_PORT, 300));
	ASSERT_ERR(tcp_accept_within(l->activator, 0), ETIMEDOUT);
}

/* From the peer namespace: does a connect to addr:port complete within ms? */
static bool peer_connect_completes(int peer_fd, const char *addr, uint16_t port, unsigned ms)
{
	fflush(NULL);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		if (setns(peer_fd, CLONE_NEWNET) < 0)
			_exit(2);
		_exit(tcp_connect_completes(addr, port, ms) ? 0 : 1);
	}
	int status;
	ASSERT_TRUE(waitpid(pid, &status, 0) == pid);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) < 2);
	return WEXITSTATUS(status) == 0;
}

TEST(test_connection_from_another_namespace_straight_to_activator_port_is_dropped)
{
	table_new();
	int peer_fd;
	ASSERT_OK(netns_add_peer(LOCAL_ADDR "/24", PEER_ADDR "/24", &peer_fd));
	struct listeners *l = listeners_new();
	/* The path works: the service's port answers from there... */
	ASSERT_TRUE(peer_connect_completes(peer_fd, LOCAL_ADDR, SERVICE_PORT, 5000));
	assert_direct(l, 0);
	/* ...the activator's does not, though it listens on every address. */
	ASSERT_TRUE(!peer_connect_completes(peer_fd, LOCAL_ADDR, ACTIVATOR_PORT, 300));
	ASSERT_ERR(tcp_accept_within(l->activator, 0), ETIMEDOUT);
	close(peer_fd);
}

TEST(test_create_twice_keeps_ports_redirected_and_one_table)
{
	struct nft_ctx *ctx = table_new();
	struct listeners *l = listeners_new();
	uint16_t ports[] = {SERVICE_PORT, 18081};
	ASSERT_OK(nft_set_add_ports(ctx, ports, 2));

	/* A restarted daemon: a new context creates the table again. */
	struct nft_ctx *again = NULL;
	ASSERT_OK(nft_ctx_new(&again, TABLE, MARK, ACTIVATOR_PORT));
	test_defer(ctx_free, again);
	ASSERT_OK(nft_table_create(again));

	struct json_object *items = ruleset_json();
	struct json_object *found[4];
	ASSERT_EQ_U(ruleset_find(items, "table", found, 4), 1);
	ASSERT_EQ_U(ruleset_find(items, "set", found, 4), 1);
	ASSERT_EQ_U(ruleset_find(items, "chain", found, 4), 3);
	ASSERT_EQ_U(ruleset_find(items, "rule", found, 4), 4);
	assert_ports(again, (uint16_t[]){SERVICE_PORT, 18081}, 2);
	assert_redirected(l, tcp_connect("127.0.0.1", SERVICE_PORT, 0), "127.0.0.1");
	ASSERT_TRUE(!tcp_connect_completes("127.0.0.1", ACTIVATOR_PORT, 300));
}

TEST(test_create_with_a_new_activator_port_moves_the_redirect)
{
	struct nft_ctx *ctx = table_new();
	uint16_t port = SERVICE_PORT;
	ASSERT_OK(nft_set_add_ports(ctx, &port, 1));
	struct nft_ctx *moved = NULL;
	ASSERT_OK(nft_ctx_new(&moved, TABLE, MARK, ACTIVATOR_PORT + 1));
	test_defer(ctx_free, moved);
	ASSERT_OK(nft_table_create(moved));
	const char *pre = rule_exprs_of(ruleset_json(), "prerouting");
	ASSERT_CONTAINS(pre, "{\"redirect\":{\"port\":15002}}");
}

TEST(test_destroy_leaves_no_table_and_may_be_repeated)
{
	struct nft_ctx *ctx = table_new();
	uint16_t port = SERVICE_PORT;
	ASSERT_OK(nft_set_add_ports(ctx, &port, 1));
	ASSERT_OK(nft_table_destroy(ctx));
	struct json_object *found[1];
	ASSERT_EQ_U(ruleset_find(ruleset_json(), "table", found, 1), 0);
	ASSERT_OK(nft_table_destroy(ctx));
	_cleanup_free_ uint16_t *ports = NULL;
	size_t n;
	ASSERT_ERR(nft_set_list_ports(ctx, &ports, &n), ENOENT);
}

TEST(test_without_cap_net_admin_create_fails_with_eperm_and_says_why)
{
	ASSERT_OK(netns_enter_private());
	fflush(NULL);
	int pipefd[2];
	ASSERT_OK(pipe(pipefd));
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		/* An unprivileged user has no CAP_NET_ADMIN. */
		if (setresuid(65534, 65534, 65534) < 0)
			_exit(2);
		dup2(pipefd[1], STDERR_FILENO);
		struct nft_ctx *ctx = NULL;
		int r = nft_ctx_new(&ctx, TABLE, MARK, ACTIVATOR_PORT);
		if (r >= 0)
			r = nft_table_create(ctx);
		nft_ctx_free(ctx);
		_exit(r == -EPERM ? 0 : 1);
	}
	close(pipefd[1]);
	char log[1024] = {0};
	ssize_t n = tcp_read_all(pipefd[0], log, sizeof(log) - 1);
	close(pipefd[0]);
	int status;
	ASSERT_TRUE(waitpid(pid, &status, 0) == pid);
	ASSERT_TRUE(n > 0);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT_CONTAINS(log, "create nftables table inet " TABLE);
	ASSERT_CONTAINS(log, "Operation not permitted");
	ASSERT_CONTAINS(log, "CAP_NET_ADMIN");
}

TEST(test_bad_table_name_is_refused)
{
	struct nft_ctx *ctx = NULL;
	ASSERT_ERR(nft_ctx_new(&ctx, "", MARK, ACTIVATOR_PORT), EINVAL);
	char longname[300];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ASSERT_ERR(nft_ctx_new(&ctx, longname, MARK, ACTIVATOR_PORT), EINVAL);
}
