// SPDX-License-Identifier: MIT
/* The enabled services on disk: round trip, atomic replacement, corrupt files kept aside. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture.h"
#include "dozed/macro.h"
#include "dozed/state_store.h"
#include "harness.h"

#define ID_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static void rm_rf(void *arg)
{
	nftw(arg, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(arg);
}

/* A fresh directory, removed with its contents when the test ends. */
static const char *temp_dir(void)
{
	char *dir = strdup("/tmp/dozed-test-state.XXXXXX");
	if (!dir || !mkdtemp(dir))
		FAIL("cannot create a temporary directory");
	test_defer(rm_rf, dir);
	return dir;
}

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		FAIL("out of memory");
	return p;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		FAIL("cannot open %s: %s", path, strerror(errno));
	char *text = calloc(1, 1 << 20);
	size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (!text)
		FAIL("out of memory");
	text[n] = '\0';
	return text;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		FAIL("cannot write %s", path);
}

/* The names in dir, sorted, joined by spaces (malloc'd). */
static char *dir_listing(const char *dir)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort);
	if (n < 0)
		FAIL("cannot list %s", dir);
	char *out = calloc(1, 4096);
	for (int i = 0; i < n; i++) {
		if (strcmp(list[i]->d_name, ".") && strcmp(list[i]->d_name, "..") && out) {
			if (out[0])
				strcat(out, " ");
			strncat(out, list[i]->d_name, 4000 - strlen(out));
		}
		free(list[i]);
	}
	free(list);
	return out;
}

static const struct state_service sample[] = {
    {.name = "web", .container = "web", .container_id = ID_A, .idle_us = 5000000},
    {.name = "db", .container = "postgres-1", .container_id = "", .wake_on_data = true},
    {.name = "queue", .container = "3f2a", .container_id = NULL, .idle_us = 7200000000u},
};

TEST(test_saved_services_load_back_unchanged)
{
	const char *dir = temp_dir();
	ASSERT_OK(state_store_save(dir, sample, ARRAY_SIZE(sample), NULL));

	struct state_service *got = NULL;
	size_t n = 0;
	struct state_aside aside = {0};
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	ASSERT_EQ_U(n, 3);
	ASSERT_STREQ(got[0].name, "web");
	ASSERT_STREQ(got[0].container, "web");
	ASSERT_STREQ(got[0].container_id, ID_A);
	ASSERT_EQ_U(got[0].idle_us, 5000000);
	ASSERT_TRUE(!got[0].wake_on_data);
	ASSERT_STREQ(got[1].name, "db");
	ASSERT_STREQ(got[1].container, "postgres-1");
	ASSERT_STREQ(got[1].container_id, "");
	ASSERT_EQ_U(got[1].idle_us, 0);
	ASSERT_TRUE(got[1].wake_on_data);
	ASSERT_STREQ(got[2].container_id, "");
	ASSERT_EQ_U(got[2].idle_us, 7200000000u);
	state_services_free(got, n);
	state_aside_clear(&aside);
}

static const char *field(struct json_object *entry, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(entry, key, &v) ? json_object_get_string(v) : NULL;
}

TEST(test_saved_file_is_the_documented_json)
{
	const char *dir = temp_dir();
	ASSERT_OK(state_store_save(dir, sample, 2, NULL));
	_cleanup_free_ char *path = path_in(dir, "services.json");
	struct json_object *root = json_object_from_file(path);
	ASSERT_TRUE(root && json_object_is_type(root, json_type_array));
	ASSERT_EQ_U(json_object_array_length(root), 2);
	struct json_object *web = json_object_array_get_idx(root, 0);
	struct json_object *db = json_object_array_get_idx(root, 1);
	ASSERT_STREQ(field(web, "container"), "web");
	ASSERT_STREQ(field(web, "container_id"), ID_A);
	ASSERT_STREQ(field(web, "name"), "web");
	ASSERT_STREQ(field(web, "idle_ms"), "5000");
	ASSERT_STREQ(field(web, "wake_on"), "connect");
	ASSERT_STREQ(field(db, "container"), "postgres-1");
	ASSERT_STREQ(field(db, "container_id"), "");
	ASSERT_STREQ(field(db, "wake_on"), "data");
	/* The default idle time is not written, so a changed default applies. */
	ASSERT_TRUE(field(db, "idle_ms") == NULL);
	json_object_put(root);
}

