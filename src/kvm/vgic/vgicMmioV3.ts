/**
 * The guest's GICv3 distributor and redistributors as emulated MMIO, after arch/arm64/kvm/vgic/vgic-mmio-v3.c (Linux
 * 6.1: vgic_v3_dist_registers, vgic_v3_rd_registers) — the registers of the model's affinity-routed GICv3 without
 * LPIs. The per-IRQ registers a GICv3 shares with a GICv2 (IGROUPR, I[SC]ENABLER, I[SC]PENDR, I[SC]ACTIVER,
 * IPRIORITYR, ICFGR) run vgic-mmio.c's handlers (vgicMmioV2.ts): on the distributor for SPIs only (the private
 * INTIDs' words are RAZ/WI there, REGISTER_DESC_WITH_BITS_PER_IRQ_SHARED), on a redistributor's SGI_base frame for its
 * vCPU's SGIs and PPIs. What differs is here: GICD_CTLR (EnableGrp1A, ARE and DS fixed to 1), GICD_TYPER, IIDR,
 * GICD_IROUTER, the RD_base frame (GICR_CTLR, IIDR, TYPER, WAKER) and the ID registers.
 *
 * `offset` is relative to the distributor base, or to the redistributor's RD_base (SGI_base is RD_base + 64 KiB).
 * A guest access that hits no register (or too wide, unaligned, past nr_irqs — check_region) reads as zero and is
 * ignored on write; userspace gets ENXIO for it (vgicUaccessV3.ts). The LPI registers (GICR_CTLR.EnableLPIs,
 * GICR_PROPBASER, GICR_PENDBASER, GICR_INVLPIR, GICR_INVALLR, GICR_SYNCR; GICD_TYPER.LPIS, GICR_TYPER.PLPIS) do
 * something only once the VM has an ITS (vgic_has_its); the LPIs themselves are vgicLpi.ts.
 */
import {
  GICD_CTLR,
  GICD_CTLR_ARE,
  GICD_CTLR_DS,
  GICD_CTLR_ENABLE_G1,
  GICD_ICACTIVER,
  GICD_ICENABLER,
  GICD_ICFGR,
  GICD_ICPENDR,
  GICD_IGROUPR,
  GICD_IIDR,
  GICD_IPRIORITYR,
  GICD_IROUTER,
  GICD_ISACTIVER,
  GICD_ISENABLER,
  GICD_ISPENDR,
  GICD_PIDR2,
  GICD_TYPER,
  GICD_TYPER_IDBITS_SHIFT,
  GICD_TYPER_LPIS,
  GICR_CTLR,
  GICR_CTLR_ENABLE_LPIS,
  GICR_IIDR,
  GICR_PENDBASER,
  GICR_PIDR2,
  GICR_PROPBASER,
  GICR_SGI_BASE,
  GICR_TYPER,
  GICR_TYPER_LAST,
  GICR_TYPER_PLPIS,
  GICR_WAKER,
} from '../../hw/gicv3/regs.js';
import { ModelError } from '../../sim/errors.js';
import { KVM_VGIC_IMP_REV_LATEST, type Vgic, type VgicCpu } from './vgic.js';
import { VGIC_MIN_LPI, VGIC_NR_PRIVATE_IRQS } from './vgicIrq.js';
import { vgicItsInvall } from './vgicIts.js';
import {
  GICR_PENDBASER_PTZ,
  INTERRUPT_ID_BITS_ITS,
  updateLpiConfig,
  vgicEnableLpis,
  vgicFlushPendingLpis,
  vgicHasIts,
  vgicItsInvalidateCache,
} from './vgicLpi.js';
import {
  IMPLEMENTER_ARM,
  PRODUCT_ID_KVM,
  type VgicMmioRegion,
  vgicGetMmioRegion,
  vgicMmioRead,
  vgicMmioWrite,
} from './vgicMmioV2.js';
import { extractBytes, update64bitReg, vgicSanitisePendbaser, vgicSanitisePropbaser } from './vgicSanitise.js';
import { vgicV3RdistIsLast } from './vgicV3Redist.js';

