/**
 * A user process (the VMM) and its threads, and the syscalls they make.
 *
 * Each thread is an engine task pinned to a CPU. A syscall is a frame (Syscall) run as that task's body:
 *   entry (C_SYSCALL_ENTRY) → the body (fdget, the VFS call, fput) → task_work (deferred __fput of files whose last
 *   reference the body dropped) → exit (C_SYSCALL_EXIT) → the result, or the ErrnoError the body threw
 *   (ERESTARTSYS becomes EINTR: no signal handlers, so no restart).
 * The sys* forms (`sysIoctl`...) can be `yield*`-ed by model code running on one of the process's threads
 * (a scripted VMM: `thread.submit('vmm', script())`). The synchronous public API (`p.ioctl`...) starts the
 * syscall on the thread (engine.restart) and drives the whole engine until the thread returns, so other CPUs,
 * devices and kernel threads progress meanwhile; a syscall that can never return (a blocking read nobody will
 * satisfy: nothing in the model is runnable) is interrupted as a signal would interrupt it and fails with EAGAIN,
 * leaving the thread free for the next call. `thread.ioctlAsync` and friends start a syscall without driving the
 * engine (KVM_RUN blocking on one thread while the main thread keeps issuing ioctls); the handle's result() drives
 * the engine until it returns.
 *
 * exit(): every thread gets a fatal signal (interruptible sleeps return EINTR), the exiting thread waits for the
 * others' syscalls to return, then closes every fd in fd order (close_files → filp_close → fput, whose __fput goes
 * to task_work) and runs task_work (so the releases run newest-first, as kernel/task_work.c orders them), then shuts
 * task_work (later fputs of its files by kernel threads go to delayed fput).
 */
import { ErrnoError, errno } from '../abi/errno.js';
import { defineCost } from '../sim/costs.js';
import { ModelError } from '../sim/errors.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { type Call, current, currentOrNull, op, TASK_BLOCKED, type Task, type TaskExitHook } from '../sim/task.js';
import { WaitQueue, wait } from '../sim/waitqueue.js';
import { doEventfd } from './eventfd.js';
import { FdTable, RLIMIT_NOFILE } from './fdtable.js';
import {
  fput,
  fputCloseSync,
  type KFile,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  vfsIoctlError,
  vfsIoctlFop,
  vfsIoctlReturn,
  vfsRead,
  vfsWrite,
} from './file.js';
import type { Kernel, UserContext, UserTask } from './kernel.js';
import { UserMemory } from './uaccess.js';

export const C_SYSCALL_ENTRY = defineCost(
  'syscall_entry',
  100,
  'svc from EL0, el0_svc → invoke_syscall dispatch; estimate (perf-anchors.md has no syscall figure; the bare EL2 trap round trip is 27 cycles, ASPLOS 2014 Table 3)',
);
export const C_SYSCALL_EXIT = defineCost(
  'syscall_exit',
  60,
  'exit_to_user_mode with no work pending + eret to EL0; estimate',
);
export const C_FDGET = defineCost('fdget', 20, 'fdget: fd table lookup + file refcount atomic; estimate');

// include/uapi/asm-generic/ioctls.h: handled by do_vfs_ioctl before the driver sees them
export const FIONBIO = 0x5421;
export const FIONCLEX = 0x5450;
export const FIOCLEX = 0x5451;
/** include/uapi/asm-generic/signal.h _NSIG: the highest signal number. */
export const NSIG = 64;

export interface ProcessOptions {
  /** comm of the main thread (default 'vmm'). */
  name?: string;
  /** CPU of the main thread (default 0). */
  cpu?: number;
  /** RLIMIT_NOFILE (default 1024). */
  maxFds?: number;
}

/** An asynchronous syscall in flight. */
export interface SyscallHandle {
  readonly what: string;
  readonly done: boolean;
  /** The syscall's result; rethrows its ErrnoError. Drives the engine until the syscall returns if needed. */
  result(): number;
}

class Handle implements SyscallHandle {
  done = false;
  value = 0;
  error: unknown = undefined;

