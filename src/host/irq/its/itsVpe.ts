/**
 * The vPE side of the host's ITS driver for GICv4.1 (drivers/irqchip/irq-gic-v3-its.c, Linux 6.1): struct its_vm and
 * struct its_vpe, the GICv4.1 boot additions (allocate_vpe_l1_table: GICR_VPROPBASER; its_alloc_tables' vPE
 * GITS_BASER), the vPE irq domain's allocation (its_vpe_irq_domain_alloc + _activate: a doorbell LPI, a vPEID and a
 * VPT per vPE, one VCONF per VM, then VMAPP + VINVALL at once — gic_requires_eager_mapping() holds on a 4.1 GIC) and
 * its_vpe_4_1_irq_chip, the chip of a vPE's doorbell IRQ: mask/unmask write the doorbell's configuration byte and send
 * INVDB (its_vpe_4_1_mask_irq / its_vpe_4_1_send_inv), irq_set_affinity moves the vPE with VMOVP
 * (its_vpe_set_affinity), irq_set_vcpu_affinity schedules and deschedules it on the calling CPU's redistributor
 * (its_vpe_4_1_set_vcpu_affinity: SCHEDULE_VPE, DESCHEDULE_VPE, COMMIT_VPE). its_vpe_irq_domain_deactivate + _free
 * undo the allocation (VMAPP V = 0, self-synchronising on 4.1; the vPEID, VPT, VCONF and LPIs given back).
 *
 * The doorbell descriptors live in the host's one irq domain (the kernel gives each VM a "GICv4-vpe" domain stacked on
 * the GIC's; the INTIDs are distinct either way). INVALL_VPE (its_vpe_4_1_invall) writes GICR_INVALLR of the vPE's
 * redistributor. Left out: vSGIs, and the GICv4.0 paths (the per-vLPI doorbell, the proxy device).
 */
import type { Gicv3 } from '../../../hw/gicv3/gicv3.js';
import { GITS_BASER, GITS_BASER_TYPE_SHIFT_HI, GITS_BASER_TYPE_VCPU } from '../../../hw/gicv3/its.js';
import { ITS_CMD_INVDB, ITS_CMD_VINVALL } from '../../../hw/gicv3/itsVirtual.js';
import { LPI_BASE } from '../../../hw/gicv3/lpi.js';
import {
  GICR_INVALLR,
  GICR_INVALLR_V_HI,
  GICR_SYNCR,
  GICR_TYPER,
  GICR_TYPER_VLPIS,
  GICR_VLPI_BASE,
  GICR_VPENDBASER,
  GICR_VPENDBASER_4_1_DB_HI,
  GICR_VPENDBASER_4_1_VGRP0EN_HI,
  GICR_VPENDBASER_4_1_VGRP1EN_HI,
  GICR_VPENDBASER_DIRTY_HI,
  GICR_VPENDBASER_PENDINGLAST_HI,
  GICR_VPENDBASER_VALID_HI,
  GICR_VPROPBASER,
  GICR_VPROPBASER_4_1_VALID_HI,
} from '../../../hw/gicv3/regs.js';
import { defineCost } from '../../../sim/costs.js';
import type { Engine } from '../../../sim/engine.js';
import { type Boundary, Frame } from '../../../sim/frame.js';
import { Spinlock, spinLockIrqsave, spinUnlockIrqrestore } from '../../../sim/locks.js';
import { current, op } from '../../../sim/task.js';
import type { Genirq } from '../genirq.js';
import type { IrqChip, IrqDesc } from '../irqDesc.js';
import { itsSendSingleCommand } from './itsCmdQueue.js';
import { type HostIts, LPI_PROP_DEFAULT_PRIO, LPI_PROP_ENABLED, LPI_PROP_GROUP1 } from './itsInit.js';
import { C_LPI_CONFIG_WRITE } from './itsIrqChip.js';
import { itsBuildVmappCmd, itsBuildVmovpCmd, itsBuildVpeCmd, itsSendVcommand } from './itsVCmd.js';
import { ItsVlpi } from './itsVlpi.js';

export const C_GICR_VPENDBASER = defineCost(
  'gicr_vpendbaser',
  100,
  'GICR_VPENDBASER 64-bit MMIO access (its_vpe_4_1_schedule / its_clear_vpend_valid); estimate',
);
const SZ_64K = 0x10000;

