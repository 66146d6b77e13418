import { describe, expect, it } from 'vitest';
import { ModelError } from '../sim/errors.js';
import { KObject, Kref, RefTracker } from './kref.js';

describe('Kref', () => {
  it('starts at 1, releases exactly on the last put, and refuses to underflow or resurrect', () => {
    const r = new Kref();
    let released = 0;
    r.krefGet();
    expect(r.refs).toBe(2);
    expect(r.krefPut(() => released++)).toBe(false);
    expect(released).toBe(0);
    expect(r.krefPut(() => released++)).toBe(true);
    expect(released).toBe(1);
    expect(() => r.krefPut()).toThrow('refcount underflow: kref_put on kref whose count is 0');
    expect(() => r.krefGet()).toThrow(/use-after-free/);
    expect(r.krefGetUnlessZero()).toBe(false);
  });
});

describe('RefTracker and KObject', () => {
  it('lists live objects in creation order and forgets freed ones', () => {
    const t = new RefTracker();
    const a = new KObject(t, 'file', 'a');
    const b = new KObject(t, 'eventfd_ctx', 'b');
    const c = new KObject(t, 'file', 'c');
    b.get();
    expect(t.leaks()).toEqual(['file a refs=1', 'eventfd_ctx b refs=2', 'file c refs=1']);
    expect(t.count('file')).toBe(2);
    expect(a.put()).toBe(true);
    expect(a.freed).toBe(true);
    expect(t.leaks('file')).toEqual(['file c refs=1']);
    expect(b.put()).toBe(false);
    expect(b.put()).toBe(true);
    c.put();
    expect(t.leaks()).toEqual([]);
    expect(t.created.get('file')).toBe(2);
  });

  it('any use after the last put is a use-after-free ModelError', () => {
    const t = new RefTracker();
    const o = new KObject(t, 'file', 'x');
    o.put();
    expect(() => o.checkAlive('read')).toThrow(ModelError);
    expect(() => o.checkAlive('read')).toThrow('use-after-free: read on freed file x');
    expect(() => o.get()).toThrow(/use-after-free/);
    expect(() => o.markFreed()).toThrow(/double free/);
  });
});
