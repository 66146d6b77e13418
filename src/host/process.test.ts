import { describe, expect, it } from 'vitest';
import { errnoOf } from '../abi/errno.js';
import { C_NONE } from '../sim/costs.js';
import { ModelError } from '../sim/errors.js';
import { op, type TaskGen } from '../sim/task.js';
import { WaitQueue, wait } from '../sim/waitqueue.js';
import { eventfdCtxFdget, eventfdCtxPut } from './eventfd.js';
import type { FileOperations } from './file.js';
import { Kernel } from './kernel.js';
import { C_SYSCALL_ENTRY, C_SYSCALL_EXIT, FIOCLEX, FIONBIO, FIONCLEX } from './process.js';

function setup(cpus = 2) {
  const k = new Kernel({ cpus });
  const log: string[] = [];
  const fops: FileOperations = {
    name: 'logdev',
    *open(file) {
      yield op(C_NONE);
      file.privateData = k.refs.created.get('file');
    },
    *release(file) {
      yield op(C_NONE);
      log.push(`release f${file.privateData}`);
    },
  };
  k.registerChrdev('/dev/log', fops);
  return { k, p: k.process(), log };
}

describe('Process: fds', () => {
  it('open returns the lowest free fd; close frees it; EBADF on a closed or never-opened fd', () => {
    const { p, log } = setup();
    expect(p.open('/dev/log')).toBe(0);
    expect(p.open('/dev/log')).toBe(1);
    expect(p.eventfd(0, 0)).toBe(2);
    expect(p.close(1)).toBe(0);
    expect(log).toEqual(['release f2']); // close(2) releases synchronously
    expect(p.open('/dev/log')).toBe(1);
    expect(errnoOf(() => p.close(7))).toBe('EBADF');
    expect(errnoOf(() => p.close(-1))).toBe('EBADF');
    expect(p.close(2)).toBe(0);
    expect(errnoOf(() => p.close(2))).toBe('EBADF');
    expect(errnoOf(() => p.ioctl(2, 0, 0))).toBe('EBADF');
  });

  it('EMFILE comes before ENOENT (get_unused_fd_flags precedes the lookup)', () => {
    const k = new Kernel({ cpus: 1 });
    const p = k.process({ maxFds: 2 });
    p.eventfd(0, 0);
    p.eventfd(0, 0);
    expect(errnoOf(() => p.open('/nope'))).toBe('EMFILE');
    expect(errnoOf(() => p.eventfd(0, 0))).toBe('EMFILE');
    expect(k.leaks('eventfd_ctx').length).toBe(2);
  });

  it('threads share the fd table and memory', () => {
    const { p } = setup();
    const t = p.thread('worker', 1);
    const fd = t.eventfd(5, 0);
    const buf = p.mem.alloc(8);
    expect(p.read(fd, buf, 8)).toBe(8);
    expect(p.mem.view(buf, 8).getBigUint64(0, true)).toBe(5n);
    expect(t.close(fd)).toBe(0);
    expect(errnoOf(() => p.close(fd))).toBe('EBADF');
  });

  it('FIONBIO sets O_NONBLOCK; FIOCLEX/FIONCLEX set close-on-exec', () => {
    const { p } = setup();
    const fd = p.eventfd(0, 0);
    const on = p.mem.alloc(4);
    p.mem.putUserS32(on, 1);
    expect(p.ioctl(fd, FIONBIO, on)).toBe(0);
    expect(errnoOf(() => p.read(fd, p.mem.alloc(8), 8))).toBe('EAGAIN');
    expect(errnoOf(() => p.ioctl(fd, FIONBIO, 0x10))).toBe('EFAULT');
    p.ioctl(fd, FIOCLEX);
    expect(p.files.getCloexec(fd)).toBe(true);
    p.ioctl(fd, FIONCLEX);
    expect(p.files.getCloexec(fd)).toBe(false);
  });

  it('rejects non-integer arguments with a TypeError (the C ABI has no such values)', () => {
    const { p } = setup();
    expect(() => p.ioctl(0.5, 1, 0)).toThrow(TypeError);
    expect(() => p.read(0, Number.NaN, 8)).toThrow(TypeError);
  });
});

