/**
 * The ioctls that create an fd, and where the caller finds it: what a raw `ioctl` step's `as` binds (docs/CLI.md
 * "Raw ioctls"). KVM_CREATE_VM and KVM_CREATE_VCPU return it; KVM_CREATE_DEVICE returns 0 and writes it into
 * kvm_create_device.fd (virt/kvm/kvm_main.c kvm_ioctl_create_device).
 */
import { KVM_CREATE_DEVICE, KVM_CREATE_VCPU, KVM_CREATE_VM } from '../abi/kvm.js';

export type CreatedFdAt = 'return' | 'kvm_create_device.fd';

const CREATES_FD: ReadonlyMap<number, CreatedFdAt> = new Map([
  [KVM_CREATE_VM >>> 0, 'return'],
  [KVM_CREATE_VCPU >>> 0, 'return'],
  [KVM_CREATE_DEVICE >>> 0, 'kvm_create_device.fd'],
]);

/** Where `request` leaves the fd it creates, or undefined when it creates none. */
export function createdFdAt(request: number): CreatedFdAt | undefined {
  return CREATES_FD.get(request >>> 0);
}

export const FD_CREATING_REQUESTS = 'KVM_CREATE_VM, KVM_CREATE_VCPU (their result), KVM_CREATE_DEVICE (its fd member)';
