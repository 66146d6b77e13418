/**
 * The host kernel instance: the engine it runs on, the registry of live refcounted objects, the device paths a
 * process can open, anonymous-inode files (fs/anon_inodes.c), the system workqueue, task_work and delayed fput
 * (fs/file_table.c), and the map from engine tasks to the user processes they belong to (the kernel's `current`
 * with its mm and files).
 *
 * Deferred fput, as fs/file_table.c fput does it:
 * - the last reference dropped on a user thread (not in interrupt context, not a kthread) queues __fput as task_work
 *   of that thread: it runs after the syscall body returns, before the return to user space. task_work runs
 *   newest first (kernel/task_work.c pushes at the head and makes no ordering promise).
 * - from a kernel thread, a workqueue item, hardirq context, a timer callback or plain code outside any task,
 *   and from a thread whose task_work is already shut (an exiting task after exit_task_work), the file goes on the
 *   delayed-fput list and the delayed_fput work item runs __fput on the system workqueue (llist order: newest first).
 *   The kernel delays that work by one jiffy (schedule_delayed_work(&delayed_fput_work, 1)); the model queues it at
 *   once — only the order relative to other work matters for what we check.
 */
import { ErrnoError, errno } from '../abi/errno.js';
import { defineCost } from '../sim/costs.js';
import { Engine, type EngineOptions } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { markShared } from '../sim/snapshot.js';
import { type Call, currentOrNull, op, type Task, type TaskBody } from '../sim/task.js';
import type { FdTable } from './fdtable.js';
import { type FileHost, type FileOperations, fputFinal, KFile, O_ACCMODE, O_NONBLOCK } from './file.js';
import { IrqBypassManager } from './irqbypass.js';
import { RefTracker } from './kref.js';
import { flushWork, kthreadRun, type WorkFn, Workqueue, WorkStruct } from './kthread.js';
import { Process, type ProcessOptions } from './process.js';
import type { UserMemory } from './uaccess.js';

export const C_PATH_LOOKUP = defineCost(
  'path_lookup',
  500,
  'getname + path_openat walk of a short /dev path (dcache hits) + chrdev_open; estimate',
);
export const C_TASK_WORK = defineCost(
  'task_work',
  30,
  'task_work_run: one callback dequeued on the return to user space; estimate',
);

export interface KernelOptions extends Partial<EngineOptions> {
  /** Run on an existing engine instead of creating one from cpus/hz/seed/costs. */
  engine?: Engine;
}

/** What kernel code needs to know about the process `current` belongs to. */
export interface UserContext {
  readonly pid: number;
  readonly mem: UserMemory;
  readonly files: FdTable;
}

/** A device node: what opening a path gives (the inode's fops and i_cdev / i_private). */
export interface ChrdevNode {
  readonly fops: FileOperations;
  readonly inodePrivate?: unknown;
}

/** Resolves the part of a path after a registered prefix ('/dev/vfio/' + '7') to a node, or undefined (ENOENT). */
export interface PathResolver {
  resolvePath(rest: string): ChrdevNode | FileOperations | undefined;
}

/**
 * struct callback_head as task_work_add queues it: the object whose method is the callback (____fput of a file),
 * so that the list holds no closure.
 */
export interface CallbackHead {
  taskWork(): Call<void>;
}

/** Per user thread kernel state: its process, its task_work list, its pending signal. */
export class UserTask {
  /** Newest first, like task->task_works. */
  readonly works: CallbackHead[] = [];
  /** exit_task_work has run: task_work_add fails from now on. */
  worksExited = false;
  /** A fatal signal is pending (the process is exiting): interruptible sleeps return -ERESTARTSYS / EINTR. */
  sigpending = false;
  /** Signals sent with tgkill whose handler runs when the current syscall returns to user space (bit signo - 1). */
  signals = 0n;
  /** current->fail_nth (/proc/thread-self/fail-nth): the Nth fault-injectable allocation fails (failslab.ts). */
  failNth = 0;

  constructor(
    readonly task: Task,
    readonly user: UserContext,
  ) {}
}

// Classes rather than object literals: the checker's state key reads a class's objects with one reader (literals of
// many shapes share Object's readers, tried one after the other).
/** A character device registered at an exact path. */
class Chrdev implements ChrdevNode {
  constructor(
    readonly fops: FileOperations,
    readonly inodePrivate: unknown,
  ) {}
}

/** A path prefix and what resolves the paths under it. */
class PathPrefix {
  constructor(
    readonly prefix: string,
    readonly resolver: PathResolver,
  ) {}
}

function isNode(x: ChrdevNode | FileOperations): x is ChrdevNode {
  return 'fops' in x;
}

