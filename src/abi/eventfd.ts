/**
 * include/uapi/linux/eventfd.h and the open-file flags the model's file layer needs (arm64 uses the generic
 * include/uapi/asm-generic/fcntl.h values). EFD_CLOEXEC / EFD_NONBLOCK are defined as O_CLOEXEC / O_NONBLOCK.
 *
 * eventfd semantics (fs/eventfd.c), for the issue-3 implementation: the counter is a __u64; read(2) and write(2)
 * move exactly 8 bytes in native (little-endian) order; a buffer under 8 bytes is EINVAL; writing
 * 0xffffffffffffffff is EINVAL; a write that would push the counter above EVENTFD_MAX blocks (EAGAIN with
 * EFD_NONBLOCK); a read of a zero counter blocks (EAGAIN with EFD_NONBLOCK); a read returns the counter and zeroes
 * it, or with EFD_SEMAPHORE returns 1 and decrements it. eventfd2 flags outside EFD_FLAGS_SET are EINVAL.
 */

// include/uapi/asm-generic/fcntl.h
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_ACCMODE = 0o3;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

// include/uapi/linux/eventfd.h
export const EFD_SEMAPHORE = 1 << 0;
export const EFD_CLOEXEC = O_CLOEXEC;
export const EFD_NONBLOCK = O_NONBLOCK;

// include/linux/eventfd.h (kernel-internal, but it defines what eventfd2 accepts)
export const EFD_SHARED_FCNTL_FLAGS = O_CLOEXEC | O_NONBLOCK;
export const EFD_FLAGS_SET = EFD_SHARED_FCNTL_FLAGS | EFD_SEMAPHORE;

/** Bytes a read(2)/write(2) on an eventfd transfers. */
export const EVENTFD_COUNT_SIZE = 8;
/** The largest value the counter can hold: ULLONG_MAX - 1 (fs/eventfd.c). */
export const EVENTFD_MAX = 0xffff_ffff_ffff_fffen;
/** The one value write(2) refuses outright with EINVAL. */
export const EVENTFD_WRITE_INVALID = 0xffff_ffff_ffff_ffffn;