  constructor(
    readonly thread: UThread,
    readonly what: string,
  ) {}

  result(): number {
    if (!this.done) {
      assertOutsideTasks(this.what);
      this.thread.driveUntilReturn(this);
    }
    if (this.error !== undefined) throw this.error;
    return this.value;
  }
}

function assertOutsideTasks(what: string): void {
  const t = currentOrNull();
  if (t !== null) {
    throw new ModelError(`${what}: the synchronous syscall API was called from inside task ${t}; use the sys* frames`);
  }
}

function checkInt(what: string, name: string, v: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new TypeError(`${what}: ${name} must be an integer (a number), got ${describe(v)}`);
}

function describe(v: unknown): string {
  if (typeof v === 'bigint') return `the bigint ${v}n`;
  if (typeof v === 'string') return JSON.stringify(v);
  return v !== null && typeof v === 'object' ? 'an object' : String(v);
}

/** A thread of a process: shares its fds and memory. */
export class UThread implements TaskExitHook {
  readonly task: Task;
  readonly ut: UserTask;
  private inflight: Handle | null = null;

  constructor(
    readonly process: Process,
    readonly name: string,
    cpu: number,
  ) {
    const k = process.kernel;
    this.task = k.engine.spawn(name, cpu, null, process.pid);
    this.task.catchErrors = true;
    this.task.onExit = this;
    this.ut = k.registerUserTask(this.task, process);
  }

  get busy(): boolean {
    return this.inflight !== null;
  }

  get cpu(): number {
    return this.task.cpu;
  }

  /** The thread's syscall body returned or threw. */
  taskExited(t: Task): void {
    const h = this.inflight;
    this.inflight = null;
    if (h !== null) {
      h.done = true;
      h.value = typeof t.result === 'number' ? t.result : 0;
      h.error = t.error;
    }
    this.process.threadDone.wakeUpAll();
    if (t.error !== undefined && !(t.error instanceof ErrnoError)) {
      const why = t.error instanceof Error ? t.error.message : String(t.error);
      throw new ModelError(`${h?.what ?? 'syscall'} on ${t} failed: ${why}`, { cause: t.error });
    }
  }

  /**
   * Drives the engine until `h` returns. When it never can — nothing in the model is runnable, as for a blocking
   * read of an eventfd nobody will write — the thread is interrupted as by a signal (its interruptible sleep returns
   * -ERESTARTSYS, fs/eventfd.c eventfd_read) and the call fails with EAGAIN, the errno the same call on an
   * O_NONBLOCK file gives: the synchronous API cannot sleep forever, and the thread stays usable.
   */
  driveUntilReturn(h: Handle): void {
    const engine = this.process.kernel.engine;
    try {
      engine.runUntil(() => h.done, `${h.what} to return`);
    } catch (e) {
      if (h.done || !(e instanceof ModelError) || engine.heap.size > 0) throw e;
      const was = this.ut.sigpending;
      this.ut.sigpending = true;
      try {
        if (this.task.state === TASK_BLOCKED) engine.wake(this.task);
        engine.runUntil(() => h.done, `${h.what} to return after its interruption`);
      } finally {
        this.ut.sigpending = was;
      }
      h.error = errno(
        'EAGAIN',
        `${h.what} would block forever: nothing in the model can complete it (the synchronous API does not sleep; ` +
          'use O_NONBLOCK, or the *Async form while something drives the machine)',
      );
    }
  }

  /** Start `body` (a sys* frame, or a script of several) on this thread without running the engine. */
  submit(what: string, body: Call<number>): SyscallHandle {
    if (this.process.exited) throw errno('ESRCH', `${what}: process ${this.process.pid} has exited`);
    if (this.inflight !== null) {
      throw errno('EBUSY', `${what}: thread ${this.name} is still in ${this.inflight.what} (take its result() first)`);
    }
    const h = new Handle(this, what);
    this.inflight = h;
    this.process.kernel.engine.restart(this.task, body);
    return h;
  }

  /** Run `body` on this thread and drive the engine until it returns. */
  call(what: string, body: Call<number>): number {
    assertOutsideTasks(what);
    return this.submit(what, body).result();
  }

