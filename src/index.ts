/** The public API of irqfwd (documented in docs/API.md). */
export * from './abi/index.js';
export { createGuest, type GuestOptions } from './createGuest.js';
export type { GuestDeviceLineOptions } from './guest/deviceDriver.js';
export type { GuestEoiPolicy, GuestIrqHandler, GuestTrigger } from './guest/gicDriver.js';
export {
  GUEST_UCALL_IPA,
  type GuestExtraIrq,
  GuestKernel,
  type GuestKernelStats,
  type GuestRetargetAction,
  type GuestWorkload,
} from './guest/guestKernel.js';
export { type GuestIrqHook, GuestOps, type GuestProgram } from './guest/guestOps.js';
export {
  type GuestItsDevice,
  type GuestItsEvent,
  type GuestItsMsi,
  type GuestItsOptions,
  VIRT_GIC_ITS,
} from './guest/itsDriver.js';
export type { GicVersion, HostIrq, HostIrqV2, HostIrqV3 } from './host/irq/boot.js';
export type { Process, SyscallHandle, UThread } from './host/process.js';
export { LrState } from './hw/gic/listRegister.js';
export { type KvmVcpuStat, kvmRunAddress } from './kvm/vcpu.js';
export {
  type VgicIrqState,
  type VgicListRegister,
  type VgicV3ListRegister,
  vgicApList,
  vgicIrqState,
  vgicListRegisters,
  vgicV3ListRegisters,
} from './kvm/vgic/vgicObserve.js';
export {
  createHost,
  Host,
  type HostDeviceSpec,
  type HostIrqSpec,
  type HostOptions,
  type VcpuStats,
} from './machine.js';
export { ModelError } from './sim/errors.js';
export type { Op, TaskGen } from './sim/task.js';
