/**
 * A vCPU (struct kvm_vcpu) and its fd (kvm_vcpu_ioctl, arm64 kvm_arch_vcpu_ioctl): KVM_ARM_VCPU_INIT and the run
 * loop of arch/arm64/kvm/arm.c kvm_arch_vcpu_ioctl_run, with handle_exit (handle_exit.c) for IRQ, WFx and data aborts
 * (io_mem_abort → the vGIC distributor or KVM_EXIT_MMIO).
 *
 * One pass of the loop, as steps of the vCPU thread:
 *   1. C_KVM_RUN_CHECK: signal pending → KVM_EXIT_INTR / EINTR.
 *   2. C_VGIC_FLUSH: local_irq_disable; vcpu->mode = IN_GUEST_MODE; kvm_vgic_flush_hwstate.
 *   3. C_KVM_ENTRY: trace kvm_entry; enter the guest (the engine runs the guest until it exits).
 *   4. C_KVM_EXIT: vcpu->mode = OUTSIDE_GUEST_MODE, count the exit.
 *   5. C_VGIC_SYNC: kvm_vgic_sync_hwstate (its host-GIC accesses charged to this step as they happen); the
 *      queued ack notifiers run (irqfd resampler); local_irq_enable — a pending physical IRQ is taken right after
 *      this step by the host vector (the engine does it when the thread unmasks). trace kvm_exit.
 *   6. C_KVM_HANDLE_EXIT: handle_exit.
 * Without an in-kernel vGIC, steps 2 and 5 only mask/unmask.
 *
 * kvm_run: the model maps the vCPU's struct kvm_run (KVM_RUN_SIZE bytes) into the creating process at
 * KVM_CREATE_VCPU, as if the VMM had mmapped the vCPU fd at once; `vcpu.runAddr` (or `Kvm`-independent
 * `kvmRunAddress(process, vcpuFd)`) gives its user address. The kernel writes exit_reason and the mmio member there
 * and reads immediate_exit and, after an MMIO read exit, mmio.data.
 */
import { errno } from '../abi/errno.js';
import {
  KVM_ARM_TARGET_GENERIC_V8,
  KVM_ARM_VCPU_HAS_EL2,
  KVM_ARM_VCPU_INIT,
  KVM_EXIT_INTR,
  KVM_EXIT_MMIO,
  KVM_EXIT_UNKNOWN,
  KVM_GET_DEVICE_ATTR,
  KVM_HAS_DEVICE_ATTR,
  KVM_RUN,
  KVM_SET_DEVICE_ATTR,
  KVMIO,
  kvmDeviceAttr,
  kvmExitReasonName,
  kvmRun,
  kvmVcpuInit,
} from '../abi/kvm.js';
import { errnoFromReturn, type FileOperations, type KFile } from '../host/file.js';
import { gicIpiSend, hostGicV2 } from '../host/irq/boot.js';
import type { Process } from '../host/process.js';
import type { GicVirtualInterface } from '../hw/gic/virtualInterface.js';
import type { GuestCpu } from '../sim/cpu.js';
import type { Engine } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { touch, touchRead } from '../sim/footprint.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { markShared } from '../sim/snapshot.js';
import { declareStatistics } from '../sim/statistics.js';
import { type Call, current, currentOrNull, op, type Task } from '../sim/task.js';
import { WaitQueue } from '../sim/waitqueue.js';
import { C_KVM_IOCTL } from './costs.js';
import type { GuestVcpuEnv } from './guest.js';
import { IPI_RESCHEDULE_SGI, type Kvm } from './kvm.js';
import { KvmArchVcpuIoctlRun } from './vcpuRun.js';
import type { VgicCpu } from './vgic/vgic.js';
import { vgicItsAt } from './vgic/vgicIts.js';
import { vgicItsMmioAccess } from './vgic/vgicItsMmio.js';
import { vgicMmioRead, vgicMmioWrite } from './vgic/vgicMmioV2.js';
import { vgicV3MmioAccess, vgicV3MmioHit } from './vgic/vgicMmioV3.js';
import { vgicV3MapResources } from './vgic/vgicV3Redist.js';
import { vgicV4FlushOps } from './vgic/vgicV4Ops.js';
import { type KvmVm, VGIC_ADDR_UNDEF } from './vm.js';

