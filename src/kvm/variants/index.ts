/**
 * The kvm-vfio flavours a host can run (HostOptions.forwarding): the default design with its quiesce protocol, and
 * the two variants the checker compares it with (docs/ARCHITECTURE.md, "Variants for the checker"). 'bypass' adds the
 * 2015 series' IRQ bypass forwarding of platform SPIs (a vfio-platform producer per trigger, connected to KVM's irqfd
 * consumer: kvm/arch/arm/irqBypass.ts) beside the default kvm-vfio; 'bypass-no-bracket' is the same with the bypass
 * manager's stop/start bracket left out, for the checker. 'vlpi-no-pending-transfer' is the default design with
 * kvm_vgic_v4_set_forwarding as before "KVM: arm64: GICv4.1: Restore VLPI pending state to physical side"
 * (12df7429213a, Linux 5.13): a pending_latch the vGIC holds when the LPI becomes a vLPI stays in the vGIC
 * (src/check/msiRace.ts). 'vlpi-map-invalidates-its-cache' is the default design with kvm_vgic_v4_set_forwarding
 * invalidating the vITS translation cache once irq->hw is set, which its own vgic_its_resolve_lpi may have filled
 * (not upstream: the checker's fix of the stale cached translation, docs/CHECKER.md "The vITS translation cache").
 */
import type { KvmDeviceOps } from '../device.js';
import { kvmVfioOps } from '../vfio.js';
import { kvmVfioNaiveOps } from './naive/naive.js';
import { kvmVfioRfcV1Ops } from './rfcV1/kvmVfioArm.js';

export type ForwardingVariant =
  | 'protocol'
  | 'naive'
  | 'rfc-v1'
  | 'bypass'
  | 'bypass-no-bracket'
  | 'vlpi-no-pending-transfer'
  | 'vlpi-map-invalidates-its-cache';

export const FORWARDING_VARIANTS: readonly ForwardingVariant[] = [
  'protocol',
  'naive',
  'rfc-v1',
  'bypass',
  'bypass-no-bracket',
  'vlpi-no-pending-transfer',
  'vlpi-map-invalidates-its-cache',
];

/** What a flavour changes in the IRQ bypass: producers for vfio-platform triggers, and the manager's bracket. */
export function irqBypassOptionsFor(variant: ForwardingVariant): { producers: boolean; bracket: boolean } {
  return {
    producers: variant === 'bypass' || variant === 'bypass-no-bracket',
    bracket: variant !== 'bypass-no-bracket',
  };
}

/** The KVM_DEV_TYPE_VFIO ops of a flavour. */
export function kvmVfioOpsFor(variant: ForwardingVariant): KvmDeviceOps {
  switch (variant) {
    case 'protocol':
    case 'bypass':
    case 'bypass-no-bracket':
    case 'vlpi-no-pending-transfer':
    case 'vlpi-map-invalidates-its-cache':
      return kvmVfioOps;
    case 'naive':
      return kvmVfioNaiveOps;
    case 'rfc-v1':
      return kvmVfioRfcV1Ops;
  }
}
