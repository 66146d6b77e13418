// GICv2 register map and bit fields. Names follow include/linux/irqchip/arm-gic.h where Linux defines them
// (GIC_DIST_*, GIC_CPU_*, GICH_*, GICH_LR_*); the rest are named after ARM IHI 0048B (GICv2 architecture spec).
// All values are non-negative numbers (uint32 view); test a bit with `(v & BIT) !== 0`.

// ---- INTID space (IHI 0048B §2.2.1 Interrupt IDs) ----
export const SGI_BASE = 0;
export const PPI_BASE = 16;
export const SPI_BASE = 32;
export const NR_SGIS = 16;
export const NR_PRIVATE_IRQS = 32;
export const MAX_SPI_INTID = 1019;
/** INTIDs 1020-1023 are reserved; 1023 is the spurious ID returned by IAR when nothing can be acknowledged. */
export const SPURIOUS_INTID = 1023;
export const GICC_INT_SPURIOUS = 1023;
export const MAX_CPUS = 8;
/** GICv2 virtual interface maintenance interrupt (PPI 25 by convention, KVM's vgic "maintenance irq"). */
export const MAINTENANCE_PPI = 25;
/** EL1 virtual timer PPI (CNTV), the interrupt KVM forwards with HW=1. */
export const VTIMER_PPI = 27;

export const isSgi = (intid: number): boolean => intid < PPI_BASE;
export const isPpi = (intid: number): boolean => intid >= PPI_BASE && intid < SPI_BASE;
export const isSpi = (intid: number): boolean => intid >= SPI_BASE && intid <= MAX_SPI_INTID;
export const isPrivate = (intid: number): boolean => intid < SPI_BASE;

// ---- Distributor (GICD), IHI 0048B §4.3 ----
export const GIC_DIST_CTRL = 0x000;
export const GIC_DIST_CTR = 0x004; // GICD_TYPER
export const GIC_DIST_IIDR = 0x008;
export const GIC_DIST_IGROUP = 0x080;
export const GIC_DIST_ENABLE_SET = 0x100;
export const GIC_DIST_ENABLE_CLEAR = 0x180;
export const GIC_DIST_PENDING_SET = 0x200;
export const GIC_DIST_PENDING_CLEAR = 0x280;
export const GIC_DIST_ACTIVE_SET = 0x300;
export const GIC_DIST_ACTIVE_CLEAR = 0x380;
export const GIC_DIST_PRI = 0x400;
export const GIC_DIST_TARGET = 0x800;
export const GIC_DIST_CONFIG = 0xc00;
export const GIC_DIST_SOFTINT = 0xf00; // GICD_SGIR
export const GIC_DIST_SGI_PENDING_CLEAR = 0xf10; // GICD_CPENDSGIRn
export const GIC_DIST_SGI_PENDING_SET = 0xf20; // GICD_SPENDSGIRn

export const GICD_ENABLE = 0x1;
export const GICD_DISABLE = 0x0;
export const GICD_INT_ACTLOW_LVLTRIG = 0x0;
export const GICD_INT_EN_CLR_X32 = 0xffffffff;
export const GICD_INT_EN_SET_SGI = 0x0000ffff;
export const GICD_INT_EN_CLR_PPI = 0xffff0000;
/** GICD_TYPER: ITLinesNumber[4:0] = nrIrqs/32 - 1, CPUNumber[7:5] = nrCpus - 1, SecurityExtn bit 10 (0 here). */
export const GICD_TYPER_ITLINES_MASK = 0x1f;
export const GICD_TYPER_CPUNUMBER_SHIFT = 5;
/** GIC-400 r0p0 distributor IIDR (ARM implementer 0x43b, product 0x02). */
export const GICD_IIDR_GIC400 = 0x0200143b;
/** GICD_ICFGR: bit [2F+1] of the field for INTID F = 1 edge-triggered, 0 level-sensitive (IHI 0048B §4.3 GICD_ICFGRn). */
export const GICD_ICFGR_SGI_VALUE = 0xaaaaaaaa;
/** GICD_SGIR fields (IHI 0048B §4.3 GICD_SGIR). */
export const GICD_SGIR_TARGET_LIST_FILTER_SHIFT = 24;
export const GICD_SGIR_CPU_TARGET_LIST_SHIFT = 16;
export const GICD_SGIR_SGIINTID_MASK = 0xf;
export const SGIR_FILTER_LIST = 0;
export const SGIR_FILTER_ALL_BUT_SELF = 1;
export const SGIR_FILTER_SELF = 2;

