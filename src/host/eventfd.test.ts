import { describe, expect, it } from 'vitest';
import { errnoOf } from '../abi/errno.js';
import { C_NONE } from '../sim/costs.js';
import { eret, op, type TaskGen } from '../sim/task.js';
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EFD_SEMAPHORE,
  type EventfdCtx,
  eventfdCtxDoRead,
  eventfdCtxFdget,
  eventfdCtxPut,
  eventfdCtxRemoveWaitQueue,
  eventfdFget,
  eventfdSignal,
} from './eventfd.js';
import { EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, fput, vfsPoll, type WaitQueueEntry } from './file.js';
import { Kernel } from './kernel.js';

function setup(cpus = 2) {
  const k = new Kernel({ cpus });
  const p = k.process();
  const buf = p.mem.alloc(16);
  const put = (v: bigint) => p.mem.view(buf, 8).setBigUint64(0, v, true);
  const get = () => p.mem.view(buf, 8).getBigUint64(0, true);
  const write = (fd: number, v: bigint) => {
    put(v);
    return p.write(fd, buf, 8);
  };
  const read = (fd: number) => {
    expect(p.read(fd, buf, 8)).toBe(8);
    return get();
  };
  const ctxOf = (fd: number): EventfdCtx => {
    const ctx = eventfdCtxFdget(p.files, fd);
    eventfdCtxPut(ctx);
    return ctx;
  };
  return { k, p, buf, put, get, write, read, ctxOf };
}

/** eventfd_signal from a kernel thread, run to completion. */
function signal(k: Kernel, ctx: EventfdCtx, times = 1): void {
  k.kthreadRun(
    'signaller',
    0,
    (function* (): TaskGen<void> {
      for (let i = 0; i < times; i++) yield* eventfdSignal(ctx);
    })(),
  );
  k.settle();
}

