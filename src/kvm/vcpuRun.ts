/**
 * kvm_vcpu_ioctl(KVM_RUN) → arch/arm64/kvm/arm.c kvm_arch_vcpu_ioctl_run as a frame (sim/frame.ts): the run loop
 * with one guest entry and exit per pass (steps 1–6 of vcpu.ts's module comment), handle_exit and kvm_vcpu_wfi
 * written out in this one frame — every step of a vCPU thread resumes it, so nothing below it stays suspended but
 * what the vGIC fold calls (the irqfd resampler).
 */
import { ErrnoError, errno } from '../abi/errno.js';
import { KVM_EXIT_INTR, KVM_RUN } from '../abi/kvm.js';
import { ESR_ELx_EC_DABT_LOW, ESR_ELx_EC_HVC64, ESR_ELx_EC_SYS64, ESR_ELx_EC_WFx, esrClassName } from '../hw/esr.js';
import { EXIT_IRQ, type GuestCpu } from '../sim/cpu.js';
import { ModelError } from '../sim/errors.js';
import { touch, touchRead } from '../sim/footprint.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { localIrqRestore, localIrqSave } from '../sim/locks.js';
import { current, enterGuest, op } from '../sim/task.js';
import { wait } from '../sim/waitqueue.js';
import { C_KVM_ENTRY, C_KVM_EXIT, C_KVM_HANDLE_EXIT, C_KVM_IOCTL, C_KVM_MMIO_USER, C_KVM_RUN_CHECK } from './costs.js';
import { ARM_EXCEPTION_IRQ, ARM_EXCEPTION_TRAP } from './kvm.js';
import { IN_GUEST_MODE, type KvmVcpu, OUTSIDE_GUEST_MODE, PSCI_RET_NOT_SUPPORTED } from './vcpu.js';
import { C_VGIC_FLUSH, C_VGIC_MMIO, C_VGIC_SYNC, type Vgic, type VgicCpu } from './vgic/vgic.js';
import { VgicV4Commit, VgicV4Load, VgicV4Put, vgicV4Active } from './vgic/vgicV4.js';

/** kvm_vcpu_ioctl's own step. */
const PC_IOCTL = 0;
/** kvm_vcpu_ioctl's checks (an error here returns before any userspace-exit trace). */
const PC_CHECKS = 1;
/** kvm_arch_vcpu_ioctl_run's set-up (first run, kvm_handle_mmio_return, immediate_exit) and vcpu_load. */
const PC_PROLOGUE = 2;
/** Top of the loop: signal_pending / check_vcpu_requests. Every pc from here on is inside vcpu_load … vcpu_put. */
const PC_RUN_CHECK = 3;
/** kvm_vcpu_sleep: waiting for vcpu->arch.pause to clear. */
const PC_PAUSED = 4;
/** local_irq_disable; vcpu->mode = IN_GUEST_MODE; kvm_vgic_flush_hwstate. */
const PC_FLUSH = 5;
/** trace_kvm_entry, then kvm_call_hyp_ret(__kvm_vcpu_run). */
const PC_ENTRY = 6;
/** __kvm_vcpu_run returned (the engine resumes with how the guest exited). */
const PC_GUEST_EXITED = 7;
/** vcpu->mode = OUTSIDE_GUEST_MODE. */
const PC_EXIT = 8;
/** kvm_vgic_sync_hwstate. */
const PC_SYNC = 9;
/** kvm_notify_acked_irq returned: the rest of the fold. */
const PC_ACKED = 10;
/** handle_exit. */
const PC_HANDLE_EXIT = 11;
/** kvm_vcpu_block: waiting for a pending interrupt or a signal. */
const PC_BLOCKED = 12;
/** io_mem_abort → vgic_mmio_{read,write} on the kvm_io_bus. */
const PC_MMIO_KERNEL = 13;
/** io_mem_abort → KVM_EXIT_MMIO to the VMM. */
const PC_MMIO_USER = 14;
/** The loop ended (ret ≤ 0): vcpu_put is done. */
const PC_RETURNED = 15;
// GICv4.1 (vgicV4.ts), only when the VM has direct MSIs: resume points after each vgic-v4.c call
/** vgic_v4_load returned (vcpu_load, or kvm_vcpu_wfi's wake-up): the next pass. */
const PC_V4_LOADED = 16;
/** vgic_v4_commit returned: the guest entry. */
const PC_V4_COMMITTED = 17;
/** kvm_vcpu_wfi's vgic_v4_put (IN_WFI, doorbell requested) returned: block unless runnable. */
const PC_V4_WFI_PUT = 18;
/** vcpu_put's vgic_v4_put returned: KVM_RUN returns, or fails with EINTR. */
const PC_V4_PUT_LEAVE = 19;
const PC_V4_PUT_EINTR = 20;
/** KVM_REQ_RELOAD_GICv4's vgic_v4_put returned: vgic_v4_load. */
const PC_V4_RELOAD = 21;
/** io_mem_abort's emulation made host calls on forwarded vLPIs (vgicV4Ops.ts): they returned. */
const PC_MMIO_V4_OPS = 22;

