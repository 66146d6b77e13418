import { describe, expect, it } from 'vitest';
import { errno, errnoOf } from '../abi/errno.js';
import { C_NONE } from '../sim/costs.js';
import { current, eret, op, type TaskGen } from '../sim/task.js';
import { WaitQueue, wait } from '../sim/waitqueue.js';
import { type FileOperations, fget, fput, type KFile, O_WRONLY } from './file.js';
import { Kernel } from './kernel.js';

/** A test character device whose ioctls take and drop kernel references and log what happens. */
function setup() {
  const k = new Kernel({ cpus: 2 });
  const log: string[] = [];
  const stash: KFile[] = [];
  const gate = new WaitQueue(k.engine, 'gate');
  let open = false;
  const fops: FileOperations = {
    name: 'testdev',
    *release(file) {
      yield op(C_NONE, file.oid);
      log.push(`release ${file.privateData} on ${current().comm}`);
    },
    *open(file) {
      yield op(C_NONE);
      file.privateData = `f${k.refs.created.get('file')}`;
    },
    *unlockedIoctl(file, cmd) {
      yield op(C_NONE, file.oid);
      switch (cmd) {
        case 1: // keep a kernel reference
          stash.push(fget(file));
          return 0;
        case 2: // drop the stashed reference inside the body
          fput(stash.pop()!);
          log.push('ioctl 2 body done');
          return 0;
        case 3:
          return -515; // -ENOIOCTLCMD
        case 4:
          return -22;
        case 5:
          throw errno('ENOIOCTLCMD', 'unknown');
        case 6:
          while (!open) yield wait(gate);
          log.push('ioctl 6 body done');
          return 6;
        default:
          throw errno('ENOTTY', 'unknown');
      }
    },
  };
  k.registerChrdev('/dev/test', fops);
  k.registerChrdev('/dev/null', { name: 'null_fops' });
  const p = k.process();
  const release = () => {
    open = true;
    gate.wakeUpAll();
  };
  return { k, p, log, stash, release };
}

describe('struct file lifetime (fs/file_table.c)', () => {
  it('release runs only after the last fd is closed AND the last kernel reference is dropped', () => {
    const { k, p, log, stash } = setup();
    const fd = p.open('/dev/test');
    p.ioctl(fd, 1);
    expect(stash[0]!.refs).toBe(2);
    p.close(fd);
    expect(log).toEqual([]);
    expect(k.leaks('file')).toEqual(['file /dev/test refs=1']);
    // a kernel thread drops the last reference: delayed fput on the system workqueue
    k.kthreadRun(
      'dropper',
      1,
      (function* (): TaskGen<void> {
        yield op(C_NONE);
        fput(stash.pop()!);
      })(),
    );
    k.settle();
    expect(log).toEqual(['release f1 on kworker/1:events']);
    expect(k.delayedFputs).toBe(1);
    expect(k.leaks()).toEqual([]);
  });

  it('a last reference dropped inside a syscall body is released after the body, before the syscall returns', () => {
    const { k, p, log } = setup();
    const fd1 = p.open('/dev/test');
    p.ioctl(fd1, 1);
    p.close(fd1);
    const fd2 = p.open('/dev/test');
    expect(fd2).toBe(fd1);
    expect(p.ioctl(fd2, 2)).toBe(0);
    expect(log).toEqual(['ioctl 2 body done', 'release f1 on vmm']);
    expect(k.delayedFputs).toBe(0);
  });

  it('close while another thread is inside an ioctl on the same fd: that ioctl releases the file on its way out', () => {
    const { k, p, log, release } = setup();
    const fd = p.open('/dev/test');
    const t = p.thread('vcpu0', 1);
    const h = t.ioctlAsync(fd, 6, 0);
    k.settle();
    expect(p.close(fd)).toBe(0);
    expect(log).toEqual([]); // the ioctl's fget reference keeps the file
    release();
    expect(h.result()).toBe(6);
    expect(log).toEqual(['ioctl 6 body done', 'release f1 on vcpu0']);
  });

  it('a reference dropped in hardirq context goes to delayed fput', () => {
    const { k, p, log, stash } = setup();
    const fd = p.open('/dev/test');
    p.ioctl(fd, 1);
    p.close(fd);
    const e = k.engine;
    e.setIrqVector(
      0,
      'irq/0',
      (function* (): TaskGen<void> {
        for (;;) {
          yield op(C_NONE);
          const f = stash.pop();
          if (f) fput(f);
          e.setIrqLine(0, false);
          yield eret();
        }
      })(),
    );
    e.setIrqLine(0, true);
    k.settle();
    expect(log).toEqual(['release f1 on kworker/0:events']);
  });

  it('a failed f_op->open frees the file without release and gives the fd back', () => {
    const { k, p } = setup();
    let calls = 0;
    k.registerChrdev('/dev/busy', {
      *open() {
        yield op(C_NONE);
        throw errno('EBUSY', 'already open');
      },
      *release() {
        yield op(C_NONE);
        calls++;
      },
    });
    expect(errnoOf(() => p.open('/dev/busy'))).toBe('EBUSY');
    expect(calls).toBe(0);
    expect(k.leaks()).toEqual([]);
    expect(p.open('/dev/null')).toBe(0);
  });
});

describe('VFS entry points', () => {
  it('ioctl: ENOTTY without unlocked_ioctl, ENOIOCTLCMD becomes ENOTTY, negative returns become errnos', () => {
    const { p } = setup();
    const nul = p.open('/dev/null');
    const t = p.open('/dev/test');
    expect(errnoOf(() => p.ioctl(nul, 0x1234, 0))).toBe('ENOTTY');
    expect(errnoOf(() => p.ioctl(t, 3, 0))).toBe('ENOTTY');
    expect(errnoOf(() => p.ioctl(t, 5, 0))).toBe('ENOTTY');
    expect(errnoOf(() => p.ioctl(t, 4, 0))).toBe('EINVAL');
    expect(errnoOf(() => p.ioctl(99, 1, 0))).toBe('EBADF');
  });

  it('read/write: EINVAL without a method (vfs_read), EBADF on a file not open for reading', () => {
    const { p } = setup();
    const buf = p.mem.alloc(8);
    const nul = p.open('/dev/null');
    expect(errnoOf(() => p.read(nul, buf, 8))).toBe('EINVAL');
    expect(errnoOf(() => p.write(nul, buf, 8))).toBe('EINVAL');
    const wo = p.open('/dev/null', O_WRONLY);
    expect(errnoOf(() => p.read(wo, buf, 8))).toBe('EBADF');
    expect(errnoOf(() => p.write(wo, buf, 8))).toBe('EINVAL');
    const efd = p.eventfd(1, 0);
    expect(errnoOf(() => p.read(efd, -1, 8))).toBe('EFAULT'); // access_ok fails before f_op->read
    expect(errnoOf(() => p.read(efd, 2 ** 48 - 4, 8))).toBe('EFAULT');
  });
});
