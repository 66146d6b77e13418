/**
 * The kvm-vfio flavours a host can run (HostOptions.forwarding): the default design with its quiesce protocol, and
 * the two variants the checker compares it with (docs/ARCHITECTURE.md, "Variants for the checker").
 */
import type { KvmDeviceOps } from '../device.js';
import { kvmVfioOps } from '../vfio.js';
import { kvmVfioNaiveOps } from './naive/naive.js';
import { kvmVfioRfcV1Ops } from './rfcV1/kvmVfioArm.js';

export type ForwardingVariant = 'protocol' | 'naive' | 'rfc-v1';

export const FORWARDING_VARIANTS: readonly ForwardingVariant[] = ['protocol', 'naive', 'rfc-v1'];

/** The KVM_DEV_TYPE_VFIO ops of a flavour. */
export function kvmVfioOpsFor(variant: ForwardingVariant): KvmDeviceOps {
  switch (variant) {
    case 'protocol':
      return kvmVfioOps;
    case 'naive':
      return kvmVfioNaiveOps;
    case 'rfc-v1':
      return kvmVfioRfcV1Ops;
  }
}