export const OUTSIDE_GUEST_MODE = 0;
export const IN_GUEST_MODE = 1;
/** Highest known feature bit of kvm_vcpu_init.features[0] (KVM_VCPU_VALID_FEATURES). */
const KVM_VCPU_VALID_FEATURES = (1 << (KVM_ARM_VCPU_HAS_EL2 + 1)) - 1;
/** PSCI_RET_NOT_SUPPORTED as the guest sees it in x0 (-1). */
export const PSCI_RET_NOT_SUPPORTED = -1;
const VGIC_V2_DIST_SIZE = 0x1000;
/** The KVM_EXIT_* numbers counted one by one (the uapi's highest is below 64). */
const KVM_EXIT_REASONS = 64;

/** Per-vCPU exit statistics (struct kvm_vcpu_stat plus the model's per-reason split). */
export class KvmVcpuStat {
  /** Guest entries and exits (every exit, whatever the reason). */
  entries = 0;
  exits = 0;
  /** ARM_EXCEPTION_IRQ exits; of which the vGIC maintenance interrupt was asserted at the exit. */
  irqExits = 0;
  maintenanceExits = 0;
  /** Trap exits by class. */
  wfxExits = 0;
  dabtExits = 0;
  hvcExits = 0;
  sysExits = 0;
  /** Data aborts emulated in the kernel (vGIC distributor) vs handed to the VMM (KVM_EXIT_MMIO). */
  mmioKernel = 0;
  mmioUser = 0;
  /** KVM_RUN returns to userspace (for every reason, EINTR included), and split by run->exit_reason (KVM_EXIT_*). */
  userspaceExits = 0;
  readonly userspaceExitReasons = new Uint32Array(KVM_EXIT_REASONS);
  signalExits = 0;
  /** kvm_vcpu_block: halts, and halts that actually slept. */
  halts = 0;
  haltSleeps = 0;
  /** kvm_vcpu_kick outcomes: a blocked vCPU woken, an IPI sent to a vCPU in guest mode. */
  kickWakeups = 0;
  kickIpis = 0;
}
declareStatistics(KvmVcpuStat);

export class KvmVcpu {
  readonly oid: number;
  /**
   * The checker's object for the vCPU's run state — vcpu->mode, whether it is in KVM_RUN and where the thread sleeps —
   * which only the vCPU thread writes; kicks and kvm_arm_halt_guest's poll read it from other CPUs.
   */
  readonly modeOid: number;
  /** The checker's object for vcpu->arch.pause: kvm_arm_halt_guest and resume write it, the run loop reads it. */
  readonly pauseOid: number;
  readonly fops: FileOperations;
  vgicCpu: VgicCpu | null = null;
  /** KVM_ARM_VCPU_INIT done (kvm_vcpu_initialized) with this target and features. */
  initialized = false;
  target = -1;
  features: readonly number[] = [];
  /** vcpu_has_run_once. */
  hasRunOnce = false;
  /** vcpu->mode. */
  mode = OUTSIDE_GUEST_MODE;
  /** Inside KVM_RUN (the vcpu->mutex of a running vCPU is held). */
  inRun = false;
  destroyed = false;
  /** The guest context, created at the first KVM_RUN for the thread that issued it. */
  guest: GuestCpu | null = null;
  env: GuestVcpuEnv | null = null;
  /** The host thread that runs this vCPU. */
  runTask: Task | null = null;
  /** kvm_vcpu_block's wait queue (vcpu->wait). */
  readonly wq: WaitQueue;
  /** vcpu->arch.pause (kvm_arm_halt_guest) and where the thread waits it out (kvm_vcpu_sleep). */
  paused = false;
  readonly pauseWq: WaitQueue;
  /** The vCPU thread sleeps in kvm_vcpu_sleep (paused) or kvm_vcpu_block (WFI): it cannot touch the vGIC. */
  pauseSleeping = false;
  wfiSleeping = false;
  /** vcpu_get_flag(IN_WFI): set by kvm_vcpu_wfi around the halt, for vgic_v4_put's doorbell and vgic_v4_load. */
  inWfi = false;
  /** User address of this vCPU's struct kvm_run (see the module comment). */
  runAddr = 0;
  /** Userspace-irqchip IRQ/FIQ lines (KVM_ARM_IRQ_TYPE_CPU without a vGIC). */
  readonly irqLines: boolean[] = [false, false];
  /** A KVM_EXIT_MMIO read whose data the next KVM_RUN hands to the guest (kvm_handle_mmio_return). */
  private mmioPending: { isWrite: boolean; len: number; task: Task | null } | null = null;
  readonly stat = new KvmVcpuStat();