  /**
   * tgkill(pid, tid, signo) from outside the thread, for a signal whose handler the VMM installed (QEMU's SIG_IPI,
   * crosvm's vCPU kick signal): kernel/signal.c signal_wake_up → kick_process. The signal is pending until the
   * thread's syscall returns to user space, where the handler runs: an interruptible sleep ends (eventfd read:
   * EINTR), a vCPU blocked in WFI wakes and a vCPU in guest mode takes the reschedule IPI, so KVM_RUN returns EINTR
   * with exit_reason KVM_EXIT_INTR. A thread outside any syscall runs its handler at once: nothing to interrupt.
   * EINVAL for a signo outside 0..64 (_NSIG); 0 only checks that the thread exists; ESRCH once the process exited.
   */
  kill(signo: number): void {
    checkInt('kill', 'signo', signo);
    if (signo < 0 || signo > NSIG) throw errno('EINVAL', `signal ${signo} outside 0..${NSIG}`);
    if (this.process.exited) throw errno('ESRCH', `thread ${this.name}: process ${this.process.pid} has exited`);
    if (signo === 0 || !this.busy) return;
    this.ut.signals |= 1n << BigInt(signo - 1);
    const t = this.task;
    const k = this.process.kernel;
    // kick_process: a running thread (possibly in guest mode, or about to enter it) gets the reschedule IPI
    if (t.state === TASK_BLOCKED) k.engine.wake(t);
    else k.reschedIpi?.smpSendReschedule(currentOrNull()?.cpu ?? this.process.main.cpu, t.cpu);
  }

  // ---- asynchronous forms -------------------------------------------------------------------------------------

  ioctlAsync(fd: number, request: number, arg: number): SyscallHandle {
    checkInt('ioctl', 'fd', fd);
    checkInt('ioctl', 'request', request);
    checkInt('ioctl', 'arg', arg);
    const what = `ioctl(${fd}, 0x${(request >>> 0).toString(16)})`;
    return this.submit(what, this.process.sysIoctl(fd, request, arg));
  }

  readAsync(fd: number, addr: number, len: number): SyscallHandle {
    checkInt('read', 'fd', fd);
    checkInt('read', 'addr', addr);
    checkInt('read', 'len', len);
    return this.submit(`read(${fd})`, this.process.sysRead(fd, addr, len));
  }

  writeAsync(fd: number, addr: number, len: number): SyscallHandle {
    checkInt('write', 'fd', fd);
    checkInt('write', 'addr', addr);
    checkInt('write', 'len', len);
    return this.submit(`write(${fd})`, this.process.sysWrite(fd, addr, len));
  }

  closeAsync(fd: number): SyscallHandle {
    checkInt('close', 'fd', fd);
    return this.submit(`close(${fd})`, this.process.sysClose(fd));
  }

  // ---- synchronous forms --------------------------------------------------------------------------------------

  open(path: string, flags = O_RDWR): number {
    if (typeof path !== 'string') throw new TypeError(`open: path must be a string, got ${describe(path)}`);
    checkInt(`open(${path})`, 'flags', flags);
    return this.call(`open(${path})`, this.process.sysOpen(path, flags));
  }

  ioctl(fd: number, request: number, arg = 0): number {
    checkInt('ioctl', 'fd', fd);
    checkInt('ioctl', 'request', request);
    checkInt('ioctl', 'arg', arg);
    const what = `ioctl(${fd}, 0x${(request >>> 0).toString(16)})`;
    return this.call(what, this.process.sysIoctl(fd, request, arg));
  }

  eventfd(initval = 0, flags = 0): number {
    checkInt('eventfd', 'initval', initval);
    checkInt('eventfd', 'flags', flags);
    return this.call('eventfd', this.process.sysEventfd(initval, flags));
  }

  read(fd: number, addr: number, len: number): number {
    checkInt('read', 'fd', fd);
    checkInt('read', 'addr', addr);
    checkInt('read', 'len', len);
    return this.call(`read(${fd})`, this.process.sysRead(fd, addr, len));
  }

