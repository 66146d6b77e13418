// GICv3 register map and bit fields. Names follow include/linux/irqchip/arm-gic-v3.h (GICD_*, GICR_*, ICC_*, ICH_*)
// and ARM IHI 0069 (GIC architecture specification v3/v4). Values are non-negative numbers (uint32 view); the
// 64-bit registers (GICD_IROUTER<n>, GICR_TYPER, ICC_SGI1R_EL1, ICH_LR<n>_EL2) are split into their 32-bit halves.

// ---- INTID space (IHI 0069 §2.2 INTIDs) ----
export const NR_SGIS = 16;
export const SPI_BASE = 32;
/** INTIDs 1020-1023 are special; 1023 is what an acknowledge returns when nothing can be acknowledged. */
export const SPURIOUS_INTID = 1023;
/** PEs per GIC here: PE sets are 32-bit masks. */
export const MAX_PES = 32;
/** Maintenance interrupt PPI (KVM's vgic "maintenance irq", 25 on every DT/ACPI platform). */
export const MAINTENANCE_PPI = 25;

export const isSgi = (intid: number): boolean => intid < NR_SGIS;
export const isSpecialIntid = (intid: number): boolean => intid >= 1020 && intid <= 1023;
/**
 * GICv3.1 Extended SPIs (§2.2.1, FEAT_GICv3p1): INTIDs 4096..5119, up to 1024 of them, configured through the
 * GICD_*RnE register blocks and GICD_IROUTER<n>E (arm-gic-v3.h ESPI_BASE_INTID; irq-gic-v3.c ESPI_RANGE).
 */
export const ESPI_BASE = 4096;
export const MAX_ESPIS = 1024;
// LPIs (8192 and up, lpi.ts) exist when the GIC is built with nrLpis > 0; the ITS (its.ts) sends them.

// ---- Distributor (GICD), IHI 0069 §12.8 / §12.9 ----
export const GICD_CTLR = 0x0000;
export const GICD_TYPER = 0x0004;
export const GICD_IIDR = 0x0008;
export const GICD_IGROUPR = 0x0080;
export const GICD_ISENABLER = 0x0100;
export const GICD_ICENABLER = 0x0180;
export const GICD_ISPENDR = 0x0200;
export const GICD_ICPENDR = 0x0280;
export const GICD_ISACTIVER = 0x0300;
export const GICD_ICACTIVER = 0x0380;
export const GICD_IPRIORITYR = 0x0400;
export const GICD_ICFGR = 0x0c00;
export const GICD_IGRPMODR = 0x0d00;
export const GICD_IROUTER = 0x6000;
export const GICD_PIDR2 = 0xffe8;
// GICv3.1 Extended SPI blocks (§12.9: GICD_IGROUPR<n>E ... GICD_IROUTER<n>E): register n covers ESPIs 4096 + 32n ...
export const GICD_IGROUPRnE = 0x1000;
export const GICD_ISENABLERnE = 0x1200;
export const GICD_ICENABLERnE = 0x1400;
export const GICD_ISPENDRnE = 0x1600;
export const GICD_ICPENDRnE = 0x1800;
export const GICD_ISACTIVERnE = 0x1a00;
export const GICD_ICACTIVERnE = 0x1c00;
export const GICD_IPRIORITYRnE = 0x2000;
export const GICD_ICFGRnE = 0x3000;
export const GICD_IGRPMODRnE = 0x3400;
export const GICD_IROUTERnE = 0x8000;

/** GICD_CTLR with a single Security state (DS = 1): EnableGrp0[0], EnableGrp1[1], ARE[4], DS[6], RWP[31]. */
export const GICD_CTLR_ENABLE_G0 = 1 << 0;
export const GICD_CTLR_ENABLE_G1 = 1 << 1;
export const GICD_CTLR_ARE = 1 << 4;
export const GICD_CTLR_DS = 1 << 6;
/**
 * GICD_TYPER: ITLinesNumber[4:0], CPUNumber[7:5], ESPI[8], SecurityExtn[10], MBIS[16], LPIS[17], IDbits[23:19],
 * A3V[24], ESPI_range[31:27] (ESPIs implemented: 32 × (ESPI_range + 1); arm-gic-v3.h GICD_TYPER_ESPI_RANGE).
 */