export class KvmArchVcpuIoctlRun extends Frame<number> {
  /** The vGIC and vGIC CPU of vcpu_load (vcpu_put puts these). */
  private vgic0: Vgic | null = null;
  private vc0: VgicCpu | null = null;
  /** This pass's vGIC, vGIC CPU and guest context. */
  private vgic: Vgic | null = null;
  private vc: VgicCpu | null = null;
  private g: GuestCpu | null = null;
  /** local_irq_save's flags of this pass. */
  private flags = false;
  /** How the guest exited (EXIT_IRQ or a trap) and whether the maintenance interrupt was asserted then. */
  private how = 0;
  private maint = false;
  /** The GSI whose resampler the fold is notifying. */
  private gsi = -1;
  /** The physical CPU the vCPU blocked on (its vGIC state is loaded back there). */
  private cpu = -1;
  /** The errno an exception leaving the frame carries (catch_ → unwind), 0 for a non-errno one. */
  private errorCode = 0;

  constructor(
    private readonly vcpu: KvmVcpu,
    private readonly arg: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const vcpu = this.vcpu;
    switch (this.pc) {
      case PC_IOCTL:
        return this.yieldAt(PC_CHECKS, C_KVM_IOCTL);
      case PC_CHECKS:
        return this.prologue();
      case PC_RUN_CHECK:
        return this.runCheck();
      case PC_PAUSED:
        return this.pausedWait();
      case PC_FLUSH: {
        this.flags = localIrqSave(); // local_irq_disable
        vcpu.mode = IN_GUEST_MODE;
        touch(vcpu.modeOid);
        const vgic = this.vgic;
        const vc = this.vc;
        if (vgic !== null && vc !== null) {
          vc.irqPendingRequest = false; // check_vcpu_requests: KVM_REQ_IRQ_PENDING
          vgic.kvmVgicFlushHwstate(vc);
          if (vgicV4Active(vcpu)) {
            this.pc = PC_V4_COMMITTED;
            return this.call(new VgicV4Commit(vcpu));
          }
        }
        return this.yieldAt(PC_ENTRY, C_KVM_ENTRY);
      }
      case PC_V4_COMMITTED:
        return this.yieldAt(PC_ENTRY, C_KVM_ENTRY);
      case PC_V4_LOADED:
        return this.continueLoop();
      case PC_V4_WFI_PUT:
        return this.wfiBlock();
      case PC_V4_PUT_LEAVE:
        return this.leave();
      case PC_V4_PUT_EINTR:
      case PC_V4_RELOAD:
        return this.runCheck();
      case PC_ENTRY:
        vcpu.vm.trace?.kvmEntry(vcpu);
        vcpu.stat.entries++;
        this.pc = PC_GUEST_EXITED;
        return this.yield_(enterGuest(this.g));
      case PC_GUEST_EXITED:
        this.how = sent as number;
        return this.yieldAt(PC_EXIT, C_KVM_EXIT);
      case PC_EXIT: {
        vcpu.mode = OUTSIDE_GUEST_MODE;
        touch(vcpu.modeOid);
        vcpu.stat.exits++;
        const vc = this.vc;
        this.maint = vc?.vif?.maintenanceLine === true;
        if (this.vgic !== null && vc !== null) return this.yieldAt(PC_SYNC, C_VGIC_SYNC, vc.oid);
        return this.afterSync();
      }
      case PC_SYNC:
        // kvm_vgic_sync_hwstate; its fold runs kvm_notify_acked_irq (the irqfd resampler) for each EOId level SPI
        // before folding that LR, and prunes after the last one
        this.gsi = this.vgic!.kvmVgicSyncHwstate(this.vc!);
        return this.notifyAcked();
      case PC_ACKED:
        touch(this.vc!.oid); // the rest of the fold and the prune run in the notifier's last step
        this.gsi = this.vgic!.kvmVgicSyncContinue(this.vc!);
        return this.notifyAcked();
      case PC_HANDLE_EXIT:
        return this.handleExit();
      case PC_BLOCKED:
        return this.blockedWait();
      case PC_MMIO_KERNEL: {
        const ops = vcpu.ioMemAbortKernel(this.g!);
        if (ops === null) return this.continueLoop();
        this.pc = PC_MMIO_V4_OPS;
        return this.call(ops);
      }
      case PC_MMIO_V4_OPS:
        return this.continueLoop();
      case PC_MMIO_USER:
        vcpu.ioMemAbortUser(this.g!);
        return this.leave();
      default:
        throw new ModelError(`${vcpu}: KVM_RUN resumed at pc ${this.pc}`);
    }
  }