// ---- CPU interface (GICC), IHI 0048B §4.4; same offsets for the virtual CPU interface GICV (IHI 0048B Ch. 5) ----
export const GIC_CPU_CTRL = 0x00;
export const GIC_CPU_PRIMASK = 0x04;
export const GIC_CPU_BINPOINT = 0x08;
export const GIC_CPU_INTACK = 0x0c;
export const GIC_CPU_EOI = 0x10;
export const GIC_CPU_RUNNINGPRI = 0x14;
export const GIC_CPU_HIGHPRI = 0x18;
export const GIC_CPU_ALIAS_BINPOINT = 0x1c;
export const GIC_CPU_ACTIVEPRIO = 0xd0;
export const GIC_CPU_IDENT = 0xfc;
export const GIC_CPU_DEACTIVATE = 0x1000;

export const GICC_ENABLE = 0x1;
export const GICC_INT_PRI_THRESHOLD = 0xf0;
export const GIC_CPU_CTRL_EnableGrp0_SHIFT = 0;
export const GIC_CPU_CTRL_EnableGrp0 = 1 << 0;
export const GIC_CPU_CTRL_EnableGrp1_SHIFT = 1;
export const GIC_CPU_CTRL_EnableGrp1 = 1 << 1;
export const GIC_CPU_CTRL_AckCtl = 1 << 2;
export const GIC_CPU_CTRL_FIQEn = 1 << 3;
export const GIC_CPU_CTRL_CBPR = 1 << 4;
export const GIC_CPU_CTRL_EOImodeNS_SHIFT = 9;
export const GIC_CPU_CTRL_EOImodeNS = 1 << 9;
export const GICC_DIS_BYPASS_MASK = 0x1e0;
/** Writable GICC_CTLR bits in the Non-secure view Linux uses: Enable(0), FIQBypDis(5), IRQBypDis(6), EOImodeNS(9). */
export const GICC_CTLR_NS_MASK = 0x261;
export const GICC_IAR_INT_ID_MASK = 0x3ff;
export const GICC_IAR_CPUID_SHIFT = 10;
export const GICC_IAR_CPUID_MASK = 0x7;
/** GIC-400 CPU interface IIDR (architecture version 2). */
export const GICC_IIDR_GIC400 = 0x0202143b;

// ---- Virtual interface control (GICH), IHI 0048B §5.3 ----
export const GICH_HCR = 0x0;
export const GICH_VTR = 0x4;
export const GICH_VMCR = 0x8;
export const GICH_MISR = 0x10;
export const GICH_EISR0 = 0x20;
export const GICH_EISR1 = 0x24;
export const GICH_ELRSR0 = 0x30;
export const GICH_ELRSR1 = 0x34;
export const GICH_APR = 0xf0;
export const GICH_LR0 = 0x100;

export const GICH_HCR_EN = 1 << 0;
export const GICH_HCR_UIE = 1 << 1;
export const GICH_HCR_LRENPIE = 1 << 2;
export const GICH_HCR_NPIE = 1 << 3;
export const GICH_HCR_VGRP0EIE = 1 << 4;
export const GICH_HCR_VGRP0DIE = 1 << 5;
export const GICH_HCR_VGRP1EIE = 1 << 6;
export const GICH_HCR_VGRP1DIE = 1 << 7;
export const GICH_HCR_EOICOUNT_SHIFT = 27;
export const GICH_HCR_EOICOUNT_MASK = 0xf8000000;