/**
 * The host's GICv4.1 state: the ITS driver it extends, the GIC, the vPE chip and the vPEID allocator
 * (its_vpe_id_alloc's ida: the lowest free one).
 */
export class HostGicV4 {
  readonly vpeChip: ItsVpe41Chip;
  /** its_irq_set_vcpu_affinity's GICv4 half, hooked into the ITS-MSI chip at boot. */
  readonly vlpi: ItsVlpi;
  private readonly vpeIds: Uint8Array;

  constructor(
    readonly host: HostIts,
    readonly gic: Gicv3,
    readonly genirq: Genirq,
  ) {
    this.vpeChip = new ItsVpe41Chip(this);
    this.vlpi = new ItsVlpi(host, genirq.engine);
    this.vpeIds = new Uint8Array(gic.vlpis?.table.nrVpes ?? 0);
  }

  allocVpeId(): number {
    const id = this.vpeIds.indexOf(0);
    if (id >= 0) this.vpeIds[id] = 1;
    return id;
  }
  freeVpeId(id: number): void {
    this.vpeIds[id] = 0;
  }
  /** LPI_PROPBASE_SZ / LPI_PENDBASE_SZ of the host's lpi_id_bits. */
  get propSize(): number {
    return Math.ceil(2 ** this.host.lpiIdBits / SZ_64K) * SZ_64K;
  }
  get pendSize(): number {
    return Math.ceil(2 ** this.host.lpiIdBits / 8 / SZ_64K) * SZ_64K;
  }
}

/**
 * GICv4.1 at boot (its_cpu_init_lpis → allocate_vpe_l1_table, its_alloc_tables' vPE table): each redistributor's
 * GICR_VPROPBASER names a vPE table (GICR_TYPER.CommonLPIAff = 0: one each), and the ITS's vPE GITS_BASER one.
 */
export function itsInitVpeTables(host: HostIts, gic: Gicv3): void {
  for (let cpu = 0; cpu < gic.nrPes; cpu++) {
    const rd = gic.redistributor(cpu);
    if ((rd.read(GICR_TYPER) & GICR_TYPER_VLPIS) === 0) continue;
    const table = host.pages.alloc(SZ_64K, SZ_64K);
    rd.write(GICR_VLPI_BASE + GICR_VPROPBASER, table);
    rd.write(GICR_VLPI_BASE + GICR_VPROPBASER + 4, GICR_VPROPBASER_4_1_VALID_HI);
  }
  const hw = host.its.hw;
  for (let i = 0; i < 8; i++) {
    if (((hw.read(GITS_BASER + 8 * i + 4) >>> GITS_BASER_TYPE_SHIFT_HI) & 7) !== GITS_BASER_TYPE_VCPU) continue;
    hw.write(GITS_BASER + 8 * i, host.pages.alloc(SZ_64K, SZ_64K) | (SZ_64K / 4096 - 1));
    hw.write(GITS_BASER + 8 * i + 4, 0x80000000);
  }
}

/** struct its_vpe (arm-gic-v4.h), the GICv4.1 fields. */
export class ItsVpe {
  vpeId = -1;
  vptAddr = 0;
  /** The default doorbell LPI and its Linux IRQ. */
  dbLpi = 0;
  irq = 0;
  /** The CPU whose redistributor the vPE is mapped to (VMAPP/VMOVP target). */
  colIdx = 0;
  resident = false;
  ready = false;
  /** PendingLast read back at the last DESCHEDULE (a doorbell handler sets it too, as vgic_v4_doorbell_handler does). */
  pendingLast = false;
  /** Times VMAPP'd on an ITS (its_build_vmapp_cmd's Alloc bit is set by the first). */
  vmappCount = 0;
  readonly vpeLock: Spinlock;

  constructor(
    engine: Engine,
    readonly vm: ItsVm,
  ) {
    this.vpeLock = new Spinlock(engine, 'its_vpe.vpe_lock');
  }
}

/** struct its_vm: the VM's vPEs, its VCONF (vprop_page) and its doorbell LPIs. */
export class ItsVm {
  readonly vpes: ItsVpe[] = [];
  vpropAddr = 0;
  /** db_lpi_base and nr_db_lpis: the doorbell LPIs its_lpi_alloc gave. */
  dbLpiBase = 0;
  nrDbLpis = 0;