TEST(test_empty_list_round_trips)
{
	const char *dir = temp_dir();
	ASSERT_OK(state_store_save(dir, sample, 2, NULL));
	ASSERT_OK(state_store_save(dir, NULL, 0, NULL));
	struct state_service dummy = {0};
	struct state_service *got = &dummy;
	size_t n = 9;
	struct state_aside aside = {0};
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	ASSERT_EQ_U(n, 0);
	ASSERT_TRUE(got == NULL);
}

TEST(test_missing_file_is_no_services)
{
	const char *dir = temp_dir();
	struct state_service *got = NULL;
	size_t n = 9;
	struct state_aside aside = {0};
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	ASSERT_EQ_U(n, 0);
	ASSERT_TRUE(got == NULL);
	_cleanup_free_ char *missing = path_in(dir, "not-created-yet");
	ASSERT_OK(state_store_load(missing, &got, &n, &aside));
	ASSERT_EQ_U(n, 0);
}

TEST(test_save_creates_private_state_directory_and_file)
{
	const char *dir = temp_dir();
	_cleanup_free_ char *state = path_in(dir, "var/lib/dozed");
	ASSERT_OK(state_store_save(state, sample, 1, NULL));
	struct stat st;
	ASSERT_OK(stat(state, &st));
	ASSERT_EQ_U(st.st_mode & 07777, 0700);
	_cleanup_free_ char *file = path_in(state, "services.json");
	ASSERT_OK(stat(file, &st));
	ASSERT_EQ_U(st.st_mode & 07777, 0600);
}

TEST(test_saves_leave_no_temporary_files)
{
	const char *dir = temp_dir();
	for (int i = 0; i < 5; i++)
		ASSERT_OK(
		    state_store_save(dir, sample, ARRAY_SIZE(sample) - (size_t)(i % 3), NULL));
	_cleanup_free_ char *names = dir_listing(dir);
	ASSERT_STREQ(names, "services.json");
}

TEST(test_corrupt_file_is_kept_aside_and_reported)
{
	const char *dir = temp_dir();
	_cleanup_free_ char *path = path_in(dir, "services.json");
	write_file(path, "[{\"name\": \"web\", \"container\": ");

	struct state_service *got = NULL;
	size_t n = 0;
	struct state_aside aside = {0};
	capture_stderr_begin();
	int r = state_store_load(dir, &got, &n, &aside);
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_ERR(r, EBADMSG);
	ASSERT_TRUE(got == NULL && n == 0);
	ASSERT_CONTAINS(log, path);
	ASSERT_CONTAINS(log, "is corrupt");
	ASSERT_CONTAINS(log, "services.json.corrupt-");

	ASSERT_TRUE(access(path, F_OK) < 0 && errno == ENOENT);
	_cleanup_free_ char *names = dir_listing(dir);
	if (strncmp(names, "services.json.corrupt-", 22) != 0 || strchr(names, ' '))
		FAIL("directory holds \"%s\", expected one services.json.corrupt-*", names);
	_cleanup_free_ char *copy = path_in(dir, names);
	_cleanup_free_ char *kept = read_file(copy);
	ASSERT_STREQ(kept, "[{\"name\": \"web\", \"container\": ");

	/* The next start finds no file: no services, and no error. */
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	ASSERT_EQ_U(n, 0);
}

TEST(test_two_corrupt_files_in_one_second_are_both_kept)
{
	const char *dir = temp_dir();
	_cleanup_free_ char *path = path_in(dir, "services.json");
	struct state_service *got = NULL;
	size_t n = 0;
	struct state_aside aside = {0};
	write_file(path, "first");
	ASSERT_ERR(state_store_load(dir, &got, &n, &aside), EBADMSG);
	write_file(path, "second");
	ASSERT_ERR(state_store_load(dir, &got, &n, &aside), EBADMSG);
	_cleanup_free_ char *names = dir_listing(dir);
	ASSERT_TRUE(strchr(names, ' ') != NULL);
	ASSERT_TRUE(strstr(names, "services.json ") == NULL);
}