/** GICH_VTR: ListRegs[5:0] = nrLrs - 1, PREbits[28:26] = preemption bits - 1, PRIbits[31:29] = priority bits - 1. */
export const GICH_VTR_LISTREGS_MASK = 0x3f;
export const GICH_VTR_PREBITS_SHIFT = 26;
export const GICH_VTR_PRIBITS_SHIFT = 29;

export const GICH_VMCR_ENABLE_GRP0_MASK = 1 << 0;
export const GICH_VMCR_ENABLE_GRP1_MASK = 1 << 1;
export const GICH_VMCR_ACK_CTL_MASK = 1 << 2;
export const GICH_VMCR_FIQ_EN_MASK = 1 << 3;
export const GICH_VMCR_CBPR_MASK = 1 << 4;
export const GICH_VMCR_EOI_MODE_SHIFT = 9;
export const GICH_VMCR_EOI_MODE_MASK = 1 << 9;
/** VMCR bits aliased by GICV_CTLR (bits 0-4 and 9). */
export const GICH_VMCR_CTLR_MASK = 0x21f;
export const GICH_VMCR_PRIMASK_SHIFT = 27;
export const GICH_VMCR_PRIMASK_MASK = 0xf8000000;
export const GICH_VMCR_BINPOINT_SHIFT = 21;
export const GICH_VMCR_BINPOINT_MASK = 0x7 << 21;
export const GICH_VMCR_ALIAS_BINPOINT_SHIFT = 18;
export const GICH_VMCR_ALIAS_BINPOINT_MASK = 0x7 << 18;

export const GICH_MISR_EOI = 1 << 0;
export const GICH_MISR_U = 1 << 1;
export const GICH_MISR_LRENP = 1 << 2;
export const GICH_MISR_NP = 1 << 3;
export const GICH_MISR_VGRP0E = 1 << 4;
export const GICH_MISR_VGRP0D = 1 << 5;
export const GICH_MISR_VGRP1E = 1 << 6;
export const GICH_MISR_VGRP1D = 1 << 7;

// GICH_LRn (IHI 0048B §5.3 List Registers). With HW=1 bits [19:10] are PhysicalID; with HW=0 bits [12:10] are the SGI source CPUID and
// bit 19 is EOI (request a maintenance interrupt on deactivation).
export const GICH_LR_VIRTUALID = 0x3ff;
export const GICH_LR_PHYSID_CPUID_SHIFT = 10;
export const GICH_LR_PHYSID_CPUID = 0x3ff << 10;
export const GICH_LR_CPUID_MASK = 0x7;
export const GICH_LR_EOI = 1 << 19;
export const GICH_LR_PRIORITY_SHIFT = 23;
export const GICH_LR_PRIORITY_MASK = 0x1f << 23;
export const GICH_LR_STATE_SHIFT = 28;
export const GICH_LR_STATE = 3 << 28;
export const GICH_LR_PENDING_BIT = 1 << 28;
export const GICH_LR_ACTIVE_BIT = 1 << 29;
export const GICH_LR_GROUP1 = 1 << 30;
export const GICH_LR_HW = 0x80000000;

export const GICV_PMR_PRIORITY_SHIFT = 3;
export const GICV_PMR_PRIORITY_MASK = 0x1f << 3;
/** The virtual CPU interface implements 5 priority bits and 5 preemption bits (GIC-400, KVM "five bits"). */
export const GICV_PRIORITY_BITS = 5;
export const GICV_MIN_BPR = 2;
export const GICV_MIN_ABPR = 3;
export const MAX_LRS = 64;

/** Idle running priority (GICC_RPR with no active interrupt, IHI 0048B §4.4). */
export const IDLE_PRIORITY = 0xff;

/** Group-priority mask for a binary point value: bits [7:bpr+1] are the group priority (IHI 0048B §3.3 priority grouping). */
export const groupPriorityMask = (bpr: number): number => (0xff << (bpr + 1)) & 0xff;