describe('eventfd counter semantics (fs/eventfd.c)', () => {
  it('normal mode: write adds, read returns the whole count and zeroes it', () => {
    const { p, write, read } = setup();
    const fd = p.eventfd(3, 0);
    expect(write(fd, 4n)).toBe(8);
    expect(read(fd)).toBe(7n);
  });

  it('a blocking read with nobody to write: EAGAIN (interrupted, eventfd_read -ERESTARTSYS), the thread stays usable', () => {
    const { p, buf, read } = setup();
    const fd = p.eventfd(0, 0);
    expect(() => p.read(fd, buf, 8)).toThrow(/EAGAIN: read\(0\) would block forever/);
    expect(errnoOf(() => p.read(fd, buf, 8))).toBe('EAGAIN'); // not EBUSY: no read left in flight
    const w = p.eventfd(0, 0);
    p.mem.writeU64(buf, 3n);
    expect(p.write(w, buf, 8)).toBe(8);
    expect(read(w)).toBe(3n);
  });

  it('semaphore mode: each read returns 1 and decrements', () => {
    const { p, read } = setup();
    const fd = p.eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    expect(read(fd)).toBe(1n);
    expect(read(fd)).toBe(1n);
    expect(errnoOf(() => read(fd))).toBe('EAGAIN');
  });

  it('EFD_NONBLOCK: read of a zero count is EAGAIN', () => {
    const { p, buf } = setup();
    const fd = p.eventfd(0, EFD_NONBLOCK);
    expect(errnoOf(() => p.read(fd, buf, 8))).toBe('EAGAIN');
  });

  it('EINVAL: unknown flags, buffers under 8 bytes, writing 0xffffffffffffffff', () => {
    const { p, buf, write } = setup();
    expect(errnoOf(() => p.eventfd(0, 2))).toBe('EINVAL');
    expect(errnoOf(() => p.eventfd(0, -1))).toBe('EINVAL');
    const fd = p.eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC | EFD_SEMAPHORE);
    expect(p.files.getCloexec(fd)).toBe(true);
    expect(errnoOf(() => p.read(fd, buf, 7))).toBe('EINVAL');
    expect(errnoOf(() => p.write(fd, buf, 4))).toBe('EINVAL');
    expect(errnoOf(() => write(fd, 0xffff_ffff_ffff_ffffn))).toBe('EINVAL');
  });

  it('EFAULT: unmapped buffer; EBADF: closed fd', () => {
    const { p } = setup();
    const fd = p.eventfd(1, 0);
    expect(errnoOf(() => p.write(fd, 0x10, 8))).toBe('EFAULT');
    p.close(fd);
    expect(errnoOf(() => p.read(fd, 0x10, 8))).toBe('EBADF');
  });

  it('keeps the count exact near 2^64 and refuses to reach ULLONG_MAX by write (EAGAIN with O_NONBLOCK)', () => {
    const { p, write, read, ctxOf } = setup();
    const fd = p.eventfd(0, EFD_NONBLOCK);
    const max1 = 0xffff_ffff_ffff_fffen; // ULLONG_MAX - 1, the largest count a write may reach
    expect(write(fd, max1 - 5n)).toBe(8);
    expect(write(fd, 5n)).toBe(8);
    expect(ctxOf(fd).count).toBe(max1);
    expect(errnoOf(() => write(fd, 1n))).toBe('EAGAIN');
    expect(errnoOf(() => write(fd, 0n))).toBe('ok'); // adding 0 always fits
    expect(read(fd)).toBe(max1);
    expect(ctxOf(fd).count).toBe(0n);
  });

  it('eventfd_signal saturates at ULLONG_MAX and poll then reports EPOLLERR and no EPOLLOUT', () => {
    const { k, p, write, ctxOf } = setup();
    const fd = p.eventfd(0, EFD_NONBLOCK);
    write(fd, 0xffff_ffff_ffff_fffdn);
    const ctx = ctxOf(fd);
    const file = p.files.lookup(fd)!;
    expect(vfsPoll(file, null)).toBe(EPOLLIN | EPOLLOUT);
    signal(k, ctx);
    expect(ctx.count).toBe(0xffff_ffff_ffff_fffen);
    expect(vfsPoll(file, null)).toBe(EPOLLIN);
    signal(k, ctx, 2);
    expect(ctx.count).toBe(0xffff_ffff_ffff_ffffn);
    expect(vfsPoll(file, null)).toBe(EPOLLIN | EPOLLERR);
  });

  it('signal carries across the 32-bit halves', () => {
    const { k, p, write, read, ctxOf } = setup();
    const fd = p.eventfd(0xffff_ffff, 0);
    const ctx = ctxOf(fd);
    signal(k, ctx);
    expect(ctx.hi).toBe(1);
    expect(ctx.lo).toBe(0);
    write(fd, 0x1_0000_0000n);
    expect(read(fd)).toBe(0x2_0000_0000n);
  });

  it('a blocking read on one thread is woken by a write from another thread', () => {
    const { p, buf, put } = setup();
    const fd = p.eventfd(0, 0);
    const reader = p.thread('reader', 1);
    const rbuf = p.mem.alloc(8);
    const h = reader.readAsync(fd, rbuf, 8);
    p.kernel.settle();
    expect(h.done).toBe(false);
    put(42n);
    expect(p.write(fd, buf, 8)).toBe(8);
    expect(h.result()).toBe(8);
    expect(p.mem.view(rbuf, 8).getBigUint64(0, true)).toBe(42n);
  });

  it('a write that would overflow blocks until a read makes room', () => {
    const { p, read, put } = setup();
    const fd = p.eventfd(0, 0);
    const wbuf = p.mem.alloc(8);
    p.mem.view(wbuf, 8).setBigUint64(0, 0xffff_ffff_ffff_fff0n, true);
    expect(p.write(fd, wbuf, 8)).toBe(8);
    const writer = p.thread('writer', 1);
    put(0n);
    p.mem.view(wbuf, 8).setBigUint64(0, 100n, true);
    const h = writer.writeAsync(fd, wbuf, 8);
    p.kernel.settle();
    expect(h.done).toBe(false);
    expect(read(fd)).toBe(0xffff_ffff_ffff_fff0n);
    expect(h.result()).toBe(8);
    expect(read(fd)).toBe(100n);
  });

  it('exit interrupts a blocked reader with EINTR and releases everything', () => {
    const { k, p } = setup();
    const fd = p.eventfd(0, 0);
    const reader = p.thread('reader', 1);
    const h = reader.readAsync(fd, p.mem.alloc(8), 8);
    k.settle();
    p.exit();
    expect(h.done).toBe(true);
    expect(errnoOf(() => h.result())).toBe('EINTR');
    expect(k.leaks()).toEqual([]);
  });
});