TEST(test_files_unusable_as_a_whole_are_corrupt)
{
	static const char *const bad[] = {
	    "",	      "   \n", "{}",	"[1", "[{\"name\": \"web\"", "[] trailing",
	    "[]\n[]", "null",  "\"x\"",
	};
	const char *dir = temp_dir();
	_cleanup_free_ char *path = path_in(dir, "services.json");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		write_file(path, bad[i]);
		struct state_service *got = NULL;
		size_t n = 0;
		struct state_aside aside = {0};
		int r = state_store_load(dir, &got, &n, &aside);
		if (r != -EBADMSG)
			FAIL("state_store_load() of '%s' returned %d, expected -EBADMSG", bad[i],
			     r);
		ASSERT_TRUE(got == NULL);
	}
}

static const char *const bad_entries[] = {
    "1",
    "{\"container\": \"web\"}",
    "{\"name\": \"web\"}",
    "{\"name\": \"\", \"container\": \"web\"}",
    "{\"name\": 7, \"container\": \"web\"}",
    "{\"name\": \"web\", \"container\": \"web\", \"container_id\": \"abc\"}",
    "{\"name\": \"web\", \"container\": \"web\", \"idle_ms\": -1}",
    "{\"name\": \"web\", \"container\": \"web\", \"idle_ms\": 1.5}",
    "{\"name\": \"web\", \"container\": \"web\", \"idle_ms\": \"5s\"}",
    "{\"name\": \"web\", \"container\": \"web\", \"idle_ms\": 18446744073709000}",
    "{\"name\": \"web\", \"container\": \"web\", \"wake_on\": \"syn\"}",
    "{\"name\": \"w\\u0000b\", \"container\": \"web\"}",
    "{\"name\": \"web\", \"container\": \"web\", \"ports\": 80}",
    "{\"name\": \"web\", \"container\": \"web\", \"ports\": [{\"host_port\": 0, "
    "\"container_port\": 80}]}",
    "{\"name\": \"web\", \"container\": \"web\", \"ports\": [{\"host_port\": 65536, "
    "\"container_port\": 80}]}",
    "{\"name\": \"web\", \"container\": \"web\", \"ports\": [{\"host_port\": 8080}]}",
    "{\"name\": \"web\", \"container\": \"web\", \"ports\": [{\"host_port\": 8080, "
    "\"container_port\": 80, \"host_ip\": 5}]}",
    "{\"name\": \"web\", \"container\": \"web\", \"ignore\": \"10.0.0.0/33\"}",
    "{\"name\": \"web\", \"container\": \"web\", \"ignore\": 9090}",
    "{\"name\": \"web\", \"container\": \"web\", \"ignore\": \"tcp/80\\u0000,1\"}",
    "{\"name\": \"web\", \"container\": \"web\", \"keep_awake\": \"always\"}",
    "{\"name\": \"web\", \"container\": \"web\", \"keep_awake\": true}",
};

TEST(test_one_bad_entry_is_set_aside_and_the_others_load)
{
	const char *dir = temp_dir();
	_cleanup_free_ char *path = path_in(dir, "services.json");
	for (size_t i = 0; i < ARRAY_SIZE(bad_entries); i++) {
		char text[1024];
		snprintf(text, sizeof(text),
			 "[{\"name\": \"first\", \"container\": \"first\"}, %s, "
			 "{\"name\": \"last\", \"container\": \"last\", \"ports\": "
			 "[{\"host_ip\": \"\", \"host_port\": 8080, \"container_port\": 80}]}]",
			 bad_entries[i]);
		write_file(path, text);
		struct state_service *got = NULL;
		size_t n = 0;
		struct state_aside aside = {0};
		capture_stderr_begin();
		int r = state_store_load(dir, &got, &n, &aside);
		_cleanup_free_ char *log = capture_stderr_end();
		if (r != 0 || n != 2 || aside.n != 1)
			FAIL("load of entry '%s' between two good ones: %d, %zu good, %zu bad; "
			     "expected 0, 2, 1",
			     bad_entries[i], r, n, aside.n);
		ASSERT_STREQ(got[0].name, "first");
		ASSERT_STREQ(got[1].name, "last");
		ASSERT_EQ_U(got[1].n_ports, 1);
		ASSERT_EQ_U(got[1].ports[0].host_port, 8080);
		/* The log names the entry; the file stays for the good ones. */
		ASSERT_CONTAINS(log, "entry 2");
		ASSERT_CONTAINS(log, "set aside");
		ASSERT_TRUE(access(path, F_OK) == 0);
		state_services_free(got, n);
		state_aside_clear(&aside);
	}
}