export const GICD_TYPER_CPUNUMBER_SHIFT = 5;
export const GICD_TYPER_ESPI = 1 << 8;
export const GICD_TYPER_ESPI_RANGE_SHIFT = 27;
export const GICD_TYPER_LPIS = 1 << 17;
/** GICD_TYPER.num_LPIs[15:11]: 2^(num_LPIs + 1) LPIs implemented; 0: as many as IDbits allows. */
export const GICD_TYPER_NUM_LPIS_SHIFT = 11;
export const GICD_TYPER_IDBITS_SHIFT = 19;
export const GICD_TYPER_A3V = 1 << 24;
/** GIC-600 r1p6 distributor IIDR (implementer ARM 0x43b, ProductID 0x02). */
export const GICD_IIDR_GIC600 = 0x0201643b;
/** GICD_PIDR2 / GICR_PIDR2 ArchRev[7:4] = 3 (what gic_of_init / gic_iterate_rdists check). */
export const GIC_PIDR2_ARCH_GICV3 = 0x30;
/** GICD_IROUTER<n> low word: Interrupt_Routing_Mode[31], Aff2[23:16], Aff1[15:8], Aff0[7:0]; high word: Aff3[7:0]. */
export const GICD_IROUTER_IRM = 1 << 31;
export const GICD_IROUTER_AFF_MASK = 0x00ffffff;
/** GICD_ICFGR / GICR_ICFGR<n>: bit [2F+1] of the field for INTID F = 1 edge-triggered. SGIs read as edge. */
export const GICD_ICFGR_SGI_VALUE = 0xaaaaaaaa;

// ---- Redistributor (GICR), IHI 0069 §12.10 / §12.11: RD_base frame, then SGI_base frame 64 KiB above ----
export const GICR_SGI_BASE = 0x10000;
export const GICR_CTLR = 0x0000;
export const GICR_IIDR = 0x0004;
export const GICR_TYPER = 0x0008;
export const GICR_WAKER = 0x0014;
export const GICR_PROPBASER = 0x0070;
export const GICR_PENDBASER = 0x0078;
/**
 * GICR_INVALLR (V[63], vPEID[47:32]) and GICR_SYNCR (Busy[0]): on a GICv4.1 redistributor (RVPEID) they exist for vPEs
 * even with DirectLPI = 0 — Linux's its_vpe_4_1_invall writes GICR_INVALLR unconditionally. Physical invalidation
 * keeps going through the ITS here.
 */
export const GICR_INVALLR = 0x00b0;
export const GICR_SYNCR = 0x00c0;
export const GICR_INVALLR_V_HI = 1 << 31;
/** GICR_CTLR.EnableLPIs[0]. */
export const GICR_CTLR_ENABLE_LPIS = 1 << 0;
/** GICR_TYPER.PLPIS[0]: physical LPIs supported (DirectLPI[3] = 0: invalidation goes through the ITS). */
export const GICR_TYPER_PLPIS = 1 << 0;
export const GICR_PIDR2 = 0xffe8;
/**
 * GICv4.1 (IHI 0069 §12.10 GICR_VPROPBASER / GICR_VPENDBASER, arm-gic-v3.h GICR_VPENDBASER_4_1_*): the VLPI_base frame
 * is the third 64 KiB frame of a redistributor; GICR_TYPER.VLPIS[1] says it exists, RVPEID[7] that GICR_VPENDBASER
 * names the vPE by vPEID (4.1) instead of by its VPT address (4.0).
 */
