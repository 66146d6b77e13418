/**
 * The guest's GICv2 distributor as emulated MMIO, after arch/arm64/kvm/vgic/vgic-mmio-v2.c (register table
 * vgic_v2_dist_registers) and vgic-mmio.c (the per-register handlers). `offset` is relative to the distributor
 * base. Accesses that hit no register, have a width the register does not allow, are unaligned, or name an INTID
 * past nr_irqs read as zero and are ignored on write (vgic-mmio.c dispatch_mmio_read/write + check_region).
 *
 * Preconditions the caller (the vCPU's MMIO exit handler) must meet, as KVM does:
 * - the trapping vCPU's LRs have been folded (kvm_vgic_sync_hwstate runs before handle_exit);
 * - for ISACTIVER/ICACTIVER on SPIs (`vgicMmioAccessNeedsHalt`), every other vCPU is out of the guest and synced
 *   (vgic_access_active_prepare → kvm_arm_halt_guest), so no LR holds a stale copy of the active state.
 * KVM_DEV_ARM_VGIC_GRP_DIST_REGS reaches these handlers through kvm/vgic/vgicUaccessV2.ts.
 */
import {
  GIC_DIST_ACTIVE_CLEAR,
  GIC_DIST_ACTIVE_SET,
  GIC_DIST_CONFIG,
  GIC_DIST_CTR,
  GIC_DIST_CTRL,
  GIC_DIST_ENABLE_CLEAR,
  GIC_DIST_ENABLE_SET,
  GIC_DIST_IGROUP,
  GIC_DIST_IIDR,
  GIC_DIST_PENDING_CLEAR,
  GIC_DIST_PENDING_SET,
  GIC_DIST_PRI,
  GIC_DIST_SGI_PENDING_CLEAR,
  GIC_DIST_SGI_PENDING_SET,
  GIC_DIST_SOFTINT,
  GIC_DIST_TARGET,
  GICD_ENABLE,
} from '../../hw/gic/regs.js';
import { ModelError } from '../../sim/errors.js';
import type { Vgic, VgicCpu } from './vgic.js';
import {
  irqIsPending,
  VGIC_CONFIG_EDGE,
  VGIC_CONFIG_LEVEL,
  VGIC_NR_PRIVATE_IRQS,
  VGIC_PRI_MASK,
  type VgicIrq,
  vgicIrqIsMappedLevel,
  vgicIrqIsSgi,
} from './vgicIrq.js';

/** vgic.h PRODUCT_ID_KVM ('K') and IMPLEMENTER_ARM; GICD_IIDR field shifts (arm-gic-v3.h). */
export const PRODUCT_ID_KVM = 0x4b;
export const IMPLEMENTER_ARM = 0x43b;
const GICD_IIDR_PRODUCT_ID_SHIFT = 24;
const GICD_IIDR_REVISION_SHIFT = 12;

const ACCESS_8 = 1;
const ACCESS_32 = 4;

type RegionKind =
  | 'misc'
  | 'group'
  | 'senable'
  | 'cenable'
  | 'spend'
  | 'cpend'
  | 'sact'
  | 'cact'
  | 'prio'
  | 'target'
  | 'config'
  | 'sgir'
  | 'sgipendc'
  | 'sgipends';

interface Region extends VgicMmioRegion {
  readonly kind: RegionKind;
}

const perIrqLen = (bits: number): number => (1024 * bits) / 8;

