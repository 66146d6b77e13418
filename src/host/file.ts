/**
 * struct file and struct file_operations (include/linux/fs.h), the VFS entry points the syscalls use
 * (fs/read_write.c vfs_read/vfs_write, fs/ioctl.c vfs_ioctl, vfs_poll), and the wait-queue head that poll-based
 * kernel consumers (irqfd, virqfd) hook with custom wake functions.
 *
 * Lifetime: a KFile starts with one reference (the one fd_install hands to the fd table, or the one the creator
 * holds). `fget`/`fput` take and drop references. When the last reference goes, the release does NOT run inside
 * fput: as fs/file_table.c fput does, it is deferred — to the current user thread's task_work (run after the
 * syscall body, before the return to user space) or, from a kernel thread or interrupt context, to the
 * delayed-fput work item. The FileHost (the Kernel) decides which; `fputFinal` (the kernel's __fput) then runs
 * f_op->release and frees the file. close(2) drops its reference with `fputCloseSync` (fs/open.c: close uses
 * fput_close_sync, a synchronous __fput, since it is about to return to user space anyway).
 */
import { ErrnoError, errno, errnoName } from '../abi/errno.js';
import { defineCost } from '../sim/costs.js';
import type { Engine } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { type Call, op } from '../sim/task.js';
import { WaitQueue } from '../sim/waitqueue.js';
import { KObject, type RefTracker } from './kref.js';
import { TASK_SIZE } from './uaccess.js';

// include/uapi/asm-generic/fcntl.h (arm64 uses the generic values)
export const O_ACCMODE = 0o3;
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

// include/linux/fs.h f_mode bits derived from the access mode at open time
export const FMODE_READ = 0x1;
export const FMODE_WRITE = 0x2;

// include/uapi/linux/eventpoll.h
export const EPOLLIN = 0x001;
export const EPOLLPRI = 0x002;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLRDNORM = 0x040;
export const EPOLLWRNORM = 0x100;
/** include/linux/poll.h DEFAULT_POLLMASK: what vfs_poll reports for a file without f_op->poll. */
export const DEFAULT_POLLMASK = EPOLLIN | EPOLLOUT | EPOLLRDNORM | EPOLLWRNORM;

/** include/linux/fs.h MAX_RW_COUNT = INT_MAX & PAGE_MASK: read/write clamp larger counts to this. */
export const MAX_RW_COUNT = 0x7fff_f000;

export const C_FILE_ALLOC = defineCost(
  'file_alloc',
  400,
  'alloc_empty_file (kmem_cache_zalloc of struct file) + f_op/f_mode setup; estimate',
);
export const C_FPUT_FINAL = defineCost(
  'fput_final',
  200,
  '__fput bookkeeping around f_op->release (fsnotify, dput, file_free); estimate',
);

/**
 * struct file_operations. Every method is optional; methods that return a frame or a generator (Call) run as steps
 * of the calling task and may
 * sleep. A method signals failure by throwing ErrnoError (or, kernel style, by returning a negative errno from
 * unlockedIoctl/read/write, which the VFS converts).
 */
export interface FileOperations {
  /** Shown in reports (e.g. 'eventfd_fops'). */
  readonly name?: string;
  /** f_op->open, called by the VFS after the file is allocated (chrdev_open). Throwing aborts the open. */
  open?(file: KFile): Call<void>;
  /** f_op->release: the last reference is gone. */
  release?(file: KFile): Call<void>;
  read?(file: KFile, addr: number, len: number): Call<number>;
  write?(file: KFile, addr: number, len: number): Call<number>;
  unlockedIoctl?(file: KFile, cmd: number, arg: number): Call<number>;
  /** f_op->poll: returns the EPOLL* mask; if `pt` is given, queues the caller on the file's wait queue heads. */
  poll?(file: KFile, pt: PollTable | null): number;
}

/** What a file needs from the kernel: where to defer the final fput. */
export interface FileHost {
  readonly engine: Engine;
  readonly refs: RefTracker;
  /** The last reference of `file` was dropped by fput(): schedule fputFinal (task_work or delayed fput). */
  deferFput(file: KFile): void;
}

/** struct file. */
export class KFile extends KObject {
  /** f_flags: O_* flags given at open (O_NONBLOCK can change later via FIONBIO). */
  fFlags: number;
  /** f_mode: FMODE_READ / FMODE_WRITE. */
  fMode: number;
  /** file->private_data, owned by the fops. */
  privateData: unknown;
  /** The inode's private data (i_cdev / i_private) for files opened through a path. */
  inodePrivate: unknown = undefined;
  /** Shared-object id for checker independence. */
  readonly oid: number;

