/** dup / dup2 / dup3 (fs/file.c: SYSCALL dup, dup2, ksys_dup3, do_dup2) and tgkill of a thread (UThread.kill). */
import { describe, expect, it } from 'vitest';
import { errnoOf } from '../abi/errno.js';
import { C_NONE } from '../sim/costs.js';
import { op } from '../sim/task.js';
import { EFD_NONBLOCK } from './eventfd.js';
import { type FileOperations, O_CLOEXEC } from './file.js';
import { Kernel } from './kernel.js';

function setup() {
  const k = new Kernel({ cpus: 2 });
  const log: string[] = [];
  let n = 0;
  const fops: FileOperations = {
    name: 'logdev',
    *open(file) {
      yield op(C_NONE);
      file.privateData = ++n;
    },
    *release(file) {
      yield op(C_NONE);
      log.push(`release f${file.privateData}`);
    },
  };
  k.registerChrdev('/dev/log', fops);
  return { k, p: k.process(), log };
}

describe('dup / dup2 / dup3 (fs/file.c)', () => {
  it('dup: the lowest free fd shares the open file; the file is released only when both are closed', () => {
    const { p, log } = setup();
    const a = p.open('/dev/log');
    const e = p.eventfd(0, 0);
    expect(p.dup(a)).toBe(2);
    expect(p.files.lookup(2)).toBe(p.files.lookup(a));
    expect(p.files.lookup(a)!.refs).toBe(2);
    p.close(a);
    expect(log).toEqual([]);
    p.close(2);
    expect(log).toEqual(['release f1']);
    // the new fd shares the file offset/flags: a write through one is read through the other
    const d = p.dup(e);
    const buf = p.mem.alloc(8);
    p.mem.writeU64(buf, 5n);
    p.write(d, buf, 8);
    p.read(e, buf, 8);
    expect(p.mem.readU64(buf)).toBe(5n);
    expect(errnoOf(() => p.dup(9))).toBe('EBADF');
  });

  it('dup2 onto an open fd closes what was there (do_dup2 → filp_close); dup2(fd, fd) returns fd if open', () => {
    const { p, log } = setup();
    const a = p.open('/dev/log');
    const b = p.open('/dev/log');
    expect(p.dup2(a, b)).toBe(b);
    expect(log).toEqual(['release f2']);
    expect(p.files.lookup(b)).toBe(p.files.lookup(a));
    expect(p.dup2(a, a)).toBe(a);
    expect(errnoOf(() => p.dup2(7, 7))).toBe('EBADF');
    expect(p.dup2(a, 10)).toBe(10); // past the end of the table: the table grows
    expect(p.files.openFds()).toEqual([0, 1, 10]);
    p.close(a);
    p.close(b);
    expect(log).toEqual(['release f2']);
    p.close(10);
    expect(log).toEqual(['release f2', 'release f1']);
  });

  it('errnos: EBADF closed oldfd or newfd ≥ RLIMIT_NOFILE (nothing closed), EINVAL dup3 flags / same fd, EMFILE', () => {
    const k = new Kernel({ cpus: 1 });
    const p = k.process({ maxFds: 2 });
    const a = p.eventfd(0, 0);
    expect(errnoOf(() => p.dup2(5, a))).toBe('EBADF');
    expect(p.files.lookup(a)).toBeDefined();
    expect(errnoOf(() => p.dup2(a, 2))).toBe('EBADF');
    expect(errnoOf(() => p.dup2(a, -1))).toBe('EBADF');
    expect(errnoOf(() => p.dup3(a, 1, EFD_NONBLOCK))).toBe('EINVAL');
    expect(errnoOf(() => p.dup3(a, a, 0))).toBe('EINVAL');
    expect(p.dup3(a, 1, O_CLOEXEC)).toBe(1);
    expect(p.files.getCloexec(1)).toBe(true);
    expect(errnoOf(() => p.dup(a))).toBe('EMFILE');
    expect(k.leaks('eventfd_ctx').length).toBe(1);
  });
});

describe('UThread.kill (tgkill → signal_wake_up)', () => {
  it('a blocking eventfd read returns EINTR; the signal is consumed on return, so the next read blocks again', () => {
    const { k, p } = setup();
    const t = p.thread('reader', 1);
    const e = p.eventfd(0, 0);
    const buf = p.mem.alloc(8);
    const h = t.readAsync(e, buf, 8);
    k.settle();
    expect(h.done).toBe(false);
    t.kill(10);
    expect(errnoOf(() => h.result())).toBe('EINTR');
    const h2 = t.readAsync(e, buf, 8);
    k.settle();
    expect(h2.done).toBe(false);
    p.write(e, p.mem.allocBytes(new Uint8Array([3, 0, 0, 0, 0, 0, 0, 0])), 8);
    expect(h2.result()).toBe(8);
  });

  it('EINVAL outside 0..64; signal 0 and an idle thread change nothing', () => {
    const { p } = setup();
    expect(errnoOf(() => p.main.kill(65))).toBe('EINVAL');
    expect(errnoOf(() => p.main.kill(-1))).toBe('EINVAL');
    p.main.kill(0);
    p.main.kill(10); // handled in user space at once: no syscall to interrupt
    expect(p.main.ut.signals).toBe(0n);
    expect(p.eventfd(1, 0)).toBe(0);
  });
});