/** vgic-mmio-v2.c vgic_v2_dist_registers, in offset order. */
const REGIONS: readonly Region[] = [
  { offset: GIC_DIST_CTRL, len: 12, bitsPerIrq: 0, access: ACCESS_32, kind: 'misc' },
  { offset: GIC_DIST_IGROUP, len: perIrqLen(1), bitsPerIrq: 1, access: ACCESS_32, kind: 'group' },
  { offset: GIC_DIST_ENABLE_SET, len: perIrqLen(1), bitsPerIrq: 1, access: ACCESS_32, kind: 'senable' },
  { offset: GIC_DIST_ENABLE_CLEAR, len: perIrqLen(1), bitsPerIrq: 1, access: ACCESS_32, kind: 'cenable' },
  { offset: GIC_DIST_PENDING_SET, len: perIrqLen(1), bitsPerIrq: 1, access: ACCESS_32, kind: 'spend' },
  { offset: GIC_DIST_PENDING_CLEAR, len: perIrqLen(1), bitsPerIrq: 1, access: ACCESS_32, kind: 'cpend' },
  { offset: GIC_DIST_ACTIVE_SET, len: perIrqLen(1), bitsPerIrq: 1, access: ACCESS_32, kind: 'sact' },
  { offset: GIC_DIST_ACTIVE_CLEAR, len: perIrqLen(1), bitsPerIrq: 1, access: ACCESS_32, kind: 'cact' },
  { offset: GIC_DIST_PRI, len: perIrqLen(8), bitsPerIrq: 8, access: ACCESS_32 | ACCESS_8, kind: 'prio' },
  { offset: GIC_DIST_TARGET, len: perIrqLen(8), bitsPerIrq: 8, access: ACCESS_32 | ACCESS_8, kind: 'target' },
  { offset: GIC_DIST_CONFIG, len: perIrqLen(2), bitsPerIrq: 2, access: ACCESS_32, kind: 'config' },
  { offset: GIC_DIST_SOFTINT, len: 4, bitsPerIrq: 0, access: ACCESS_32, kind: 'sgir' },
  { offset: GIC_DIST_SGI_PENDING_CLEAR, len: 16, bitsPerIrq: 0, access: ACCESS_32 | ACCESS_8, kind: 'sgipendc' },
  { offset: GIC_DIST_SGI_PENDING_SET, len: 16, bitsPerIrq: 0, access: ACCESS_32 | ACCESS_8, kind: 'sgipends' },
];

/** vgic-mmio.h VGIC_ADDR_TO_INTID: the first INTID a per-IRQ register access covers. */
function addrToIntid(r: Region, offset: number): number {
  return ((offset - r.offset) * 8) / r.bitsPerIrq;
}

/** The fields vgic_find_mmio_region and check_region look at (struct vgic_register_region); access: 1 | 4 flags. */
export interface VgicMmioRegion {
  readonly offset: number;
  readonly len: number;
  readonly bitsPerIrq: number;
  readonly access: number;
}

/** vgic_get_mmio_region + check_region on a register table (GICv2's or GICv3's): the region, or null for RAZ/WI. */
export function vgicGetMmioRegion<R extends VgicMmioRegion>(
  vgic: Vgic,
  table: readonly R[],
  offset: number,
  len: number,
): R | null {
  let r: R | null = null;
  for (const x of table) {
    if (offset >= x.offset && offset < x.offset + x.len) {
      r = x;
      break;
    }
  }
  if (r === null) return null;
  const flag = len === 1 ? ACCESS_8 : len === 4 ? ACCESS_32 : 0;
  if ((r.access & flag) === 0 || offset % len !== 0) return null;
  if (r.bitsPerIrq !== 0 && ((offset - r.offset) * 8) / r.bitsPerIrq >= vgic.nrIrqs) return null; // non-allocated IRQ
  return r;
}

function getRegion(vgic: Vgic, offset: number, len: number): Region | null {
  return vgicGetMmioRegion(vgic, REGIONS, offset, len);
}

function irqAt(vcpu: VgicCpu, intid: number): VgicIrq {
  const irq = vcpu.vgic.vgicGetVcpuIrq(vcpu, intid);
  if (irq === null) throw new ModelError(`vgic mmio: no vIRQ ${intid} after check_region`);
  return irq;
}