  constructor(engine: Engine, nrVpes: number) {
    for (let i = 0; i < nrVpes; i++) this.vpes.push(new ItsVpe(engine, this));
  }
}

/** struct its_cmd_info for a vPE: what irq_set_vcpu_affinity asks of its_vpe_4_1_set_vcpu_affinity. */
export type VpeCmdInfo =
  | { cmdType: 'SCHEDULE_VPE'; g0en: boolean; g1en: boolean }
  | { cmdType: 'DESCHEDULE_VPE'; reqDb: boolean }
  | { cmdType: 'COMMIT_VPE' }
  | { cmdType: 'INVALL_VPE' };

/** its_vpe_4_1_irq_chip. Its irq_set_vcpu_affinity is a frame: a redistributor access is a step. */
export class ItsVpe41Chip implements IrqChip {
  readonly name = 'GICv4.1-vpe';
  readonly eoiIfHandled = false;

  constructor(readonly v4: HostGicV4) {}

  vpeOf(d: IrqDesc): ItsVpe {
    return d.chipData as ItsVpe;
  }

  /** its_vpe_4_1_mask_irq: the doorbell's Enable bit cleared, then INVDB. */
  irqMask(d: IrqDesc): Frame {
    return new ItsVpe41Mask(this, this.vpeOf(d), false);
  }
  irqUnmask(d: IrqDesc): Frame {
    return new ItsVpe41Mask(this, this.vpeOf(d), true);
  }
  /** irq_chip_eoi_parent → gic_eoimode1_eoi_irq, which returns at once for an LPI (INTID ≥ 8192). */
  irqEoi(): Frame {
    return new Answer(undefined);
  }
  irqRetrigger(): Frame<boolean> {
    return new Answer(false);
  }
  irqGetIrqchipState(): Frame<boolean | null> {
    return new Answer<boolean | null>(null);
  }
  irqSetIrqchipState(): Frame<boolean> {
    return new Answer(false);
  }
  irqSetType(_d: IrqDesc, trigger: 'level' | 'edge'): Frame<boolean> {
    return new Answer(trigger === 'edge');
  }
  /** its_vpe_set_affinity: the first CPU of the mask; a different one than the vPE's moves it with VMOVP. */
  irqSetAffinity(d: IrqDesc, cpuMask: number): Frame<number> {
    return new ItsVpeSetAffinity(this.v4, this.vpeOf(d), 31 - Math.clz32(cpuMask & -cpuMask));
  }
  /** its_vpe_4_1_set_vcpu_affinity; the plain forwarding call (a vCPU, not a command) is refused (-EINVAL). */
  irqSetVcpuAffinity(d: IrqDesc, info: unknown): boolean | Frame<boolean> {
    if (info === null || typeof info !== 'object' || !('cmdType' in info)) return false;
    const i = info as VpeCmdInfo;
    if (i.cmdType === 'INVALL_VPE') return new ItsVpe41Invall(this.v4, this.vpeOf(d));
    if (i.cmdType !== 'SCHEDULE_VPE' && i.cmdType !== 'DESCHEDULE_VPE' && i.cmdType !== 'COMMIT_VPE') return false;
    return new ItsVpe41SetVcpuAffinity(this.v4, this.vpeOf(d), i);
  }
}

/** A callback answered without touching the hardware. */
class Answer<R> extends Frame<R> {
  constructor(private readonly answer: R) {
    super();
  }
  protected step(): Boundary {
    return this.return_(this.answer);
  }
}

/** its_vpe_4_1_mask_irq / its_vpe_4_1_unmask_irq: lpi_write_config of the doorbell, then its_vpe_4_1_send_inv (INVDB). */
class ItsVpe41Mask extends Frame {
  constructor(
    private readonly chip: ItsVpe41Chip,
    private readonly vpe: ItsVpe,
    private readonly enable: boolean,
  ) {
    super();
  }
  protected step(): Boundary {
    const host = this.chip.v4.host;
    const id = this.vpe.vpeId;
    switch (this.pc) {
      case 0:
        this.pc = 1;
        return this.yield_(op(C_LPI_CONFIG_WRITE));
      case 1: {
        const pa = host.propTable + this.vpe.dbLpi - LPI_BASE;
        const mem = host.pages.memory;
        mem.writeU8(
          pa,
          ((mem.readU8(pa) & ~LPI_PROP_ENABLED) | (this.enable ? LPI_PROP_ENABLED : 0) | LPI_PROP_GROUP1) & 0xff,
        );
        this.pc = 2;
        return this.call(itsSendVcommand(host.its, itsBuildVpeCmd(ITS_CMD_INVDB, id), id));
      }
      default:
        return this.return_(undefined);
    }
  }
}

