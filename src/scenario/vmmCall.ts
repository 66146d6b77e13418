/**
 * A VMM operation as tasks: each system call of an operation (src/scenario/vmm.ts) with its argument already laid
 * out in the process's memory, as plain data. The same calls run synchronously on the process's main thread (the
 * timed run: `runCall`, one task per call, as `p.ioctl` runs) or one after another on a VMM thread inside the
 * machine (the checker's concurrent phase: `VmmScript`), where every interleaving with the vCPUs and devices is
 * possible.
 */
import { ErrnoError } from '../abi/errno.js';
import {
  KVM_DEV_VFIO_DEVICE,
  KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ,
  KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ,
  KVM_DEV_VFIO_GROUP,
  KVM_DEV_VFIO_GROUP_DEL,
  KVM_RUN,
  KVM_SET_DEVICE_ATTR,
} from '../abi/kvm.js';
import type { Process, SyscallHandle, UThread } from '../host/process.js';
import { type Boundary, Frame } from '../sim/frame.js';
import type { Call, Op } from '../sim/task.js';
import type { ScenarioStep } from './schema.js';
import { forwardedIrq, layoutDeviceAttr, layoutRawIoctl, type RawIoctlCall, s32Bytes } from './vmm.js';

/** One system call, its argument in user memory: `mem` is what to free after it (in order). */
export type VmmCall =
  | {
      readonly kind: 'ioctl';
      readonly fd: number;
      readonly request: number;
      readonly arg: number;
      readonly mem: readonly number[];
      /** /proc/thread-self/fail-nth armed for this call (0: none). */
      readonly failNth: number;
      /** The name the fd this call creates is bound to (a raw ioctl step's `as`). */
      readonly as?: string;
    }
  | { readonly kind: 'close'; readonly fd: number; readonly mem: readonly number[] };

/** KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ (or DEASSIGN_IRQ) {device, index, gsi} on the kvm-vfio fd. */
export function forwardCall(
  p: Process,
  op: 'assign' | 'deassign',
  kvmVfio: number,
  device: number,
  index: number,
  gsi: number,
): VmmCall {
  const attr = op === 'assign' ? KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ : KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ;
  const { arg, mem } = layoutDeviceAttr(p, KVM_DEV_VFIO_DEVICE, attr, forwardedIrq(device, index, gsi));
  return { kind: 'ioctl', fd: kvmVfio, request: KVM_SET_DEVICE_ATTR, arg, mem, failNth: 0 };
}

/** KVM_DEV_VFIO_GROUP_DEL of `group` on the kvm-vfio fd. */
export function groupDelCall(p: Process, kvmVfio: number, group: number): VmmCall {
  const { arg, mem } = layoutDeviceAttr(p, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_DEL, s32Bytes(group));
  return { kind: 'ioctl', fd: kvmVfio, request: KVM_SET_DEVICE_ATTR, arg, mem, failNth: 0 };
}

/** A raw ioctl (vmm.ts layoutRawIoctl); RawIoctlError when its argument cannot be built. */
export function rawIoctlCall(
  p: Process,
  call: RawIoctlCall,
  resolveFd: (ref: string) => number,
  failNth = 0,
  as?: string,
): VmmCall {
  const { request, arg, mem } = layoutRawIoctl(p, call, resolveFd);
  return { kind: 'ioctl', fd: call.fd, request, arg, mem, failNth, ...(as !== undefined ? { as } : {}) };
}

/** One KVM_RUN: the vCPU enters the guest until an exit user space must handle. */
export function kvmRunCall(vcpu: number): VmmCall {
  return { kind: 'ioctl', fd: vcpu, request: KVM_RUN, arg: 0, mem: [], failNth: 0 };
}

export function closeCall(fd: number): VmmCall {
  return { kind: 'close', fd, mem: [] };
}

/** The name a syscall handle carries (the synchronous API's). */
export function callWhat(c: VmmCall): string {
  return c.kind === 'ioctl' ? `ioctl(${c.fd}, 0x${(c.request >>> 0).toString(16)})` : `close(${c.fd})`;
}