  constructor(
    readonly vm: KvmVm,
    /** vcpu->vcpu_id. */
    readonly id: number,
    /** vcpu->vcpu_idx (creation order; the vGIC's vCPU index). */
    readonly idx: number,
  ) {
    this.oid = vm.kernel.engine.newOid(`vcpu${id}`);
    this.modeOid = vm.kernel.engine.newOid(`vcpu${id}.mode`);
    this.pauseOid = vm.kernel.engine.newOid(`vcpu${id}.pause-request`);
    this.wq = new WaitQueue(vm.kernel.engine, `vcpu${id}.wait`);
    this.pauseWq = new WaitQueue(vm.kernel.engine, `vcpu${id}.pause`);
    this.fops = KVM_VCPU_FOPS;
  }

  toString(): string {
    return `vcpu${this.id}`;
  }

  /** Out of guest mode with its LRs folded, and sleeping where it cannot touch the vGIC (kvm_arm_halt_guest's wait). */
  get halted(): boolean {
    touchRead(this.modeOid);
    return !this.inRun || this.pauseSleeping || this.wfiSleeping;
  }

  /** Exits by reason, for reports: IRQ (and MAINTENANCE among them), WFx, DABT_LOW, HVC64, SYS64. */
  exitsByReason(): Record<string, number> {
    const s = this.stat;
    return {
      IRQ: s.irqExits,
      MAINTENANCE: s.maintenanceExits,
      WFx: s.wfxExits,
      DABT_LOW: s.dabtExits,
      HVC64: s.hvcExits,
      SYS64: s.sysExits,
    };
  }

  /** Returns to userspace by KVM_EXIT_* name (KVM_EXIT_MMIO, KVM_EXIT_INTR, ...), the reasons seen so far. */
  userspaceExitsByReason(): Record<string, number> {
    const out: Record<string, number> = {};
    this.stat.userspaceExitReasons.forEach((n, reason) => {
      if (n > 0) out[kvmExitReasonName(reason)] = n;
    });
    return out;
  }

  countUserspaceExit(reason: number): void {
    this.stat.userspaceExits++;
    if (reason < KVM_EXIT_REASONS) this.stat.userspaceExitReasons[reason]!++;
  }

  // ---- kick ----------------------------------------------------------------------------------------------------

  /**
   * kvm_vcpu_kick: wake the vCPU if it is blocked (kvm_vcpu_wake_up); if it is in guest mode on another CPU, send the
   * reschedule IPI so it exits (a vCPU in guest mode on the kicker's own CPU cannot exist: the kicker runs there).
   * Called synchronously from inside the kicker's step (vgic_queue_irq_unlock's kick); the GICD_SGIR write is part of
   * that step and its cost (the kicker already declared it, e.g. C_VGIC_INJECT covers "kick request").
   */
  kvmVcpuKick(): void {
    touchRead(this.modeOid); // reads vcpu->mode and whether it sleeps on vcpu->wait (a wakeup declares the queue)
    if (this.wq.length > 0) {
      this.wq.wakeUpAll();
      this.stat.kickWakeups++;
      // kernel/sched/core.c ttwu_queue_wakelist/resched_curr: a wakeup on another CPU sends it the reschedule IPI
      // (arm64's idle loop does not poll TIF_NEED_RESCHED, so an idle target needs it to leave WFI)
      const sleeper = this.runTask;
      const waker = currentOrNull()?.cpu ?? -1;
      if (sleeper !== null && waker >= 0 && sleeper.cpu !== waker) {
        gicIpiSend(this.vm.kvm.hostIrq, waker, IPI_RESCHEDULE_SGI, 1 << sleeper.cpu);
      }
      return;
    }
    if (this.mode !== IN_GUEST_MODE || this.runTask === null) return;
    const target = this.runTask.cpu;
    const me = currentOrNull()?.cpu ?? -1;
    if (me === target) return;
    gicIpiSend(this.vm.kvm.hostIrq, me >= 0 ? me : target, IPI_RESCHEDULE_SGI, 1 << target);
    this.stat.kickIpis++;
  }

  // ---- ioctls --------------------------------------------------------------------------------------------------