/** its_vpe_set_affinity under vpe_to_cpuid_lock: col_idx changes and VMOVP is sent when the CPU differs. */
class ItsVpeSetAffinity extends Frame<number> {
  private saved = false;

  constructor(
    private readonly v4: HostGicV4,
    private readonly vpe: ItsVpe,
    private readonly cpu: number,
  ) {
    super();
  }
  protected step(sent: unknown): Boundary {
    const vpe = this.vpe;
    switch (this.pc) {
      case 0:
        this.pc = 1;
        return this.call(spinLockIrqsave(vpe.vpeLock));
      case 1:
        this.saved = sent as boolean;
        if (vpe.colIdx === this.cpu) return this.unlock();
        vpe.colIdx = this.cpu;
        this.pc = 2;
        return this.call(
          itsSendVcommand(
            this.v4.host.its,
            itsBuildVmovpCmd(vpe.vpeId, this.v4.host.its.collections[this.cpu]!.targetAddress, vpe.dbLpi),
            vpe.vpeId,
          ),
        );
      default:
        return this.unlock();
    }
  }
  private unlock(): Boundary {
    this.pc = 3;
    spinUnlockIrqrestore(this.vpe.vpeLock, this.saved);
    return this.return_(this.cpu);
  }
  protected override unwind(): void {
    if (this.pc === 2) spinUnlockIrqrestore(this.vpe.vpeLock, this.saved);
  }
}

/**
 * its_vpe_4_1_invall: under vpe_to_cpuid_lock, GICR_INVALLR = V | vPEID on the redistributor the vPE is mapped to
 * (col_idx, not the calling CPU's), then wait_for_syncr polls GICR_SYNCR.Busy clear.
 */
class ItsVpe41Invall extends Frame<boolean> {
  private saved = false;

  constructor(
    private readonly v4: HostGicV4,
    private readonly vpe: ItsVpe,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const vpe = this.vpe;
    const rd = this.v4.gic.redistributor(vpe.colIdx);
    const oid = this.v4.gic.vlpis!.vlpiOid[vpe.colIdx]!;
    switch (this.pc) {
      case 0:
        this.pc = 1;
        return this.call(spinLockIrqsave(vpe.vpeLock));
      case 1:
        this.saved = sent as boolean;
        this.pc = 2;
        return this.yield_(op(C_GICR_VPENDBASER, oid));
      case 2:
        rd.write(GICR_INVALLR, 0);
        rd.write(GICR_INVALLR + 4, GICR_INVALLR_V_HI | vpe.vpeId);
        this.pc = 3;
        return this.yield_(op(C_GICR_VPENDBASER, oid)); // wait_for_syncr
      default:
        if ((rd.read(GICR_SYNCR) & 1) !== 0) return this.yield_(op(C_GICR_VPENDBASER, oid));
        this.pc = 4;
        spinUnlockIrqrestore(vpe.vpeLock, this.saved);
        return this.return_(true);
    }
  }

  protected override unwind(): void {
    if (this.pc === 2 || this.pc === 3) spinUnlockIrqrestore(this.vpe.vpeLock, this.saved);
  }
}

/**
 * its_vpe_4_1_set_vcpu_affinity on the calling CPU's redistributor (gic_data_rdist_vlpi_base): SCHEDULE writes
 * vPEID, then Valid | VGrp0En | VGrp1En (its_vpe_4_1_schedule); DESCHEDULE clears Valid with Doorbell = req_db and
 * reads back Dirty and PendingLast (its_clear_vpend_valid, its_vpe_4_1_deschedule, under vpe_lock when a doorbell is
 * requested); COMMIT reads GICR_VPENDBASER until Dirty is clear (its_wait_vpt_parse_complete).
 */
