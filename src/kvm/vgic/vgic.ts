/**
 * The KVM vGIC-v2 core, after arch/arm64/kvm/vgic/{vgic.c, vgic-v2.c, vgic-init.c} of Linux 6.1 (the version the
 * whole model pins, docs/ABI.md "Kernel version"): per-VM distributor state
 * (`Vgic`, struct vgic_dist), per-vCPU state (`VgicCpu`, struct vgic_cpu + struct vgic_v2_cpu_if) with its ap-list,
 * injection, HW mapping, and the flush (emulation → list registers) / sync (list registers → emulation) pair run
 * around every guest entry and exit, against the GicVirtualInterface of the physical CPU the vCPU is loaded on.
 *
 * Concurrency: every function here is synchronous; one call is one atomic step of its caller, who declares it first
 * with `yield op(cost, irq.oid, vcpu.oid)` using the costs exported below. In the kernel these functions take
 * irq_lock / ap_list_lock internally; in an atomic step the lock-drop-and-retry dance of vgic_queue_irq_unlock and
 * vgic_prune_ap_list has nothing to retry, so it is not reproduced.
 *
 * Errors: paths userspace can reach (through KVM_IRQ_LINE, irqfd, the device API) return the kernel's value, a
 * negative errno (e.g. -EINVAL); the ioctl layer turns it into an ErrnoError. A kernel BUG_ON (a broken invariant
 * of the caller) throws ModelError.
 *
 * Hot path (inject, flush, fold, prune) allocates nothing: ap-lists are fixed-capacity arrays, shadow LRs a
 * Uint32Array.
 */

import { ERRNO } from '../../abi/errno.js';
import { KVM_DEV_TYPE_ARM_VGIC_V2, KVM_DEV_TYPE_ARM_VGIC_V3 } from '../../abi/kvm.js';
import type { ItsVm } from '../../host/irq/its/itsVpe.js';
import type { GicVirtualInterface } from '../../hw/gic/virtualInterface.js';
import type { Gicv3VirtualInterface } from '../../hw/gicv3/virtualInterface.js';
import { defineCost } from '../../sim/costs.js';
import { ModelError } from '../../sim/errors.js';
import { markShared } from '../../sim/snapshot.js';
import { declareStatistics } from '../../sim/statistics.js';
import { KvmGuestMemory } from '../guestMem.js';
import {
  irqIsPending,
  irqIsPpi,
  VGIC_CONFIG_EDGE,
  VGIC_CONFIG_LEVEL,
  VGIC_MAX_RESERVED,
  VGIC_MIN_LPI,
  VGIC_NR_PRIVATE_IRQS,
  VgicIrq,
  type VgicIrqOps,
  vgicIrqGetLrCount,
  vgicIrqIsMappedLevel,
  vgicIrqIsSgi,
} from './vgicIrq.js';
import { type VgicTranslationCacheEntry, vgicHasIts, vgicLpiTranslationCacheInit, vgicPutIrq } from './vgicLpi.js';
import { VgicV2 } from './vgicV2.js';
import { VgicV3 } from './vgicV3.js';
import type { VgicRedistRegion } from './vgicV3Redist.js';
import type { VgicV4Op } from './vgicV4Ops.js';

// ---- costs (cycles; callers charge them on the step that makes the call) ---------------------------------------

export const C_VGIC_INJECT = defineCost(
  'vgic_inject_irq',
  300,
  'kvm_vgic_inject_irq: irq_lock + ap_list_lock + list_add + kick request; estimate, no published figure (perf-anchors §1.6)',
);
export const C_VGIC_FLUSH = defineCost(
  'vgic_flush_hwstate',
  400,
  'kvm_vgic_flush_hwstate: populate LRs + vgic_v2_restore_state; restore = 181 cyc, ISCA 2016 Table III [R] (perf-anchors §1.1), + ~200 estimate for populate',
);
export const C_VGIC_SYNC = defineCost(
  'vgic_sync_hwstate',
  3250,
  'kvm_vgic_sync_hwstate: vgic_v2_save_state (GICH MMIO reads of MISR/ELRSR/LRs) dominates: VGIC save = 3,250 cyc, ISCA 2016 Table III [R] (perf-anchors §1.1); fold + prune folded in',
);
export const C_VGIC_MMIO = defineCost(
  'vgic_mmio_access',
  870,
  'emulated GICD access excluding the exit: ISCA 2016 Table II interrupt-controller trap 7,370 - hypercall 6,500 = 870 cyc [D] (perf-anchors §1.1)',
);
export const C_VGIC_MAP = defineCost(
  'vgic_map_phys_irq',
  200,
  'kvm_vgic_map/unmap_phys_irq: irq_lock + irq_desc walk to the root irqchip; estimate',
);

/** arm64 KVM_PHYS_SHIFT: the default IPA size, for a vGIC built without a VM. */
const KVM_PHYS_SHIFT_DEFAULT = 40;
/** include/kvm/arm_vgic.h VGIC_V2_MAX_LRS / VGIC_V3_MAX_LRS: the shadow list registers of struct vgic_v{2,3}_cpu_if. */
export const VGIC_V2_MAX_LRS = 64;
export const VGIC_V3_MAX_LRS = 16;
/** include/kvm/arm_vgic.h VGIC_V2_MAX_CPUS / VGIC_V3_MAX_CPUS. */
export const VGIC_V2_MAX_CPUS = 8;
export const VGIC_V3_MAX_CPUS = 512;
/** vgic.h VGIC_NR_IRQS_LEGACY: vgic_init's default when userspace set no NR_IRQS. */
export const VGIC_NR_IRQS_LEGACY = 256;
/** include/kvm/arm_vgic.h KVM_VGIC_IMP_REV_LATEST (vgic_init's default GICD_IIDR revision). */
export const KVM_VGIC_IMP_REV_LATEST = 3;
/** Most vIRQs an ap-list holds: every private IRQ plus every possible SPI (LPIs are not bounded by this). */
const AP_CAPACITY = 1024;

