// The UNPREDICTABLE accesses the GIC models (src/hw) absorb (counted in `unpredictableCount` for the checker's
// no-gic-unpredictable, otherwise ignored or half done as each site says) and reported to the distributor's
// `onUnpredictable` observer, which a tracer turns into gic_unpredictable (docs/TRACING.md). Real hardware signals
// nothing (its behaviour is simply not defined), so no Linux tracepoint exists; the event shows where a
// counterexample's GIC went wrong, on the CPU that made the access.

/** The register written: GICv2 memory-mapped interfaces, GICv3 system registers. */
export const GICC_EOIR = 0;
export const GICC_DIR = 1;
export const GICV_EOIR = 2;
export const GICV_DIR = 3;
export const ICC_EOIR1_EL1 = 4;
export const ICC_DIR_EL1 = 5;
export const ICV_EOIR1_EL1 = 6;
export const ICV_DIR_EL1 = 7;
export const ICH_LR_EL2 = 8;
export const GICR_PROPBASER = 9;
export const GICR_VPROPBASER = 10;
export const GICR_VPENDBASER = 11;

export const UNPREDICTABLE_REG_NAMES: ReadonlyMap<number, string> = new Map([
  [GICC_EOIR, 'GICC_EOIR'],
  [GICC_DIR, 'GICC_DIR'],
  [GICV_EOIR, 'GICV_EOIR'],
  [GICV_DIR, 'GICV_DIR'],
  [ICC_EOIR1_EL1, 'ICC_EOIR1_EL1'],
  [ICC_DIR_EL1, 'ICC_DIR_EL1'],
  [ICV_EOIR1_EL1, 'ICV_EOIR1_EL1'],
  [ICV_DIR_EL1, 'ICV_DIR_EL1'],
  [ICH_LR_EL2, 'ICH_LR_EL2'],
  [GICR_PROPBASER, 'GICR_PROPBASER'],
  [GICR_VPROPBASER, 'GICR_VPROPBASER'],
  [GICR_VPENDBASER, 'GICR_VPENDBASER'],
]);

// Why the access is UNPREDICTABLE.
/** An EOI with no active priority to drop (GICv2 §3.2.1, GICv3 §12.2 ICC_EOIR1_EL1). */
export const NO_ACTIVE_PRIORITY = 0;
/** A deactivation of an INTID that is not active: a host EOI/DIR, or a guest's through a HW=1 list register. */
export const INACTIVE = 1;
/** A DIR write while EOImode is 0 (GICv2 §4.4 GICC_DIR, GICv3 §12.2 ICC_DIR_EL1): ignored. */
export const DIR_EOIMODE_0 = 2;
/** A virtual EOI/DIR of a vINTID whose list register is only pending (GICv2 §5.4 GICV_DIR). */
export const LR_PENDING = 3;
/** A deactivation of an INTID this GIC does not implement (GICv3). */
export const NOT_IMPLEMENTED = 4;
/**
 * A list register loaded with UNPREDICTABLE content (GICv3, ICH_LR<n>_EL2 written or restored): HW=1 with
 * pending+active or naming an SGI, special or absent pINTID, or a valid LR with a special vINTID.
 */
export const LR_CONTENT = 5;
/** GICR_PROPBASER written through a redistributor whose GICR_CTLR.EnableLPIs is set: ignored. */
export const ENABLE_LPIS = 6;
/** GICR_PROPBASER naming another table than the one the redistributors share (CommonLPIAff). */
export const OTHER_TABLE = 7;
/** GICR_VPROPBASER or GICR_VPENDBASER written while a vPE is resident (VPENDBASER.Valid 1 → 1 too): ignored. */
export const VPE_RESIDENT = 8;
/** GICR_VPENDBASER.Valid 0 → 1 for a vPEID the vPE table does not map to this redistributor (or one resident elsewhere). */
export const VPE_NOT_MAPPED = 9;

export const UNPREDICTABLE_WHY_NAMES: ReadonlyMap<number, string> = new Map([
  [NO_ACTIVE_PRIORITY, 'no_active_priority'],
  [INACTIVE, 'inactive'],
  [DIR_EOIMODE_0, 'dir_eoimode0'],
  [LR_PENDING, 'lr_pending'],
  [NOT_IMPLEMENTED, 'not_implemented'],
  [LR_CONTENT, 'lr_content'],
  [ENABLE_LPIS, 'enable_lpis'],
  [OTHER_TABLE, 'other_table'],
  [VPE_RESIDENT, 'vpe_resident'],
  [VPE_NOT_MAPPED, 'vpe_not_mapped'],
]);

/**
 * Observer of each UNPREDICTABLE access (for traces; must not change GIC state): the CPU (PE) whose interface or
 * redistributor took it, the register, why, and the INTID at fault — the one written, except a HW=1 list register's
 * deactivation of an inactive physical INTID (its pINTID), a list register's content (its vINTID), GICR_PROPBASER
 * (0) and the vPE registers (the vPEID written, or the resident one).
 */
export type UnpredictableObserver = (cpu: number, reg: number, why: number, intid: number) => void;