class ItsVpe41SetVcpuAffinity extends Frame<boolean> {
  private saved = false;

  constructor(
    private readonly v4: HostGicV4,
    private readonly vpe: ItsVpe,
    private readonly info: VpeCmdInfo,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const rd = this.v4.gic.redistributor(current().cpu);
    const oid = this.v4.gic.vlpis!.vlpiOid[current().cpu]!;
    const info = this.info;
    switch (this.pc) {
      case 0:
        if (info.cmdType === 'DESCHEDULE_VPE' && info.reqDb) {
          this.pc = 1;
          return this.call(spinLockIrqsave(this.vpe.vpeLock));
        }
        this.pc = 2;
        return this.yield_(op(C_GICR_VPENDBASER, oid));
      case 1:
        this.saved = sent as boolean;
        this.pc = 2;
        return this.yield_(op(C_GICR_VPENDBASER, oid));
      case 2:
        if (info.cmdType === 'SCHEDULE_VPE') {
          rd.write(GICR_VLPI_BASE + GICR_VPENDBASER, this.vpe.vpeId);
          const en =
            (info.g0en ? GICR_VPENDBASER_4_1_VGRP0EN_HI : 0) | (info.g1en ? GICR_VPENDBASER_4_1_VGRP1EN_HI : 0);
          rd.write(GICR_VLPI_BASE + GICR_VPENDBASER + 4, GICR_VPENDBASER_VALID_HI | en);
          return this.return_(true);
        }
        if (info.cmdType === 'DESCHEDULE_VPE') {
          const hi = rd.read(GICR_VLPI_BASE + GICR_VPENDBASER + 4);
          const clr = GICR_VPENDBASER_VALID_HI | (info.reqDb ? GICR_VPENDBASER_PENDINGLAST_HI : 0);
          rd.write(
            GICR_VLPI_BASE + GICR_VPENDBASER + 4,
            ((hi & ~clr) | (info.reqDb ? GICR_VPENDBASER_4_1_DB_HI : GICR_VPENDBASER_PENDINGLAST_HI)) >>> 0,
          );
        }
        this.pc = 3;
        return this.yield_(op(C_GICR_VPENDBASER, oid)); // read back until Dirty clears
      default: {
        const hi = rd.read(GICR_VLPI_BASE + GICR_VPENDBASER + 4);
        if ((hi & GICR_VPENDBASER_DIRTY_HI) !== 0) {
          this.pc = 3;
          return this.yield_(op(C_GICR_VPENDBASER, oid));
        }
        if (info.cmdType === 'DESCHEDULE_VPE') {
          // "if we read-back PendingLast clear, then a doorbell will be delivered when an interrupt comes"
          this.vpe.pendingLast = !info.reqDb || (hi & GICR_VPENDBASER_PENDINGLAST_HI) !== 0;
          if (info.reqDb) spinUnlockIrqrestore(this.vpe.vpeLock, this.saved);
        }
        this.pc = 4;
        return this.return_(true);
      }
    }
  }

  protected override unwind(): void {
    if (this.info.cmdType === 'DESCHEDULE_VPE' && this.info.reqDb && this.pc >= 2 && this.pc < 4) {
      spinUnlockIrqrestore(this.vpe.vpeLock, this.saved);
    }
  }
}

/**
 * its_vpe_irq_domain_alloc + its_vpe_irq_domain_activate for every vPE of `vm`: doorbell LPIs (its_lpi_alloc), the
 * VCONF (its_allocate_prop_table: every vLPI disabled at LPI_PROP_DEFAULT_PRIO), and per vPE a vPEID, a VPT, a
 * doorbell descriptor on its_vpe_4_1_irq_chip, col_idx = the first online CPU, then VMAPP and VINVALL. Returns the
 * first doorbell's Linux IRQ, or -1 (-ENOMEM / -ENOSPC) with nothing allocated.
 */
export class ItsVpeIrqDomainAlloc extends Frame<number> {
  private i = 0;

  constructor(
    private readonly g: Genirq,
    private readonly chip: ItsVpe41Chip,
    private readonly vm: ItsVm,
  ) {
    super();
  }