  private yieldAt(pc: number, costId: number, oid = this.vcpu.oid): Boundary {
    this.pc = pc;
    return this.yield_(op(costId, oid));
  }

  /** kvm_vcpu_ioctl's checks, then kvm_arch_vcpu_ioctl_run's set-up and vcpu_load. */
  private prologue(): Boundary {
    const vcpu = this.vcpu;
    vcpu.checkIoctl(KVM_RUN);
    if (this.arg !== 0) throw errno('EINVAL', 'KVM_RUN takes no argument');
    this.pc = PC_PROLOGUE;
    const t = vcpu.runPrologue();
    const vgic0 = vcpu.vm.vgic;
    const vc0 = vcpu.vgicCpu;
    this.vgic0 = vgic0;
    this.vc0 = vc0;
    if (vgic0 !== null && vc0 !== null) vgic0.kvmVgicLoad(vc0, vcpu.vm.kvm.hostVif(t.cpu)); // vcpu_load
    return this.v4Load(t.cpu);
  }

  /** vgic_v4_load (vgic_v3_load's, or kvm_vcpu_wfi's after the halt), then the next pass. */
  private v4Load(cpu: number): Boundary {
    if (!vgicV4Active(this.vcpu)) return this.continueLoop();
    this.pc = PC_V4_LOADED;
    return this.call(new VgicV4Load(this.vcpu, cpu));
  }

  /** vgic_v4_put (vgic_v3_put's, or kvm_vcpu_wfi's with IN_WFI) resuming at `pc`; false: nothing to put. */
  private v4Put(pc: number): Boundary | null {
    if (!vgicV4Active(this.vcpu)) return null;
    this.pc = pc;
    return this.call(new VgicV4Put(this.vcpu));
  }

  /** `continue`: the next pass starts with step 1. */
  private continueLoop(): Boundary {
    return this.yieldAt(PC_RUN_CHECK, C_KVM_RUN_CHECK);
  }