/** Whether a 32-bit access at `offset` hits a distributor register (vgic_v2_has_attr_regs / vgic_uaccess's lookup). */
export function vgicV2DistHasRegister(vgic: Vgic, offset: number): boolean {
  return getRegion(vgic, offset, 4) !== null;
}

/**
 * Whether a guest access must first stop every vCPU (vgic-mmio.c vgic_access_active_prepare): the (I)SACTIVER /
 * ICACTIVER registers for SPIs on a GICv2 VM.
 */
export function vgicMmioAccessNeedsHalt(vcpu: VgicCpu, offset: number, len: number): boolean {
  const r = getRegion(vcpu.vgic, offset, len);
  if (r === null || (r.kind !== 'sact' && r.kind !== 'cact')) return false;
  return addrToIntid(r, offset) >= VGIC_NR_PRIVATE_IRQS;
}

/** A guest read of `len` (1 or 4) bytes at distributor `offset`; returns the value (uint32). */
export function vgicMmioRead(vcpu: VgicCpu, offset: number, len: number): number {
  const vgic = vcpu.vgic;
  if (!vgic.initialized)
    throw new ModelError('vgic mmio before vgic_init (kvm_vgic_map_resources runs at first KVM_RUN)');
  const r = getRegion(vgic, offset, len);
  if (r === null) return 0;
  const intid = r.bitsPerIrq !== 0 ? addrToIntid(r, offset) : 0;
  let value = 0;
  switch (r.kind) {
    case 'misc':
      return readMisc(vcpu, offset);
    case 'group':
    case 'senable':
    case 'cenable':
    case 'spend':
    case 'cpend':
    case 'sact':
    case 'cact':
      for (let i = 0; i < len * 8; i++) {
        const irq = irqAt(vcpu, intid + i);
        let bit: boolean;
        if (r.kind === 'group') bit = irq.group !== 0;
        else if (r.kind === 'senable' || r.kind === 'cenable') bit = irq.enabled;
        else if (r.kind === 'spend' || r.kind === 'cpend') bit = irqIsPending(irq);
        else bit = irq.active; // even for HW vIRQs only the virtual state (__vgic_mmio_read_active)
        if (bit) value |= 1 << i;
      }
      return value >>> 0;
    case 'prio':
      for (let i = 0; i < len; i++) value |= irqAt(vcpu, intid + i).priority << (i * 8);
      return value >>> 0;
    case 'target':
      for (let i = 0; i < len; i++) value |= irqAt(vcpu, intid + i).targets << (i * 8);
      return value >>> 0;
    case 'config':
      for (let i = 0; i < len * 4; i++) if (irqAt(vcpu, intid + i).config === VGIC_CONFIG_EDGE) value |= 2 << (i * 2);
      return value >>> 0;
    case 'sgir':
      return 0; // vgic_mmio_read_raz
    case 'sgipendc':
    case 'sgipends': {
      const sgi = (offset - r.offset) & 0x0f;
      for (let i = 0; i < len; i++) value |= irqAt(vcpu, sgi + i).source << (i * 8);
      return value >>> 0;
    }
  }
}

/** vgic_mmio_read_v2_misc. */
function readMisc(vcpu: VgicCpu, offset: number): number {
  const vgic = vcpu.vgic;
  switch (offset & 0x0c) {
    case GIC_DIST_CTRL:
      return vgic.enabled ? GICD_ENABLE : 0;
    case GIC_DIST_CTR:
      // ITLinesNumber = nr_irqs/32 - 1; CPUNumber = online vCPUs - 1
      return (((vgic.nrIrqs >> 5) - 1) | ((vgic.vcpus.length - 1) << 5)) >>> 0;
    case GIC_DIST_IIDR:
      return (
        ((PRODUCT_ID_KVM << GICD_IIDR_PRODUCT_ID_SHIFT) |
          (vgic.implementationRev << GICD_IIDR_REVISION_SHIFT) |
          IMPLEMENTER_ARM) >>>
        0
      );
  }
  return 0;
}