  constructor(
    readonly host: FileHost,
    name: string,
    readonly fops: FileOperations,
    privateData: unknown,
    flags: number,
  ) {
    super(host.refs, 'file', name);
    this.fFlags = flags & ~O_CLOEXEC;
    const acc = flags & O_ACCMODE;
    this.fMode = acc === O_RDONLY ? FMODE_READ : acc === O_WRONLY ? FMODE_WRITE : FMODE_READ | FMODE_WRITE;
    this.privateData = privateData;
    this.oid = host.engine.newOid(`file:${name}`);
  }

  get nonblock(): boolean {
    return (this.fFlags & O_NONBLOCK) !== 0;
  }

  /** The task_work callback deferFput queues (fs/file_table.c ____fput): __fput of this file. */
  taskWork(): Call<void> {
    return fputFinal(this);
  }

  /** fput's last reference: defer the release (fs/file_table.c fput). */
  protected override lastPut(): void {
    this.host.deferFput(this);
  }

  override toString(): string {
    return this.name;
  }
}

/** get_file / fget on a file the caller already holds: one more reference. */
export function fget(file: KFile): KFile {
  return file.get();
}

/** fput: drop a reference. The release of the last one is deferred (see the module comment). */
export function fput(file: KFile): void {
  file.put();
}

/**
 * __fput: runs f_op->release and frees the file. Called from task_work, from the delayed-fput work item, or
 * synchronously by close(2). The file's count is already zero.
 */
export function fputFinal(file: KFile): Frame {
  return new Fput(file);
}

const FP_BEGIN = 0; // __fput's step
const FP_RELEASE = 1; // f_op->release
const FP_FREE = 2; // file_free

class Fput extends Frame {
  constructor(private readonly file: KFile) {
    super();
  }

  protected step(): Boundary {
    const file = this.file;
    switch (this.pc) {
      case FP_BEGIN:
        if (file.refs !== 0) throw new ModelError(`__fput on ${file.name} with ${file.refs} references left`);
        file.checkAlive('__fput');
        this.pc = FP_RELEASE;
        return this.yield_(op(C_FPUT_FINAL, file.oid));
      case FP_RELEASE:
        this.pc = FP_FREE;
        if (file.fops.release !== undefined) return this.call(file.fops.release(file));
        file.markFreed();
        return this.return_(undefined);
      default:
        file.markFreed();
        return this.return_(undefined);
    }
  }
}

/** fput_close_sync: drop close(2)'s reference; if it was the last, run __fput right here. */
class FputCloseSync extends Frame {
  constructor(private readonly file: KFile) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === 0) {
      this.file.checkAlive('fput');
      this.pc = 1;
      if (this.file.krefPut()) return this.call(new Fput(this.file));
    }
    return this.return_(undefined);
  }
}

export function fputCloseSync(file: KFile): Frame {
  return new FputCloseSync(file);
}

/** An ErrnoError from a kernel-style negative return value (an ioctl returning -EINVAL). */
export function errnoFromReturn(ret: number, what: string): ErrnoError {
  const name = errnoName(-ret);
  if (name === undefined) throw new ModelError(`${what} returned ${ret}, which is not a -errno`);
  return errno(name, `${what} returned -${name}`);
}

function checkReturn(ret: number, what: string): number {
  if (!Number.isInteger(ret)) throw new ModelError(`${what} returned ${ret}, which is not an integer`);
  if (ret < 0) throw errnoFromReturn(ret, what);
  return ret;
}

/** access_ok(addr, len): the range lies below TASK_SIZE (it does not check that it is mapped). */
export function accessOk(addr: number, len: number): boolean {
  return Number.isSafeInteger(addr) && Number.isSafeInteger(len) && addr >= 0 && len >= 0 && addr + len <= TASK_SIZE;
}

/**
 * fs/read_write.c vfs_read / vfs_write: EBADF if not open for reading (writing), EINVAL without f_op->read
 * (write), EFAULT if !access_ok; then the method, whose negative return is an errno.
 */
