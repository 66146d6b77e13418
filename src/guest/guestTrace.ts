/**
 * The guest kernel's tracepoints (docs/TRACING.md guest_irq_entry, guest_eoi). They are null on an untraced machine;
 * a tracer sets them on the guest it traces (GuestKernel.setTrace: scenario/hostTrace.ts traceGuest) — the scenario
 * runner before the run, the checker's counterexample trace on its replayed copy — so a machine the checker copies
 * holds none.
 */
import type { GuestDeviceDriver } from './deviceDriver.js';

export interface GuestTraceHooks {
  /** A passed-through device's driver read its status with its line's condition set, on `vcpu`: the IRQ reached it. */
  deviceIrq(vcpu: number, drv: GuestDeviceDriver): void;
  /** The GICv3 driver calls the handler of LPI `intid` on `vcpu` (an MSI's: the ITS driver's handler of its event). */
  lpiIrq(vcpu: number, intid: number): void;
  /** Just before the write that completes `intid` on `vcpu` (EOIR, or DIR in EOImode 1). */
  eoi(vcpu: number, intid: number): void;
}