  /** kvm_arch_vcpu_ioctl_vcpu_init (arm.c): EFAULT, EINVAL target, ENOENT unknown features, EINVAL changed init. */
  private vcpuInit(arg: number): number {
    const mem = this.vm.kernel.currentUser().mem;
    const init = kvmVcpuInit.read(mem.view(arg, kvmVcpuInit.size));
    if (init.target !== KVM_ARM_TARGET_GENERIC_V8) {
      throw errno('EINVAL', `target ${init.target} is neither GENERIC_V8 nor the host's preferred target`);
    }
    // kvm_vcpu_init_check_features
    if ((init.features[0]! & ~KVM_VCPU_VALID_FEATURES) !== 0) throw errno('ENOENT', 'unknown feature bit in word 0');
    for (let i = 1; i < init.features.length; i++) {
      if (init.features[i] !== 0) throw errno('ENOENT', `unknown feature bit in word ${i}`);
    }
    if (this.initialized) {
      // kvm_vcpu_init_changed
      const same = init.target === this.target && init.features.every((f, i) => f === this.features[i]);
      if (!same) throw errno('EINVAL', 'KVM_ARM_VCPU_INIT again with a different target or features');
      return 0;
    }
    this.initialized = true;
    this.target = init.target;
    this.features = [...init.features];
    return 0;
  }

  /** kvm_vcpu_ioctl. KVM_RUN is a frame of its own (vcpuRun.ts): no delegation on its hot path. */
  ioctl(cmd: number, arg: number): Frame<number> {
    return cmd >>> 0 === KVM_RUN ? new KvmArchVcpuIoctlRun(this, arg) : new KvmVcpuIoctl(this, cmd >>> 0, arg);
  }

  /** kvm_vcpu_ioctl's checks before the switch: the caller's mm, the ioctl type. */
  checkIoctl(c: number): void {
    if (this.vm.kernel.currentUser() !== this.vm.owner) throw errno('EIO', 'vCPU fd used outside the VM process');
    if (((c >>> 8) & 0xff) !== KVMIO) throw errno('EINVAL', `ioctl 0x${c.toString(16)} is not a KVM ioctl`);
  }

  /** The ioctls other than KVM_RUN, after kvm_vcpu_ioctl's step and checks. */
  otherIoctl(c: number, arg: number): number {
    this.checkIoctl(c);
    switch (c) {
      case KVM_ARM_VCPU_INIT:
        return this.vcpuInit(arg);
      case KVM_SET_DEVICE_ATTR:
      case KVM_GET_DEVICE_ATTR:
      case KVM_HAS_DEVICE_ATTR: {
        // kvm_arm_vcpu_arch_{set,get,has}_attr: PMU/timer/PV-time groups are not modelled
        const mem = this.vm.kernel.currentUser().mem;
        const attr = kvmDeviceAttr.read(mem.view(arg, kvmDeviceAttr.size));
        throw errno('ENXIO', `vCPU attribute group ${attr.group} is not modelled`);
      }
      default:
        throw errno('EINVAL', `vCPU fd has no ioctl 0x${c.toString(16)}`);
    }
  }

  // ---- KVM_RUN -------------------------------------------------------------------------------------------------

  writeExitReason(reason: number): void {
    const mem = this.vm.owner.mem;
    mem.view(this.runAddr + kvmRun.offsetof('exit_reason'), 4).setUint32(0, reason, true);
  }

  readExitReason(): number {
    return this.vm.owner.mem.view(this.runAddr + kvmRun.offsetof('exit_reason'), 4).getUint32(0, true);
  }

  /** kvm_arch_vcpu_run_pid_change on the first KVM_RUN: map the vGIC's resources, create the guest context. */
  private firstRun(t: Task): void {
    const vm = this.vm;
    if (vm.vgic?.isV3 === true && !vm.vgicReady) {
      vgicV3MapResources(vm, vm.vgic); // kvm_vgic_map_resources → vgic_v3_map_resources
      vm.vgicReady = true;
    }
    if (vm.vgic !== null && !vm.vgicReady) {
      // vgic_v2_map_resources
      if (vm.vgicDistBase === VGIC_ADDR_UNDEF || vm.vgicCpuBase === VGIC_ADDR_UNDEF) {
        throw errno('ENXIO', 'vGIC: set the distributor and CPU interface base addresses first');
      }
      const d = vm.vgicDistBase;
      const c = vm.vgicCpuBase;
      // vgic_v2_check_base: the two regions must not overlap
      if (!(d + BigInt(VGIC_V2_DIST_SIZE) <= c || c + 0x2000n <= d)) {
        throw errno('EINVAL', 'vGIC distributor and CPU interface regions overlap');
      }
      const r = vm.vgic.vgicInit();
      if (r < 0) throw errnoFromReturn(r, 'vgic_init');
      vm.vgicReady = true;
    }
    if (this.guest === null) {
      const env = new VcpuGuestEnv(this);
      const { thread, irqVector } = vm.kvm.guestFactory.createGuest(env);
      this.guest = vm.kvm.engine.createGuestCpu(`guest/vcpu${this.id}`, t, thread, irqVector);
      this.runTask = t;
      this.env = env;
    }
    this.hasRunOnce = true;
  }