/** GICR_CTLR.CES[1] (EnableLPIs can be cleared) and IR[2] (INVLPIR/INVALLR/SYNCR exist): KVM_VGIC_IMP_REV_3. */
const GICR_CTLR_CES = 1 << 1;
const GICR_CTLR_IR = 1 << 2;
const GICR_INVLPIR = 0x00a0;
const GICR_INVALLR = 0x00b0;
const GICR_SYNCR = 0x00c0;

/** vgic-mmio-v3.c: INTERRUPT_ID_BITS_SPIS, reported in GICD_TYPER.IDbits without an ITS. */
const INTERRUPT_ID_BITS_SPIS = 10;
const GICD_IIDR_PRODUCT_ID_SHIFT = 24;
const GICD_IIDR_REVISION_SHIFT = 12;
/** vgic_mmio_read_v3_idregs: GICD_PIDR2 / GICR_PIDR2 report a GICv3 (ArchRev 3). */
const GIC_PIDR2_V3 = 0x3b;
/** KVM_VGIC_V3_DIST_SIZE: the distributor's 64 KiB frame. */
const DIST_FRAME = 0x1_0000n;
const ACCESS_8 = 1;
const ACCESS_32 = 4;

type Kind =
  | 'misc'
  | 'statusr'
  | 'shared'
  | 'irouter'
  | 'idregs'
  | 'rctlr'
  | 'riidr'
  | 'rtyper'
  | 'raz'
  | 'private'
  | 'propbase'
  | 'pendbase'
  | 'invlpi'
  | 'invall';

interface Region extends VgicMmioRegion {
  readonly kind: Kind;
}

const reg = (offset: number, len: number, kind: Kind, access = ACCESS_32, bitsPerIrq = 0): Region => ({
  offset,
  len,
  bitsPerIrq,
  access,
  kind,
});
const shared = (offset: number, bits: number, access = ACCESS_32): Region =>
  reg(offset, (1024 * bits) / 8, 'shared', access, bits);
const sgiFrame = (offset: number, bits: number, access = ACCESS_32): Region =>
  reg(GICR_SGI_BASE + offset, (32 * bits) / 8, 'private', access, bits);

/** vgic_v3_dist_registers (the SGI and target registers of a GICv2 are absent: RAZ/WI). */
const DIST_REGIONS: readonly Region[] = [
  reg(GICD_CTLR, 16, 'misc'),
  reg(0x0010, 4, 'statusr'),
  shared(GICD_IGROUPR, 1),
  shared(GICD_ISENABLER, 1),
  shared(GICD_ICENABLER, 1),
  shared(GICD_ISPENDR, 1),
  shared(GICD_ICPENDR, 1),
  shared(GICD_ISACTIVER, 1),
  shared(GICD_ICACTIVER, 1),
  shared(GICD_IPRIORITYR, 8, ACCESS_32 | ACCESS_8),
  shared(GICD_ICFGR, 2),
  reg(GICD_IROUTER, 1024 * 8, 'irouter', ACCESS_32, 64),
  reg(0xffd0, 48, 'idregs'),
];

/** vgic_v3_rd_registers: the RD_base frame, then the SGI_base frame 64 KiB above. */
const REDIST_REGIONS: readonly Region[] = [
  reg(GICR_CTLR, 4, 'rctlr'),
  reg(GICR_IIDR, 4, 'riidr'),
  reg(GICR_TYPER, 8, 'rtyper'),
  reg(GICR_WAKER, 4, 'raz'),
  reg(GICR_PROPBASER, 8, 'propbase'),
  reg(GICR_PENDBASER, 8, 'pendbase'),
  reg(GICR_INVLPIR, 8, 'invlpi'),
  reg(GICR_INVALLR, 8, 'invall'),
  reg(GICR_SYNCR, 4, 'raz'), // SYNCR.Busy: invalidations complete within the write
  reg(0xffd0, 48, 'idregs'),
  sgiFrame(GICD_IGROUPR, 1),
  sgiFrame(GICD_ISENABLER, 1),
  sgiFrame(GICD_ICENABLER, 1),
  sgiFrame(GICD_ISPENDR, 1),
  sgiFrame(GICD_ICPENDR, 1),
  sgiFrame(GICD_ISACTIVER, 1),
  sgiFrame(GICD_ICACTIVER, 1),
  sgiFrame(GICD_IPRIORITYR, 8, ACCESS_32 | ACCESS_8),
  sgiFrame(GICD_ICFGR, 2),
];