describe('eventfd kernel API', () => {
  it('eventfd_ctx_fdget: EBADF for a closed fd, EINVAL for a file that is not an eventfd', () => {
    const { k, p } = setup();
    k.registerChrdev('/dev/null', { name: 'null_fops' });
    const nul = p.open('/dev/null');
    expect(errnoOf(() => eventfdCtxFdget(p.files, 99))).toBe('EBADF');
    expect(errnoOf(() => eventfdCtxFdget(p.files, -1))).toBe('EBADF');
    expect(errnoOf(() => eventfdCtxFdget(p.files, nul))).toBe('EINVAL');
    expect(errnoOf(() => eventfdFget(p.files, nul))).toBe('EINVAL');
    expect(p.files.lookup(nul)!.refs).toBe(1); // eventfd_fget dropped its reference on EINVAL
  });

  it('wait entries are called synchronously with EPOLLIN on signal, also from hardirq context', () => {
    const { k, p, write, ctxOf } = setup();
    const fd = p.eventfd(0, 0);
    const ctx = ctxOf(fd);
    const calls: string[] = [];
    const entry: WaitQueueEntry<EventfdCtx> = {
      *wake(c, key) {
        calls.push(`${c === ctx ? 'ctx' : '?'} key=${key} count=${c.count}`);
        return 0;
      },
    };
    ctx.addWaitEntry(entry);
    write(fd, 2n);
    expect(calls).toEqual([`ctx key=${EPOLLIN} count=2`]);
    // a hardirq handler signalling the eventfd
    const e = k.engine;
    e.setIrqVector(
      1,
      'irq/1',
      (function* (): TaskGen<void> {
        for (;;) {
          yield* eventfdSignal(ctx);
          e.setIrqLine(1, false);
          yield eret();
        }
      })(),
    );
    e.setIrqLine(1, true);
    k.settle();
    expect(calls).toEqual([`ctx key=${EPOLLIN} count=2`, `ctx key=${EPOLLIN} count=3`]);
    // remove_wait_queue reads and resets the count, like the kernel's
    const removed: bigint[] = [];
    k.kthreadRun(
      'irqfd_shutdown',
      0,
      (function* (): TaskGen<void> {
        removed.push(yield* eventfdCtxRemoveWaitQueue(ctx, entry));
        removed.push(yield* eventfdCtxRemoveWaitQueue(ctx, entry));
      })(),
    );
    k.settle();
    expect(removed).toEqual([3n, 0n]); // 0n is the kernel's -EAGAIN
    expect(ctx.count).toBe(0n);
    signal(k, ctx);
    expect(calls.length).toBe(2);
  });

  it('a wake callback may remove itself; the newest entry is woken first (add_wait_queue adds at the head)', () => {
    const { k, p, ctxOf } = setup();
    const ctx = ctxOf(p.eventfd(0, 0));
    const calls: string[] = [];
    const a: WaitQueueEntry<EventfdCtx> = {
      *wake(c) {
        calls.push('a');
        c.wqh.remove(a);
        return 0;
      },
    };
    const b: WaitQueueEntry<EventfdCtx> = {
      *wake() {
        calls.push('b');
        return 0;
      },
    };
    ctx.addWaitEntry(a);
    ctx.addWaitEntry(b);
    signal(k, ctx, 2);
    expect(calls).toEqual(['b', 'a', 'b']);
  });

  it('add_wait_queue_priority: priority entries run first, in the order added; a non-zero return ends the walk (__wake_up_common nr_exclusive 1), a zero return does not', () => {
    const { k, p, ctxOf } = setup();
    const ctx = ctxOf(p.eventfd(0, 0));
    const calls: string[] = [];
    let consume = true;
    const entry = (name: string, ret: () => number): WaitQueueEntry<EventfdCtx> => ({
      *wake() {
        calls.push(name);
        return ret();
      },
    });
    ctx.addWaitEntry(entry('plain', () => 0));
    ctx.addPriorityWaitEntry(entry('prio1', () => 0));
    ctx.addPriorityWaitEntry(entry('prio2', () => (consume ? 1 : 0)));
    ctx.addWaitEntry(entry('plain2', () => 0)); // add_wait_queue goes behind the priority entries
    signal(k, ctx);
    expect(calls).toEqual(['prio1', 'prio2']);
    consume = false;
    calls.length = 0;
    signal(k, ctx);
    expect(calls).toEqual(['prio1', 'prio2', 'plain2', 'plain']);
  });

  it('eventfd_ctx_do_read in semaphore mode consumes one', () => {
    const { p, ctxOf } = setup();
    const ctx = ctxOf(p.eventfd(3, EFD_SEMAPHORE));
    expect(eventfdCtxDoRead(ctx)).toBe(1);
    expect(ctx.count).toBe(2n);
    const ctx2 = ctxOf(p.eventfd(5, 0));
    expect(eventfdCtxDoRead(ctx2)).toBe(5);
    expect(eventfdCtxDoRead(ctx2)).toBe(0);
  });

  it('signalling from inside a wake callback is reported (the kernel WARNs and drops it)', () => {
    const { k, p, ctxOf } = setup();
    const ctx = ctxOf(p.eventfd(0, 0));
    const other = ctxOf(p.eventfd(0, 0));
    ctx.addWaitEntry({
      *wake() {
        yield* eventfdSignal(other);
        return 0;
      },
    });
    expect(() => signal(k, ctx)).toThrow(/in_eventfd/);
    expect(other.count).toBe(0n);
  });

  it('release: EPOLLHUP to the wait entries when the last file reference goes; the ctx lives on while referenced', () => {
    const { k, p } = setup();
    const fd = p.eventfd(0, 0);
    const ctx = eventfdCtxFdget(p.files, fd); // irqfd's reference
    const keys: number[] = [];
    ctx.addWaitEntry({
      *wake(_c, key) {
        keys.push(key);
        return 0;
      },
    });
    const file = p.files.fget(fd); // a kernel file reference too
    p.close(fd);
    expect(keys).toEqual([]);
    expect(ctx.freed).toBe(false);
    // the last file reference dropped outside any task goes to delayed fput
    fput(file);
    expect(keys).toEqual([]);
    k.settle();
    expect(keys).toEqual([EPOLLHUP]);
    expect(ctx.freed).toBe(false);
    expect(k.leaks()).toEqual([`eventfd_ctx ${ctx.name} refs=1`]);
    eventfdCtxPut(ctx);
    expect(ctx.freed).toBe(true);
    expect(k.leaks()).toEqual([]);
    expect(() => signal(k, ctx)).toThrow(/use-after-free/);
  });

  it('an eventfd signal costs the step that calls it; nothing runs for free', () => {
    const { k, p, ctxOf } = setup();
    const ctx = ctxOf(p.eventfd(0, 0));
    const before = k.engine.now;
    k.kthreadRun(
      'signaller',
      0,
      (function* (): TaskGen<void> {
        yield* eventfdSignal(ctx);
        yield op(C_NONE);
      })(),
    );
    k.settle();
    expect(ctx.count).toBe(1n);
    expect(k.engine.now).toBeGreaterThan(before);
  });
});