TEST(test_a_file_with_bad_entries_is_copied_aside_whole)
{
	const char *dir = temp_dir();
	_cleanup_free_ char *path = path_in(dir, "services.json");
	const char *text = "[{\"name\": \"web\", \"container\": \"web\", \"idle_ms\": \"5s\"},\n"
			   " {\"name\": \"db\", \"container\": \"db\"}]\n";
	write_file(path, text);
	struct state_service *got = NULL;
	size_t n = 0;
	struct state_aside aside = {0};
	capture_stderr_begin();
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_EQ_U(n, 1);
	ASSERT_EQ_U(aside.n, 1);
	ASSERT_STREQ(got[0].name, "db");
	ASSERT_CONTAINS(log, "entry 1 (web) set aside: \"idle_ms\" is not a number");
	ASSERT_CONTAINS(log, "services.json.corrupt-");
	state_services_free(got, n);
	state_aside_clear(&aside);

	_cleanup_free_ char *names = dir_listing(dir);
	if (strncmp(names, "services.json services.json.corrupt-", 36) != 0 ||
	    strchr(names + 14, ' '))
		FAIL("directory holds \"%s\", expected services.json and services.json.corrupt-*",
		     names);
	_cleanup_free_ char *copy = path_in(dir, names + 14);
	_cleanup_free_ char *kept = read_file(copy);
	ASSERT_STREQ(kept, text);
	_cleanup_free_ char *still = read_file(path);
	ASSERT_STREQ(still, text);
}

TEST(test_two_entries_with_one_name_keep_the_first)
{
	const char *dir = temp_dir();
	_cleanup_free_ char *path = path_in(dir, "services.json");
	write_file(path, "[{\"name\": \"web\", \"container\": \"a\"},"
			 " {\"name\": \"web\", \"container\": \"b\"}]");
	struct state_service *got = NULL;
	size_t n = 0;
	struct state_aside aside = {0};
	capture_stderr_begin();
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_EQ_U(n, 1);
	ASSERT_EQ_U(aside.n, 1);
	ASSERT_STREQ(got[0].container, "a");
	ASSERT_CONTAINS(log, "same \"name\"");
	state_services_free(got, n);
	state_aside_clear(&aside);
}

TEST(test_two_entries_with_one_port_keep_the_first)
{
	const char *dir = temp_dir();
	_cleanup_free_ char *path = path_in(dir, "services.json");
	write_file(path, "[{\"name\": \"a\", \"container\": \"a\", \"ports\": [{\"host_port\": 80, "
			 "\"container_port\": 80}]},"
			 " {\"name\": \"b\", \"container\": \"b\", \"ports\": [{\"host_port\": 81, "
			 "\"container_port\": 80}, {\"host_port\": 80, \"container_port\": 80}]}]");
	struct state_service *got = NULL;
	size_t n = 0;
	struct state_aside aside = {0};
	capture_stderr_begin();
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_EQ_U(n, 1);
	ASSERT_EQ_U(aside.n, 1);
	ASSERT_STREQ(got[0].name, "a");
	ASSERT_CONTAINS(log, "entry 2 (b) set aside: another entry has one of its \"ports\"");
	state_services_free(got, n);
	state_aside_clear(&aside);
}