/** The call as a task body on one of the process's threads. */
export function callTask(p: Process, c: VmmCall): Call<number> {
  return c.kind === 'ioctl' ? p.sysIoctl(c.fd, c.request, c.arg) : p.sysClose(c.fd);
}

/** Starts `body` (a generator or a frame returning the syscall's result) on `th`. */
export function submitTask(th: UThread, what: string, body: Call<number>): SyscallHandle {
  return th.submit(what, body);
}

/**
 * Runs `c` on the process's main thread and drives the machine until it returns (p.ioctl / p.close); frees its
 * memory (after `onReturn` read what it needs). A call that carries a fail-nth arms it for itself and disarms it
 * after; others leave the thread's as it is.
 */
export function runCall(p: Process, c: VmmCall, onReturn?: (ret: number) => void): number {
  const ut = p.main.ut;
  const armed = c.kind === 'ioctl' && c.failNth > 0;
  if (armed) ut.failNth = c.failNth;
  try {
    const ret = p.main.call(callWhat(c), callTask(p, c));
    onReturn?.(ret); // before the argument is freed: it may hold a result (kvm_create_device.fd)
    return ret;
  } finally {
    if (armed) ut.failNth = 0;
    for (const a of c.mem) p.mem.free(a);
  }
}

/** What a VmmScript needs from its VMM: a step laid out when the script gets to it, and the fds calls create. */
export interface ScriptVmm {
  plan(st: ScenarioStep): VmmCall[];
  bind(c: VmmCall, ret: number): void;
}

/**
 * An entry of a script: a call laid out already, or a raw ioctl step laid out when the thread gets to it (it names an
 * fd that an earlier call of the script creates).
 */
export type ScriptEntry = VmmCall | { readonly kind: 'late'; readonly step: ScenarioStep };

/** VmmScript resumes here: issue `entries[i]`, or its call returned and the next is issued. */
const PC_ISSUE = 0;
const PC_RETURNED = 1;

/**
 * A VMM thread's script: the calls one after another, each as the thread's nested syscall, with fail-nth armed per
 * call as syzkaller arms it. An ABI refusal (ErrnoError) is an outcome of the interleaving, not a model failure: the
 * VMM goes on with the next call, as QEMU would. `outcomes` records each call's return value or errno name; a call
 * that returns binds the fd it created to its name (`as`).
 */
export class VmmScript extends Frame<number> {
  readonly outcomes: (number | string)[] = [];
  private i = 0;
  /** The call in flight. */
  private current: VmmCall | null = null;

  constructor(
    private readonly p: Process,
    private readonly th: UThread,
    private readonly entries: readonly ScriptEntry[],
    private readonly vmm: ScriptVmm,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    if (this.pc === PC_RETURNED) {
      this.vmm.bind(this.current!, sent as number);
      this.finished(sent as number);
    }
    if (this.i === this.entries.length) return this.return_(0);
    const e = this.entries[this.i]!;
    const c = e.kind === 'late' ? this.vmm.plan(e.step)[0]! : e;
    this.current = c;
    this.th.ut.failNth = c.kind === 'ioctl' ? c.failNth : 0; // /proc/thread-self/fail-nth
    this.pc = PC_RETURNED;
    return this.call(callTask(this.p, c));
  }

  override next(sent?: unknown): IteratorResult<Op, number> {
    try {
      return super.next(sent);
    } catch (e) {
      if (!(e instanceof ErrnoError)) throw e;
      this.finished(e.errno);
      this.pc = PC_ISSUE;
      return this.next(undefined);
    }
  }

  /** The call a syscall left with `outcome`: disarm fail-nth (the generator's finally) and go on with the next. */
  private finished(outcome: number | string): void {
    this.th.ut.failNth = 0;
    this.current = null;
    this.outcomes.push(outcome);
    this.i++;
  }

  protected override unwind(): void {
    this.th.ut.failNth = 0;
  }
}
