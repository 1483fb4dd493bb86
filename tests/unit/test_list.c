// SPDX-License-Identifier: MIT
/* The intrusive lists every part uses: order, removal anywhere, queues. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "dozed/list.h"
#include "harness.h"

struct item {
	char name;
	LIST_FIELDS(struct item, by_age);
	LIST_FIELDS(struct item, queue);
};

/* The names along head, forwards, and checked backwards against the links. */
static const char *walk_age(struct item *head)
{
	static char buf[16];
	size_t n = 0;
	struct item *i, *last = NULL;
	LIST_FOREACH (by_age, i, head) {
		if (i->by_age_prev != last)
			FAIL("%c's prev link does not point at the item before it", i->name);
		buf[n++] = i->name;
		last = i;
	}
	buf[n] = '\0';
	return buf;
}

static const char *walk_queue(struct item *head, struct item *tail)
{
	static char buf[16];
	size_t n = 0;
	struct item *i, *last = NULL;
	LIST_FOREACH (queue, i, head) {
		buf[n++] = i->name;
		last = i;
	}
	buf[n] = '\0';
	if (last != tail)
		FAIL("the tail is %c, the last item %c", tail ? tail->name : '-',
		     last ? last->name : '-');
	return buf;
}

TEST(test_prepend_puts_items_first_and_remove_takes_any_of_them)
{
	struct item a = {.name = 'a'}, b = {.name = 'b'}, c = {.name = 'c'};
	struct item *head = NULL;
	LIST_PREPEND(by_age, head, &a);
	LIST_PREPEND(by_age, head, &b);
	LIST_PREPEND(by_age, head, &c);
	ASSERT_STREQ(walk_age(head), "cba");
	LIST_REMOVE(by_age, head, &b);
	ASSERT_STREQ(walk_age(head), "ca");
	ASSERT_TRUE(!b.by_age_next && !b.by_age_prev);
	LIST_REMOVE(by_age, head, &c);
	ASSERT_STREQ(walk_age(head), "a");
	LIST_REMOVE(by_age, head, &a);
	ASSERT_TRUE(head == NULL);
}

TEST(test_insert_after_an_anchor_or_first_without_one)
{
	struct item a = {.name = 'a'}, b = {.name = 'b'}, c = {.name = 'c'};
	struct item *head = NULL;
	LIST_INSERT_AFTER(by_age, head, NULL, &a);
	LIST_INSERT_AFTER(by_age, head, &a, &c);
	LIST_INSERT_AFTER(by_age, head, &a, &b);
	ASSERT_STREQ(walk_age(head), "abc");
}

TEST(test_a_queue_keeps_its_tail_through_appends_inserts_and_removals)
{
	struct item a = {.name = 'a'}, b = {.name = 'b'}, c = {.name = 'c'}, d = {.name = 'd'};
	struct item *head = NULL, *tail = NULL;
	LIST_APPEND_TAILED(queue, head, tail, &a);
	LIST_APPEND_TAILED(queue, head, tail, &b);
	ASSERT_STREQ(walk_queue(head, tail), "ab");
	LIST_INSERT_AFTER_TAILED(queue, head, tail, &b, &c);
	ASSERT_STREQ(walk_queue(head, tail), "abc");
	LIST_INSERT_AFTER_TAILED(queue, head, tail, NULL, &d);
	ASSERT_STREQ(walk_queue(head, tail), "dabc");
	LIST_REMOVE_TAILED(queue, head, tail, &c);
	ASSERT_STREQ(walk_queue(head, tail), "dab");
	LIST_REMOVE_TAILED(queue, head, tail, &d);
	LIST_REMOVE_TAILED(queue, head, tail, &b);
	LIST_REMOVE_TAILED(queue, head, tail, &a);
	ASSERT_TRUE(head == NULL && tail == NULL);
}

TEST(test_an_item_on_two_lists_leaves_one_and_stays_on_the_other)
{
	struct item a = {.name = 'a'}, b = {.name = 'b'};
	struct item *ages = NULL, *qh = NULL, *qt = NULL;
	LIST_PREPEND(by_age, ages, &a);
	LIST_PREPEND(by_age, ages, &b);
	LIST_APPEND_TAILED(queue, qh, qt, &a);
	LIST_APPEND_TAILED(queue, qh, qt, &b);
	LIST_REMOVE_TAILED(queue, qh, qt, &a);
	ASSERT_STREQ(walk_age(ages), "ba");
	ASSERT_STREQ(walk_queue(qh, qt), "b");
}

TEST(test_foreach_safe_survives_removing_the_current_item)
{
	struct item a = {.name = 'a'}, b = {.name = 'b'}, c = {.name = 'c'};
	struct item *head = NULL, *i, *n;
	LIST_PREPEND(by_age, head, &c);
	LIST_PREPEND(by_age, head, &b);
	LIST_PREPEND(by_age, head, &a);
	LIST_FOREACH_SAFE (by_age, i, n, head) {
		if (i->name != 'b')
			LIST_REMOVE(by_age, head, i);
	}
	ASSERT_STREQ(walk_age(head), "b");
}