export const GICR_VLPI_BASE = 0x20000;
export const GICR_VPROPBASER = 0x0070;
export const GICR_VPENDBASER = 0x0078;
export const GICR_TYPER_VLPIS = 1 << 1;
export const GICR_TYPER_RVPEID = 1 << 7;
/** GICR_VPROPBASER (4.1) high word: Valid[63]; the vPE configuration table's format is IMPLEMENTATION DEFINED. */
export const GICR_VPROPBASER_4_1_VALID_HI = 1 << 31;
/** GICR_VPENDBASER (4.1) high word: Valid[63], Doorbell[62] (write), PendingLast[61], Dirty[60], VGrp0En[59], VGrp1En[58]; low: vPEID[15:0]. */
export const GICR_VPENDBASER_VALID_HI = 1 << 31;
export const GICR_VPENDBASER_4_1_DB_HI = 1 << 30;
export const GICR_VPENDBASER_PENDINGLAST_HI = 1 << 29;
export const GICR_VPENDBASER_DIRTY_HI = 1 << 28;
export const GICR_VPENDBASER_4_1_VGRP0EN_HI = 1 << 27;
export const GICR_VPENDBASER_4_1_VGRP1EN_HI = 1 << 26;
export const GICR_VPENDBASER_4_1_VPEID_MASK = 0xffff;
/** GICR_TYPER low word: Last[4], Processor_Number[23:8]; high word: Affinity Aff3.Aff2.Aff1.Aff0 [63:32]. */
export const GICR_TYPER_LAST = 1 << 4;
export const GICR_TYPER_PROCNUM_SHIFT = 8;
/** GICR_WAKER: ProcessorSleep[1] (reset 1), ChildrenAsleep[2] (RO). */
export const GICR_WAKER_PROCESSOR_SLEEP = 1 << 1;
export const GICR_WAKER_CHILDREN_ASLEEP = 1 << 2;
// SGI_base frame offsets (relative to SGI_base): the GICD layout for INTIDs 0-31 (mmio.ts decodes both alike)
export const GICR_ISENABLER0 = 0x0100;
export const GICR_ICENABLER0 = 0x0180;
export const GICR_ISPENDR0 = 0x0200;
export const GICR_IPRIORITYR0 = 0x0400;
export const GICR_ICFGR0 = 0x0c00;
export const GICR_ICFGR1 = 0x0c04;

// ---- CPU interface system registers (ICC_*_EL1), IHI 0069 §12.2 ----
/** ICC_CTLR_EL1: CBPR[0], EOImode[1], PMHE[6], PRIbits[10:8], IDbits[13:11], SEIS[14], A3V[15], RSS[18]. */
export const ICC_CTLR_EOIMODE = 1 << 1;
export const ICC_CTLR_PRIBITS_SHIFT = 8;
export const ICC_CTLR_IDBITS_SHIFT = 11;
export const ICC_CTLR_A3V = 1 << 15;
export const ICC_IGRPEN1_EN = 1;
/** ICC_SRE_EL1: SRE[0], DFB[1], DIB[2]; the system-register interface is the only one here (RAO/WI). */
export const ICC_SRE_EL1_VALUE = 0x7;
/** ICC_SGI1R_EL1 low word: TargetList[15:0], Aff1[23:16], INTID[27:24]; high word: Aff2[39:32], IRM[40], RS[47:44], Aff3[55:48]. */
export const ICC_SGI1R_TARGET_LIST_MASK = 0xffff;
export const ICC_SGI1R_AFF1_SHIFT = 16;
export const ICC_SGI1R_SGI_ID_SHIFT = 24;
export const ICC_SGI1R_HI_IRM = 1 << 8;
export const ICC_SGI1R_HI_RS_SHIFT = 12;
export const ICC_SGI1R_HI_AFF3_SHIFT = 16;

// ---- Virtualization (ICH_*_EL2), IHI 0069 §12.4 ----
export const ICH_HCR_EN = 1 << 0;
export const ICH_HCR_UIE = 1 << 1;
export const ICH_HCR_LRENPIE = 1 << 2;
export const ICH_HCR_NPIE = 1 << 3;
export const ICH_HCR_VGRP0EIE = 1 << 4;
export const ICH_HCR_VGRP0DIE = 1 << 5;
export const ICH_HCR_VGRP1EIE = 1 << 6;
export const ICH_HCR_VGRP1DIE = 1 << 7;
export const ICH_HCR_EOICOUNT_SHIFT = 27;
export const ICH_HCR_EOICOUNT_MASK = 0xf8000000;