/** Whether a 32-bit access at `offset` of the distributor (or of a redistributor) hits a register. */
export function vgicV3HasRegister(vgic: Vgic, redist: boolean, offset: number): boolean {
  return vgicGetMmioRegion(vgic, redist ? REDIST_REGIONS : DIST_REGIONS, offset, 4) !== null;
}

function requireInit(vgic: Vgic): void {
  if (!vgic.initialized) throw new ModelError('vgic-v3 mmio before vgic_init (kvm_vgic_map_resources needs it)');
}

/** A guest (or userspace) read of `len` bytes at distributor `offset`, on behalf of vCPU `vcpu`; null: no register. */
export function vgicV3DistRead(vcpu: VgicCpu, offset: number, len: number): number | null {
  const vgic = vcpu.vgic;
  requireInit(vgic);
  const r = vgicGetMmioRegion(vgic, DIST_REGIONS, offset, len);
  if (r === null) return null;
  switch (r.kind) {
    case 'misc':
      return readDistMisc(vgic, offset);
    case 'shared':
      // the private INTIDs' words belong to the redistributors
      if (((offset - r.offset) * 8) / r.bitsPerIrq < VGIC_NR_PRIVATE_IRQS) return 0;
      return vgicMmioRead(vcpu, offset, len);
    case 'irouter': {
      // vgic_mmio_read_irouter: Aff2.Aff1.Aff0 in the low word; Aff3 (KVM keeps none) and IRM read as zero
      const intid = (offset - r.offset) >>> 3;
      if ((offset & 4) !== 0 || intid < VGIC_NR_PRIVATE_IRQS) return 0;
      return vgic.vgicGetIrq(intid)?.mpidr ?? 0;
    }
    case 'idregs':
      return offset === GICD_PIDR2 ? GIC_PIDR2_V3 : 0;
    default:
      return 0;
  }
}

/** A guest (or userspace) write at distributor `offset`; false: no register there. */
export function vgicV3DistWrite(vcpu: VgicCpu, offset: number, len: number, value: number): boolean {
  const vgic = vcpu.vgic;
  requireInit(vgic);
  const r = vgicGetMmioRegion(vgic, DIST_REGIONS, offset, len);
  if (r === null) return false;
  switch (r.kind) {
    case 'misc':
      if (offset === GICD_CTLR) {
        // vgic_mmio_write_v3_misc: only EnableGrp1A is writable; a change with GICv4.1 vPEs reloads them, else
        // enabling kicks the vCPUs with work
        const was = vgic.enabled;
        vgic.enabled = (value & GICD_CTLR_ENABLE_G1) !== 0;
        if (vgic.itsVm !== null && was !== vgic.enabled) vgic.reloadGicv4();
        else if (!was && vgic.enabled) vgic.vgicKickVcpus();
      }
      return true;
    case 'shared':
      if (((offset - r.offset) * 8) / r.bitsPerIrq >= VGIC_NR_PRIVATE_IRQS) vgicMmioWrite(vcpu, offset, len, value);
      return true;
    case 'irouter': {
      // vgic_mmio_write_irouter: Aff3 is WI (KVM keeps none), as is the Interrupt_Routing_Mode bit
      const intid = (offset - r.offset) >>> 3;
      const irq = intid >= VGIC_NR_PRIVATE_IRQS ? vgic.vgicGetIrq(intid) : null;
      if ((offset & 4) !== 0 || irq === null) return true;
      irq.mpidr = value & 0x00ff_ffff;
      irq.targetVcpuIdx = vgic.vcpus.find((c) => c.mpidrAff === irq.mpidr)?.id ?? -1; // kvm_mpidr_to_vcpu
      return true;
    }
    default:
      return true;
  }
}