/** smp_send_reschedule(cpu) from `fromCpu`: the architecture's reschedule IPI. */
export interface ReschedIpi {
  smpSendReschedule(fromCpu: number, cpu: number): void;
}

/**
 * Observers of host steps that have no Linux tracepoint (irqfwd events, docs/TRACING.md). Called after the step took
 * effect, on the task that made it; null when nobody traces.
 */
export interface HostTraceHooks {
  /** eventfd_signal added 1 to `ctx`'s count (before its waiters' wake functions ran). */
  eventfdSignal?(ctx: object): void;
  /** A VFIO platform handler ran for the IRQ of Linux number `irq` and will signal its trigger. */
  vfioIrq?(irq: number, action: 'automasked' | 'forwarded' | 'edge'): void;
  /** vfio_platform_unmask re-enabled a masked IRQ (Linux number `irq`). */
  vfioUnmask?(irq: number): void;
}

export class Kernel implements FileHost {
  readonly engine: Engine;
  trace: HostTraceHooks | null = null;
  readonly refs = new RefTracker();
  /** system_wq. */
  readonly systemWq: Workqueue;
  readonly processes: Process[] = [];

  private readonly chrdevs = new Map<string, ChrdevNode>();
  private readonly resolvers: PathPrefix[] = [];
  private readonly userTasks = new Map<Task, UserTask>();
  /** delayed_fput_list, oldest first (run newest first). */
  private readonly delayedFputList: KFile[] = [];
  readonly delayedFputWork: WorkStruct;
  /** Files released by delayed fput so far (a statistic for tests). */
  delayedFputs = 0;
  /** smp_send_reschedule's sender, installed by the IRQ layer's owner (KVM sends its IPI_RESCHEDULE). */
  reschedIpi: ReschedIpi | null = null;
  /** The IRQ bypass manager (virt/lib/irqbypass.c): its lists and its global mutex. */
  readonly irqBypass: IrqBypassManager;

  constructor(opts: KernelOptions = {}) {
    const { engine, ...eopts } = opts;
    this.engine = engine ?? new Engine({ ...eopts, cpus: eopts.cpus ?? 1 });
    this.systemWq = new Workqueue(this.engine, 'events');
    this.delayedFputWork = new WorkStruct(this.engine, 'delayed_fput', delayedFput, this);
    this.irqBypass = new IrqBypassManager(this.engine);
  }

  // ---- paths and files ----------------------------------------------------------------------------------------

  /** A character device node at an exact path ('/dev/kvm', '/dev/vfio/vfio'). */
  registerChrdev(path: string, fops: FileOperations, inodePrivate?: unknown): void {
    if (this.chrdevs.has(path)) throw new ModelError(`${path} is already registered`);
    this.chrdevs.set(path, new Chrdev(fops, inodePrivate));
  }

  unregisterChrdev(path: string): void {
    if (!this.chrdevs.delete(path)) throw new ModelError(`${path} is not registered`);
  }

  /** Nodes under a prefix, resolved at open time ('/dev/vfio/' → one node per IOMMU group). Exact paths win. */
  registerPathResolver(prefix: string, resolver: PathResolver): void {
    if (this.resolvers.some((r) => r.prefix === prefix)) throw new ModelError(`resolver for ${prefix} exists`);
    this.resolvers.push(new PathPrefix(prefix, resolver));
  }

  /** The node a path names, or undefined. Longest matching prefix first. */
  lookupPath(path: string): ChrdevNode | undefined {
    const exact = this.chrdevs.get(path);
    if (exact !== undefined) return exact;
    let best: { prefix: string; resolver: PathResolver } | undefined;
    for (const r of this.resolvers) {
      if (path.startsWith(r.prefix) && (best === undefined || r.prefix.length > best.prefix.length)) best = r;
    }
    if (best === undefined) return undefined;
    const rest = path.slice(best.prefix.length);
    if (rest.length === 0) return undefined;
    const got = best.resolver.resolvePath(rest);
    if (got === undefined) return undefined;
    return isNode(got) ? got : { fops: got };
  }

  /** alloc_file: a new struct file with one reference (the caller's). */
  allocFile(name: string, fops: FileOperations, privateData: unknown, flags: number): KFile {
    return new KFile(this, name, fops, privateData, flags);
  }

  /**
   * do_filp_open on a device path: ENOENT if nothing is there, then f_op->open. A failed open frees the file
   * without calling release (do_dentry_open never set FMODE_OPENED).
   */
  filpOpen(path: string, flags: number): Frame<KFile> {
    return new DoFilpOpen(this, path, flags);
  }