/** A guest write of `len` (1 or 4) bytes at distributor `offset`. */
export function vgicMmioWrite(vcpu: VgicCpu, offset: number, len: number, value: number): void {
  const vgic = vcpu.vgic;
  if (!vgic.initialized)
    throw new ModelError('vgic mmio before vgic_init (kvm_vgic_map_resources runs at first KVM_RUN)');
  const r = getRegion(vgic, offset, len);
  if (r === null) return;
  const val = len === 1 ? value & 0xff : value >>> 0;
  const intid = r.bitsPerIrq !== 0 ? addrToIntid(r, offset) : 0;
  switch (r.kind) {
    case 'misc':
      if ((offset & 0x0c) === GIC_DIST_CTRL) {
        const was = vgic.enabled;
        vgic.enabled = (val & GICD_ENABLE) !== 0;
        if (!was && vgic.enabled) vgic.vgicKickVcpus();
      }
      return; // TYPER, IIDR: WI
    case 'group':
      for (let i = 0; i < len * 8; i++) {
        const irq = irqAt(vcpu, intid + i);
        irq.group = (val >>> i) & 1;
        vgic.vgicQueueIrqUnlock(irq);
      }
      return;
    case 'senable':
      forEachSetBit(val, len * 8, (i) => writeSenable(vgic, irqAt(vcpu, intid + i)));
      return;
    case 'cenable':
      forEachSetBit(val, len * 8, (i) => {
        irqAt(vcpu, intid + i).enabled = false; // vgic_mmio_write_cenable: virtual only (no HW SGIs on v2)
      });
      return;
    case 'spend':
      forEachSetBit(val, len * 8, (i) => {
        const irq = irqAt(vcpu, intid + i);
        if (vgicIrqIsSgi(irq.intid) && !vgic.isV3) return; // GICD_ISPENDR0 SGI bits are WI on a GICv2
        irq.pendingLatch = true;
        if (irq.hw) vgic.vgicIrqSetPhysActive(irq, true); // keep the physical IRQ from firing meanwhile
        vgic.vgicQueueIrqUnlock(irq);
      });
      return;
    case 'cpend':
      forEachSetBit(val, len * 8, (i) => {
        const irq = irqAt(vcpu, intid + i);
        if (vgicIrqIsSgi(irq.intid) && !vgic.isV3) return; // GICD_ICPENDR0 SGI bits are WI on a GICv2
        irq.pendingLatch = false;
        if (irq.hw) {
          // vgic_hw_irq_cpending: SPENDR then CPENDR must not leave the physical IRQ masked by its active state
          vgic.vgicIrqSetPhysPending(irq, false);
          if (!irq.active) vgic.vgicIrqSetPhysActive(irq, false);
        }
      });
      return;
    case 'sact':
    case 'cact':
      forEachSetBit(val, len * 8, (i) => changeActive(vcpu, irqAt(vcpu, intid + i), r.kind === 'sact'));
      return;
    case 'prio':
      for (let i = 0; i < len; i++) irqAt(vcpu, intid + i).priority = (val >>> (i * 8)) & VGIC_PRI_MASK;
      return;
    case 'target':
      writeTarget(vcpu, intid, len, val);
      return;
    case 'config':
      for (let i = 0; i < len * 4; i++) {
        // SGI config is fixed; PPIs are made read-only too (the arch timer relies on level PPIs)
        if (intid + i < VGIC_NR_PRIVATE_IRQS) continue;
        irqAt(vcpu, intid + i).config = ((val >>> (i * 2 + 1)) & 1) !== 0 ? VGIC_CONFIG_EDGE : VGIC_CONFIG_LEVEL;
      }
      return;
    case 'sgir':
      writeSgir(vcpu, val);
      return;
    case 'sgipendc':
    case 'sgipends': {
      const sgi = (offset - r.offset) & 0x0f;
      for (let i = 0; i < len; i++) {
        const irq = irqAt(vcpu, sgi + i);
        const bits = (val >>> (i * 8)) & 0xff;
        if (r.kind === 'sgipendc') {
          irq.source &= ~bits;
          if (irq.source === 0) irq.pendingLatch = false;
        } else {
          irq.source |= bits;
          if (irq.source !== 0) {
            irq.pendingLatch = true;
            vgic.vgicQueueIrqUnlock(irq);
          }
        }
      }
      return;
    }
  }
}

