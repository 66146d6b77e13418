/**
 * The guest PC that kvm_entry and kvm_exit print (*vcpu_pc(vcpu), arch/arm64/kvm/trace_arm.h). The model runs no
 * guest instructions, so each guest site that can exit gets one fixed, plausible arm64 Linux text address (kernel
 * text from 0xffff800080000000); the first entry is the kernel image's load address in the guest's RAM (QEMU virt
 * loads it at 0x40200000 and starts the vCPU there). Which site an exit comes from follows the guest's state: the
 * trapping instruction (WFI in cpu_do_idle, a GICD load/store of the GIC driver, an MMIO store, HVC), or for an IRQ
 * exit the code that was interrupted (the IRQ vector, or the thread's idle path / work).
 */
import { ESR_ELx_EC_DABT_LOW, ESR_ELx_EC_HVC64, ESR_ELx_EC_WFx } from '../hw/esr.js';
import type { GuestCpu } from '../sim/cpu.js';

/** Guest RAM address of the kernel image (hw/arm/boot.c: RAM base 0x40000000 + KERNEL_LOAD_ADDR 0x200000). */
export const GUEST_BOOT_PC = 0x4020_0000;

/**
 * Low 32 bits of each site's address; the high half is TEXT_HI for kernel text (every low half ≥ 0x80000000) and 0
 * for the boot address (below), so a PC travels as one number and the trace hooks allocate nothing.
 */
export const GUEST_PC = {
  /** cpu_do_idle's wfi. */
  wfi: 0x8001_7f9c,
  /** the IRQ vector (gic_handle_irq). */
  irqVector: 0x8001_0a40,
  /** the vCPU thread between WFIs: do_idle, or the workload. */
  thread: 0x8001_8e54,
  /** a GICD access of irq-gic.c (gic_dist_init, gic_set_affinity, …) from the thread, and from the IRQ vector. */
  gicdThread: 0x806a_1c28,
  gicdIrq: 0x806a_1e10,
  /** a driver's MMIO store (writel) to an address no memslot backs. */
  mmio: 0x8084_2310,
  /** __arm_smccc_hvc, the instruction after its HVC #0. */
  hvc: 0x80a3_c5dc,
} as const;

const TEXT_HI = 0xffff_8000;

/** The high 32 bits of a guest PC given by its low half. */
export function guestPcHi(lo: number): number {
  return lo >= 0x8000_0000 ? TEXT_HI : 0;
}

/** Size of the GICv2 GICD register frame. */
const GICD_SIZE = 0x1000;

/** Low half of the guest PC of the exit just taken by `g` (ESR class `ec` for a trap; GICD at `gicdBase`). */
export function guestExitPc(g: GuestCpu, isIrq: boolean, ec: number, gicdBase: number): number {
  if (isIrq) return g.inIrq ? GUEST_PC.irqVector : g.irqMasked ? GUEST_PC.wfi : GUEST_PC.thread;
  switch (ec) {
    case ESR_ELx_EC_WFx:
      return GUEST_PC.wfi;
    case ESR_ELx_EC_HVC64:
      return GUEST_PC.hvc;
    case ESR_ELx_EC_DABT_LOW:
      if (g.exitArg < gicdBase || g.exitArg >= gicdBase + GICD_SIZE) return GUEST_PC.mmio;
      return g.trapTask !== null && g.trapTask === g.irqTask ? GUEST_PC.gicdIrq : GUEST_PC.gicdThread;
  }
  return GUEST_PC.thread;
}

/**
 * The guest PC at the entry after an exit at `exitPc`: KVM completes a trapped WFI or data abort by skipping the
 * instruction (kvm_incr_pc); HVC's return address is already the next instruction; an IRQ exit resumes where it was
 * taken.
 */
export function guestEntryPc(exitPc: number, isIrq: boolean, ec: number): number {
  return isIrq || ec === ESR_ELx_EC_HVC64 ? exitPc : exitPc + 4;
}