  /** anon_inode_getfile: f_flags = flags & (O_ACCMODE | O_NONBLOCK); private_data = priv. */
  anonInodeGetfile(name: string, fops: FileOperations, priv: unknown, flags: number): KFile {
    return this.allocFile(`anon_inode:${name}`, fops, priv, flags & (O_ACCMODE | O_NONBLOCK));
  }

  /**
   * anon_inode_getfd: reserve an fd (EMFILE), make the file, install it; returns the fd. `files` defaults to
   * current's. Only the file allocation is charged here; call it inside a step (see C_ANON_GETFD).
   */
  anonInodeGetfd(name: string, fops: FileOperations, priv: unknown, flags: number, files?: FdTable): number {
    const table = files ?? this.currentUser().files;
    const fd = table.getUnusedFd(flags);
    table.installFd(fd, this.anonInodeGetfile(name, fops, priv, flags));
    return fd;
  }

  // ---- processes and current ----------------------------------------------------------------------------------

  /** A new user process (the VMM). */
  process(opts: ProcessOptions = {}): Process {
    const p = new Process(this, opts);
    this.processes.push(p);
    return p;
  }

  registerUserTask(task: Task, user: UserContext): UserTask {
    if (this.userTasks.has(task)) throw new ModelError(`${task} is already a user task`);
    const ut = new UserTask(task, user);
    this.userTasks.set(task, ut);
    return ut;
  }

  userTask(task: Task): UserTask | undefined {
    return this.userTasks.get(task);
  }

  /** The process of the running user thread, or null (kernel thread, IRQ, outside any task). */
  currentUserOrNull(): UserContext | null {
    const t = currentOrNull();
    if (t === null) return null;
    return this.userTasks.get(t)?.user ?? null;
  }

  /** current->mm / current->files: the process the running syscall belongs to. */
  currentUser(): UserContext {
    const u = this.currentUserOrNull();
    if (u === null) {
      const t = currentOrNull();
      throw new ModelError(`no user context: ${t === null ? 'not in a task' : `${t} is not a user thread`}`);
    }
    return u;
  }

  /** signal_pending(current): a fatal signal (the process is exiting) or one sent to the thread with tgkill. */
  signalPending(): boolean {
    const t = currentOrNull();
    const ut = t === null ? undefined : this.userTasks.get(t);
    return ut !== undefined && (ut.sigpending || ut.signals !== 0n);
  }

  // ---- task_work and fput -------------------------------------------------------------------------------------

  /** task_work_add(current, work): false (-ESRCH) if current is not a user thread or its task_work is shut. */
  taskWorkAdd(work: CallbackHead): boolean {
    const t = currentOrNull();
    if (t === null || t.kind !== 'thread') return false;
    const ut = this.userTasks.get(t);
    if (ut === undefined || ut.worksExited) return false;
    ut.works.unshift(work);
    return true;
  }

  /**
   * task_work_run for current: runs queued callbacks (newest first) until none is left; with `exiting`, then
   * shuts the list (exit_task_work) so later fputs go to delayed fput.
   */
  taskWorkRun(exiting = false): Frame {
    const t = currentOrNull();
    return new TaskWorkRun(t === null ? undefined : this.userTasks.get(t), exiting);
  }

  /** FileHost: the last reference of `file` is gone. */
  deferFput(file: KFile): void {
    const t = currentOrNull();
    if (t !== null && t.kind === 'thread' && this.taskWorkAdd(file)) return;
    this.delayedFputList.push(file);
    if (this.delayedFputList.length === 1) this.systemWq.queueWork(this.delayedFputWork);
  }

  /** Files waiting for the delayed-fput work. */
  get delayedFputPending(): number {
    return this.delayedFputList.length;
  }

  /** delayed_fput's llist_del_all: the files queued so far, oldest first. */
  takeDelayedFputList(): KFile[] {
    return this.delayedFputList.splice(0);
  }

  /** flush_delayed_fput: wait until files handed to delayed fput so far are released. */
  flushDelayedFput(): Frame {
    return new FlushDelayedFput(this);
  }

  // ---- kernel threads and work ----------------------------------------------------------------------------------

  /** alloc_workqueue. */
  createWorkqueue(name: string): Workqueue {
    return new Workqueue(this.engine, name);
  }

  /** INIT_WORK. */
  initWork(name: string, fn: WorkFn, container: unknown = null): WorkStruct {
    return new WorkStruct(this.engine, name, fn, container);
  }

  /** queue_work(wq, work); system_wq by default. */
  queueWork(work: WorkStruct, wq: Workqueue = this.systemWq): boolean {
    return wq.queueWork(work);
  }

