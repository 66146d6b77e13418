/**
 * The public factory of a programmable guest: a guest kernel on a host's engine and GIC, installed as the guest
 * every vCPU of the host's VMs runs from its first KVM_RUN (docs/API.md "A programmable guest").
 */

import { GuestKernel, type GuestKernelOptions } from './guest/guestKernel.js';
import { hostGicV2 } from './host/irq/boot.js';
import type { Host } from './machine.js';

export type GuestOptions = Omit<GuestKernelOptions, 'engine' | 'gic'>;

export function createGuest(host: Host, opts: GuestOptions): GuestKernel {
  const guest = new GuestKernel({ ...opts, engine: host.engine, gic: hostGicV2(host.irq) });
  host.kvm.guestFactory = guest;
  return guest;
}