  write(fd: number, addr: number, len: number): number {
    checkInt('write', 'fd', fd);
    checkInt('write', 'addr', addr);
    checkInt('write', 'len', len);
    return this.call(`write(${fd})`, this.process.sysWrite(fd, addr, len));
  }

  close(fd: number): number {
    checkInt('close', 'fd', fd);
    return this.call(`close(${fd})`, this.process.sysClose(fd));
  }

  dup(fd: number): number {
    checkInt('dup', 'fd', fd);
    return this.call(`dup(${fd})`, this.process.sysDup(fd));
  }

  dup2(oldfd: number, newfd: number): number {
    checkInt('dup2', 'oldfd', oldfd);
    checkInt('dup2', 'newfd', newfd);
    return this.call(`dup2(${oldfd}, ${newfd})`, this.process.sysDup3(oldfd, newfd, 0, true));
  }

  dup3(oldfd: number, newfd: number, flags: number): number {
    checkInt('dup3', 'oldfd', oldfd);
    checkInt('dup3', 'newfd', newfd);
    checkInt('dup3', 'flags', flags);
    return this.call(`dup3(${oldfd}, ${newfd})`, this.process.sysDup3(oldfd, newfd, flags));
  }
}

export class Process implements UserContext {
  readonly pid: number;
  readonly mem = new UserMemory();
  readonly files: FdTable;
  readonly main: UThread;
  readonly threads: UThread[] = [];
  exited = false;
  /** Woken whenever one of the threads finishes a syscall (exit waits on it). */
  readonly threadDone: WaitQueue;

  constructor(
    readonly kernel: Kernel,
    opts: ProcessOptions = {},
  ) {
    const e = kernel.engine;
    this.pid = e.allocPid();
    const name = opts.name ?? 'vmm';
    this.files = new FdTable(e, `${name}-${this.pid}`, opts.maxFds ?? RLIMIT_NOFILE);
    this.threadDone = new WaitQueue(e, `${name}-${this.pid}.threads`);
    this.main = new UThread(this, name, opts.cpu ?? 0);
    this.threads.push(this.main);
  }

  /** Another thread of this process (default CPU: thread index modulo the CPU count). */
  thread(name?: string, cpu?: number): UThread {
    if (this.exited) throw errno('ESRCH', `process ${this.pid} has exited`);
    if (name !== undefined && typeof name !== 'string')
      throw new TypeError(`thread: name must be a string, got ${describe(name)}`);
    const nCpus = this.kernel.engine.cpus.length;
    if (cpu !== undefined && (typeof cpu !== 'number' || !Number.isInteger(cpu) || cpu < 0 || cpu >= nCpus))
      throw new TypeError(`thread: cpu must be a CPU number 0..${nCpus - 1}, got ${describe(cpu)}`);
    const n = this.threads.length;
    const t = new UThread(this, name ?? `${this.main.name}:${n}`, cpu ?? n % this.kernel.engine.cpus.length);
    this.threads.push(t);
    return t;
  }

  // ---- syscall bodies (run them on one of this process's threads) -----------------------------------------------

  /** Entry, body, task_work, exit; ERESTARTSYS → EINTR. */
  syscall(what: string, body: Call<number>): Frame<number> {
    return new Syscall(this, what, body);
  }

  /** exit_to_user_mode → arch_do_signal_or_restart: the thread's handlers run, its tgkill signals are consumed. */
  deliverSignals(): void {
    const ut = this.kernel.userTask(current());
    if (ut !== undefined) ut.signals = 0n;
  }

  /** The syscall runs on a thread of this live process. */
  syscallEnter(what: string): void {
    const t = current();
    const ut = this.kernel.userTask(t);
    if (ut === undefined || ut.user !== this) {
      throw new ModelError(`${what} runs on ${t}, which is not a thread of process ${this.pid}`);
    }
    if (this.exited) throw new ModelError(`${what}: process ${this.pid} has exited`);
  }

  /** open(2): EMFILE before the lookup (get_unused_fd_flags comes first in do_sys_openat2), then ENOENT. */
  sysOpen(path: string, flags = O_RDWR): Frame<number> {
    return this.syscall(`open(${path})`, new DoSysOpen(this, path, flags));
  }