TEST(test_ports_round_trip)
{
	const char *dir = temp_dir();
	struct state_service one = {.name = "web", .container = "web", .n_ports = 2};
	snprintf(one.ports[0].host_ip, sizeof(one.ports[0].host_ip), "127.0.0.1");
	one.ports[0].host_port = 8080;
	one.ports[0].container_port = 80;
	one.ports[1].host_port = 8443;
	one.ports[1].container_port = 443;
	ASSERT_OK(state_store_save(dir, &one, 1, NULL));
	struct state_service *got = NULL;
	size_t n = 0;
	struct state_aside aside = {0};
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	ASSERT_EQ_U(n, 1);
	ASSERT_EQ_U(got[0].n_ports, 2);
	ASSERT_STREQ(got[0].ports[0].host_ip, "127.0.0.1");
	ASSERT_EQ_U(got[0].ports[0].host_port, 8080);
	ASSERT_EQ_U(got[0].ports[0].container_port, 80);
	ASSERT_STREQ(got[0].ports[1].host_ip, "");
	ASSERT_EQ_U(got[0].ports[1].host_port, 8443);
	ASSERT_EQ_U(got[0].ports[1].container_port, 443);
	state_services_free(got, n);
	state_aside_clear(&aside);
}

TEST(test_idle_over_a_year_is_not_saved)
{
	const char *dir = temp_dir();
	struct state_service bad = {
	    .name = "web", .container = "web", .idle_us = UINT64_C(18446744073709) * 1000000};
	capture_stderr_begin();
	int r = state_store_save(dir, &bad, 1, NULL);
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_ERR(r, EINVAL);
	ASSERT_CONTAINS(log, "idle_ms");
}

TEST(test_unknown_fields_and_defaults_are_accepted)
{
	const char *dir = temp_dir();
	_cleanup_free_ char *path = path_in(dir, "services.json");
	write_file(path, "[{\"name\": \"web\", \"container\": \"web\", \"future\": [1, 2]}]\n");
	struct state_service *got = NULL;
	size_t n = 0;
	struct state_aside aside = {0};
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	ASSERT_EQ_U(n, 1);
	ASSERT_TRUE(got[0].container_id == NULL && got[0].idle_us == 0 && !got[0].wake_on_data);
	state_services_free(got, n);
	state_aside_clear(&aside);
}

TEST(test_save_into_path_under_a_file_fails_and_says_why)
{
	const char *dir = temp_dir();
	_cleanup_free_ char *file = path_in(dir, "plain-file");
	write_file(file, "x");
	_cleanup_free_ char *state = path_in(file, "state");
	capture_stderr_begin();
	int r = state_store_save(state, sample, 1, NULL);
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_ERR(r, ENOTDIR);
	ASSERT_CONTAINS(log, state);
	ASSERT_CONTAINS(log, "Not a directory");
}

TEST(test_failed_write_keeps_old_file_and_leaves_no_temporary)
{
	const char *dir = temp_dir();
	ASSERT_OK(state_store_save(dir, sample, 1, NULL));
	_cleanup_free_ char *path = path_in(dir, "services.json");
	_cleanup_free_ char *before = read_file(path);

	/* A file size limit makes the write fail as a full disk would. */
	enum { MANY = 2000 };
	struct state_service *many = calloc(MANY, sizeof(*many));
	ASSERT_TRUE(many != NULL);
	for (size_t i = 0; i < MANY; i++)
		many[i] = sample[0];
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit lim = {.rlim_cur = 4096, .rlim_max = RLIM_INFINITY};
	ASSERT_OK(setrlimit(RLIMIT_FSIZE, &lim));
	capture_stderr_begin();
	int r = state_store_save(dir, many, MANY, NULL);
	_cleanup_free_ char *log = capture_stderr_end();
	free(many);
	ASSERT_ERR(r, EFBIG);
	ASSERT_CONTAINS(log, "Failed to save");

	_cleanup_free_ char *after = read_file(path);
	ASSERT_STREQ(after, before);
	_cleanup_free_ char *names = dir_listing(dir);
	ASSERT_STREQ(names, "services.json");
}

TEST(test_invalid_entry_is_refused_and_nothing_written)
{
	const char *dir = temp_dir();
	struct state_service bad = {.name = "web", .container = "web", .container_id = "XYZ"};
	capture_stderr_begin();
	int r = state_store_save(dir, &bad, 1, NULL);
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_ERR(r, EINVAL);
	ASSERT_CONTAINS(log, "container_id");
	_cleanup_free_ char *names = dir_listing(dir);
	ASSERT_STREQ(names, "");
}