  protected step(): Boundary {
    const v4 = this.chip.v4;
    const { its, pages, lpiRanges } = v4.host;
    const vm = this.vm;
    if (this.pc === 0) {
      // its_lpi_alloc(roundup_pow_of_two(nr_irqs)): fewer than asked is -ENOMEM here
      const n = 2 ** Math.ceil(Math.log2(Math.max(vm.vpes.length, 1)));
      const lpis = lpiRanges.alloc(n);
      if (lpis === null || lpis.nr < vm.vpes.length) {
        if (lpis !== null) lpiRanges.free(lpis.base, lpis.nr);
        return this.return_(-1);
      }
      const ids: number[] = [];
      for (let i = 0; i < vm.vpes.length; i++) {
        const id = v4.allocVpeId();
        if (id < 0) {
          for (const x of ids) v4.freeVpeId(x);
          lpiRanges.free(lpis.base, lpis.nr);
          return this.return_(-1);
        }
        ids.push(id);
      }
      vm.dbLpiBase = lpis.base;
      vm.nrDbLpis = lpis.nr;
      vm.vpropAddr = pages.alloc(v4.propSize, SZ_64K); // its_allocate_prop_table: every vLPI disabled
      pages.fill(vm.vpropAddr, v4.propSize, LPI_PROP_DEFAULT_PRIO | LPI_PROP_GROUP1);
      for (let i = 0; i < vm.vpes.length; i++) {
        const vpe = vm.vpes[i]!;
        vpe.vpeId = ids[i]!;
        vpe.dbLpi = lpis.base + i;
        vpe.vptAddr = pages.alloc(v4.pendSize, SZ_64K); // its_vpe_init: a zeroed VPT
        vpe.colIdx = 0; // its_vpe_irq_domain_activate: the first online CPU
        const desc = this.g.allocHierarchyDesc(vpe.dbLpi, 'edge', this.chip);
        desc.chipData = vpe;
        vpe.irq = desc.irq;
      }
      this.pc = 1;
    }
    if (this.i === vm.vpes.length) return this.return_(vm.vpes[0]?.irq ?? 0);
    const vpe = vm.vpes[this.i]!;
    if (this.pc === 1) {
      const alloc = vpe.vmappCount++ === 0;
      const target = its.collections[vpe.colIdx]!.targetAddress;
      this.pc = 2;
      return this.call(
        itsSendVcommand(
          its,
          itsBuildVmappCmd(vpe.vpeId, true, alloc, target, vpe.vptAddr, v4.host.lpiIdBits, vm.vpropAddr, vpe.dbLpi),
          vpe.vpeId,
        ),
      );
    }
    this.i++;
    this.pc = 1;
    return this.call(itsSendVcommand(its, itsBuildVpeCmd(ITS_CMD_VINVALL, vpe.vpeId), vpe.vpeId));
  }
}

/**
 * its_vpe_irq_domain_deactivate + its_vpe_irq_domain_free for every vPE of `vm` (its_free_vcpu_irqs; KVM's
 * vgic_v4_teardown has freed the doorbell IRQs): VMAPP V = 0 (Alloc on the last unmap; no VSYNC on 4.1), then the
 * vPEID, the VPT, the descriptor, and at the end the VCONF and the doorbell LPIs.
 */
export class ItsVpeIrqDomainFree extends Frame {
  private i = 0;

  constructor(
    private readonly v4: HostGicV4,
    private readonly vm: ItsVm,
  ) {
    super();
  }

  protected step(): Boundary {
    const { its, pages, lpiRanges } = this.v4.host;
    const vm = this.vm;
    if (this.pc === 1) {
      const vpe = vm.vpes[this.i++]!;
      this.v4.freeVpeId(vpe.vpeId);
      pages.free(vpe.vptAddr);
      this.v4.genirq.domain.remove(this.v4.genirq.desc(vpe.irq));
    }
    if (this.i === vm.vpes.length) {
      pages.free(vm.vpropAddr);
      lpiRanges.free(vm.dbLpiBase, vm.nrDbLpis);
      return this.return_(undefined);
    }
    const vpe = vm.vpes[this.i]!;
    const alloc = --vpe.vmappCount === 0;
    this.pc = 1;
    return this.call(itsSendSingleCommand(its, itsBuildVmappCmd(vpe.vpeId, false, alloc, 0, 0, 0, 0, 0), null));
  }
}
