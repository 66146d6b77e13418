/**
 * Linux errno numbers and the error every ABI failure of the model throws.
 *
 * Numbers: include/uapi/asm-generic/errno-base.h (1..34), include/uapi/asm-generic/errno.h (35..133; arm64 uses the
 * generic table) and the kernel-internal codes of include/linux/errno.h (512..531), which never reach a real process
 * but do appear inside virt/kvm and drivers/vfio (ENOTSUPP, ENOIOCTLCMD, EPROBE_DEFER).
 */

export const ERRNO = {
  // include/uapi/asm-generic/errno-base.h
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  ENOTBLK: 15,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  EDOM: 33,
  ERANGE: 34,
  // include/uapi/asm-generic/errno.h
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  EWOULDBLOCK: 11, // alias of EAGAIN
  ENOMSG: 42,
  EIDRM: 43,
  ECHRNG: 44,
  EL2NSYNC: 45,
  EL3HLT: 46,
  EL3RST: 47,
  ELNRNG: 48,
  EUNATCH: 49,
  ENOCSI: 50,
  EL2HLT: 51,
  EBADE: 52,
  EBADR: 53,
  EXFULL: 54,
  ENOANO: 55,
  EBADRQC: 56,
  EBADSLT: 57,
  EDEADLOCK: 35, // alias of EDEADLK
  EBFONT: 59,
  ENOSTR: 60,
  ENODATA: 61,
  ETIME: 62,
  ENOSR: 63,
  ENONET: 64,
  ENOPKG: 65,
  EREMOTE: 66,
  ENOLINK: 67,
  EADV: 68,
  ESRMNT: 69,
  ECOMM: 70,
  EPROTO: 71,
  EMULTIHOP: 72,
  EDOTDOT: 73,
  EBADMSG: 74,
  EOVERFLOW: 75,
  ENOTUNIQ: 76,
  EBADFD: 77,
  EREMCHG: 78,
  ELIBACC: 79,
  ELIBBAD: 80,
  ELIBSCN: 81,
  ELIBMAX: 82,
  ELIBEXEC: 83,
  EILSEQ: 84,
  ERESTART: 85,
  ESTRPIPE: 86,
  EUSERS: 87,
  ENOTSOCK: 88,
  EDESTADDRREQ: 89,
  EMSGSIZE: 90,
  EPROTOTYPE: 91,
  ENOPROTOOPT: 92,
  EPROTONOSUPPORT: 93,
  ESOCKTNOSUPPORT: 94,
  EOPNOTSUPP: 95,
  EPFNOSUPPORT: 96,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ENETRESET: 102,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ESHUTDOWN: 108,
  ETOOMANYREFS: 109,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTDOWN: 112,
  EHOSTUNREACH: 113,
  EALREADY: 114,
  EINPROGRESS: 115,
  ESTALE: 116,
  EUCLEAN: 117,
  ENOTNAM: 118,
  ENAVAIL: 119,
  EISNAM: 120,
  EREMOTEIO: 121,
  EDQUOT: 122,
  ENOMEDIUM: 123,
  EMEDIUMTYPE: 124,
  ECANCELED: 125,
  ENOKEY: 126,
  EKEYEXPIRED: 127,
  EKEYREVOKED: 128,
  EKEYREJECTED: 129,
  EOWNERDEAD: 130,
  ENOTRECOVERABLE: 131,
  ERFKILL: 132,
  EHWPOISON: 133,
  // include/linux/errno.h: kernel-internal, "should never be seen by user programs"
  ERESTARTSYS: 512,
  ERESTARTNOINTR: 513,
  ERESTARTNOHAND: 514,
  ENOIOCTLCMD: 515,
  ERESTART_RESTARTBLOCK: 516,
  EPROBE_DEFER: 517,
  EOPENSTALE: 518,
  ENOPARAM: 519,
  EBADHANDLE: 521,
  ENOTSYNC: 522,
  EBADCOOKIE: 523,
  ENOTSUPP: 524,
  ETOOSMALL: 525,
  ESERVERFAULT: 526,
  EBADTYPE: 527,
  EJUKEBOX: 528,
  EIOCBQUEUED: 529,
  ERECALLCONFLICT: 530,
  ENOGRACE: 531,
} as const;

export type ErrnoName = keyof typeof ERRNO;

/** Aliases that share a number with an earlier, canonical name. */
const ALIASES: ReadonlySet<ErrnoName> = new Set<ErrnoName>(['EWOULDBLOCK', 'EDEADLOCK']);

const NAME_BY_CODE: ReadonlyMap<number, ErrnoName> = (() => {
  const byCode = new Map<number, ErrnoName>();
  for (const [name, code] of Object.entries(ERRNO) as [ErrnoName, number][]) {
    if (!ALIASES.has(name)) byCode.set(code, name);
  }
  return byCode;
})();

/** The canonical name of an errno number (11 → 'EAGAIN', never 'EWOULDBLOCK'), or undefined if Linux has none. */
export function errnoName(code: number): ErrnoName | undefined {
  return NAME_BY_CODE.get(code);
}

/** An ABI failure: what the modelled syscall returns as -errno. */
export class ErrnoError extends Error {
  override name = 'ErrnoError';
  /** The errno name, e.g. 'EINVAL'. */
  readonly errno: ErrnoName;
  /** The positive errno number, e.g. 22 (the syscall returns -code). */
  readonly code: number;
  /** The sentence saying why, without the errno prefix. */
  readonly why: string;

  constructor(errno: ErrnoName, why: string) {
    super(`${errno}: ${why}`);
    this.errno = errno;
    this.code = ERRNO[errno];
    this.why = why;
  }
}

/** Builds (does not throw) the error for an ABI failure: `throw errno('EINVAL', 'irq_index 3 is out of range')`. */
export function errno(name: ErrnoName, why: string): ErrnoError {
  return new ErrnoError(name, why);
}

/** True if `e` is an ErrnoError, and (when `name` is given) carries that errno. */
export function isErrnoError(e: unknown, name?: ErrnoName): e is ErrnoError {
  return e instanceof ErrnoError && (name === undefined || e.errno === name);
}

/** The errno a call fails with, or 'ok' when it returns: `expect(errnoOf(() => p.ioctl(fd, req, arg))).toBe('EBADF')`. */
export function errnoOf(f: () => unknown): ErrnoName | 'ok' {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof ErrnoError) return e.errno;
    throw e;
  }
}