  /**
   * kvm_arch_vcpu_ioctl_run's checks and set-up before the loop (after kvm_vcpu_ioctl's): first-run mapping,
   * kvm_handle_mmio_return, immediate_exit, then the vCPU is in KVM_RUN. Returns the running thread.
   */
  runPrologue(): Task {
    if (this.destroyed) throw new ModelError(`${this} ran after its VM was destroyed`);
    if (!this.initialized) throw errno('ENOEXEC', `${this} has not been through KVM_ARM_VCPU_INIT`);
    const t = current();
    if (this.inRun) throw new ModelError(`${this}: two threads in KVM_RUN`);
    if (!this.hasRunOnce) this.firstRun(t);
    if (this.guest!.host !== t) {
      throw new ModelError(`${this} is run from ${t} but its guest context belongs to ${this.guest!.host}`);
    }
    const mem = this.vm.owner.mem;
    // kvm_handle_mmio_return: complete a KVM_EXIT_MMIO read with the data the VMM left in kvm_run
    const mp = this.mmioPending;
    if (mp !== null) {
      this.mmioPending = null;
      if (!mp.isWrite && mp.task !== null) {
        const v = mem.view(this.runAddr + kvmRun.offsetof('mmio_data'), 8);
        mp.task.resumeValue = mp.len >= 4 ? v.getUint32(0, true) : mp.len === 2 ? v.getUint16(0, true) : v.getUint8(0);
      }
    }
    if (mem.view(this.runAddr, 2).getUint8(1) !== 0) {
      this.writeExitReason(KVM_EXIT_INTR);
      throw errno('EINTR', 'kvm_run.immediate_exit is set');
    }
    this.writeExitReason(KVM_EXIT_UNKNOWN);
    this.inRun = true;
    touch(this.modeOid);
    return t;
  }

  /** kvm_arch_vcpu_runnable as kvm_vcpu_check_block asks it. */
  runnable(): boolean {
    const vgic = this.vm.vgic;
    if (vgic !== null && this.vgicCpu !== null) return vgic.kvmVgicVcpuPendingIrq(this.vgicCpu);
    return this.irqLines[0]! || this.irqLines[1]!;
  }

  /** io_mem_abort: does the data abort hit the vGIC's distributor (or, v3, a redistributor): emulated in the kernel? */
  ioMemAbortInKernel(g: GuestCpu): boolean {
    return this.mmioHitV3(g) || this.mmioHitV2(g) || vgicItsAt(this.vm, BigInt(g.exitArg)) !== null;
  }

  private mmioHitV3(g: GuestCpu): boolean {
    const vgic = this.vm.vgic;
    return vgic?.isV3 === true && this.vgicCpu !== null && vgicV3MmioHit(vgic, this.vm.vgicDistBase, BigInt(g.exitArg));
  }

  private mmioHitV2(g: GuestCpu): boolean {
    const vm = this.vm;
    if (vm.vgic === null || this.vgicCpu === null || vm.vgicDistBase === VGIC_ADDR_UNDEF) return false;
    const ipa = BigInt(g.exitArg);
    return ipa >= vm.vgicDistBase && ipa < vm.vgicDistBase + BigInt(VGIC_V2_DIST_SIZE);
  }

  /**
   * The in-kernel emulation ioMemAbortInKernel accepted: vgic_mmio_{read,write} via the kvm_io_bus (the halt of other
   * vCPUs for ISACTIVER is not modelled). Returns the host calls it made on forwarded vLPIs (vgicV4Ops.ts), or null.
   */
  ioMemAbortKernel(g: GuestCpu): Frame<number> | null {
    const vc = this.vgicCpu!;
    const { isWrite, len, data } = g.mmio;
    const its = vgicItsAt(this.vm, BigInt(g.exitArg));
    if (its !== null) {
      const v = vgicItsMmioAccess(its, Number(BigInt(g.exitArg) - its.base), isWrite, len, data);
      if (!isWrite && g.trapTask !== null) g.trapTask.resumeValue = v;
    } else if (this.mmioHitV3(g)) {
      const v = vgicV3MmioAccess(vc, this.vm.vgicDistBase, BigInt(g.exitArg), isWrite, len, data);
      if (!isWrite && g.trapTask !== null) g.trapTask.resumeValue = v;
    } else {
      const off = Number(BigInt(g.exitArg) - this.vm.vgicDistBase);
      if (isWrite) vgicMmioWrite(vc, off, len, data);
      else if (g.trapTask !== null) g.trapTask.resumeValue = vgicMmioRead(vc, off, len);
    }
    this.stat.mmioKernel++;
    return vgicV4FlushOps(this.vm);
  }

