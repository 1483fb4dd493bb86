// SPDX-License-Identifier: MIT
/* Which freezer the runtime uses for a process, from fixed mountinfo and /proc/PID/cgroup texts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/freezer.h"
#include "harness.h"

/* This host's layout: v1 controllers beside a cgroup2 "unified" mount. */
static const char hybrid_mountinfo[] =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime shared:12 - cgroup cgroup rw,freezer\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static const char podman_cgroup[] = "9:name=systemd:/libpod_parent/libpod-abc\n"
				    "6:freezer:/libpod_parent/libpod-abc\n"
				    "4:memory:/libpod_parent/libpod-abc\n"
				    "0::/libpod_parent/libpod-abc\n";

static const char unified_mountinfo[] =
    "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

TEST(test_hybrid_host_gives_the_v1_freezer_directory)
{
	struct freezer f;
	ASSERT_OK(freezer_find_in(hybrid_mountinfo, podman_cgroup, &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/freezer/libpod_parent/libpod-abc");
	ASSERT_TRUE(f.v1);
}

TEST(test_unified_host_gives_the_cgroup2_directory)
{
	struct freezer f;
	ASSERT_OK(freezer_find_in(unified_mountinfo, "0::/system.slice/docker-1f.scope\n", &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/system.slice/docker-1f.scope");
	ASSERT_TRUE(!f.v1);
}

TEST(test_hybrid_host_without_a_freezer_mount_falls_back_to_cgroup2)
{
	static const char mountinfo[] =
	    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
	struct freezer f;
	ASSERT_OK(freezer_find_in(mountinfo, podman_cgroup, &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/unified/libpod_parent/libpod-abc");
	ASSERT_TRUE(!f.v1);
}

TEST(test_freezer_mounted_but_process_not_listed_in_it_falls_back_to_cgroup2)
{
	struct freezer f;
	ASSERT_OK(freezer_find_in(hybrid_mountinfo, "4:memory:/x\n0::/x\n", &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/unified/x");
	ASSERT_TRUE(!f.v1);
}

TEST(test_a_named_hierarchy_called_freezer_is_not_the_controller)
{
	static const char mountinfo[] =
	    "40 31 0:37 / /sys/fs/cgroup/fake rw - cgroup cgroup rw,name=freezer\n"
	    "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
	struct freezer f;
	ASSERT_OK(freezer_find_in(mountinfo, "7:name=freezer:/a\n0::/b\n", &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/unified/b");
	ASSERT_TRUE(!f.v1);
}

TEST(test_freezer_comounted_with_other_controllers_is_found)
{
	static const char mountinfo[] =
	    "32 31 0:29 / /sys/fs/cgroup/cpu,freezer rw - cgroup cgroup rw,cpu,freezer\n";
	struct freezer f;
	ASSERT_OK(freezer_find_in(mountinfo, "3:cpu,freezer:/docker/9a\n", &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/cpu,freezer/docker/9a");
	ASSERT_TRUE(f.v1);
}

TEST(test_escaped_mount_point_and_subtree_root_are_joined)
{
	static const char mountinfo[] =
	    "50 1 0:34 /docker /mnt/my\\040freezer rw - cgroup none rw,freezer\n";
	struct freezer f;
	ASSERT_OK(freezer_find_in(mountinfo, "6:freezer:/docker/abc\n", &f));
	ASSERT_STREQ(f.dir, "/mnt/my freezer/abc");
	ASSERT_OK(freezer_find_in(mountinfo, "6:freezer:/docker\n", &f));
	ASSERT_STREQ(f.dir, "/mnt/my freezer");
}

TEST(test_path_outside_the_mounted_subtree_is_enoent_not_cgroup2)
{
	/* The runtime froze it through v1, which dozed cannot reach: v2 would be
	 * the wrong file, so no answer. */
	static const char mountinfo[] =
	    "50 1 0:34 /docker /sys/fs/cgroup/freezer rw - cgroup none rw,freezer\n"
	    "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
	struct freezer f;
	ASSERT_ERR(freezer_find_in(mountinfo, "6:freezer:/dockerx/abc\n0::/dockerx/abc\n", &f),
		   ENOENT);
	ASSERT_ERR(freezer_find_in(mountinfo, "6:freezer:/other\n0::/other\n", &f), ENOENT);
}

TEST(test_dot_dot_components_are_refused)
{
	struct freezer f;
	strcpy(f.dir, "untouched");
	ASSERT_ERR(freezer_find_in(hybrid_mountinfo, "6:freezer:/../../etc\n", &f), EINVAL);
	ASSERT_ERR(freezer_find_in(hybrid_mountinfo, "6:freezer:/a/../../../etc\n", &f), EINVAL);
	ASSERT_ERR(freezer_find_in(hybrid_mountinfo, "6:freezer:/a/./b\n", &f), EINVAL);
	ASSERT_ERR(freezer_find_in(hybrid_mountinfo, "6:freezer:/..\n", &f), EINVAL);
	ASSERT_ERR(freezer_find_in(unified_mountinfo, "0::/x/..\n", &f), EINVAL);
	ASSERT_ERR(freezer_find_in(hybrid_mountinfo, "6:freezer:relative\n", &f), EINVAL);
	ASSERT_ERR(freezer_find_in(hybrid_mountinfo, "6:freezer:\n", &f), EINVAL);
	ASSERT_ERR(freezer_find_in("1 2 0:1 / /sys/fs/cgroup/../freezer rw - cgroup c freezer\n",
				   "6:freezer:/a\n", &f),
		   EINVAL);
	/* A failure writes nothing. */
	ASSERT_STREQ(f.dir, "untouched");
	/* Dots inside a name are a name. */
	ASSERT_OK(freezer_find_in(hybrid_mountinfo, "6:freezer:/a..b/.c/...\n", &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/freezer/a..b/.c/...");
}

TEST(test_deleted_cgroup2_is_enoent)
{
	struct freezer f;
	ASSERT_ERR(freezer_find_in(unified_mountinfo, "0::/system.slice/x.scope (deleted)\n", &f),
		   ENOENT);
}

TEST(test_neither_hierarchy_is_enoent)
{
	static const char mountinfo[] = "24 30 0:22 / /sys rw - sysfs sysfs rw\n";
	struct freezer f;
	ASSERT_ERR(freezer_find_in(mountinfo, podman_cgroup, &f), ENOENT);
	ASSERT_ERR(freezer_find_in("", "", &f), ENOENT);
	ASSERT_ERR(freezer_find_in(unified_mountinfo, "6:freezer:/a\n", &f), ENOENT);
}

TEST(test_malformed_lines_are_skipped_not_overrun)
{
	static const char mountinfo[] =
	    "garbage\n"
	    "1 2 3 4\n"
	    "1 2 0:1 / /x rw -\n"
	    "1 2 0:1 / /x rw - cgroup\n"
	    "1 2 0:1 / /x rw - cgroup src\n"
	    "37 31 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup freezer";
	struct freezer f;
	ASSERT_OK(freezer_find_in(mountinfo, "junk\n::\n6:freezer:/ok", &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/freezer/ok");
}

TEST(test_root_cgroup_is_the_mount_point)
{
	struct freezer f;
	ASSERT_OK(freezer_find_in(hybrid_mountinfo, "6:freezer:/\n", &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/freezer");
}

TEST(test_too_long_a_path_is_enametoolong)
{
	size_t n = PATH_MAX + 16;
	char *text = malloc(n + 16);
	ASSERT_TRUE(text != NULL);
	int off = snprintf(text, n, "6:freezer:");
	for (size_t i = (size_t)off; i < n; i++)
		text[i] = (i % 50 == 0) ? '/' : 'a';
	text[off] = '/';
	text[n] = '\0';
	struct freezer f;
	int r = freezer_find_in(hybrid_mountinfo, text, &f);
	free(text);
	ASSERT_ERR(r, ENAMETOOLONG);
}

TEST(test_a_process_out_in_the_sibling_gives_the_container_s_cgroup)
{
	struct freezer f;
	ASSERT_OK(freezer_find_in(hybrid_mountinfo, "6:freezer:/docker/abc.dozed-thaw\n", &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/freezer/docker/abc");
	ASSERT_TRUE(f.v1);
	ASSERT_OK(freezer_find_in(unified_mountinfo, "0::/system.slice/x.scope.dozed-thaw\n", &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/system.slice/x.scope");
	/* Only a whole last component with a name before the suffix. */
	ASSERT_OK(freezer_find_in(hybrid_mountinfo, "6:freezer:/docker/.dozed-thaw\n", &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/freezer/docker/.dozed-thaw");
	ASSERT_OK(freezer_find_in(hybrid_mountinfo, "6:freezer:/a.dozed-thaw/b\n", &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/freezer/a.dozed-thaw/b");
	ASSERT_OK(freezer_find_in(hybrid_mountinfo, "6:freezer:/a/..dozed-thaw\n", &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/freezer/a/..dozed-thaw");
	ASSERT_OK(freezer_find_in(hybrid_mountinfo, "6:freezer:/a/...dozed-thaw\n", &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/freezer/a/...dozed-thaw");
	ASSERT_OK(freezer_find_in(hybrid_mountinfo, "6:freezer:/a/....dozed-thaw\n", &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/freezer/a/...");
	ASSERT_OK(freezer_find_in(hybrid_mountinfo, "6:freezer:/a.dozed-thawx\n", &f));
	ASSERT_STREQ(f.dir, "/sys/fs/cgroup/freezer/a.dozed-thawx");
}
