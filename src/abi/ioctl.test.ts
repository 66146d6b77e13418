import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  _IO,
  _IOC,
  _IOC_DIR,
  _IOC_NONE,
  _IOC_NR,
  _IOC_READ,
  _IOC_SIZE,
  _IOC_TYPE,
  _IOC_WRITE,
  _IOR,
  _IOW,
  _IOWR,
  IOC_IN,
  IOC_INOUT,
  IOC_OUT,
  IOCSIZE_MASK,
  ioctlDecode,
  ioctlToString,
} from './ioctl.js';

describe('asm-generic ioctl encoding', () => {
  it('packs dir|size|type|nr into 2|14|8|8 bits', () => {
    expect(_IO(0xae, 0x01)).toBe(0xae01);
    expect(_IOW(0xae, 0xe1, 24)).toBe(0x4018aee1);
    expect(_IOR(0xae, 0xaf, 32)).toBe(0x8020aeaf);
    expect(_IOWR(0xae, 0xe0, 12)).toBe(0xc00caee0);
    expect(_IOC(_IOC_NONE, 0x3b, 0x6e, 0)).toBe(0x3b6e);
  });

  it('yields unsigned 32-bit numbers even with the top bit set', () => {
    const req = _IOWR(0xff, 0xff, 0x3fff);
    expect(req).toBe(0xffffffff);
    expect(req).toBeGreaterThan(0);
  });

  it('has the dir constants and masks of the header', () => {
    expect([_IOC_NONE, _IOC_WRITE, _IOC_READ]).toEqual([0, 1, 2]);
    expect(IOC_IN).toBe(0x40000000);
    expect(IOC_OUT).toBe(0x80000000);
    expect(IOC_INOUT).toBe(0xc0000000);
    expect(IOCSIZE_MASK).toBe(0x3fff0000);
  });

  it('decodes what it encodes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 0xff }),
        fc.integer({ min: 0, max: 0xff }),
        fc.integer({ min: 0, max: 0x3fff }),
        (dir, type, nr, size) => {
          const req = _IOC(dir, type, nr, size);
          expect(req).toBeGreaterThanOrEqual(0);
          expect(req).toBeLessThanOrEqual(0xffffffff);
          expect([_IOC_DIR(req), _IOC_TYPE(req), _IOC_NR(req), _IOC_SIZE(req)]).toEqual([dir, type, nr, size]);
        },
      ),
    );
  });

  it('rejects fields that do not fit as a model bug', () => {
    expect(() => _IOW(0xae, 0x61, 0x4000)).toThrow(TypeError);
    expect(() => _IO(0x100, 0)).toThrow(TypeError);
    expect(() => _IO(0xae, -1)).toThrow(TypeError);
    expect(() => _IOC(4, 0, 0, 0)).toThrow(TypeError);
  });

  it('renders requests as their macro', () => {
    expect(ioctlToString(0xae80)).toBe('_IO(0xae, 0x80)');
    expect(ioctlToString(0x4018aee1)).toBe('_IOW(0xae, 0xe1, 24)');
    expect(ioctlToString(0x8020aeaf)).toBe('_IOR(0xae, 0xaf, 32)');
    expect(ioctlToString(0xc00caee0)).toBe('_IOWR(0xae, 0xe0, 12)');
  });
});

describe('ioctlDecode', () => {
  it('splits any 32-bit request into fields that rebuild it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (req) => {
        const { dir, type, nr, size } = ioctlDecode(req);
        expect(_IOC(dir, type, nr, size)).toBe(req);
      }),
    );
  });

  it('names the fields of KVM_SET_DEVICE_ATTR', () => {
    expect(ioctlDecode(0x4018aee1)).toEqual({ dir: _IOC_WRITE, type: 0xae, nr: 0xe1, size: 24 });
  });
});