/** The host IRQ layer as the vGIC uses it (kernel/irq/manage.c irq_{get,set}_irqchip_state, irq_to_desc). */
export type VgicIrqchipState = 'PENDING' | 'ACTIVE';
export interface VgicHostIrqOps {
  getIrqchipState(hostIrq: number, which: VgicIrqchipState): boolean;
  setIrqchipState(hostIrq: number, which: VgicIrqchipState, val: boolean): void;
  /** hwirq of the root irqchip (the GIC INTID) behind Linux IRQ `hostIrq`, or -1 when it has no descriptor. */
  hwIntidOf(hostIrq: number): number;
  /** Whether a physical INTID is active, as an observer sees it: no cost (an invariant, not kernel code). */
  observeActive(intid: number): boolean;
}

export interface VgicOptions {
  hostIrqOps: VgicHostIrqOps;
  /** vgic_dist.vgic_model: KVM_DEV_TYPE_ARM_VGIC_V2 (default) or KVM_DEV_TYPE_ARM_VGIC_V3; picks the backend. */
  model?: number;
  /** kvm_vcpu_kick after KVM_REQ_IRQ_PENDING: wake the vCPU from WFI, or force it out of the guest. */
  kick?: VgicKicker;
  /** The guest's RAM (LPI configuration and pending tables); none: a VM-less vGIC of a unit test, LPIs read zeros. */
  memory?: KvmGuestMemory;
  /** Who installs the default GSI routing at vgic_init (the VM). */
  routing?: VgicRoutingSetup;
}

/** virt/kvm/irqchip.c's side of vgic_init: kvm_vgic_setup_default_irq_routing (GSI i → SPI i, for i < nr_spis). */
export interface VgicRoutingSetup {
  kvmVgicSetupDefaultIrqRouting(nrSpis: number): void;
}

/** A list register's fields as the gic_lr_write trace event shows them, whatever the GIC's LR layout. */
export interface LrTraceFields {
  vintid: number;
  /** The physical INTID of a HW=1 register, else 0. */
  pintid: number;
  hw: boolean;
  /** EOI maintenance requested (HW=0 only). */
  eoi: boolean;
  state: number;
}

/** The one LrTraceFields the backends fill for each traced LR write (tracing allocates nothing per event). */
export const LR_TRACE: LrTraceFields = { vintid: 0, pintid: 0, hw: false, eoi: false, state: 0 };

/**
 * Observer of list-register traffic (each LR value loaded at guest entry, each EOI maintenance found at the fold) and
 * of the emulated ITS's MSI injections.
 */
export interface VgicLrTrace {
  /** `f` is a scratch object the backend reuses: read it during the call only. */
  lrWrite(vcpu: VgicCpu, lr: number, f: LrTraceFields): void;
  eoiMaintenance(vcpu: VgicCpu, lr: number, vintid: number): void;
  itsInject?(vcpu: VgicCpu | null, vintid: number, devid: number, eventid: number, cached: boolean): void;
}

/**
 * A physical CPU's virtual interface as the generic vGIC holds it: GICv2's GICH/GICV (hw/gic) or GICv3's ICH_* and ICV_*
 * (hw/gicv3). Only the backend of the matching version looks inside; the core reads the maintenance line alone.
 */
export type VgicHwInterface = GicVirtualInterface | Gicv3VirtualInterface;

/**
 * The GIC-version part of the vGIC (arch/arm64/kvm/vgic/vgic-v2.c, vgic-v3.c): how a vIRQ is written into and
 * read back from a list register, underflow, and the save/restore/load/put of the vCPU interface. The generic core
 * (this file: ap-lists, injection, mapping, flush/fold order, prune) calls it where vgic.c calls vgic_v2_* / vgic_v3_*.
 */
/** Who kicks a vCPU after an injection (the VM: kvm_vcpu_kick of the vCPU with that id). */
export interface VgicKicker {
  kickVcpu(vcpu: VgicCpu): void;
}

export interface VgicBackend {
  /** Number of list registers of a physical CPU's virtual interface (vgic_vN_probe). */
  nrLrOf(vif: VgicHwInterface): number;
  /** vgic_vN_enable: the vCPU interface's state at vgic_init. */
  enable(vcpu: VgicCpu): void;
  /** vgic_vN_populate_lr: write irq into shadow LR `lr`, consuming what the LR takes (edge latch, an SGI source…). */
  populateLr(vcpu: VgicCpu, irq: VgicIrq, lr: number): void;
  /** vgic_vN_clear_lr. */
  clearLr(vcpu: VgicCpu, lr: number): void;
  /** vgic_vN_set_underflow: ask for a maintenance interrupt when the LRs drain. */
  setUnderflow(vcpu: VgicCpu): void;
  /** The fold's first act (vgic_vN_fold_lr_state): drop the underflow request. */
  clearUnderflow(vcpu: VgicCpu): void;
  /** The vINTID of shadow LR `lr` if it signals EOI maintenance (lr_signals_eoi_mi), else -1. */
  eoiMaintenanceIntid(vcpu: VgicCpu, lr: number): number;
  /** vgic_vN_fold_lr_state's body for shadow LR `lr`: its state back into its vIRQ. */
  foldLr(vcpu: VgicCpu, lr: number): void;
  /** vgic_vN_load / vgic_vN_put. */
  load(vcpu: VgicCpu, vif: VgicHwInterface): void;
  put(vcpu: VgicCpu, vif: VgicHwInterface): void;
  /** vgic_vN_restore_state / vgic_vN_save_state around guest entry and exit. */
  restoreState(vcpu: VgicCpu, vif: VgicHwInterface): void;
  saveState(vcpu: VgicCpu, vif: VgicHwInterface): void;
  /** The guest's priority mask as the shadow interface holds it (for kvm_vgic_vcpu_pending_irq). */
  guestPriorityMask(vcpu: VgicCpu): number;
}

/**
 * struct vgic_cpu + its union of struct vgic_v2_cpu_if / vgic_v3_cpu_if: one vCPU's private IRQs, ap-list and shadow
 * interface state, which the backend interprets (GICH_* for v2; ICH_*_EL2 for v3, the 64-bit LRs split in halves).
 */