  /** ioctl(2): EBADF; FIOCLEX/FIONCLEX/FIONBIO handled by the VFS; else f_op->unlocked_ioctl or ENOTTY. */
  sysIoctl(fd: number, request: number, arg: number): Frame<number> {
    const cmd = request >>> 0;
    return this.syscall(`ioctl(${fd}, 0x${cmd.toString(16)})`, new SysIoctl(this, fd, cmd, arg));
  }

  /** fs/ioctl.c do_vfs_ioctl: the generic commands, handled before the driver sees them (true: handled, 0). */
  doVfsIoctlGeneric(file: KFile, fd: number, cmd: number, arg: number): boolean {
    switch (cmd) {
      case FIOCLEX:
        this.files.setCloexec(fd, true);
        return true;
      case FIONCLEX:
        this.files.setCloexec(fd, false);
        return true;
      case FIONBIO: {
        const on = this.mem.getUserS32(arg);
        file.fFlags = on !== 0 ? file.fFlags | O_NONBLOCK : file.fFlags & ~O_NONBLOCK;
        return true;
      }
      default:
        return false;
    }
  }

  sysRead(fd: number, addr: number, len: number): Frame<number> {
    return this.syscall(`read(${fd})`, new KsysReadWrite(this, fd, addr, len, false));
  }

  sysWrite(fd: number, addr: number, len: number): Frame<number> {
    return this.syscall(`write(${fd})`, new KsysReadWrite(this, fd, addr, len, true));
  }

  /** close(2): EBADF; the last reference is released synchronously (fput_close_sync). */
  sysClose(fd: number): Frame<number> {
    return this.syscall(`close(${fd})`, new SysClose(this.files, fd));
  }

  /** dup(2) (fs/file.c): the lowest free fd gets a new reference to the same open file, close-on-exec clear. */
  sysDup(fd: number): Frame<number> {
    return this.syscall(`dup(${fd})`, new KsysDup(this, FD_DUP, fd, -1, 0));
  }

  /** dup's work after its step. */
  dupLocked(fd: number): number {
    const file = this.files.fget(fd);
    let newfd: number;
    try {
      newfd = this.files.getUnusedFd(0);
    } catch (e) {
      fput(file);
      throw e;
    }
    this.files.installFd(newfd, file);
    return newfd;
  }

  /**
   * dup2(2) (fs/file.c: oldfd == newfd returns it if open, else ksys_dup3 with no flags) and dup3(2) (ksys_dup3:
   * EINVAL for flags other than O_CLOEXEC or oldfd == newfd, EBADF for newfd ≥ RLIMIT_NOFILE or a closed oldfd;
   * do_dup2: EBUSY if newfd is reserved by an open in progress, else newfd now refers to oldfd's open file and
   * whatever was open there is closed — its last reference released at the syscall's end, filp_close → fput).
   */
  sysDup3(oldfd: number, newfd: number, flags: number, dup2 = false): Frame<number> {
    const name = dup2 ? 'dup2' : 'dup3';
    return this.syscall(
      `${name}(${oldfd}, ${newfd})`,
      new KsysDup(this, dup2 ? FD_DUP2 : FD_DUP3, oldfd, newfd, flags),
    );
  }

  /** dup2's or dup3's work after its step. */
  dup3Locked(oldfd: number, newfd: number, flags: number, dup2: boolean): number {
    if (dup2 && oldfd === newfd) {
      if (this.files.lookup(oldfd) === undefined) throw errno('EBADF', `fd ${oldfd} is not an open file descriptor`);
      return newfd;
    }
    if ((flags & ~O_CLOEXEC) !== 0) throw errno('EINVAL', `dup3 flags 0x${flags.toString(16)}: only O_CLOEXEC`);
    if (oldfd === newfd) throw errno('EINVAL', `dup3(${oldfd}, ${newfd}): the same fd`);
    // newfd is an unsigned int: a negative one is past the limit too
    if (newfd < 0 || newfd >= this.files.maxFds) {
      throw errno('EBADF', `fd ${newfd} is not below RLIMIT_NOFILE ${this.files.maxFds}`);
    }
    const file = this.files.fget(oldfd);
    let old: KFile | undefined;
    try {
      old = this.files.replaceFd(newfd, file, (flags & O_CLOEXEC) !== 0);
    } catch (e) {
      fput(file);
      throw e;
    }
    if (old !== undefined) fput(old);
    return newfd;
  }

