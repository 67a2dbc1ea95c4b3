import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AddressSpace } from '../../src/memory/address-space.ts';
import { PAGE_SIZE, PROT_READ, PROT_WRITE, SimFault } from '../../src/memory/page.ts';
import { StoreBuffer } from '../../src/memory/store-buffer.ts';

const RW = PROT_READ | PROT_WRITE;

function fault(f: () => unknown): SimFault {
  try {
    f();
  } catch (e) {
    if (e instanceof SimFault) return e;
    throw e;
  }
  assert.fail('expected a fault');
}

describe('address space', () => {
  it('stores little-endian bytes and reads them back at every width', () => {
    const m = new AddressSpace();
    m.map(0x1000, PAGE_SIZE, RW);
    m.store64(0x1008, 0x0102030405060708n);
    assert.equal(m.load(0x1008, 1), 0x08);
    assert.equal(m.load(0x1008, 2), 0x0708);
    assert.equal(m.load(0x100c, 4), 0x01020304);
    assert.equal(m.load64(0x1008), 0x0102030405060708n);
    m.storePtr(0x1010, 0x7fff_dead_beef);
    assert.equal(m.loadPtr(0x1010), 0x7fff_dead_beef);
  });

  it('handles accesses that straddle two pages', () => {
    const m = new AddressSpace();
    m.map(0x1000, 2 * PAGE_SIZE, RW);
    m.store(0x1ffe, 4, 0xaabbccdd);
    assert.equal(m.load(0x1ffe, 4), 0xaabbccdd);
    assert.equal(m.load(0x2000, 2), 0xaabb);
  });

  it('faults on unmapped pages (SEGV_MAPERR) and on protection (SEGV_ACCERR)', () => {
    const m = new AddressSpace();
    m.map(0x1000, PAGE_SIZE, PROT_READ);
    assert.equal(fault(() => m.load(0x5000, 4)).reason, 'SEGV_MAPERR');
    const w = fault(() => m.store(0x1004, 4, 1));
    assert.deepEqual([w.reason, w.access, w.addr], ['SEGV_ACCERR', 'write', 0x1004]);
    assert.equal(m.protect(0x1000, PAGE_SIZE, RW), true);
    m.store(0x1004, 4, 1);
    m.unmap(0x1000, PAGE_SIZE);
    assert.equal(fault(() => m.load(0x1004, 4)).reason, 'SEGV_MAPERR');
    assert.equal(m.protect(0x1000, PAGE_SIZE, RW), false);
  });

  it('shares pages copy-on-write with a fork: later writes on either side stay private', () => {
    const parent = new AddressSpace();
    parent.map(0x1000, PAGE_SIZE, RW);
    parent.store(0x1000, 4, 1);
    const child = parent.fork();
    assert.equal(child.load(0x1000, 4), 1);
    parent.store(0x1000, 4, 2);
    child.store(0x1004, 4, 3);
    assert.deepEqual([parent.load(0x1000, 4), parent.load(0x1004, 4)], [2, 0]);
    assert.deepEqual([child.load(0x1000, 4), child.load(0x1004, 4)], [1, 3]);
  });

  it('copies one page at a time with sharePage (a page-by-page fork)', () => {
    const parent = new AddressSpace();
    parent.map(0x1000, 2 * PAGE_SIZE, RW);
    const child = new AddressSpace();
    parent.store(0x1000, 4, 7);
    parent.sharePage(child, 1);
    parent.store(0x2000, 4, 8); // after the first page was copied, before the second
    parent.sharePage(child, 2);
    assert.deepEqual([child.load(0x1000, 4), child.load(0x2000, 4)], [7, 8]);
  });
});

describe('store buffer', () => {
  it('forwards the newest covering store, byte by byte on partial overlap', () => {
    const m = new AddressSpace();
    m.map(0x1000, PAGE_SIZE, RW);
    m.store(0x1000, 4, 0x11223344);
    const sb = new StoreBuffer();
    const out = new Uint32Array(2);
    sb.push(0x1001, 1, 0xaa, 0);
    sb.readThrough(m, 0x1000, 4, out);
    assert.equal(out[0], 0x1122aa44);
    sb.push(0x1000, 4, 0x55667788, 0);
    sb.readThrough(m, 0x1000, 4, out);
    assert.equal(out[0], 0x55667788);
    assert.equal(m.load(0x1000, 4), 0x11223344, 'memory is untouched until a drain');
    assert.equal(sb.drainable(1), false, 'PSO keeps stores to the same bytes in order');
    sb.flush(m);
    assert.equal(m.load(0x1000, 4), 0x55667788);
  });
});