  /** schedule_work: queue_work on system_wq. */
  scheduleWork(work: WorkStruct): boolean {
    return this.systemWq.queueWork(work);
  }

  /** kthread_run. */
  kthreadRun(name: string, cpu: number, body: TaskBody): Task {
    return kthreadRun(this.engine, name, cpu, body);
  }

  // ---- running and checking -----------------------------------------------------------------------------------

  /** Run the engine until nothing is runnable or scheduled. */
  settle(maxSteps?: number): void {
    this.engine.settle(maxSteps);
  }

  /** Live refcounted objects, one line each (empty after a clean teardown). */
  leaks(kind?: string): string[] {
    return this.refs.leaks(kind);
  }
}

/** ErrnoErrors are ABI results; anything else escaping a syscall body is a model bug. */
export function isAbiError(e: unknown): e is ErrnoError {
  return e instanceof ErrnoError;
}

const TW_NEXT = 0; // task_work_run: take the newest callback
const TW_CALL = 1; // its step: run it

/** kernel/task_work.c task_work_run (and exit_task_work with `exiting`): run current's callbacks, newest first. */
class TaskWorkRun extends Frame {
  /** The callback taken off the list, run at TW_CALL. */
  private work: CallbackHead | null = null;

  constructor(
    private readonly ut: UserTask | undefined,
    private readonly exiting: boolean,
  ) {
    super();
  }

  protected step(): Boundary {
    const ut = this.ut;
    if (ut === undefined) return this.return_(undefined);
    if (this.pc === TW_CALL) {
      const work = this.work!;
      this.work = null;
      this.pc = TW_NEXT;
      return this.call(work.taskWork());
    }
    const work = ut.works.shift();
    if (work !== undefined) {
      this.work = work;
      this.pc = TW_CALL;
      return this.yield_(op(C_TASK_WORK));
    }
    if (this.exiting) ut.worksExited = true;
    return this.return_(undefined);
  }
}

markShared(delayedFput); // code an object of the model points at
/** fs/file_table.c delayed_fput, the work function of delayed_fput_work: __fput each queued file, newest first. */
function delayedFput(work: WorkStruct): Frame {
  return new DelayedFput(work.container as Kernel);
}

class DelayedFput extends Frame {
  private list: KFile[] = [];
  private i = 0;

  constructor(private readonly kernel: Kernel) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === 0) {
      this.list = this.kernel.takeDelayedFputList();
      this.i = this.list.length;
      this.pc = 1;
    }
    if (this.i === 0) return this.return_(undefined);
    this.kernel.delayedFputs++;
    return this.call(fputFinal(this.list[--this.i]!));
  }
}

/** flush_delayed_fput: queue delayed_fput_work while files wait for it, and flush it. */
class FlushDelayedFput extends Frame {
  constructor(private readonly kernel: Kernel) {
    super();
  }

  protected step(): Boundary {
    const k = this.kernel;
    const work = k.delayedFputWork;
    if (!work.busy && k.delayedFputPending === 0) return this.return_(undefined);
    if (!work.busy) k.systemWq.queueWork(work);
    return this.call(flushWork(work));
  }
}

const FO_LOOKUP = 0; // path_openat's lookup
const FO_OPEN = 1; // alloc_empty_file, then f_op->open (do_dentry_open)
const FO_OPENED = 2; // f_op->open returned

/** fs/namei.c do_filp_open on a device path. */
class DoFilpOpen extends Frame<KFile> {
  private file: KFile | null = null;

  constructor(
    private readonly kernel: Kernel,
    private readonly path: string,
    private readonly flags: number,
  ) {
    super();
  }

  protected step(): Boundary {
    switch (this.pc) {
      case FO_LOOKUP:
        this.pc = FO_OPEN;
        return this.yield_(op(C_PATH_LOOKUP));
      case FO_OPEN: {
        const node = this.kernel.lookupPath(this.path);
        if (node === undefined) throw errno('ENOENT', `no such file or directory: ${this.path}`);
        const file = this.kernel.allocFile(this.path, node.fops, undefined, this.flags);
        file.inodePrivate = node.inodePrivate;
        this.file = file;
        const open = node.fops.open;
        if (open === undefined) return this.return_(file);
        this.pc = FO_OPENED;
        return this.call(open.call(node.fops, file));
      }
      default:
        return this.return_(this.file!);
    }
  }

  /** f_op->open failed: free the file without release (do_dentry_open never set FMODE_OPENED). */
  protected override unwind(): void {
    if (this.pc === FO_OPENED) {
      this.file!.krefPut();
      this.file!.markFreed();
    }
  }
}