  /** eventfd2(2). */
  sysEventfd(initval: number, flags: number): Frame<number> {
    return this.syscall('eventfd', doEventfd(this.kernel, this.files, initval, flags));
  }

  /** exit_group(2), as far as files go (see the module comment). Returns 0 to its (never resumed) caller. */
  sysExit(): Frame<number> {
    return new DoGroupExit(this);
  }

  /** Another thread than `t` is still in a syscall. */
  othersBusy(t: Task): boolean {
    return this.threads.some((th) => th.task !== t && th.busy);
  }

  // ---- the synchronous public API (on the main thread) ----------------------------------------------------------

  open(path: string, flags = O_RDWR): number {
    return this.main.open(path, flags);
  }

  ioctl(fd: number, request: number, addrOrValue = 0): number {
    return this.main.ioctl(fd, request, addrOrValue);
  }

  eventfd(initval = 0, flags = 0): number {
    return this.main.eventfd(initval, flags);
  }

  read(fd: number, addr: number, len: number): number {
    return this.main.read(fd, addr, len);
  }

  write(fd: number, addr: number, len: number): number {
    return this.main.write(fd, addr, len);
  }

  close(fd: number): number {
    return this.main.close(fd);
  }

  dup(fd: number): number {
    return this.main.dup(fd);
  }

  dup2(oldfd: number, newfd: number): number {
    return this.main.dup2(oldfd, newfd);
  }

  dup3(oldfd: number, newfd: number, flags: number): number {
    return this.main.dup3(oldfd, newfd, flags);
  }

  /** Exit the process: all fds closed in fd order, releases run. */
  exit(): void {
    this.main.call('exit', this.sysExit());
  }
}

/** The syscall's return to user space: its result, or its errno with ERESTART* seen as EINTR (no restart here). */
function syscallReturn(what: string, result: number, err: ErrnoError | undefined): number {
  if (err === undefined) return result;
  if (err.errno === 'ERESTARTSYS' || err.errno === 'ERESTARTNOINTR' || err.errno === 'ERESTARTNOHAND') {
    throw errno('EINTR', `${what} interrupted (${err.why})`);
  }
  throw err;
}

const SC_ENTRY = 0; // syscall entry (el0_svc)
const SC_BODY = 1; // the syscall's body
const SC_BODY_DONE = 2; // it returned, or failed with an errno
const SC_TASK_WORK = 3; // task_work_run on the way out (exit_to_user_mode)
const SC_RETURN = 4; // signals delivered, the result returned to user space

/** A syscall on a thread of `process`: entry, body, task_work, exit; an errno is the result; ERESTARTSYS → EINTR. */
class Syscall extends Frame<number> {
  private result = 0;
  private err: ErrnoError | undefined = undefined;

  constructor(
    private readonly process: Process,
    private readonly what: string,
    private readonly body: Call<number>,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    switch (this.pc) {
      case SC_ENTRY:
        this.process.syscallEnter(this.what);
        this.pc = SC_BODY;
        return this.yield_(op(C_SYSCALL_ENTRY));
      case SC_BODY:
        this.pc = SC_BODY_DONE;
        return this.call(this.body);
      case SC_BODY_DONE:
        this.result = sent as number;
        return this.taskWork();
      case SC_TASK_WORK:
        this.pc = SC_RETURN;
        return this.yield_(op(C_SYSCALL_EXIT));
      default:
        this.process.deliverSignals();
        return this.return_(syscallReturn(this.what, this.result, this.err));
    }
  }

  private taskWork(): Boundary {
    this.pc = SC_TASK_WORK;
    return this.call(this.process.kernel.taskWorkRun());
  }