class VfsReadWrite extends Frame<number> {
  constructor(
    private readonly file: KFile,
    private readonly addr: number,
    private readonly len: number,
    private readonly write: boolean,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const { file, addr, len } = this;
    const what = this.write ? 'write' : 'read';
    if (this.pc === 1) return this.return_(checkReturn(sent as number, `${file.name} ${what}`));
    if (this.write) {
      file.checkAlive('vfs_write');
      if ((file.fMode & FMODE_WRITE) === 0) throw errno('EBADF', `${file.name} is not open for writing`);
    } else {
      file.checkAlive('vfs_read');
      if ((file.fMode & FMODE_READ) === 0) throw errno('EBADF', `${file.name} is not open for reading`);
    }
    const method = this.write ? file.fops.write : file.fops.read;
    if (method === undefined) {
      throw errno('EINVAL', `${file.name} has no ${what} method (vfs_${what}: !FMODE_CAN_${what.toUpperCase()})`);
    }
    if (!accessOk(addr, len)) throw errno('EFAULT', `${what} buffer 0x${addr.toString(16)}+${len} fails access_ok`);
    this.pc = 1;
    return this.call(method.call(file.fops, file, addr, Math.min(len, MAX_RW_COUNT)));
  }
}

export function vfsRead(file: KFile, addr: number, len: number): Frame<number> {
  return new VfsReadWrite(file, addr, len, false);
}

export function vfsWrite(file: KFile, addr: number, len: number): Frame<number> {
  return new VfsReadWrite(file, addr, len, true);
}

/*
 * fs/ioctl.c vfs_ioctl in parts, for the ioctl syscall body that runs it inline (process.ts SysIoctl):
 * the driver's method, or ENOTTY; then the driver's error (-ENOIOCTLCMD becomes ENOTTY) or return value.
 */

export function vfsIoctlFop(file: KFile): NonNullable<FileOperations['unlockedIoctl']> {
  file.checkAlive('vfs_ioctl');
  const ioctl = file.fops.unlockedIoctl;
  if (ioctl === undefined) throw errno('ENOTTY', `${file.name} has no ioctls`);
  return ioctl;
}

/** What the driver threw, to rethrow: ENOIOCTLCMD becomes ENOTTY. */
export function vfsIoctlError(file: KFile, cmd: number, e: unknown): unknown {
  if (e instanceof ErrnoError && e.errno === 'ENOIOCTLCMD') {
    return errno('ENOTTY', `${file.name} does not know ioctl 0x${cmd.toString(16)}`);
  }
  return e;
}

export function vfsIoctlReturn(file: KFile, cmd: number, ret: number): number {
  if (ret === -515) throw errno('ENOTTY', `${file.name} does not know ioctl 0x${cmd.toString(16)}`);
  return checkReturn(ret, `${file.name} ioctl 0x${cmd.toString(16)}`);
}

/** vfs_poll: DEFAULT_POLLMASK when the file has no poll method. */
export function vfsPoll(file: KFile, pt: PollTable | null): number {
  file.checkAlive('vfs_poll');
  const poll = file.fops.poll;
  return poll === undefined ? DEFAULT_POLLMASK : poll.call(file.fops, file, pt);
}

// ---- wait queue heads with custom wake functions (include/linux/wait.h) ----------------------------------------

/**
 * A wait_queue_entry with its own wake function (init_waitqueue_func_entry): run by the waker, in whatever context
 * does the wakeup (possibly hardirq, with the head's lock held), with the poll key (EPOLL* bits). It returns a frame
 * or a generator because a wake function does kernel work made of steps (virqfd's unmask runs enable_irq, which
 * writes GIC registers); it must not sleep. It may remove itself from the head.
 */
export interface WaitQueueEntry<O = unknown> {
  /** The wake function; a non-zero return from an exclusive entry ends the walk (__wake_up_common, nr_exclusive 1). */
  wake(owner: O, key: number): Call<number>;
}

/** poll_table: f_op->poll calls queueProc (via poll_wait) for each wait queue head the caller should sit on. */
export interface PollTable {
  queueProc(file: KFile, wqh: WaitQueueHead<unknown>): void;
}

/** poll_wait. */
export function pollWait(file: KFile, wqh: WaitQueueHead<unknown>, pt: PollTable | null): void {
  if (pt !== null) pt.queueProc(file, wqh);
}

/**
 * wait_queue_head_t for poll: custom wake entries (irqfd, virqfd) plus sleeping tasks (a blocking read). Entries
 * are added at the head, as __add_wait_queue does, so the newest entry is woken first.
 */