TEST(test_temporary_file_left_by_a_crash_is_removed_on_load)
{
	const char *dir = temp_dir();
	ASSERT_OK(state_store_save(dir, sample, 1, NULL));
	_cleanup_free_ char *stale = path_in(dir, "services.json.tmp-1234-0");
	write_file(stale, "[");
	struct state_service *got = NULL;
	size_t n = 0;
	struct state_aside aside = {0};
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	ASSERT_EQ_U(n, 1);
	state_services_free(got, n);
	state_aside_clear(&aside);
	_cleanup_free_ char *names = dir_listing(dir);
	ASSERT_STREQ(names, "services.json");
}

TEST(test_parse_reads_no_byte_past_its_length)
{
	/* Not NUL-terminated: the fuzzer's exact-length buffers. */
	char *text = malloc(2);
	ASSERT_TRUE(text != NULL);
	memcpy(text, "[]", 2);
	struct state_service *got = NULL;
	size_t n = 9, n_bad = 9;
	char why[64];
	ASSERT_OK(state_store_parse(text, 2, &got, &n, &n_bad, NULL, NULL, why, sizeof(why)));
	ASSERT_EQ_U(n, 0);
	ASSERT_EQ_U(n_bad, 0);
	memcpy(text, "  ", 2);
	ASSERT_ERR(state_store_parse(text, 2, &got, &n, &n_bad, NULL, NULL, why, sizeof(why)),
		   EBADMSG);
	free(text);
}

TEST(test_entries_set_aside_are_written_back_and_copied_once)
{
	const char *dir = temp_dir();
	_cleanup_free_ char *path = path_in(dir, "services.json");
	write_file(path, "[{\"name\": \"web\", \"container\": \"web\", \"idle_ms\": \"5s\"},"
			 " {\"name\": \"db\", \"container\": \"db\"}]");
	struct state_service *got = NULL;
	size_t n = 0;
	struct state_aside aside = {0};
	capture_stderr_begin();
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	ASSERT_EQ_U(aside.n, 1);
	ASSERT_CONTAINS(aside.entries[0], "\"idle_ms\":\"5s\"");
	/* The daemon's next save: the good ones, then the bad one as it was. */
	ASSERT_OK(state_store_save(dir, got, n, &aside));
	state_services_free(got, n);
	state_aside_clear(&aside);
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_EQ_U(n, 1);
	ASSERT_STREQ(got[0].name, "db");
	ASSERT_EQ_U(aside.n, 1);
	ASSERT_CONTAINS(aside.entries[0], "\"name\":\"web\"");
	/* A copy of the hand-edited file and one of the file dozed wrote; a
	 * restart with that file unchanged makes no third. */
	ASSERT_EQ_U(state_store_count_corrupt(dir), 2);
	state_services_free(got, n);
	state_aside_clear(&aside);
	capture_stderr_begin();
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	_cleanup_free_ char *log2 = capture_stderr_end();
	ASSERT_CONTAINS(log2, "a copy of the file is");
	ASSERT_EQ_U(state_store_count_corrupt(dir), 2);
	state_services_free(got, n);
	state_aside_clear(&aside);
}

/* Found by fuzz_state_store: a null entry set aside made every save fail. */
TEST(test_a_null_entry_is_set_aside_and_written_back_and_saves_still_work)
{
	const char *dir = temp_dir();
	_cleanup_free_ char *path = path_in(dir, "services.json");
	write_file(path, "[null, {\"name\": \"db\", \"container\": \"db\"}]");
	struct state_service *got = NULL;
	size_t n = 0;
	struct state_aside aside = {0};
	capture_stderr_begin();
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	ASSERT_EQ_U(n, 1);
	ASSERT_EQ_U(aside.n, 1);
	ASSERT_OK(state_store_save(dir, got, n, &aside));
	state_services_free(got, n);
	state_aside_clear(&aside);
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_EQ_U(n, 1);
	ASSERT_STREQ(got[0].name, "db");
	ASSERT_EQ_U(aside.n, 1);
	ASSERT_STREQ(aside.entries[0], "null");
	state_services_free(got, n);
	state_aside_clear(&aside);
}