  /** The body failed: an errno is the syscall's result; anything else is a model bug and propagates. */
  protected override catch_(e: unknown): boolean {
    if (this.pc !== SC_BODY_DONE || !(e instanceof ErrnoError)) return false;
    this.err = e;
    this.taskWork();
    return true;
  }
}

const IO_FDGET = 0; // fdget(fd)
const IO_FILE = 1; // the file is held: do_vfs_ioctl, else vfs_ioctl
const IO_DRIVER = 2; // f_op->unlocked_ioctl returned
const IO_RETURNED = 3; // its return value checked: fdput

/** SYSCALL_DEFINE3(ioctl)'s body: fdget, do_vfs_ioctl (the generic commands) or vfs_ioctl, fdput. */
class SysIoctl extends Frame<number> {
  private file: KFile | null = null;

  constructor(
    private readonly process: Process,
    private readonly fd: number,
    private readonly cmd: number,
    private readonly arg: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const p = this.process;
    switch (this.pc) {
      case IO_FDGET:
        this.pc = IO_FILE;
        return this.yield_(op(C_FDGET, p.files.oid));
      case IO_FILE: {
        const file = p.files.fget(this.fd);
        this.file = file;
        if (p.doVfsIoctlGeneric(file, this.fd, this.cmd, this.arg)) return this.fdput(0);
        const ioctl = vfsIoctlFop(file);
        this.pc = IO_DRIVER;
        return this.call(ioctl.call(file.fops, file, this.cmd, this.arg));
      }
      default: // IO_DRIVER
        this.pc = IO_RETURNED;
        return this.fdput(vfsIoctlReturn(this.file!, this.cmd, sent as number));
    }
  }

  private fdput(result: number): Boundary {
    const file = this.file!;
    this.file = null;
    fput(file);
    return this.return_(result);
  }

  /** The driver failed: -ENOIOCTLCMD becomes ENOTTY. */
  protected override catch_(e: unknown): boolean {
    if (this.pc === IO_DRIVER) throw vfsIoctlError(this.file!, this.cmd, e);
    return false;
  }

  protected override unwind(): void {
    if (this.file !== null) {
      fput(this.file);
      this.file = null;
    }
  }
}

const RW_FDGET = 0; // fdget_pos(fd)
const RW_FILE = 1; // the file is held: vfs_read / vfs_write
const RW_DONE = 2; // fdput_pos

/** fs/read_write.c ksys_read / ksys_write: fdget, vfs_read or vfs_write, fdput. */
class KsysReadWrite extends Frame<number> {
  private file: KFile | null = null;

  constructor(
    private readonly process: Process,
    private readonly fd: number,
    private readonly addr: number,
    private readonly len: number,
    private readonly write: boolean,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    switch (this.pc) {
      case RW_FDGET:
        this.pc = RW_FILE;
        return this.yield_(op(C_FDGET, this.process.files.oid));
      case RW_FILE: {
        const file = this.process.files.fget(this.fd);
        this.file = file;
        this.pc = RW_DONE;
        return this.call(this.write ? vfsWrite(file, this.addr, this.len) : vfsRead(file, this.addr, this.len));
      }
      default:
        this.unwind();
        return this.return_(sent as number);
    }
  }

  /** fdput, whether the call returned or threw. */
  protected override unwind(): void {
    if (this.file !== null) {
      fput(this.file);
      this.file = null;
    }
  }
}

const FD_DUP = 0;
const FD_DUP2 = 1;
const FD_DUP3 = 2;

/** ksys_dup / ksys_dup3 (the dup syscalls' bodies): a step on the fd table (fdget's cost), then their work. */
class KsysDup extends Frame<number> {
  constructor(
    private readonly process: Process,
    /** FD_DUP, FD_DUP2 or FD_DUP3. */
    private readonly which: number,
    private readonly oldfd: number,
    private readonly newfd: number,
    private readonly flags: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const p = this.process;
    if (this.pc === 0) {
      this.pc = 1;
      return this.yield_(op(C_FDGET, p.files.oid));
    }
    if (this.which === FD_DUP) return this.return_(p.dupLocked(this.oldfd));
    return this.return_(p.dup3Locked(this.oldfd, this.newfd, this.flags, this.which === FD_DUP2));
  }
}