export class VgicCpu {
  readonly privateIrqs: VgicIrq[] = [];
  /**
   * The ap-list (vgic_cpu->ap_list_head): vIRQs pending or active on this vCPU, in list order, exactly as long as the
   * list (a state key reads no empty slots). Grown by push and shrunk by pop, which keep the backing store.
   */
  readonly apList: VgicIrq[] = [];
  /**
   * Shadow GICH_LRn (vgic_v2_cpu_if.vgic_lr[VGIC_V2_MAX_LRS]), or ICH_LR<n>_EL2[31:0] (vgic_v3_cpu_if.vgic_lr's
   * VGIC_V3_MAX_LRS lower halves), and how many the last flush used.
   */
  readonly vgicLr: Uint32Array;
  /** GICv3 only (empty on v2): ICH_LR<n>_EL2[63:32] (vgic_v3_cpu_if.vgic_lr's upper halves). */
  readonly vgicLrHi: Uint32Array;
  usedLrs = 0;
  /**
   * Shadow GICH_HCR / GICH_VMCR / GICH_APR, or ICH_HCR_EL2 / ICH_VMCR_EL2 / ICH_AP1R0_EL2 (Group 0 is not modelled).
   * vgic_vN_enable: VMCR 0 (reset binary points), HCR.En.
   */
  vgicHcr = 0;
  vgicVmcr = 0;
  vgicApr = 0;
  /** The next LR the fold looks at (kvm_vgic_sync_hwstate is resumed after each kvm_notify_acked_irq). */
  foldLr = 0;
  /** KVM_REQ_IRQ_PENDING; the run loop clears it. */
  irqPendingRequest = false;
  /** KVM_REQ_RELOAD_GICv4 (vgicV4.ts). */
  reloadGicv4Request = false;
  /** The virtual interface of the physical CPU this vCPU is loaded on (vcpu_load … vcpu_put), or null. */
  vif: VgicHwInterface | null = null;
  /** Counters for tests and metrics. */
  flushes = 0;
  folds = 0;
  acks = 0;

  /** GICv3 LPIs: GICR_CTLR.EnableLPIs (vgic_cpu.ctlr) and GICR_PENDBASER (vgic_cpu.pendbaser). */
  lpisEnabled = false;
  pendbaser = 0n;
  /** GICv3: the vCPU's redistributor (vgic_cpu.rdreg, rdreg_index, rd_iodev.base_addr; null base = undefined). */
  rdreg: VgicRedistRegion | null = null;
  rdregIndex = 0;
  rdBase: bigint | null = null;
  /** GICv3: ICC_CTLR_EL1.PRIbits + 1 and IDbits as vgic_v3_enable reads them from ICH_VTR_EL2 (set_gic_ctlr may lower them). */
  numPriBits = 0;
  numIdBits = 0;
  /** MPIDR_EL1 affinity Aff2.Aff1.Aff0 (sys_regs.c reset_mpidr from vcpu_id), what GICv3 routing names. */
  readonly mpidrAff: number;

  constructor(
    readonly vgic: Vgic,
    readonly id: number,
    /** Checker object id: the ap_list_lock and the shadow interface state. */
    readonly oid: number,
    /** vcpu->vcpu_id (KVM_CREATE_VCPU's argument; GICR_TYPER.Processor_Number). */
    readonly vcpuId: number = id,
  ) {
    this.vgicLr = new Uint32Array(vgic.isV3 ? VGIC_V3_MAX_LRS : VGIC_V2_MAX_LRS);
    this.vgicLrHi = new Uint32Array(vgic.isV3 ? VGIC_V3_MAX_LRS : 0);
    this.mpidrAff = vcpuMpidrAff(vcpuId);
  }

  toString(): string {
    return `vcpu${this.id}`;
  }

  get apCount(): number {
    return this.apList.length;
  }

  /** Take the ap-list entry at position i (0 ≤ i < apCount). */
  ap(i: number): VgicIrq {
    return this.apList[i]!;
  }

  /** Drops the entries from position n on (after a pass compacted the survivors to the front). */
  apTruncate(n: number): void {
    // pop, not `length = n`: assigning a length of 0 frees the backing store, and the next list_add would allocate
    while (this.apList.length > n) this.apList.pop();
  }
}
declareStatistics(VgicCpu, ['flushes', 'folds', 'acks']);

/** struct vgic_dist: the VM's emulated distributor (GICv2 or GICv3, `model`). */
export class Vgic {
  readonly vcpus: VgicCpu[] = [];
  spis: VgicIrq[] = [];
  /** GICv3: the redistributor regions (vgic_dist.rd_regions), in the order they were added. */
  readonly rdRegions: VgicRedistRegion[] = [];
  /** 0 until set by KVM_DEV_ARM_VGIC_GRP_NR_IRQS or frozen by vgic_init. */
  nrSpis = 0;
  initialized = false;
  /** GICD_CTLR.EnableGrp0/Enable. */
  enabled = false;
  implementationRev = 0;
  /** Number of list registers (kvm_vgic_global_state.nr_lr, from GICH_VTR); learnt on the first load. */
  nrLr = 0;
  readonly hostIrqOps: VgicHostIrqOps;
  kick: VgicKicker | null;
  /** Tracing only (gic_lr_write, vgic_maintenance): null unless a tracer listens. */
  traceLr: VgicLrTrace | null = null;
  /** HW=1 list registers written while their physical INTID was inactive (invariant hw-lr-names-active-intid). */
  hwLrInactive = 0;
  hwLrInactiveFirst = '';
  /** compute_ap_list_depth's out-parameter. */
  private multiSgi = false;
  /** vgic_dist.vgic_model: KVM_DEV_TYPE_ARM_VGIC_V2 or _V3. */
  readonly model: number;
  /** vgic_dist.lpi_list_head: the LPIs something references, by INTID, in the order they were added. */
  readonly lpis = new Map<number, VgicIrq>();
  /** vgic_dist.propbaser: GICR_PROPBASER, shared by every redistributor. */
  propbaser = 0n;
  /** vgic_dist.has_its / msis_require_devid: an ITS device was created. */
  hasIts = false;
  msisRequireDevid = false;
  /** vgic_dist.its_vm: the vPEs of GICv4.1 direct injection, from vgic_v4_init to vgic_v4_teardown (vgicV4.ts). */
  itsVm: ItsVm | null = null;
  /** Host calls on forwarded vLPIs that the emulation queued, whether a path is running them, how many failed (vgicV4Ops.ts). */
  readonly v4Ops: VgicV4Op[] = [];
  v4OpsRunning = false;
  v4OpErrors = 0;
  /**
   * LPIs the emulated ITS made pending in the vGIC (vgic_its_trigger_msi, vgic_its_inject_cached_translation): the
   * model's count, no kernel counter; the run metrics' injections of MSIs (scenario/metricsWindow.ts).
   */
  lpiInjections = 0;
  /** vgic_dist.lpi_translation_cache, most recently used first (vgicLpi.ts). */
  readonly lpiTranslationCache: VgicTranslationCacheEntry[] = [];
  /** The checker's object for dist->lpi_list_lock, which guards the translation cache (-1 until the cache exists). */
  lpiListLockOid = -1;
  /** The guest's RAM as kvm_read_guest sees it. */
  readonly mem: KvmGuestMemory;
  private readonly routing: VgicRoutingSetup | null;
  /** The GIC-version part (vgic-v2.c / vgic-v3.c): list-register format, save/restore, underflow. */
  readonly backend: VgicBackend;