  /** Step 1: signal_pending → KVM_EXIT_INTR; KVM_REQ_SLEEP; else step 2 of one guest entry and exit. */
  private runCheck(): Boundary {
    const vcpu = this.vcpu;
    if (vcpu.vm.kernel.signalPending()) {
      if (this.pc !== PC_V4_PUT_EINTR) {
        const put = this.v4Put(PC_V4_PUT_EINTR); // vcpu_put before KVM_RUN fails
        if (put !== null) return put;
      }
      vcpu.stat.signalExits++;
      vcpu.writeExitReason(KVM_EXIT_INTR);
      throw errno('EINTR', `${vcpu}: signal pending`);
    }
    const vc = vcpu.vgicCpu;
    if (vc !== null && vgicV4Active(vcpu) && this.pc !== PC_V4_RELOAD && vc.reloadGicv4Request) {
      // check_vcpu_requests: KVM_REQ_RELOAD_GICv4 — vgic_v4_put, then vgic_v4_load with the new enable
      touch(vc.oid); // the request GICD_CTLR's writer made
      vc.reloadGicv4Request = false;
      const put = this.v4Put(PC_V4_RELOAD);
      if (put !== null) return put;
    }
    if (this.pc === PC_V4_RELOAD) {
      this.pc = PC_RUN_CHECK;
      return this.v4Load(current().cpu);
    }
    touchRead(vcpu.pauseOid);
    if (vcpu.paused) {
      // check_vcpu_requests: KVM_REQ_SLEEP → kvm_vcpu_sleep until vcpu->arch.pause is cleared
      vcpu.pauseSleeping = true;
      touch(vcpu.modeOid);
      this.pc = PC_PAUSED;
      return this.pausedWait();
    }
    this.vgic = vcpu.vm.vgic;
    this.vc = vcpu.vgicCpu;
    this.g = vcpu.guest!;
    return this.yieldAt(PC_FLUSH, C_VGIC_FLUSH, this.vc?.oid ?? vcpu.oid);
  }

  private pausedWait(): Boundary {
    const vcpu = this.vcpu;
    touchRead(vcpu.pauseOid);
    if (vcpu.paused && !vcpu.vm.kernel.signalPending()) return this.yield_(wait(vcpu.pauseWq));
    vcpu.pauseSleeping = false;
    touch(vcpu.modeOid);
    return this.continueLoop();
  }

  /** The fold's next kvm_notify_acked_irq, or the end of step 5. */
  private notifyAcked(): Boundary {
    if (this.gsi < 0) return this.afterSync();
    this.pc = PC_ACKED;
    return this.call(this.vcpu.vm.irqfds.notifyAcked(this.gsi));
  }

  /** local_irq_enable: a pending host IRQ is taken before the next step. */
  private afterSync(): Boundary {
    localIrqRestore(this.flags);
    return this.yieldAt(PC_HANDLE_EXIT, C_KVM_HANDLE_EXIT);
  }

  /** Step 6: handle_exit / handle_trap_exceptions. */
  private handleExit(): Boundary {
    const vcpu = this.vcpu;
    const vm = vcpu.vm;
    const g = this.g!;
    const isIrq = this.how === EXIT_IRQ;
    // kvm_arch_vcpu_ioctl_run traces kvm_exit once IRQs are enabled again, i.e. after the host took the IRQ
    vm.trace?.kvmExit(vcpu, isIrq ? ARM_EXCEPTION_IRQ : ARM_EXCEPTION_TRAP, isIrq ? 0 : g.exitReason);
    const st = vcpu.stat;
    if (isIrq) {
      st.irqExits++;
      if (this.maint) st.maintenanceExits++;
      return this.continueLoop();
    }
    const ec = g.exitReason;
    switch (ec) {
      case ESR_ELx_EC_WFx: {
        // kvm_vcpu_wfi → kvm_vcpu_halt → kvm_vcpu_block: sleep on vcpu->wait until an interrupt is pending for the
        // vCPU or a signal arrives; kicks wake it. The vGIC state is put while sleeping (kvm_arch_vcpu_blocking /
        // preempt notifiers) and loaded back after.
        st.wfxExits++;
        st.halts++;
        if (vgicV4Active(vcpu)) {
          // kvm_vcpu_wfi: IN_WFI and vgic_v4_put (doorbell requested) before deciding to block
          vcpu.inWfi = true;
          return this.v4Put(PC_V4_WFI_PUT)!;
        }
        return this.wfiBlock();
      }
      case ESR_ELx_EC_DABT_LOW:
        st.dabtExits++;
        // io_mem_abort: the vGIC distributor is emulated here; anything else exits to the VMM with KVM_EXIT_MMIO
        if (vcpu.ioMemAbortInKernel(g)) return this.yieldAt(PC_MMIO_KERNEL, C_VGIC_MMIO, this.vc!.oid);
        return this.yieldAt(PC_MMIO_USER, C_KVM_MMIO_USER);
      case ESR_ELx_EC_HVC64:
        // kvm_smccc_call_handler: PSCI is not modelled; every call answers NOT_SUPPORTED
        st.hvcExits++;
        if (g.trapTask !== null) g.trapTask.resumeValue = PSCI_RET_NOT_SUPPORTED;
        return this.continueLoop();
      case ESR_ELx_EC_SYS64:
        st.sysExits++;
        return this.continueLoop();
      default:
        throw new ModelError(`${vcpu}: guest trapped with unhandled exception class ${esrClassName(ec)}`);
    }
  }

