// Shared set-up for the KVM tests: a host kernel with its IRQ layer and KVM, a VMM process, and ioctl helpers that
// lay every struct out byte by byte in the process's memory (as a VMM would).
export { errnoOf } from '../abi/errno.js';

import {
  KVM_ARM_IRQ_TYPE_SPI,
  KVM_ARM_TARGET_GENERIC_V8,
  KVM_ARM_VCPU_INIT,
  KVM_CREATE_DEVICE,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_GET_DEVICE_ATTR,
  KVM_HAS_DEVICE_ATTR,
  KVM_IRQ_LINE,
  KVM_IRQFD,
  KVM_SET_DEVICE_ATTR,
  KVM_VGIC_V2_ADDR_TYPE_CPU,
  KVM_VGIC_V2_ADDR_TYPE_DIST,
  kvmArmIrqLineEncode,
  kvmCreateDevice,
  kvmDeviceAttr,
  kvmIrqfd,
  kvmIrqLevel,
  kvmVcpuInit,
} from '../abi/kvm.js';
import { bootHostIrq, type HostIrq } from '../host/irq/boot.js';
import { Kernel } from '../host/kernel.js';
import type { Process } from '../host/process.js';
import { DefaultGuest, type DefaultGuestOptions, type GuestFactory } from './guest.js';
import { Kvm } from './kvm.js';

export const DIST_BASE = 0x0800_0000;
export const CPU_BASE = 0x0801_0000;

export interface KvmSetup {
  kernel: Kernel;
  host: HostIrq;
  kvm: Kvm;
  p: Process;
  guest: DefaultGuest;
  kvmFd: number;
}

export function setup(
  opts: { cpus?: number; guest?: DefaultGuestOptions; factory?: GuestFactory; nrLrs?: number } = {},
): KvmSetup {
  const kernel = new Kernel({ cpus: opts.cpus ?? 2 });
  const host = bootHostIrq(kernel.engine, { nrLrs: opts.nrLrs });
  const guest = new DefaultGuest(opts.guest);
  const kvm = new Kvm(kernel, host, { guestFactory: opts.factory ?? guest });
  const p = kernel.process();
  const kvmFd = p.open('/dev/kvm');
  return { kernel, host, kvm, p, guest, kvmFd };
}

export function place(p: Process, bytes: Uint8Array): number {
  return p.mem.allocBytes(bytes);
}

export function createVm(s: KvmSetup, type = 0): number {
  return s.p.ioctl(s.kvmFd, KVM_CREATE_VM, type);
}

export function createDevice(p: Process, vm: number, type: number, flags = 0): number {
  const a = place(p, kvmCreateDevice.encode({ type, fd: 0, flags }));
  p.ioctl(vm, KVM_CREATE_DEVICE, a);
  return kvmCreateDevice.read(p.mem.view(a, kvmCreateDevice.size)).fd;
}

/** A kvm_device_attr whose addr points to `payload` (or to the given raw address). */
export function attr(p: Process, group: number, a: bigint | number, addr: number | bigint): number {
  return place(p, kvmDeviceAttr.encode({ flags: 0, group, attr: BigInt(a), addr: BigInt(addr) }));
}

export function u64Buf(p: Process, v: bigint): number {
  const a = p.mem.alloc(8);
  p.mem.writeU64(a, v);
  return a;
}

export function u32Buf(p: Process, v: number): number {
  const a = p.mem.alloc(4);
  p.mem.writeU32(a, v);
  return a;
}

export function setAttr(p: Process, dev: number, group: number, a: bigint | number, addr: number | bigint): number {
  return p.ioctl(dev, KVM_SET_DEVICE_ATTR, attr(p, group, a, addr));
}
export function getAttr(p: Process, dev: number, group: number, a: bigint | number, addr: number | bigint): number {
  return p.ioctl(dev, KVM_GET_DEVICE_ATTR, attr(p, group, a, addr));
}
export function hasAttr(p: Process, dev: number, group: number, a: bigint | number): number {
  return p.ioctl(dev, KVM_HAS_DEVICE_ATTR, attr(p, group, a, 0));
}

export function vcpuInit(
  p: Process,
  vcpu: number,
  target = KVM_ARM_TARGET_GENERIC_V8,
  features: number[] = [],
): number {
  const f = [0, 0, 0, 0, 0, 0, 0];
  features.forEach((v, i) => {
    f[i] = v;
  });
  return p.ioctl(vcpu, KVM_ARM_VCPU_INIT, place(p, kvmVcpuInit.encode({ target, features: f })));
}

export interface Vm {
  vm: number;
  vgic: number;
  vcpus: number[];
}

/** A VM as QEMU builds one: vCPUs, a vGIC-v2 with its addresses, vCPU init, CTRL_INIT. */
export function buildVm(s: KvmSetup, nrVcpus = 1): Vm {
  const { p } = s;
  const vm = createVm(s);
  const vcpus: number[] = [];
  for (let i = 0; i < nrVcpus; i++) vcpus.push(p.ioctl(vm, KVM_CREATE_VCPU, i));
  const vgic = createDevice(p, vm, KVM_DEV_TYPE_ARM_VGIC_V2);
  setAttr(p, vgic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, u64Buf(p, BigInt(DIST_BASE)));
  setAttr(p, vgic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU, u64Buf(p, BigInt(CPU_BASE)));
  for (const v of vcpus) vcpuInit(p, v);
  setAttr(p, vgic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, 0);
  return { vm, vgic, vcpus };
}

export function irqLine(p: Process, vm: number, irq: number, level: number): number {
  return p.ioctl(vm, KVM_IRQ_LINE, place(p, kvmIrqLevel.encode({ irq, level })));
}

export function spiLine(p: Process, vm: number, intid: number, level: number): number {
  return irqLine(p, vm, kvmArmIrqLineEncode({ type: KVM_ARM_IRQ_TYPE_SPI, vcpu: 0, num: intid }), level);
}

export function irqfd(p: Process, vm: number, fd: number, gsi: number, flags = 0, resamplefd = 0): number {
  return p.ioctl(vm, KVM_IRQFD, place(p, kvmIrqfd.encode({ fd, gsi, flags, resamplefd })));
}

export function writeEventfd(p: Process, fd: number, v = 1n): void {
  const a = p.mem.alloc(8);
  p.mem.writeU64(a, v);
  p.write(fd, a, 8);
}

export function readEventfd(p: Process, fd: number): bigint {
  const a = p.mem.alloc(8);
  p.read(fd, a, 8);
  return p.mem.readU64(a);
}