  constructor(
    private readonly engine: { newOid(name: string): number },
    opts: VgicOptions,
  ) {
    this.hostIrqOps = opts.hostIrqOps;
    this.kick = opts.kick ?? null;
    this.mem = opts.memory ?? new KvmGuestMemory(KVM_PHYS_SHIFT_DEFAULT);
    this.routing = opts.routing ?? null;
    this.model = opts.model ?? KVM_DEV_TYPE_ARM_VGIC_V2;
    if (this.model === KVM_DEV_TYPE_ARM_VGIC_V2) this.backend = new VgicV2(this);
    else if (this.model === KVM_DEV_TYPE_ARM_VGIC_V3) this.backend = new VgicV3(this);
    else throw new ModelError(`no vGIC model ${this.model}`);
  }

  /** A checker object id for state created at run time (an LPI's vgic_irq). */
  newOid(name: string): number {
    return this.engine.newOid(name);
  }

  get isV3(): boolean {
    return this.model === KVM_DEV_TYPE_ARM_VGIC_V3;
  }

  /** kvm_vgic_create's kvm->max_vcpus. */
  get maxVcpus(): number {
    return this.isV3 ? VGIC_V3_MAX_CPUS : VGIC_V2_MAX_CPUS;
  }

  // ---- creation and init (vgic-init.c) ------------------------------------------------------------------------

  /**
   * kvm_vgic_vcpu_init: SGIs enabled and edge, PPIs level. The kernel refuses to create vCPUs once the vGIC is
   * initialised (kvm_arch_vcpu_create → -EBUSY); the ioctl layer checks `initialized` first, so here it is a bug.
   */
  kvmVgicVcpuInit(vcpuId?: number): VgicCpu {
    if (this.initialized) throw new ModelError('vCPU created after the vGIC was initialised (EBUSY in the kernel)');
    if (this.vcpus.length >= this.maxVcpus) throw new ModelError(`this vGIC has at most ${this.maxVcpus} vCPUs`);
    const id = this.vcpus.length;
    const vcpu = new VgicCpu(this, id, this.engine.newOid(`vgic.vcpu${id}.ap_list`), vcpuId ?? id);
    for (let i = 0; i < VGIC_NR_PRIVATE_IRQS; i++) {
      const irq = new VgicIrq(
        i,
        this.engine.newOid(`vgic.vcpu${id}.irq${i}`),
        vcpu,
        vgicIrqIsSgi(i) ? VGIC_CONFIG_EDGE : VGIC_CONFIG_LEVEL,
      );
      if (vgicIrqIsSgi(i)) irq.enabled = true;
      if (!this.isV3)
        irq.targets = 1 << id; // a GICv3 routes private IRQs by the vCPU's own redistributor
      else irq.group = 1; // vgic_init: a GICv3 guest's private IRQs are Group 1
      vcpu.privateIrqs.push(irq);
    }
    this.vcpus.push(vcpu);
    return vcpu;
  }

  /**
   * KVM_DEV_ARM_VGIC_GRP_NR_IRQS (vgic-kvm-device.c vgic_set_common_attr): at least 32 SPIs, at most
   * VGIC_MAX_RESERVED (1023: its comment says "at most 1024", its condition refuses 1024), a multiple of 32 → else
   * -EINVAL; once initialised or already set → -EBUSY.
   */
  kvmVgicSetNrIrqs(nrIrqs: number): number {
    if (!Number.isInteger(nrIrqs) || nrIrqs < VGIC_NR_PRIVATE_IRQS + 32 || nrIrqs > VGIC_MAX_RESERVED) {
      return -ERRNO.EINVAL;
    }
    if (nrIrqs % 32 !== 0) return -ERRNO.EINVAL;
    if (this.initialized || this.nrSpis !== 0) return -ERRNO.EBUSY;
    this.nrSpis = nrIrqs - VGIC_NR_PRIVATE_IRQS;
    return 0;
  }

  get nrIrqs(): number {
    return this.nrSpis + VGIC_NR_PRIVATE_IRQS;
  }

  /**
   * vgic_init (KVM_DEV_ARM_VGIC_CTRL_INIT, or lazily on first injection for v2): freeze nr_spis (default 224),
   * allocate SPIs (edge, disabled, priority 0, routed to vCPU 0: on v2 group 0 with targets 0, on v3 group 1 with
   * IROUTER affinity 0 — kvm_vgic_dist_init), enable each vCPU interface.
   */
  vgicInit(): number {
    if (this.initialized) return 0;
    if (this.vcpus.length === 0) return -ERRNO.EBUSY; // nothing to route SPIs to; kvm_vgic_dist_init needs vcpu0
    if (this.nrSpis === 0) this.nrSpis = VGIC_NR_IRQS_LEGACY - VGIC_NR_PRIVATE_IRQS;
    const vcpu0 = this.vcpus[0]!;
    this.spis = [];
    for (let i = 0; i < this.nrSpis; i++) {
      const intid = i + VGIC_NR_PRIVATE_IRQS;
      const irq = new VgicIrq(intid, this.engine.newOid(`vgic.irq${intid}`), vcpu0, VGIC_CONFIG_EDGE);
      if (this.isV3) irq.group = 1;
      this.spis.push(irq);
    }
    if (vgicHasIts(this)) vgicLpiTranslationCacheInit(this);
    for (const vcpu of this.vcpus) this.backend.enable(vcpu);
    this.routing?.kvmVgicSetupDefaultIrqRouting(this.nrSpis);
    if (this.implementationRev === 0) this.implementationRev = KVM_VGIC_IMP_REV_LATEST;
    this.initialized = true;
    return 0;
  }