function forEachSetBit(val: number, nbits: number, f: (i: number) => void): void {
  for (let i = 0; i < nbits; i++) if (((val >>> i) & 1) !== 0) f(i);
}

/**
 * vgic_mmio_write_senable: enabling is virtual only, also for a HW vIRQ (the physical IRQ's enable belongs to the
 * host). A mapped level vIRQ resamples its line first, and drops the physical active state if the line fell while
 * the vIRQ was disabled, so the GIC reports the next rising edge.
 */
function writeSenable(vgic: Vgic, irq: VgicIrq): void {
  if (vgicIrqIsMappedLevel(irq)) {
    const wasHigh = irq.lineLevel;
    irq.lineLevel = vgic.vgicGetPhysLineLevel(irq);
    if (!irq.active && wasHigh && !irq.lineLevel) vgic.vgicIrqSetPhysActive(irq, false);
  }
  irq.enabled = true;
  vgic.vgicQueueIrqUnlock(irq);
}

/**
 * vgic_mmio_change_active (guest access, so not uaccess): a HW vIRQ's active state is mirrored on the physical
 * INTID (vgic_hw_irq_change_active); a GICv2 SGI made active takes the requester as its active source.
 */
function changeActive(vcpu: VgicCpu, irq: VgicIrq, active: boolean): void {
  const vgic = vcpu.vgic;
  if (irq.onLr) throw new ModelError(`${irq} changed active while in an LR: halt and sync the guest first`);
  irq.active = active;
  if (irq.hw && !vgicIrqIsSgi(irq.intid)) vgic.vgicIrqSetPhysActive(irq, active);
  else if (active && vgicIrqIsSgi(irq.intid)) irq.activeSource = vcpu.id;
  if (irq.active) vgic.vgicQueueIrqUnlock(irq);
}

/** vgic_mmio_write_target: ITARGETSR0-7 are read-only; an SPI routes to the lowest CPU of its mask (vCPU 0 if none). */
function writeTarget(vcpu: VgicCpu, intid: number, len: number, val: number): void {
  if (intid < VGIC_NR_PRIVATE_IRQS) return;
  const vgic = vcpu.vgic;
  const cpuMask = (1 << vgic.vcpus.length) - 1;
  for (let i = 0; i < len; i++) {
    const irq = irqAt(vcpu, intid + i);
    irq.targets = (val >>> (i * 8)) & cpuMask;
    const target = irq.targets !== 0 ? 31 - Math.clz32(irq.targets & -irq.targets) : 0;
    irq.targetVcpuIdx = vgic.vcpus[target]?.id ?? -1;
  }
}

/** vgic_mmio_write_sgir: target list / all but self / self; filter 3 is reserved. */
function writeSgir(source: VgicCpu, val: number): void {
  const vgic = source.vgic;
  const nr = vgic.vcpus.length;
  const intid = val & 0xf;
  let targets = (val >>> 16) & 0xff;
  const mode = (val >>> 24) & 3;
  if (mode === 1) targets = ((1 << nr) - 1) & ~(1 << source.id);
  else if (mode === 2) targets = 1 << source.id;
  else if (mode === 3) return;
  for (let c = 0; c < nr; c++) {
    if ((targets & (1 << c)) === 0) continue;
    const irq = vgic.vcpus[c]!.privateIrqs[intid]!;
    irq.pendingLatch = true;
    irq.source |= 1 << source.id;
    vgic.vgicQueueIrqUnlock(irq);
  }
}