/** ICH_VTR_EL2: ListRegs[4:0], nV4[20], A3V[21], IDbits[25:23] (0: 16 bits), PREbits[28:26], PRIbits[31:29]. */
export const ICH_VTR_NV4 = 1 << 20;
export const ICH_VTR_A3V = 1 << 21;
export const ICH_VTR_PREBITS_SHIFT = 26;
export const ICH_VTR_PRIBITS_SHIFT = 29;
export const MAX_LRS = 16;

/** ICH_VMCR_EL2: VENG0[0], VENG1[1], VCBPR[4], VEOIM[9], VBPR1[20:18], VBPR0[23:21], VPMR[31:24]. */
export const ICH_VMCR_ENG0 = 1 << 0;
export const ICH_VMCR_ENG1 = 1 << 1;
export const ICH_VMCR_EOIM = 1 << 9;
export const ICH_VMCR_BPR1_SHIFT = 18;
export const ICH_VMCR_BPR1_MASK = 0x7 << 18;
export const ICH_VMCR_PMR_SHIFT = 24;
export const ICH_VMCR_PMR_MASK = 0xff000000;

export const ICH_MISR_EOI = 1 << 0;
export const ICH_MISR_U = 1 << 1;
export const ICH_MISR_LRENP = 1 << 2;
export const ICH_MISR_NP = 1 << 3;
export const ICH_MISR_VGRP0E = 1 << 4;
export const ICH_MISR_VGRP0D = 1 << 5;
export const ICH_MISR_VGRP1E = 1 << 6;
export const ICH_MISR_VGRP1D = 1 << 7;

/**
 * ICH_LR<n>_EL2 high word (bits [63:32]): pINTID[44:32] → [12:0] (with HW = 1), EOI[41] → [9] (with HW = 0),
 * Priority[55:48] → [23:16], Group[60] → [28], HW[61] → [29], State[63:62] → [31:30]. pINTID is 13 bits since
 * GICv3.1 (IHI 0069 §12.4 ICH_LR<n>_EL2, FEAT_GICv3p1), so an Extended SPI (4096..5119) can back a HW list register;
 * arm-gic-v3.h's ICH_LR_PHYS_ID_MASK is still 10 bits, but vgic_v3_populate_lr writes hwintid unmasked.
 */
export const ICH_LR_PHYS_ID_MASK = 0x1fff;
export const ICH_LR_EOI = 1 << 9;
export const ICH_LR_PRIORITY_SHIFT = 16;
export const ICH_LR_GROUP = 1 << 28;
export const ICH_LR_HW = 1 << 29;
export const ICH_LR_STATE_SHIFT = 30;

/** The virtual CPU interface implements 5 priority and 5 preemption bits (as KVM's vgic-v3 expects at minimum). */
export const VIRTUAL_PRIORITY_BITS = 5;

/** Idle running priority (ICC_RPR_EL1 / ICV_RPR_EL1 with no active priority). */
export const IDLE_PRIORITY = 0xff;

/**
 * Group-priority mask for a Group 1 binary point (ICC_BPR1_EL1 / ICV_BPR1_EL1): value n keeps bits [7:n] as the
 * group priority (IHI 0069 §4.8.2 "Priority grouping": BPR1 n splits like BPR0 n - 1).
 */
export const group1PriorityMask = (bpr1: number): number => (0xff << bpr1) & 0xff;

/** Packed affinity Aff3.Aff2.Aff1.Aff0 as one number (Aff3 in bits [31:24]; unsigned). */
export const packAffinity = (aff3: number, aff2: number, aff1: number, aff0: number): number =>
  (aff3 & 0xff) * 0x1000000 + ((aff2 & 0xff) << 16) + ((aff1 & 0xff) << 8) + (aff0 & 0xff);