  // ---- lookup -------------------------------------------------------------------------------------------------

  /** vgic.h vgic_valid_spi. */
  vgicValidSpi(intid: number): boolean {
    return intid >= VGIC_NR_PRIVATE_IRQS && intid < this.nrSpis + VGIC_NR_PRIVATE_IRQS && this.initialized;
  }

  /** vgic.c vgic_get_irq: an SPI, an LPI on the LPI list (vgic_get_lpi), or null. */
  vgicGetIrq(intid: number): VgicIrq | null {
    if (intid >= VGIC_MIN_LPI) return this.lpis.get(intid) ?? null;
    if (!this.initialized || !Number.isInteger(intid)) return null;
    if (intid >= VGIC_NR_PRIVATE_IRQS && intid < this.nrSpis + VGIC_NR_PRIVATE_IRQS) {
      return this.spis[intid - VGIC_NR_PRIVATE_IRQS]!;
    }
    return null;
  }

  /** vgic.c vgic_get_vcpu_irq: a private IRQ of vcpu, or an SPI, or null. */
  vgicGetVcpuIrq(vcpu: VgicCpu, intid: number): VgicIrq | null {
    if (Number.isInteger(intid) && intid >= 0 && intid < VGIC_NR_PRIVATE_IRQS) return vcpu.privateIrqs[intid]!;
    return this.vgicGetIrq(intid);
  }

  vcpu(id: number): VgicCpu {
    const v = this.vcpus[id];
    if (v === undefined) throw new ModelError(`no vCPU ${id} (VM has ${this.vcpus.length})`);
    return v;
  }

  // ---- routing and queueing (vgic.c) ------------------------------------------------------------------------

  /** vgic_target_oracle: active stays where it is; enabled+pending goes to its target (none if GICD disabled). */
  vgicTargetOracle(irq: VgicIrq): VgicCpu | null {
    if (irq.active) return irq.vcpu ?? this.targetVcpuOf(irq);
    if (irq.enabled && irqIsPending(irq)) {
      const target = this.targetVcpuOf(irq);
      if (target !== null && !this.enabled) return null;
      return target;
    }
    return null;
  }

  /** irq->target_vcpu: the vCPU `irq` is routed to, or null. */
  targetVcpuOf(irq: VgicIrq): VgicCpu | null {
    return this.vcpus[irq.targetVcpuIdx] ?? null;
  }

  /**
   * vgic_queue_irq_unlock: put irq on its target's ap-list if it should be on one and is on none; kick the target
   * either way (an edge re-asserted while already listed needs the vCPU to notice). Returns whether it was queued.
   */
  vgicQueueIrqUnlock(irq: VgicIrq): boolean {
    const vcpu = this.vgicTargetOracle(irq);
    if (irq.vcpu !== null || vcpu === null) {
      if (vcpu !== null) this.kickVcpu(vcpu);
      return false;
    }
    if (irq.intid >= VGIC_MIN_LPI) irq.refcount++; // vgic_get_irq_kref: the ap-list's reference
    apAdd(vcpu, irq);
    this.kickVcpu(vcpu);
    return true;
  }

  private kickVcpu(vcpu: VgicCpu): void {
    vcpu.irqPendingRequest = true;
    if (this.kick !== null) this.kick.kickVcpu(vcpu);
  }

  /**
   * kvm_make_all_cpus_request(KVM_REQ_RELOAD_GICv4): the distributor's enable changed with GICv4.1 vPEs, whose
   * residency carries VGrp1En; each vCPU puts and loads its vPE again at its next check_vcpu_requests.
   */
  reloadGicv4(): void {
    for (const vcpu of this.vcpus) {
      vcpu.reloadGicv4Request = true;
      if (this.kick !== null) this.kick.kickVcpu(vcpu);
    }
  }

  /** vgic_kick_vcpus: after GICD_CTLR enable, kick every vCPU with something deliverable. */
  vgicKickVcpus(): void {
    for (const vcpu of this.vcpus) if (this.kvmVgicVcpuPendingIrq(vcpu)) this.kickVcpu(vcpu);
  }

  /** vgic_validate_injection: only the owner may inject; level: only a change; edge: only a rising edge. */
  private validateInjection(irq: VgicIrq, level: boolean, owner: unknown): boolean {
    if (irq.owner !== owner) return false;
    return irq.config === VGIC_CONFIG_LEVEL ? irq.lineLevel !== level : level;
  }

  /**
   * kvm_vgic_inject_irq(kvm, vcpu, intid, level, owner). vcpuId is needed for a private INTID and ignored for an SPI
   * (null = the kernel's NULL vcpu). Returns -EINVAL (private INTID without vCPU, unknown INTID), the error of the
   * lazy vgic_init, 0 when nothing was queued (ignored injection, or already on an ap-list — kicked anyway), or 1
   * when the vIRQ was newly queued. The kernel returns 0 for both of the last two.
   *
   * irqfwd: a vIRQ owned and HW-mapped by a forwarded IRQ (kvm-vfio) is injected only by its owner, from the host
   * handler with the physical INTID active. Anyone else's rising level (an irqfd, KVM_IRQ_LINE) is re-posted at the
   * physical GIC (irq_set_irqchip_state(host_irq, PENDING, true), as GICv4's vgic_its_trigger_msi does for a
   * forwarded vLPI), so the host takes it and the owner delivers it once, by hardware; 6.1 would drop it
   * (vgic_validate_injection), and a software injection would otherwise make a HW=1 LR name an inactive INTID.
   */
  kvmVgicInjectIrq(vcpuId: number | null, intid: number, level: boolean, owner: unknown = null): number {
    // vgic_lazy_init: a GICv2 initialises on demand; any other model must be initialised by userspace first
    if (this.isV3 && !this.initialized) return -ERRNO.EBUSY;
    const ret = this.vgicInit();
    if (ret !== 0) return ret;
    if (vcpuId === null && intid < VGIC_NR_PRIVATE_IRQS) return -ERRNO.EINVAL;
    let irq: VgicIrq | null;
    if (intid < VGIC_NR_PRIVATE_IRQS) {
      const vcpu = this.vcpus[vcpuId!];
      if (vcpu === undefined) return -ERRNO.EINVAL;
      irq = this.vgicGetVcpuIrq(vcpu, intid);
    } else {
      irq = this.vgicGetIrq(intid);
    }
    if (irq === null) return -ERRNO.EINVAL;
    if (irq.hw && irq.owner !== null && irq.owner !== owner) {
      if (level) this.vgicIrqSetPhysPending(irq, true);
      return 0;
    }
    if (!this.validateInjection(irq, level, owner)) return 0;
    if (irq.config === VGIC_CONFIG_LEVEL) irq.lineLevel = level;
    else irq.pendingLatch = true;
    return this.vgicQueueIrqUnlock(irq) ? 1 : 0;
  }