export class WaitQueueHead<O = unknown> {
  private readonly entries: WaitQueueEntry<O>[] = [];
  /** entries[0 .. nrPriority) were added with add_wait_queue_priority (WQ_FLAG_PRIORITY | WQ_FLAG_EXCLUSIVE). */
  private nrPriority = 0;
  /** Tasks sleeping in the owner's blocking paths (DECLARE_WAITQUEUE + schedule). */
  readonly tasks: WaitQueue;

  constructor(
    engine: Engine,
    readonly owner: O,
    name: string,
    oid?: number,
  ) {
    this.tasks = new WaitQueue(engine, name, oid);
  }

  get oid(): number {
    return this.tasks.oid;
  }

  /** waitqueue_active. */
  get active(): boolean {
    return this.entries.length > 0 || this.tasks.length > 0;
  }

  get entryCount(): number {
    return this.entries.length;
  }

  hasEntry(e: WaitQueueEntry<O>): boolean {
    return this.entries.includes(e);
  }

  /** add_wait_queue: head insertion, behind the priority entries (__add_wait_queue since 5.11). */
  add(e: WaitQueueEntry<O>): void {
    if (this.entries.includes(e)) throw new ModelError('wait queue entry added twice (list corruption)');
    this.entries.splice(this.nrPriority, 0, e);
  }

  /**
   * add_wait_queue_priority (kernel/sched/wait.c, 5.11): an exclusive entry at the head, behind earlier priority
   * entries; the first one whose wake function returns non-zero ends the walk, so nothing behind it sees the event.
   */
  addPriority(e: WaitQueueEntry<O>): void {
    if (this.entries.includes(e)) throw new ModelError('wait queue entry added twice (list corruption)');
    this.entries.splice(this.nrPriority++, 0, e);
  }

  /** remove_wait_queue; returns whether the entry was queued. */
  remove(e: WaitQueueEntry<O>): boolean {
    const i = this.entries.indexOf(e);
    if (i < 0) return false;
    this.entries.splice(i, 1);
    if (i < this.nrPriority) this.nrPriority--;
    return true;
  }

  /**
   * wake_up_locked_poll / wake_up_poll (__wake_up_common with nr_exclusive 1): run the priority entries' wake
   * functions first — one that returns non-zero (irqfd_wakeup consumed the count) ends the walk — then wake every
   * sleeping task (they re-test their condition) and run the other entries. An entry may remove itself while being
   * called (the kernel iterates with list_for_each_entry_safe). The caller holds the head's lock, as the kernel's
   * callers do.
   */
  wakeUpPoll(key: number): Frame {
    return new WakeUpPoll(this, key);
  }

  /** The i-th entry (priority entries first), for __wake_up_common's walk. */
  entryAt(i: number): WaitQueueEntry<O> | undefined {
    return this.entries[i];
  }

  /** How many entries at the head were added with add_wait_queue_priority. */
  get priorityCount(): number {
    return this.nrPriority;
  }
}

const WU_PRIORITY = 0; // the priority entries' wake functions
const WU_PRIORITY_RET = 1; // one returned
const WU_REST = 2; // the other entries'
const WU_REST_RET = 3;

/** kernel/sched/wait.c __wake_up_common for wakeUpPoll: a frame walking the entries (list_for_each_entry_safe). */
class WakeUpPoll<O> extends Frame {
  private i = 0;
  /** The entry whose wake function runs. */
  private e: WaitQueueEntry<O> | null = null;

  constructor(
    private readonly wqh: WaitQueueHead<O>,
    private readonly key: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const wqh = this.wqh;
    for (;;) {
      switch (this.pc) {
        case WU_PRIORITY:
          if (this.i < wqh.priorityCount) {
            this.e = wqh.entryAt(this.i)!;
            this.pc = WU_PRIORITY_RET;
            return this.call(this.e.wake(wqh.owner, this.key));
          }
          wqh.tasks.wakeUpAll();
          this.pc = WU_REST;
          continue;
        case WU_PRIORITY_RET:
          if (sent !== 0) return this.return_(undefined);
          this.advance();
          this.pc = WU_PRIORITY;
          continue;
        case WU_REST:
          if (this.i < wqh.entryCount) {
            this.e = wqh.entryAt(this.i)!;
            this.pc = WU_REST_RET;
            return this.call(this.e.wake(wqh.owner, this.key));
          }
          return this.return_(undefined);
        default: // WU_REST_RET
          this.advance();
          this.pc = WU_REST;
      }
    }
  }

  /** Step past the entry that ran, unless it removed itself (the next one moved into its place). */
  private advance(): void {
    if (this.wqh.entryAt(this.i) === this.e) this.i++;
    this.e = null;
  }
}
