/**
 * ioctl request encoding, as include/uapi/asm-generic/ioctl.h (arm64 uses the generic layout).
 *
 * bits 31..30 dir | 29..16 size | 15..8 type | 7..0 nr. Every result is an unsigned 32-bit number.
 */

export const _IOC_NRBITS = 8;
export const _IOC_TYPEBITS = 8;
export const _IOC_SIZEBITS = 14;
export const _IOC_DIRBITS = 2;

export const _IOC_NRMASK = (1 << _IOC_NRBITS) - 1;
export const _IOC_TYPEMASK = (1 << _IOC_TYPEBITS) - 1;
export const _IOC_SIZEMASK = (1 << _IOC_SIZEBITS) - 1;
export const _IOC_DIRMASK = (1 << _IOC_DIRBITS) - 1;

export const _IOC_NRSHIFT = 0;
export const _IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS;
export const _IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS;
export const _IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS;

/** No data transfer. */
export const _IOC_NONE = 0;
/** Userland writes, the kernel reads. */
export const _IOC_WRITE = 1;
/** Userland reads, the kernel writes. */
export const _IOC_READ = 2;

export const IOC_IN = (_IOC_WRITE << _IOC_DIRSHIFT) >>> 0;
export const IOC_OUT = (_IOC_READ << _IOC_DIRSHIFT) >>> 0;
export const IOC_INOUT = ((_IOC_WRITE | _IOC_READ) << _IOC_DIRSHIFT) >>> 0;
export const IOCSIZE_MASK = (_IOC_SIZEMASK << _IOC_SIZESHIFT) >>> 0;
export const IOCSIZE_SHIFT = _IOC_SIZESHIFT;

function checkField(what: string, value: number, mask: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > mask) {
    throw new TypeError(`_IOC: ${what} ${String(value)} does not fit its ${mask.toString(2).length}-bit field`);
  }
}

/** Packs an ioctl request number. A field that does not fit is a TypeError (the C macro would silently corrupt it). */
export function _IOC(dir: number, type: number, nr: number, size: number): number {
  checkField('dir', dir, _IOC_DIRMASK);
  checkField('type', type, _IOC_TYPEMASK);
  checkField('nr', nr, _IOC_NRMASK);
  checkField('size', size, _IOC_SIZEMASK);
  return ((dir << _IOC_DIRSHIFT) | (type << _IOC_TYPESHIFT) | (nr << _IOC_NRSHIFT) | (size << _IOC_SIZESHIFT)) >>> 0;
}

export function _IO(type: number, nr: number): number {
  return _IOC(_IOC_NONE, type, nr, 0);
}

/** `size` is sizeof the argument struct (the C macro's _IOC_TYPECHECK). */
export function _IOR(type: number, nr: number, size: number): number {
  return _IOC(_IOC_READ, type, nr, size);
}

export function _IOW(type: number, nr: number, size: number): number {
  return _IOC(_IOC_WRITE, type, nr, size);
}

export function _IOWR(type: number, nr: number, size: number): number {
  return _IOC(_IOC_READ | _IOC_WRITE, type, nr, size);
}

export function _IOC_DIR(req: number): number {
  return (req >>> _IOC_DIRSHIFT) & _IOC_DIRMASK;
}

export function _IOC_TYPE(req: number): number {
  return (req >>> _IOC_TYPESHIFT) & _IOC_TYPEMASK;
}

export function _IOC_NR(req: number): number {
  return (req >>> _IOC_NRSHIFT) & _IOC_NRMASK;
}

export function _IOC_SIZE(req: number): number {
  return (req >>> _IOC_SIZESHIFT) & _IOC_SIZEMASK;
}

const DIR_MACRO = ['_IO', '_IOW', '_IOR', '_IOWR'] as const;

/** Renders a request as the macro that builds it, e.g. `_IOW(0xae, 0xe1, 24)`, for traces and error messages. */
export function ioctlToString(req: number): string {
  const dir = _IOC_DIR(req);
  const type = `0x${_IOC_TYPE(req).toString(16)}`;
  const nr = `0x${_IOC_NR(req).toString(16)}`;
  const size = _IOC_SIZE(req);
  if (dir === _IOC_NONE) return size === 0 ? `_IO(${type}, ${nr})` : `_IOC(_IOC_NONE, ${type}, ${nr}, ${size})`;
  return `${DIR_MACRO[dir]}(${type}, ${nr}, ${size})`;
}

/** The four fields of a request number. */
export interface IoctlFields {
  readonly dir: number;
  readonly type: number;
  readonly nr: number;
  readonly size: number;
}

/** Splits a request number into its fields; `_IOC(dir, type, nr, size)` of the result gives `req` back. */
export function ioctlDecode(req: number): IoctlFields {
  return { dir: _IOC_DIR(req), type: _IOC_TYPE(req), nr: _IOC_NR(req), size: _IOC_SIZE(req) };
}