  // ---- mapping to physical interrupts (vgic.c) -----------------------------------------------------------------

  /**
   * kvm_vgic_map_phys_irq: the vIRQ becomes HW-backed by Linux IRQ hostIrq; hwintid is the GIC INTID found at the
   * root of its irq_data hierarchy. -EINVAL when hostIrq has no descriptor. An unknown vINTID is a BUG_ON.
   */
  kvmVgicMapPhysIrq(vcpu: VgicCpu, hostIrq: number, vintid: number, ops: VgicIrqOps | null = null): number {
    const irq = this.vgicGetVcpuIrq(vcpu, vintid);
    if (irq === null) throw new ModelError(`kvm_vgic_map_phys_irq: no vIRQ ${vintid} (BUG_ON in the kernel)`);
    const hwintid = this.hostIrqOps.hwIntidOf(hostIrq);
    if (hwintid < 0) return -ERRNO.EINVAL; // kvm_vgic_map_irq: "no interrupt descriptor"
    irq.hw = true;
    irq.hostIrq = hostIrq;
    irq.hwintid = hwintid;
    irq.ops = ops;
    return 0;
  }

  /** kvm_vgic_unmap_phys_irq: -EAGAIN before vgic_init; clears hw/hwintid/ops (host_irq is left as it was). */
  kvmVgicUnmapPhysIrq(vcpu: VgicCpu, vintid: number): number {
    if (!this.initialized) return -ERRNO.EAGAIN;
    const irq = this.vgicGetVcpuIrq(vcpu, vintid);
    if (irq === null) throw new ModelError(`kvm_vgic_unmap_phys_irq: no vIRQ ${vintid} (BUG_ON in the kernel)`);
    irq.hw = false;
    irq.hwintid = 0;
    irq.ops = null;
    return 0;
  }

  /** kvm_vgic_get_map: the physical INTID of a mapped vIRQ, or -1. */
  kvmVgicGetMap(vcpu: VgicCpu, vintid: number): number {
    const irq = this.vgicGetVcpuIrq(vcpu, vintid);
    if (irq === null) throw new ModelError(`kvm_vgic_get_map: no vIRQ ${vintid}`);
    return irq.hw ? irq.hwintid : -1;
  }

  /** kvm_vgic_map_is_active: hw && active (false before init). */
  kvmVgicMapIsActive(vcpu: VgicCpu, vintid: number): boolean {
    if (!this.initialized) return false;
    const irq = this.vgicGetVcpuIrq(vcpu, vintid);
    if (irq === null) return false;
    return irq.hw && irq.active;
  }

  /** kvm_vgic_reset_mapped_irq: a mapped vIRQ loses its active and pending state. */
  kvmVgicResetMappedIrq(vcpu: VgicCpu, vintid: number): void {
    const irq = this.vgicGetVcpuIrq(vcpu, vintid);
    if (irq === null || !irq.hw) return;
    irq.active = false;
    irq.pendingLatch = false;
    irq.lineLevel = false;
  }

  /** kvm_vgic_set_owner: -EAGAIN before init; -EINVAL unless a PPI or valid SPI; -EEXIST if owned by another. */
  kvmVgicSetOwner(vcpu: VgicCpu, intid: number, owner: unknown): number {
    if (!this.initialized) return -ERRNO.EAGAIN;
    if (!irqIsPpi(intid) && !this.vgicValidSpi(intid)) return -ERRNO.EINVAL;
    const irq = this.vgicGetVcpuIrq(vcpu, intid)!;
    if (irq.owner !== null && irq.owner !== owner) return -ERRNO.EEXIST;
    irq.owner = owner;
    return 0;
  }

  /**
   * irqfwd's counterpart of kvm_vgic_set_owner (never merged; 6.1's owners, the timer and the PMU, keep their vIRQs
   * for the vCPU's life): a forwarded IRQ gives its vIRQ back when it stops forwarding.
   */
  kvmVgicReleaseOwner(vcpu: VgicCpu, intid: number, owner: unknown): void {
    const irq = this.vgicGetVcpuIrq(vcpu, intid);
    if (irq !== null && irq.owner === owner) irq.owner = null;
  }

  /** vgic_get_phys_line_level: the device's own sampler, else the physical pending state. */
  vgicGetPhysLineLevel(irq: VgicIrq): boolean {
    if (!irq.hw) throw new ModelError(`${irq} is not mapped (BUG_ON in vgic_get_phys_line_level)`);
    const f = irq.ops?.getInputLevel;
    if (f !== undefined) return f.call(irq.ops, irq.intid);
    return this.hostIrqOps.getIrqchipState(irq.hostIrq, 'PENDING');
  }

  /** vgic_irq_set_phys_active. */
  vgicIrqSetPhysActive(irq: VgicIrq, active: boolean): void {
    if (!irq.hw) throw new ModelError(`${irq} is not mapped (BUG_ON in vgic_irq_set_phys_active)`);
    this.hostIrqOps.setIrqchipState(irq.hostIrq, 'ACTIVE', active);
  }

  /** vgic_irq_set_phys_pending. */
  vgicIrqSetPhysPending(irq: VgicIrq, pending: boolean): void {
    this.hostIrqOps.setIrqchipState(irq.hostIrq, 'PENDING', pending);
  }