  /** io_mem_abort's KVM_EXIT_MMIO: the access goes to the VMM in kvm_run; a read completes at the next KVM_RUN. */
  ioMemAbortUser(g: GuestCpu): void {
    const ipa = BigInt(g.exitArg);
    const { isWrite, len, data } = g.mmio;
    const view = this.vm.owner.mem.view(this.runAddr, kvmRun.size);
    const bytes = [0, 0, 0, 0, 0, 0, 0, 0];
    if (isWrite) for (let i = 0; i < Math.min(len, 4); i++) bytes[i] = (data >>> (8 * i)) & 0xff;
    kvmRun.write(view, {
      request_interrupt_window: view.getUint8(0),
      immediate_exit: view.getUint8(1),
      exit_reason: KVM_EXIT_MMIO,
      ready_for_interrupt_injection: 0,
      if_flag: 0,
      flags: 0,
      mmio_phys_addr: ipa,
      mmio_data: bytes,
      mmio_len: len,
      mmio_is_write: isWrite ? 1 : 0,
    });
    this.mmioPending = { isWrite, len, task: g.trapTask };
    this.stat.mmioUser++;
  }

  /** kvm_vcpu_release: drop the fd's VM reference. */
  release(): Frame {
    return this.vm.kvmPutKvm();
  }
}

/** What a vCPU's guest kernel reaches of KVM (kvm/guest.ts GuestVcpuEnv). */
class VcpuGuestEnv implements GuestVcpuEnv {
  readonly kvm: Kvm;
  readonly vm: KvmVm;
  readonly engine: Engine;

  constructor(readonly vcpu: KvmVcpu) {
    this.vm = vcpu.vm;
    this.kvm = vcpu.vm.kvm;
    this.engine = vcpu.vm.kvm.engine;
  }

  guest(): GuestCpu {
    if (this.vcpu.guest === null) throw new ModelError(`${this.vcpu}: guest context not created yet`);
    return this.vcpu.guest;
  }

  vif(): GicVirtualInterface {
    const g = this.vcpu.guest;
    if (g === null || g.loadedOn < 0) throw new ModelError(`${this.vcpu}: guest code runs outside guest mode`);
    return hostGicV2(this.kvm.hostIrq).vif(g.loadedOn); // a GICv2 guest's GICV
  }

  distBase(): number {
    return this.vm.vgicDistBase === VGIC_ADDR_UNDEF ? -1 : Number(this.vm.vgicDistBase);
  }
}

const KVM_VCPU_FOPS: FileOperations = markShared({
  name: 'kvm_vcpu_fops',
  // returns the vCPU's ioctl body itself: one delegation frame fewer on every step of a vCPU thread
  unlockedIoctl(file: KFile, cmd: number, arg: number): Call<number> {
    return (file.privateData as KvmVcpu).ioctl(cmd, arg);
  },
  release(file: KFile): Call<void> {
    return (file.privateData as KvmVcpu).release();
  },
});

/** The vCPU behind `vcpuFd` in process `p`. */
export function kvmVcpuOf(p: Process, vcpuFd: number): KvmVcpu {
  const v = p.files.lookup(vcpuFd)?.privateData;
  if (!(v instanceof KvmVcpu)) throw new ModelError(`fd ${vcpuFd} is not a vCPU fd`);
  return v;
}

/** The user address of the kvm_run of the vCPU behind `vcpuFd` in process `p` (the model's mmap of a vCPU fd). */
export function kvmRunAddress(p: Process, vcpuFd: number): number {
  return kvmVcpuOf(p, vcpuFd).runAddr;
}

/** kvm_vcpu_ioctl for the requests other than KVM_RUN: its step, then the request (no further step). */
class KvmVcpuIoctl extends Frame<number> {
  constructor(
    private readonly vcpu: KvmVcpu,
    private readonly cmd: number,
    private readonly arg: number,
  ) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === 0) {
      this.pc = 1;
      return this.yield_(op(C_KVM_IOCTL, this.vcpu.oid));
    }
    return this.return_(this.vcpu.otherIoctl(this.cmd, this.arg));
  }
}
