/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Intrusive doubly linked lists, after systemd's list.h: the links live in the
 * item (LIST_FIELDS(type, name) declares name_next and name_prev), the owner
 * keeps the head (and, for a queue, the tail). An item may be on several lists
 * under different names. Removing is O(1) and clears the item's links.
 */

#include <assert.h>

#define LIST_FIELDS(t, name) t *name##_next, *name##_prev

#define LIST_PREPEND(name, head, item)                                                             \
	do {                                                                                       \
		__typeof__(head) *_lp_head = &(head), _lp_item = (item);                           \
		assert(_lp_item);                                                                  \
		_lp_item->name##_prev = NULL;                                                      \
		if ((_lp_item->name##_next = *_lp_head))                                           \
			_lp_item->name##_next->name##_prev = _lp_item;                             \
		*_lp_head = _lp_item;                                                              \
	} while (0)

#define LIST_REMOVE(name, head, item)                                                              \
	do {                                                                                       \
		__typeof__(head) *_lr_head = &(head), _lr_item = (item);                           \
		assert(_lr_item);                                                                  \
		if (_lr_item->name##_next)                                                         \
			_lr_item->name##_next->name##_prev = _lr_item->name##_prev;                \
		if (_lr_item->name##_prev)                                                         \
			_lr_item->name##_prev->name##_next = _lr_item->name##_next;                \
		else {                                                                             \
			assert(*_lr_head == _lr_item);                                             \
			*_lr_head = _lr_item->name##_next;                                         \
		}                                                                                  \
		_lr_item->name##_next = _lr_item->name##_prev = NULL;                              \
	} while (0)

/* After anchor; a NULL anchor puts item first. */
#define LIST_INSERT_AFTER(name, head, anchor, item)                                                \
	do {                                                                                       \
		__typeof__(head) *_li_head = &(head), _li_anchor = (anchor), _li_item = (item);    \
		assert(_li_item);                                                                  \
		if (!_li_anchor) {                                                                 \
			LIST_PREPEND(name, *_li_head, _li_item);                                   \
			break;                                                                     \
		}                                                                                  \
		_li_item->name##_prev = _li_anchor;                                                \
		if ((_li_item->name##_next = _li_anchor->name##_next))                             \
			_li_item->name##_next->name##_prev = _li_item;                             \
		_li_anchor->name##_next = _li_item;                                                \
	} while (0)

/* Queues: the owner keeps head and tail, so appending is O(1). */
#define LIST_APPEND_TAILED(name, head, tail, item)                                                 \
	do {                                                                                       \
		__typeof__(head) *_la_tail = &(tail), _la_item = (item);                           \
		LIST_INSERT_AFTER(name, head, *_la_tail, _la_item);                                \
		*_la_tail = _la_item;                                                              \
	} while (0)

#define LIST_INSERT_AFTER_TAILED(name, head, tail, anchor, item)                                   \
	do {                                                                                       \
		__typeof__(head) *_lit_tail = &(tail), _lit_last = (item);                         \
		LIST_INSERT_AFTER(name, head, anchor, _lit_last);                                  \
		if (!_lit_last->name##_next)                                                       \
			*_lit_tail = _lit_last;                                                    \
	} while (0)

#define LIST_REMOVE_TAILED(name, head, tail, item)                                                 \
	do {                                                                                       \
		__typeof__(head) *_lrt_tail = &(tail), _lrt_gone = (item);                         \
		if (*_lrt_tail == _lrt_gone)                                                       \
			*_lrt_tail = _lrt_gone->name##_prev;                                       \
		LIST_REMOVE(name, head, _lrt_gone);                                                \
	} while (0)

#define LIST_FOREACH(name, i, head) for ((i) = (head); (i); (i) = (i)->name##_next)

/* The body may remove (or free) i. */
#define LIST_FOREACH_SAFE(name, i, n, head)                                                        \
	for ((i) = (head); (i) && (((n) = (i)->name##_next), 1); (i) = (n))