  /**
   * vgic_irq_handle_resampling: a mapped level vIRQ only sees rising edges; if the LR came back pending, or was
   * deactivated while the line was believed high, sample the physical line; if it is low, drop the physical active
   * state so the GIC tells us when the line rises again. (The VGIC_IRQ_SW_RESAMPLE case is not modelled.)
   * Divergence: the physical active state is kept while the pending latch still holds the vIRQ pending — its next
   * LR is HW=1 again, and the guest's EOI must deactivate something active (GICv2 §5.4). The kernel's own
   * SW-resample branch keeps it for the same reason (`resample = !(irq->active || irq->pending_latch)`).
   */
  vgicIrqHandleResampling(irq: VgicIrq, lrDeactivated: boolean, lrPending: boolean): void {
    if (!vgicIrqIsMappedLevel(irq)) return;
    if (lrPending || (lrDeactivated && irq.lineLevel)) {
      irq.lineLevel = this.vgicGetPhysLineLevel(irq);
      if (!irq.lineLevel && !irq.pendingLatch) this.vgicIrqSetPhysActive(irq, false);
    }
  }

  /**
   * What vgic_v2_fold_lr_state and vgic_v3_fold_lr_state do alike with the vIRQ of one LR, given the LR's active and
   * pending bits: the active state is kept (noting a deactivation), an edge's pending bit is kept, a level vIRQ the
   * guest acked (LR invalid) loses its soft pending state, then vgic_irq_handle_resampling. Returns the vIRQ.
   */
  vgicFoldLrIrq(vcpu: VgicCpu, intid: number, lrActive: boolean, lrPending: boolean): VgicIrq {
    const irq = this.vgicGetVcpuIrq(vcpu, intid);
    if (irq === null) throw new ModelError(`${vcpu}: LR names unknown vINTID ${intid}`);
    const deactivated = irq.active && !lrActive;
    irq.active = lrActive;
    if (irq.config === VGIC_CONFIG_EDGE && lrPending) irq.pendingLatch = true;
    if (irq.config === VGIC_CONFIG_LEVEL && !lrActive && !lrPending) irq.pendingLatch = false;
    this.vgicIrqHandleResampling(irq, deactivated, lrPending);
    irq.onLr = false;
    return irq;
  }

  /**
   * compute_ap_list_depth: the LRs the ap-list needs (a GICv2 SGI one per pending source, plus one if active), and
   * whether one vIRQ needs several (`multiSgi`).
   */
  private computeApListDepth(vcpu: VgicCpu): number {
    let count = 0;
    this.multiSgi = false;
    for (let i = 0; i < vcpu.apCount; i++) {
      const w = vgicIrqGetLrCount(vcpu.ap(i));
      count += w;
      if (w > 1) this.multiSgi = true;
    }
    return count;
  }

  /**
   * vgic_flush_lr_state: sort the ap-list when it needs more LRs than there are or holds a multi-source SGI, populate
   * LRs in list order with the vIRQs that target this vCPU (with a multi-source SGI, nothing of lower priority after
   * it), clear the rest; when the LRs are full and the list goes on, vgic_set_underflow arms UIE so the vCPU exits
   * to refill them.
   */
  vgicFlushLrState(vcpu: VgicCpu): void {
    const nrLr = this.requireNrLr();
    if (this.computeApListDepth(vcpu) > nrLr || this.multiSgi) sortApList(vcpu);
    const multiSgi = this.multiSgi;
    let count = 0;
    let prio = 0xff;
    for (let i = 0; i < vcpu.apCount; i++) {
      const irq = vcpu.ap(i);
      if (multiSgi && irq.priority > prio) break;
      if (this.vgicTargetOracle(irq) === vcpu) {
        if (irq.onLr) throw new ModelError(`${irq} is already in an LR (WARN in vgic_v2_compute_lr)`);
        this.backend.populateLr(vcpu, irq, count++);
        irq.onLr = true;
        if (irq.source !== 0) prio = irq.priority;
      }
      if (count === nrLr) {
        if (i !== vcpu.apCount - 1) this.backend.setUnderflow(vcpu); // vgic_set_underflow
        break;
      }
    }
    for (let i = count; i < nrLr; i++) this.backend.clearLr(vcpu, i); // nuke remaining LRs
    vcpu.usedLrs = count;
    vcpu.flushes++;
  }

  /**
   * vgic_v2_fold_lr_state from LR `vcpu.foldLr` on (its UIE drop is done by kvmVgicSyncHwstate): each used LR is
   * folded back into its vIRQ.
   * An LR whose EOI maintenance reports a level SPI stops the fold before that LR is folded and returns its GSI:
   * the caller runs kvm_notify_acked_irq (generator code: the resampler's kvm_set_irq and eventfd_signal) and calls
   * kvmVgicSyncContinue, which folds that LR and goes on — the kernel's order, where the notifier runs inside the
   * fold loop, ahead of the LR's own fold and of the prune.
   */
  private foldFrom(vcpu: VgicCpu, notified: boolean): number {
    for (let lr = vcpu.foldLr; lr < vcpu.usedLrs; lr++) {
      const intid = notified ? -1 : this.backend.eoiMaintenanceIntid(vcpu, lr);
      if (intid >= 0) {
        if (this.traceLr !== null) this.traceLr.eoiMaintenance(vcpu, lr, intid);
        if (this.vgicValidSpi(intid)) {
          vcpu.acks++;
          vcpu.foldLr = lr;
          return intid - VGIC_NR_PRIVATE_IRQS;
        }
      }
      notified = false;
      this.backend.foldLr(vcpu, lr);
    }
    vcpu.usedLrs = 0;
    vcpu.foldLr = 0;
    vcpu.folds++;
    this.vgicPruneApList(vcpu);
    return -1;
  }

  /**
   * vgic_prune_ap_list: drop vIRQs that are neither pending+enabled nor active, move those whose target changed to
   * the new target's ap-list (and kick it). Order of the survivors is kept.
   */
  vgicPruneApList(vcpu: VgicCpu): void {
    let w = 0;
    const n = vcpu.apCount;
    for (let r = 0; r < n; r++) {
      const irq = vcpu.ap(r);
      if (irq.vcpu !== vcpu) throw new ModelError(`${irq} on ${vcpu}'s ap-list but irq.vcpu = ${irq.vcpu}`);
      const target = this.vgicTargetOracle(irq);
      if (target === vcpu) {
        vcpu.apList[w++] = irq;
        continue;
      }
      irq.vcpu = null;
      if (target !== null) {
        if (irq.onLr) throw new ModelError(`${irq} migrated while in an LR of ${vcpu}`);
        apAdd(target, irq);
        this.kickVcpu(target);
      } else {
        vgicPutIrq(this, irq); // the reference vgic_queue_irq_unlock took for the ap-list
      }
    }
    vcpu.apTruncate(w);
  }

