// SPDX-License-Identifier: MIT
/* Parsing /proc/self/mountinfo and /proc/PID/cgroup, on fixed texts. */
#include <errno.h>
#include <stdlib.h>

#include "dozed/cgroup.h"
#include "dozed/macro.h"
#include "harness.h"

static const char hybrid_mountinfo[] =
    "24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "26 24 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "27 26 0:25 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 "
    "cgroup2 rw,nsdelegate\n"
    "28 26 0:26 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,name=systemd\n";

static const char unified_mountinfo[] =
    "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

TEST(test_mount_point_of_hybrid_host_is_the_unified_directory)
{
	_cleanup_free_ char *point = NULL, *root = NULL;
	ASSERT_OK(cgroup2_mount_parse(hybrid_mountinfo, &point, &root));
	ASSERT_STREQ(point, "/sys/fs/cgroup/unified");
	ASSERT_STREQ(root, "/");
}

TEST(test_mount_point_of_unified_host_is_sys_fs_cgroup)
{
	_cleanup_free_ char *point = NULL, *root = NULL;
	ASSERT_OK(cgroup2_mount_parse(unified_mountinfo, &point, &root));
	ASSERT_STREQ(point, "/sys/fs/cgroup");
}

TEST(test_mount_point_with_escaped_space_and_no_optional_fields)
{
	_cleanup_free_ char *point = NULL, *root = NULL;
	ASSERT_OK(cgroup2_mount_parse("40 1 0:40 /sub /mnt/my\\040cgroups rw - cgroup2 none rw\n",
				      &point, &root));
	ASSERT_STREQ(point, "/mnt/my cgroups");
	ASSERT_STREQ(root, "/sub");
}

TEST(test_no_cgroup2_mount_is_enoent)
{
	char *point = NULL, *root = NULL;
	ASSERT_ERR(cgroup2_mount_parse("28 26 0:26 / /sys/fs/cgroup/systemd rw shared:11 - cgroup "
				       "cgroup rw,name=systemd\n",
				       &point, &root),
		   ENOENT);
	ASSERT_ERR(cgroup2_mount_parse("", &point, &root), ENOENT);
	ASSERT_TRUE(point == NULL && root == NULL);
}

TEST(test_malformed_mountinfo_lines_are_skipped)
{
	_cleanup_free_ char *point = NULL, *root = NULL;
	ASSERT_OK(cgroup2_mount_parse("garbage\n1 2 3\n - cgroup2\n"
				      "35 24 0:30 / /cg rw - cgroup2 x rw",
				      &point, &root));
	ASSERT_STREQ(point, "/cg");
}

TEST(test_cgroup_path_from_hybrid_proc_cgroup)
{
	_cleanup_free_ char *path = NULL;
	ASSERT_OK(cgroup2_path_parse("9:name=systemd:/\n4:memory:/docker/abc\n"
				     "0::/system.slice/docker-abc.scope\n",
				     &path));
	ASSERT_STREQ(path, "/system.slice/docker-abc.scope");
}

TEST(test_cgroup_path_of_root_is_slash)
{
	_cleanup_free_ char *path = NULL;
	ASSERT_OK(cgroup2_path_parse("0::/", &path));
	ASSERT_STREQ(path, "/");
}

TEST(test_cgroup_path_missing_on_v1_only_host_is_enoent)
{
	char *path = NULL;
	ASSERT_ERR(cgroup2_path_parse("4:memory:/x\n1:cpu:/x\n", &path), ENOENT);
	ASSERT_TRUE(path == NULL);
}

TEST(test_cgroup_path_not_absolute_is_einval)
{
	char *path = NULL;
	ASSERT_ERR(cgroup2_path_parse("0::\n", &path), EINVAL);
	ASSERT_ERR(cgroup2_path_parse("0::relative\n", &path), EINVAL);
}