  /** kvm_vcpu_halt → kvm_vcpu_block, unless an interrupt is pending for the vCPU or a signal. */
  private wfiBlock(): Boundary {
    const vcpu = this.vcpu;
    if (vcpu.runnable() || vcpu.vm.kernel.signalPending()) return this.wfiDone();
    vcpu.stat.haltSleeps++;
    this.cpu = current().cpu;
    if (this.vgic !== null && this.vc !== null) this.vgic.kvmVgicPut(this.vc);
    vcpu.wfiSleeping = true;
    touch(vcpu.modeOid);
    this.pc = PC_BLOCKED;
    return this.blockedWait();
  }

  /** kvm_vcpu_wfi's end: IN_WFI cleared, vgic_v4_load. */
  private wfiDone(): Boundary {
    if (!this.vcpu.inWfi) return this.continueLoop();
    this.vcpu.inWfi = false;
    return this.v4Load(current().cpu);
  }

  private blockedWait(): Boundary {
    const vcpu = this.vcpu;
    const kernel = vcpu.vm.kernel;
    if (!vcpu.runnable() && !kernel.signalPending()) return this.yield_(wait(vcpu.wq));
    vcpu.wfiSleeping = false;
    touch(vcpu.modeOid);
    if (this.vgic !== null && this.vc !== null) this.vgic.kvmVgicLoad(this.vc, vcpu.vm.kvm.hostVif(this.cpu));
    return this.wfiDone();
  }

  /** The loop ends with ret 0 (an exit to the VMM): vcpu_put, then KVM_RUN returns. */
  private leave(): Boundary {
    if (this.pc !== PC_V4_PUT_LEAVE) {
      const put = this.v4Put(PC_V4_PUT_LEAVE);
      if (put !== null) return put;
    }
    this.vcpuPut();
    this.pc = PC_RETURNED;
    this.userspaceExit(0);
    return this.return_(0);
  }

  /** vcpu_put, and the vCPU is out of KVM_RUN. */
  private vcpuPut(): void {
    const vgic0 = this.vgic0;
    const vc0 = this.vc0;
    if (vgic0 !== null && vc0 !== null && vc0.vif !== null) vgic0.kvmVgicPut(vc0);
    this.vcpu.inRun = false;
    touch(this.vcpu.modeOid);
  }

  private userspaceExit(code: number): void {
    const vcpu = this.vcpu;
    const reason = vcpu.readExitReason();
    vcpu.countUserspaceExit(reason);
    vcpu.vm.trace?.kvmUserspaceExit(vcpu, reason, code);
  }

  /** The userspace-exit trace of kvm_vcpu_ioctl sees the error an exception carries: unwind() traces it. */
  protected override catch_(e: unknown): boolean {
    this.errorCode = e instanceof ErrnoError ? e.code : 0;
    return false;
  }

  /**
   * An exception inside the loop: vcpu_put (the generator's finally), then kvm_vcpu_ioctl's
   * trace_kvm_userspace_exit(run->exit_reason, r), which follows every KVM_RUN past its checks.
   */
  protected override unwind(): void {
    if (this.pc >= PC_RUN_CHECK && this.pc !== PC_RETURNED) this.vcpuPut();
    if (this.pc >= PC_PROLOGUE) this.userspaceExit(this.errorCode);
  }
}