  // ---- world switch (vgic.c kvm_vgic_{flush,sync}_hwstate, kvm_vgic_{load,put}; vgic-v2.c save/restore) ------

  /** kvm_vgic_load: the vCPU goes onto this physical CPU's virtual interface (the backend loads its state). */
  kvmVgicLoad(vcpu: VgicCpu, vif: VgicHwInterface): void {
    if (vcpu.vif !== null) throw new ModelError(`${vcpu} is already loaded on a physical CPU`);
    const nr = this.backend.nrLrOf(vif);
    if (this.nrLr === 0) this.nrLr = nr;
    else if (this.nrLr !== nr) throw new ModelError(`a virtual interface has ${nr} LRs, others ${this.nrLr}`);
    vcpu.vif = vif;
    this.backend.load(vcpu, vif);
  }

  /** kvm_vgic_put: the backend saves its state; the vCPU leaves the physical CPU. */
  kvmVgicPut(vcpu: VgicCpu): void {
    this.backend.put(vcpu, this.requireVif(vcpu));
    vcpu.vif = null;
  }

  /** The invariant: the physical INTID a HW=1 LR names must be active, or the guest's EOI deactivates nothing. */
  observeHwLr(vcpu: VgicCpu, lr: number, vintid: number, pintid: number): void {
    if (this.hostIrqOps.observeActive(pintid)) return;
    if (this.hwLrInactive++ === 0)
      this.hwLrInactiveFirst = `${vcpu} LR${lr} vINTID ${vintid} → inactive INTID ${pintid}`;
  }

  /** kvm_vgic_flush_hwstate: before guest entry (interrupts disabled): populate the LRs and load them. */
  kvmVgicFlushHwstate(vcpu: VgicCpu): void {
    this.vgicFlushLrState(vcpu);
    this.backend.restoreState(vcpu, this.requireVif(vcpu));
  }

  /**
   * kvm_vgic_sync_hwstate: after guest exit, save the LRs, fold them into the vIRQs (vgic_v2_fold_lr_state drops
   * UIE first), prune the ap-list. Returns -1 when all of that is done, or the GSI of a level SPI the guest EOId:
   * run kvm_notify_acked_irq for it, then kvmVgicSyncContinue (see foldFrom).
   */
  kvmVgicSyncHwstate(vcpu: VgicCpu): number {
    this.backend.saveState(vcpu, this.requireVif(vcpu));
    this.backend.clearUnderflow(vcpu);
    vcpu.foldLr = 0;
    return this.foldFrom(vcpu, false);
  }

  /** Resume kvm_vgic_sync_hwstate after the ack notifier of the GSI it returned. */
  kvmVgicSyncContinue(vcpu: VgicCpu): number {
    return this.foldFrom(vcpu, true);
  }

  /**
   * kvm_vgic_vcpu_pending_irq: something on the ap-list is pending, enabled, not active and above the guest's
   * priority mask (shadow VMCR, as saved at the last exit) — a WFI must not block.
   */
  kvmVgicVcpuPendingIrq(vcpu: VgicCpu): boolean {
    if (!this.enabled) return false;
    if (this.itsVm?.vpes[vcpu.id]?.pendingLast === true) return true;
    const pmr = this.backend.guestPriorityMask(vcpu);
    for (let i = 0; i < vcpu.apCount; i++) {
      const irq = vcpu.ap(i);
      if (irqIsPending(irq) && irq.enabled && !irq.active && irq.priority < pmr) return true;
    }
    return false;
  }

  private requireVif(vcpu: VgicCpu): VgicHwInterface {
    if (vcpu.vif === null) throw new ModelError(`${vcpu} is not loaded on a physical CPU`);
    return vcpu.vif;
  }
  private requireNrLr(): number {
    if (this.nrLr === 0) throw new ModelError('no virtual interface loaded yet: number of LRs unknown');
    return this.nrLr;
  }
}

markShared(vgicMaintenanceHandler); // code an object of the model points at
/**
 * On GICv2 the maintenance interrupt only makes the vCPU exit; its causes are handled on the exit path by the fold
 * (vgic-init.c vgic_maintenance_handler). An IrqHandler that returns IRQ_HANDLED (1) without a step.
 */
export function vgicMaintenanceHandler(_irq: number, _devId: unknown): 1 {
  return 1;
}

/** sys_regs.c reset_mpidr: Aff0 = vcpu_id[3:0], Aff1 = vcpu_id[11:4], Aff2 = vcpu_id[19:12]. */
export function vcpuMpidrAff(vcpuId: number): number {
  return (vcpuId & 0x0f) | (((vcpuId >>> 4) & 0xff) << 8) | (((vcpuId >>> 12) & 0xff) << 16);
}

/** list_add_tail onto vcpu's ap-list. */
function apAdd(vcpu: VgicCpu, irq: VgicIrq): void {
  if (vcpu.apCount >= AP_CAPACITY) throw new ModelError(`${vcpu}: ap-list overflow`);
  vcpu.apList.push(irq);
  irq.vcpu = vcpu;
}

/**
 * vgic.c vgic_irq_cmp (6.1): active first (they can never be pushed out of the LRs), then enabled+pending, then, among
 * two enabled+pending vIRQs, the lower priority value. Stable (list_sort is a stable merge sort), so equal vIRQs keep
 * their list order.
 */
function vgicIrqCmp(a: VgicIrq, b: VgicIrq): number {
  if (a.active || b.active) return (b.active ? 1 : 0) - (a.active ? 1 : 0);
  const pa = a.enabled && irqIsPending(a) ? 1 : 0;
  const pb = b.enabled && irqIsPending(b) ? 1 : 0;
  if (pa === 0 || pb === 0) return pb - pa;
  return a.priority - b.priority;
}

/** vgic_sort_ap_list: stable insertion sort in place (ap-lists are short; allocates nothing). */
function sortApList(vcpu: VgicCpu): void {
  const a = vcpu.apList;
  for (let i = 1; i < vcpu.apCount; i++) {
    const x = a[i]!;
    let j = i - 1;
    while (j >= 0 && vgicIrqCmp(a[j]!, x) > 0) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = x;
  }
}
