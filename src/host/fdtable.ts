/**
 * struct files_struct / fdtable (fs/file.c): the process's file descriptors.
 *
 * - Allocation takes the lowest free number (alloc_fd). We model no stdio: 0, 1 and 2 are free in a new process,
 *   so the first file a process opens gets fd 0 (a VMM under test has no terminal; tests may open three dummies
 *   if they want the usual numbering).
 * - get_unused_fd_flags reserves the number before the file exists (so a concurrent open cannot take it);
 *   installFd (fd_install) fills it, putUnusedFd gives it back on failure.
 * - RLIMIT_NOFILE is 1024 (the usual soft limit): fd numbers 0..1023; asking for more fails with EMFILE.
 * - fget(fd) takes a file reference (EBADF for a negative, out-of-range, reserved or closed fd); closeFd removes
 *   the entry and hands the table's reference to the caller (file_close_fd).
 */
import { errno } from '../abi/errno.js';
import type { Engine } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { fget as getFile, type KFile, O_CLOEXEC } from './file.js';

export const RLIMIT_NOFILE = 1024;

const RESERVED = 'reserved';
type Slot = KFile | typeof RESERVED | null;

export class FdTable {
  private readonly slots: Slot[] = [];
  private readonly cloexec: boolean[] = [];
  /** Shared-object id (files->file_lock) for checker independence. */
  readonly oid: number;

  constructor(
    engine: Engine,
    readonly name: string,
    readonly maxFds = RLIMIT_NOFILE,
  ) {
    this.oid = engine.newOid(`files:${name}`);
  }

  /** get_unused_fd_flags: reserve the lowest free fd. EMFILE at RLIMIT_NOFILE. */
  getUnusedFd(flags = 0): number {
    let fd = this.slots.indexOf(null);
    if (fd < 0) fd = this.slots.length;
    if (fd >= this.maxFds) throw errno('EMFILE', `all ${this.maxFds} file descriptors (RLIMIT_NOFILE) are in use`);
    this.slots[fd] = RESERVED;
    this.cloexec[fd] = (flags & O_CLOEXEC) !== 0;
    return fd;
  }

  /** put_unused_fd: give back a reserved fd that never got a file. */
  putUnusedFd(fd: number): void {
    if (this.slots[fd] !== RESERVED) throw new ModelError(`put_unused_fd(${fd}): fd is not reserved`);
    this.slots[fd] = null;
    this.trim();
  }

  /** fd_install: the table takes over the caller's reference to `file`. */
  installFd(fd: number, file: KFile): void {
    if (this.slots[fd] !== RESERVED) throw new ModelError(`fd_install(${fd}): fd was not reserved`);
    file.checkAlive('fd_install');
    this.slots[fd] = file;
  }

  /** Reserve + install in one go; returns the fd. */
  install(file: KFile, flags = 0): number {
    const fd = this.getUnusedFd(flags);
    this.installFd(fd, file);
    return fd;
  }

  /**
   * do_dup2's table part: install `file` (the caller's new reference) at `fd` with its close-on-exec flag, and hand
   * back the table's reference to the file that was there, if any (the caller closes it). EBUSY if `fd` is reserved
   * by an open still in progress.
   */
  replaceFd(fd: number, file: KFile, cloexec: boolean): KFile | undefined {
    if (!Number.isInteger(fd) || fd < 0 || fd >= this.maxFds) throw new ModelError(`replaceFd(${fd}): out of range`);
    if (this.slots[fd] === RESERVED) throw errno('EBUSY', `fd ${fd} is being installed by another open`);
    const old = this.lookup(fd);
    file.checkAlive('do_dup2');
    while (this.slots.length <= fd) {
      this.slots.push(null);
      this.cloexec.push(false);
    }
    this.slots[fd] = file;
    this.cloexec[fd] = cloexec;
    return old;
  }

  /** The file at `fd` without taking a reference, or undefined. */
  lookup(fd: number): KFile | undefined {
    if (!Number.isInteger(fd) || fd < 0) return undefined;
    const s = this.slots[fd];
    return s === undefined || s === null || s === RESERVED ? undefined : s;
  }

  /** fget(fd): a new reference to the file at fd, or EBADF. */
  fget(fd: number): KFile {
    const f = this.lookup(fd);
    if (f === undefined) throw errno('EBADF', `fd ${fd} is not an open file descriptor`);
    return getFile(f);
  }

  /** file_close_fd: remove fd and return the table's reference to its file; EBADF if not open. */
  closeFd(fd: number): KFile {
    const f = this.lookup(fd);
    if (f === undefined) throw errno('EBADF', `fd ${fd} is not an open file descriptor`);
    this.slots[fd] = null;
    this.cloexec[fd] = false;
    this.trim();
    return f;
  }

  getCloexec(fd: number): boolean {
    return this.lookup(fd) !== undefined && this.cloexec[fd] === true;
  }

  /** FIOCLEX / FIONCLEX / fcntl(F_SETFD). */
  setCloexec(fd: number, on: boolean): void {
    if (this.lookup(fd) === undefined) throw errno('EBADF', `fd ${fd} is not an open file descriptor`);
    this.cloexec[fd] = on;
  }

  /** Open fds in increasing order. */
  openFds(): number[] {
    const out: number[] = [];
    for (let fd = 0; fd < this.slots.length; fd++) if (this.lookup(fd) !== undefined) out.push(fd);
    return out;
  }

  get count(): number {
    return this.openFds().length;
  }

  private trim(): void {
    while (this.slots.length > 0 && this.slots[this.slots.length - 1] === null) {
      this.slots.pop();
      this.cloexec.pop();
    }
  }
}