describe('Process: syscalls as tasks', () => {
  it('each syscall costs at least its entry and exit', () => {
    const { k, p } = setup();
    const t0 = k.engine.now;
    p.eventfd(0, 0);
    p.close(0);
    const min = 2 * (k.engine.costs.get(C_SYSCALL_ENTRY) + k.engine.costs.get(C_SYSCALL_EXIT));
    expect(k.engine.cpus[0]!.readyAt - t0).toBeGreaterThanOrEqual(min);
  });

  it('a scripted VMM runs several syscalls inside one task with the sys* generators', () => {
    const { k, p } = setup();
    const script = function* (): TaskGen<number> {
      const efd = yield* p.sysEventfd(2, 0);
      const buf = p.mem.alloc(8);
      yield* p.sysRead(efd, buf, 8);
      yield* p.sysClose(efd);
      return Number(p.mem.view(buf, 8).getBigUint64(0, true));
    };
    const h = p.thread('script', 1).submit('script', script());
    expect(h.done).toBe(false);
    k.settle();
    expect(h.done).toBe(true);
    expect(h.result()).toBe(2);
    expect(k.leaks()).toEqual([]);
  });

  it('an ioctl that blocks on one thread does not stop the main thread', () => {
    const { k, p } = setup();
    const gate = new WaitQueue(k.engine, 'run');
    let go = false;
    k.registerChrdev('/dev/vcpu', {
      *unlockedIoctl(_f, cmd) {
        yield op(C_NONE);
        if (cmd === 1) {
          while (!go) yield wait(gate);
          return 42;
        }
        go = true;
        gate.wakeUpAll();
        return 0;
      },
    });
    const fd = p.open('/dev/vcpu');
    const run = p.thread('vcpu0', 1).ioctlAsync(fd, 1, 0);
    k.settle();
    expect(run.done).toBe(false);
    expect(p.eventfd(0, 0)).toBe(1);
    expect(p.ioctl(fd, 2, 0)).toBe(0);
    expect(run.result()).toBe(42);
  });

  it('calling the synchronous API from inside a task is a ModelError', () => {
    const { k, p } = setup();
    k.kthreadRun(
      'bad',
      0,
      (function* (): TaskGen<void> {
        yield op(C_NONE);
        p.eventfd(0, 0);
      })(),
    );
    expect(() => k.settle()).toThrow(ModelError);
  });

  it('a thread is busy while its async syscall runs', () => {
    const { k, p } = setup();
    const efd = p.eventfd(0, 0);
    const t = p.thread('r', 1);
    t.readAsync(efd, p.mem.alloc(8), 8);
    expect(() => t.eventfd(0, 0)).toThrow(/still in read/);
    p.exit();
    expect(k.leaks()).toEqual([]);
  });
});

describe('Process: exit', () => {
  it('closes every fd in fd order; releases run as task_work, newest first; nothing leaks', () => {
    const { k, p, log } = setup();
    p.open('/dev/log');
    p.open('/dev/log');
    p.open('/dev/log');
    p.exit();
    expect(log).toEqual(['release f3', 'release f2', 'release f1']);
    expect(k.leaks()).toEqual([]);
    expect(() => p.open('/dev/log')).toThrow(/exited/);
  });

  it('an eventfd_ctx reference held by the kernel outlives the process and is the only leak until put', () => {
    const { k, p } = setup();
    const fd = p.eventfd(0, 0);
    const ctx = eventfdCtxFdget(p.files, fd);
    p.exit();
    expect(k.leaks()).toEqual([`eventfd_ctx ${ctx.name} refs=1`]);
    eventfdCtxPut(ctx);
    expect(k.leaks()).toEqual([]);
  });
});
