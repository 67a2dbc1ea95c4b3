/**
 * glibc's circular doubly linked lists (include/list.h; nptl/sysdeps/pthread/list.h before 2.34)
 * as simulated code, store by store, so that a fork or another CPU can see them half done.
 * A list_t is { next at +0, prev at +8 }, 64-bit pointers.
 */
import { fence, loadPtr, storePtr, type SimCode } from '../engine/ops.ts';

export const NEXT = 0;
export const PREV = 8;
export const LIST_SIZE = 16;

/** INIT_LIST_HEAD. */
export function* initListHead(head: number): SimCode {
  yield storePtr(head + NEXT, head);
  yield storePtr(head + PREV, head);
}

/**
 * list_add(newp, head) in the store order of the profile. 'init-first' (2009-01-08 and later):
 *   newp->next = head->next; newp->prev = head; head->next->prev = newp;
 *   atomic_write_barrier(); head->next = newp;
 * 'legacy' (before): head->next->prev = newp; newp->next = head->next; newp->prev = head;
 *   head->next = newp;  (no barrier)
 * atomic_write_barrier is a compiler barrier on x86; in the model it is a fence, which is what
 * it must guarantee on any CPU that reorders stores.
 */
export function* listAdd(newp: number, head: number, order: 'legacy' | 'init-first'): SimCode {
  const first: number = yield loadPtr(head + NEXT);
  if (order === 'init-first') {
    yield storePtr(newp + NEXT, first);
    yield storePtr(newp + PREV, head);
    yield storePtr(first + PREV, newp);
    yield fence();
    yield storePtr(head + NEXT, newp);
  } else {
    yield storePtr(first + PREV, newp);
    yield storePtr(newp + NEXT, first);
    yield storePtr(newp + PREV, head);
    yield storePtr(head + NEXT, newp);
  }
}

/** list_del(elem): elem's own pointers are left stale. */
export function* listDel(elem: number): SimCode {
  const next: number = yield loadPtr(elem + NEXT);
  const prev: number = yield loadPtr(elem + PREV);
  yield storePtr(next + PREV, prev);
  yield storePtr(prev + NEXT, next);
}

/** list_splice(add, head): insert add's elements at the front of head; add is not re-initialised. */
export function* listSplice(add: number, head: number): SimCode {
  const addNext: number = yield loadPtr(add + NEXT);
  if (addNext === add) return;
  const addPrev: number = yield loadPtr(add + PREV);
  const headNext: number = yield loadPtr(head + NEXT);
  yield storePtr(addNext + PREV, head);
  yield storePtr(addPrev + NEXT, headNext);
  yield storePtr(headNext + PREV, addPrev);
  yield storePtr(head + NEXT, addNext);
}