/** close(2)'s body: close_fd, then fput_close_sync (the last reference is released right here). */
class SysClose extends Frame<number> {
  constructor(
    private readonly files: FdTable,
    private readonly fd: number,
  ) {
    super();
  }

  protected step(): Boundary {
    switch (this.pc) {
      case 0:
        this.pc = 1;
        return this.yield_(op(C_FDGET, this.files.oid));
      case 1:
        this.pc = 2;
        return this.call(fputCloseSync(this.files.closeFd(this.fd)));
      default:
        return this.return_(0);
    }
  }
}

const SO_FD = 0; // get_unused_fd_flags
const SO_OPEN = 1; // do_filp_open
const SO_INSTALL = 2; // fd_install

/** fs/open.c do_sys_openat2: reserve the fd first (EMFILE before ENOENT), open, install; a failed open frees the fd. */
class DoSysOpen extends Frame<number> {
  private fd = -1;

  constructor(
    private readonly process: Process,
    private readonly path: string,
    private readonly flags: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const files = this.process.files;
    switch (this.pc) {
      case SO_FD:
        this.pc = SO_OPEN;
        return this.yield_(op(C_FDGET, files.oid));
      case SO_OPEN:
        this.fd = files.getUnusedFd(this.flags);
        this.pc = SO_INSTALL;
        return this.call(this.process.kernel.filpOpen(this.path, this.flags));
      default:
        files.installFd(this.fd, sent as KFile);
        return this.return_(this.fd);
    }
  }

  protected override unwind(): void {
    if (this.pc === SO_INSTALL) this.process.files.putUnusedFd(this.fd);
  }
}

const EX_BEGIN = 0; // the checks, then the syscall entry
const EX_KILL = 1; // a fatal signal to every thread
const EX_WAIT = 2; // wait for the other threads' syscalls to return
const EX_CLOSE = 3; // close_files: the next fd
const EX_CLOSED = 4; // its step: filp_close → fput
const EX_TASK_WORK = 5; // exit_task_work ran: shut it for every thread

/** do_group_exit as far as files go: kill the other threads, wait for them, close every fd, run task_work. */
class DoGroupExit extends Frame<number> {
  private task: Task | null = null;
  private fds: number[] = [];
  private i = 0;

  constructor(private readonly process: Process) {
    super();
  }

  protected step(): Boundary {
    const p = this.process;
    for (;;) {
      switch (this.pc) {
        case EX_BEGIN: {
          const t = current();
          const ut = p.kernel.userTask(t);
          if (ut === undefined || ut.user !== p) throw new ModelError(`exit runs on ${t}, not a thread of ${p.pid}`);
          if (p.exited) throw new ModelError(`process ${p.pid} has exited already`);
          this.task = t;
          this.pc = EX_KILL;
          return this.yield_(op(C_SYSCALL_ENTRY));
        }
        case EX_KILL:
          for (const th of p.threads) {
            th.ut.sigpending = true;
            if (th.task !== this.task && th.busy && th.task.state === TASK_BLOCKED) p.kernel.engine.wake(th.task);
          }
          this.pc = EX_WAIT;
          continue;
        case EX_WAIT:
          if (p.othersBusy(this.task!)) return this.yield_(wait(p.threadDone));
          this.fds = p.files.openFds();
          this.pc = EX_CLOSE;
          continue;
        case EX_CLOSE:
          if (this.i < this.fds.length) {
            this.pc = EX_CLOSED;
            return this.yield_(op(C_FDGET, p.files.oid));
          }
          this.pc = EX_TASK_WORK;
          return this.call(p.kernel.taskWorkRun(true));
        case EX_CLOSED:
          fput(p.files.closeFd(this.fds[this.i++]!));
          this.pc = EX_CLOSE;
          continue;
        default:
          for (const th of p.threads) th.ut.worksExited = true;
          p.exited = true;
          return this.return_(0);
      }
    }
  }
}
