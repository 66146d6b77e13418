import { describe, expect, it } from 'vitest';
import { ERRNO, ErrnoError, errno, errnoName, isErrnoError } from './errno.js';

describe('errno table', () => {
  it('matches asm-generic/errno-base.h', () => {
    expect(ERRNO.EPERM).toBe(1);
    expect(ERRNO.ENOENT).toBe(2);
    expect(ERRNO.ENXIO).toBe(6);
    expect(ERRNO.EBADF).toBe(9);
    expect(ERRNO.EAGAIN).toBe(11);
    expect(ERRNO.ENOMEM).toBe(12);
    expect(ERRNO.EFAULT).toBe(14);
    expect(ERRNO.EBUSY).toBe(16);
    expect(ERRNO.EEXIST).toBe(17);
    expect(ERRNO.ENODEV).toBe(19);
    expect(ERRNO.EINVAL).toBe(22);
    expect(ERRNO.ENOTTY).toBe(25);
    expect(ERRNO.ENOSPC).toBe(28);
    expect(ERRNO.ERANGE).toBe(34);
  });

  it('has every number 1..34 of errno-base.h exactly once', () => {
    const base = Object.entries(ERRNO).filter(([name, n]) => n <= 34 && name !== 'EWOULDBLOCK');
    expect(base.map(([, n]) => n).sort((a, b) => a - b)).toEqual(Array.from({ length: 34 }, (_, i) => i + 1));
  });

  it('matches asm-generic/errno.h and include/linux/errno.h', () => {
    expect(ERRNO.EDEADLK).toBe(35);
    expect(ERRNO.ENAMETOOLONG).toBe(36);
    expect(ERRNO.ENOSYS).toBe(38);
    expect(ERRNO.ENOTEMPTY).toBe(39);
    expect(ERRNO.ELOOP).toBe(40);
    expect(ERRNO.ENODATA).toBe(61);
    expect(ERRNO.EOVERFLOW).toBe(75);
    expect(ERRNO.EOPNOTSUPP).toBe(95);
    expect(ERRNO.EHWPOISON).toBe(133);
    expect(ERRNO.ENOIOCTLCMD).toBe(515);
    expect(ERRNO.EPROBE_DEFER).toBe(517);
    expect(ERRNO.ENOTSUPP).toBe(524);
  });

  it('maps numbers back to canonical names, never to aliases', () => {
    expect(errnoName(22)).toBe('EINVAL');
    expect(errnoName(11)).toBe('EAGAIN');
    expect(errnoName(35)).toBe('EDEADLK');
    expect(errnoName(41)).toBeUndefined();
    expect(ERRNO.EWOULDBLOCK).toBe(ERRNO.EAGAIN);
    expect(ERRNO.EDEADLOCK).toBe(ERRNO.EDEADLK);
  });
});

describe('ErrnoError', () => {
  it('carries the name, the positive number and a prefixed message', () => {
    const e = errno('EINVAL', 'irq_index 3 is out of range (device has 2 IRQs)');
    expect(e).toBeInstanceOf(ErrnoError);
    expect(e).toBeInstanceOf(Error);
    expect(e.errno).toBe('EINVAL');
    expect(e.code).toBe(22);
    expect(e.why).toBe('irq_index 3 is out of range (device has 2 IRQs)');
    expect(e.message).toBe('EINVAL: irq_index 3 is out of range (device has 2 IRQs)');
    expect(e.name).toBe('ErrnoError');
  });

  it('is returned, not thrown, by errno()', () => {
    expect(() => errno('EBUSY', 'already forwarded')).not.toThrow();
    expect(() => {
      throw errno('EBUSY', 'already forwarded');
    }).toThrow('EBUSY: already forwarded');
  });

  it('is recognised by isErrnoError, optionally by name', () => {
    const e = errno('ENOTTY', 'unknown ioctl');
    expect(isErrnoError(e)).toBe(true);
    expect(isErrnoError(e, 'ENOTTY')).toBe(true);
    expect(isErrnoError(e, 'EINVAL')).toBe(false);
    expect(isErrnoError(new Error('EINVAL: x'))).toBe(false);
    expect(isErrnoError({ errno: 'EINVAL', code: 22 })).toBe(false);
    expect(isErrnoError(undefined)).toBe(false);
  });
});
