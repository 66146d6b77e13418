/**
 * The public factory of a programmable guest: a guest kernel on a host's engine and GIC, installed as the guest
 * every vCPU of the host's VMs runs from its first KVM_RUN (docs/API.md "A programmable guest").
 */

import { GuestKernel, type GuestKernelOptions } from './guest/guestKernel.js';
import type { Host } from './machine.js';

export type GuestOptions = Omit<GuestKernelOptions, 'engine' | 'gic' | 'gicv3'>;

/** On a GICv3 host the guest runs irq-gic-v3.c over the ICV_* interfaces; on a GICv2 host irq-gic.c over the GICVs. */
export function createGuest(host: Host, opts: GuestOptions): GuestKernel {
  const irq = host.irq;
  const guest = new GuestKernel(
    irq.version === 'v3'
      ? { ...opts, engine: host.engine, gicv3: irq.gic }
      : { ...opts, engine: host.engine, gic: irq.gic },
  );
  host.kvm.guestFactory = guest;
  return guest;
}