/** vgic_mmio_read_v3_misc. */
function readDistMisc(vgic: Vgic, offset: number): number {
  switch (offset) {
    case GICD_CTLR:
      return (vgic.enabled ? GICD_CTLR_ENABLE_G1 : 0) | GICD_CTLR_ARE | GICD_CTLR_DS;
    case GICD_TYPER: {
      // ITLinesNumber, IDbits (16 and LPIS with an ITS); no CPUNumber with affinity routing
      const lpis = vgicHasIts(vgic);
      const idBits = lpis ? INTERRUPT_ID_BITS_ITS : INTERRUPT_ID_BITS_SPIS;
      return (
        (((vgic.nrIrqs >> 5) - 1) | ((idBits - 1) << GICD_TYPER_IDBITS_SHIFT) | (lpis ? GICD_TYPER_LPIS : 0)) >>> 0
      );
    }
    case GICD_IIDR:
      return iidr(vgic);
    default:
      return 0; // GICD_TYPER2: no GICv4.1 vSGIs
  }
}

function iidr(vgic: Vgic): number {
  return (
    ((PRODUCT_ID_KVM << GICD_IIDR_PRODUCT_ID_SHIFT) |
      (vgic.implementationRev << GICD_IIDR_REVISION_SHIFT) |
      IMPLEMENTER_ARM) >>>
    0
  );
}

/** A read of `len` bytes at `offset` of vCPU `rd`'s redistributor (RD_base, or SGI_base + 64 KiB); null: no register. */
export function vgicV3RedistRead(rd: VgicCpu, offset: number, len: number): number | null {
  const vgic = rd.vgic;
  requireInit(vgic);
  const r = vgicGetMmioRegion(vgic, REDIST_REGIONS, offset, len);
  if (r === null) return null;
  switch (r.kind) {
    case 'private':
      return vgicMmioRead(rd, offset - GICR_SGI_BASE, len);
    case 'riidr':
      return iidr(vgic);
    case 'rtyper': {
      // vgic_mmio_read_v3r_typer: Processor_Number = vcpu_id, PLPIS with an ITS, Last; the affinity in the high word
      if ((offset & 4) !== 0) return rd.mpidrAff;
      const plpis = vgicHasIts(vgic) ? GICR_TYPER_PLPIS : 0;
      return (((rd.vcpuId & 0xffff) << 8) | plpis | (vgicV3RdistIsLast(vgic, rd) ? GICR_TYPER_LAST : 0)) >>> 0;
    }
    case 'rctlr': {
      // vgic_mmio_read_v3r_ctlr: EnableLPIs, and IR | CES from implementation revision 3
      const rev3 = vgic.implementationRev >= KVM_VGIC_IMP_REV_LATEST ? GICR_CTLR_IR | GICR_CTLR_CES : 0;
      return (rd.lpisEnabled ? GICR_CTLR_ENABLE_LPIS : 0) | rev3;
    }
    case 'propbase':
      return Number(extractBytes(vgic.propbaser, offset & 7, len));
    case 'pendbase':
      return Number(extractBytes(rd.pendbaser & ~GICR_PENDBASER_PTZ, offset & 7, len)); // PTZ reads as zero
    case 'idregs':
      return offset === GICR_PIDR2 ? GIC_PIDR2_V3 : 0;
    default:
      return 0; // GICR_WAKER (RAZ/WI: the vCPU never sleeps), SYNCR, INVLPIR, INVALLR
  }
}

/**
 * vgic_mmio_write_v3r_ctlr (only with an ITS): EnableLPIs 1 → 0 flushes the vCPU's pending LPIs and the translation
 * cache (vgic_flush_pending_lpis, vgic_its_invalidate_cache); 0 → 1 loads the pending table (vgic_enable_lpis).
 */
function writeRedistCtlr(rd: VgicCpu, value: number): void {
  const vgic = rd.vgic;
  if (!vgicHasIts(vgic)) return;
  const enable = (value & GICR_CTLR_ENABLE_LPIS) !== 0;
  if (enable === rd.lpisEnabled) return;
  rd.lpisEnabled = enable;
  if (!enable) {
    vgicFlushPendingLpis(vgic, rd);
    vgicItsInvalidateCache(vgic);
  } else {
    vgicEnableLpis(vgic, rd);
  }
}

