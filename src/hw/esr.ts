/**
 * Exception classes of ESR_EL2 that the model's guests trap with (arch/arm64/include/asm/esr.h). A guest task yields
 * `trap(ESR_ELx_EC_*, arg)`; for a data abort, `arg` is the faulting IPA and GuestCpu.mmio holds the access.
 */
export const ESR_ELx_EC_WFx = 0x01;
export const ESR_ELx_EC_HVC64 = 0x16;
export const ESR_ELx_EC_SYS64 = 0x18;
export const ESR_ELx_EC_DABT_LOW = 0x24;

const NAMES: ReadonlyMap<number, string> = new Map([
  [ESR_ELx_EC_WFx, 'WFx'],
  [ESR_ELx_EC_HVC64, 'HVC64'],
  [ESR_ELx_EC_SYS64, 'SYS64'],
  [ESR_ELx_EC_DABT_LOW, 'DABT_LOW'],
]);

/** The kvm_arm_exception_class name trace_kvm_exit prints for an EC (e.g. 'DABT_LOW'). */
export function esrClassName(ec: number): string {
  return NAMES.get(ec) ?? `UNKNOWN(0x${ec.toString(16)})`;
}
