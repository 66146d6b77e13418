import { describe, expect, it } from 'vitest';
import { errnoOf } from '../abi/errno.js';
import { FdTable } from './fdtable.js';
import { O_CLOEXEC } from './file.js';
import { Kernel } from './kernel.js';

function setup(maxFds?: number) {
  const k = new Kernel({ cpus: 1 });
  const t = new FdTable(k.engine, 'test', maxFds);
  const mk = (n: string) => k.allocFile(n, {}, undefined, 2);
  return { k, t, mk };
}

describe('FdTable (fs/file.c)', () => {
  it('hands out the lowest free fd, starting at 0 (no stdio is modelled)', () => {
    const { t, mk } = setup();
    expect(t.install(mk('a'))).toBe(0);
    expect(t.install(mk('b'))).toBe(1);
    expect(t.install(mk('c'))).toBe(2);
    t.closeFd(1).put();
    expect(t.install(mk('d'))).toBe(1);
    t.closeFd(0).put();
    t.closeFd(2).put();
    expect(t.openFds()).toEqual([1]);
    expect(t.install(mk('e'))).toBe(0);
  });

  it('a reserved fd is not handed out twice and not visible until installed', () => {
    const { t, mk } = setup();
    const fd = t.getUnusedFd();
    expect(t.getUnusedFd()).toBe(fd + 1);
    expect(errnoOf(() => t.fget(fd))).toBe('EBADF');
    t.putUnusedFd(fd + 1);
    t.installFd(fd, mk('a'));
    expect(t.lookup(fd)?.name).toBe('a');
  });

  it('EBADF for negative, out-of-range, never-opened and closed fds', () => {
    const { t, mk } = setup();
    const fd = t.install(mk('a'));
    expect(errnoOf(() => t.fget(-1))).toBe('EBADF');
    expect(errnoOf(() => t.fget(5000))).toBe('EBADF');
    expect(errnoOf(() => t.fget(7))).toBe('EBADF');
    const f = t.fget(fd);
    expect(f.refs).toBe(2);
    f.put();
    t.closeFd(fd).put();
    expect(errnoOf(() => t.fget(fd))).toBe('EBADF');
    expect(errnoOf(() => t.closeFd(fd))).toBe('EBADF');
  });

  it('EMFILE at RLIMIT_NOFILE (1024 by default)', () => {
    const { t, mk } = setup();
    for (let i = 0; i < 1024; i++) t.install(mk(`f${i}`));
    expect(errnoOf(() => t.getUnusedFd())).toBe('EMFILE');
    t.closeFd(500).put();
    expect(t.install(mk('again'))).toBe(500);
  });

  it('tracks close-on-exec per fd', () => {
    const { t, mk } = setup();
    const a = t.install(mk('a'), O_CLOEXEC);
    const b = t.install(mk('b'));
    expect(t.getCloexec(a)).toBe(true);
    expect(t.getCloexec(b)).toBe(false);
    t.setCloexec(b, true);
    expect(t.getCloexec(b)).toBe(true);
    expect(errnoOf(() => t.setCloexec(9, true))).toBe('EBADF');
  });
});