/** The LPI registers of RD_base: PROPBASER / PENDBASER (ignored while LPIs are enabled), INVLPIR, INVALLR. */
function writeRedistLpi(rd: VgicCpu, kind: Kind, offset: number, len: number, value: number): void {
  const vgic = rd.vgic;
  const v = BigInt(value >>> 0);
  switch (kind) {
    case 'propbase':
      // vgic_mmio_write_propbase: "storing a value with LPIs already enabled is undefined"
      if (!rd.lpisEnabled) vgic.propbaser = vgicSanitisePropbaser(update64bitReg(vgic.propbaser, offset & 4, len, v));
      return;
    case 'pendbase':
      if (!rd.lpisEnabled) rd.pendbaser = vgicSanitisePendbaser(update64bitReg(rd.pendbaser, offset & 4, len, v));
      return;
    case 'invlpi': {
      // vgic_mmio_write_invlpi → vgic_its_inv_lpi (update_lpi_config with needs_inv, as the INV command): the low word
      // names the LPI; only with LPIs enabled (the high word is for vPEs)
      if ((offset & 4) !== 0 || !rd.lpisEnabled) return;
      const irq = vgic.vgicGetIrq(value >>> 0);
      if (irq !== null && irq.intid >= VGIC_MIN_LPI) updateLpiConfig(vgic, irq, null, true);
      return;
    }
    default:
      // vgic_mmio_write_invall → vgic_its_invall
      if ((offset & 4) !== 0 || !rd.lpisEnabled) return;
      vgicItsInvall(vgic, rd);
  }
}

/** A write at `offset` of vCPU `rd`'s redistributor; false: no register there. */
export function vgicV3RedistWrite(rd: VgicCpu, offset: number, len: number, value: number): boolean {
  const vgic = rd.vgic;
  requireInit(vgic);
  const r = vgicGetMmioRegion(vgic, REDIST_REGIONS, offset, len);
  if (r === null) return false;
  if (r.kind === 'private') vgicMmioWrite(rd, offset - GICR_SGI_BASE, len, value);
  else if (r.kind === 'rctlr') writeRedistCtlr(rd, value);
  else if (r.kind === 'propbase' || r.kind === 'pendbase' || r.kind === 'invlpi' || r.kind === 'invall')
    writeRedistLpi(rd, r.kind, offset, len, value);
  return true;
}

/** The vCPU whose redistributor frames contain IPA `ipa`, and the offset in them; null when none does. */
export function vgicV3RedistAt(vgic: Vgic, ipa: bigint): { rd: VgicCpu; offset: number } | null {
  for (const vc of vgic.vcpus) {
    if (vc.rdBase !== null && ipa >= vc.rdBase && ipa < vc.rdBase + 2n * BigInt(GICR_SGI_BASE)) {
      return { rd: vc, offset: Number(ipa - vc.rdBase) };
    }
  }
  return null;
}

/** Whether a data abort at `ipa` hits the vGIC-v3 distributor or a redistributor (their kvm_io_bus devices). */
export function vgicV3MmioHit(vgic: Vgic, distBase: bigint, ipa: bigint): boolean {
  return (ipa >= distBase && ipa < distBase + DIST_FRAME) || vgicV3RedistAt(vgic, ipa) !== null;
}

/**
 * The guest access vgicV3MmioHit accepted, made by vCPU `vc` (dispatch_mmio_read/write): returns the value read (0 for a
 * write); a register that is not there reads as zero and ignores writes.
 */
export function vgicV3MmioAccess(
  vc: VgicCpu,
  distBase: bigint,
  ipa: bigint,
  isWrite: boolean,
  len: number,
  data: number,
): number {
  const at = ipa >= distBase && ipa < distBase + DIST_FRAME ? null : vgicV3RedistAt(vc.vgic, ipa);
  if (at === null) {
    const off = Number(ipa - distBase);
    if (isWrite) vgicV3DistWrite(vc, off, len, data);
    return isWrite ? 0 : (vgicV3DistRead(vc, off, len) ?? 0);
  }
  if (isWrite) vgicV3RedistWrite(at.rd, at.offset, len, data);
  return isWrite ? 0 : (vgicV3RedistRead(at.rd, at.offset, len) ?? 0);
}
