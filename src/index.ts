/** The public API of irqfwd (documented in docs/API.md). */
export * from './abi/index.js';
export type { Process, SyscallHandle, UThread } from './host/process.js';
export { createHost, Host, type HostDeviceSpec, type HostIrqSpec, type HostOptions } from './machine.js';
export { ModelError } from './sim/errors.js';