TEST(test_a_bad_entry_in_a_read_only_state_dir_still_loads_the_good_ones)
{
	const char *dir = temp_dir();
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("dozed-test-ro", dir, "tmpfs", 0, "size=1m") < 0)
		FAIL("cannot mount a tmpfs of the test's own: %s", strerror(errno));
	_cleanup_free_ char *path = path_in(dir, "services.json");
	write_file(path, "[{\"name\": \"web\", \"container\": \"web\", \"idle_ms\": -1},"
			 " {\"name\": \"db\", \"container\": \"db\"}]");
	if (mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
		FAIL("cannot make %s read-only: %s", dir, strerror(errno));
	struct state_service *got = NULL;
	size_t n = 0;
	struct state_aside aside = {0};
	capture_stderr_begin();
	int r = state_store_load(dir, &got, &n, &aside);
	_cleanup_free_ char *log = capture_stderr_end();
	umount2(dir, MNT_DETACH);
	ASSERT_OK(r);
	ASSERT_EQ_U(n, 1);
	ASSERT_EQ_U(aside.n, 1);
	ASSERT_CONTAINS(log, "1 bad entries set aside, 1 loaded");
	ASSERT_CONTAINS(log, "no copy of the file could be written");
	state_services_free(got, n);
	state_aside_clear(&aside);
}

TEST(test_ignore_rules_and_keep_awake_round_trip_and_are_absent_when_unset)
{
	const char *dir = temp_dir();
	struct state_service s[3] = {
	    {.name = "web", .container = "web", .ignore_set = true, .keep_awake_connections = true},
	    {.name = "db", .container = "db", .ignore_set = true},
	    {.name = "plain", .container = "plain"},
	};
	const char *why;
	ASSERT_OK(flow_rules_parse("10.0.0.0/8, tcp/9090,[2001:db8::/32]:443", &s[0].ignore, &why));
	ASSERT_OK(state_store_save(dir, s, 3, NULL));

	_cleanup_free_ char *path = path_in(dir, "services.json");
	struct json_object *root = json_object_from_file(path);
	ASSERT_TRUE(root && json_object_array_length(root) == 3);
	struct json_object *web = json_object_array_get_idx(root, 0);
	struct json_object *db = json_object_array_get_idx(root, 1);
	struct json_object *plain = json_object_array_get_idx(root, 2);
	ASSERT_STREQ(field(web, "ignore"), "10.0.0.0/8,tcp/9090,[2001:db8::/32]:443");
	ASSERT_STREQ(field(web, "keep_awake"), "connections");
	/* none set on purpose is kept: it overrides the config file's default. */
	ASSERT_STREQ(field(db, "ignore"), "none");
	ASSERT_TRUE(field(db, "keep_awake") == NULL);
	ASSERT_TRUE(field(plain, "ignore") == NULL && field(plain, "keep_awake") == NULL);
	json_object_put(root);

	struct state_service *got = NULL;
	size_t n = 0;
	struct state_aside aside = {0};
	ASSERT_OK(state_store_load(dir, &got, &n, &aside));
	ASSERT_EQ_U(n, 3);
	ASSERT_TRUE(got[0].ignore_set && flow_rules_equal(&got[0].ignore, &s[0].ignore));
	ASSERT_TRUE(got[0].keep_awake_connections);
	ASSERT_TRUE(got[1].ignore_set && got[1].ignore.n == 0 && !got[1].keep_awake_connections);
	ASSERT_TRUE(!got[2].ignore_set && got[2].ignore.n == 0 && !got[2].keep_awake_connections);
	state_services_free(got, n);
	state_aside_clear(&aside);
}

TEST(test_an_entry_with_a_bad_rule_is_set_aside_naming_the_rule)
{
	const char *dir = temp_dir();
	_cleanup_free_ char *path = path_in(dir, "services.json");
	write_file(path,
		   "[{\"name\": \"web\", \"container\": \"web\", \"ignore\": \"tcp/80,,1\"}]");
	struct state_service *got = NULL;
	size_t n = 0;
	struct state_aside aside = {0};
	capture_stderr_begin();
	int r = state_store_load(dir, &got, &n, &aside);
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_OK(r);
	ASSERT_EQ_U(n, 0);
	ASSERT_CONTAINS(log, "entry 1 (web) set aside: \"ignore\": rule \"\": an empty rule");
	ASSERT_CONTAINS(log, FLOW_RULE_FORMS);
	state_services_free(got, n);
	state_aside_clear(&aside);
}
