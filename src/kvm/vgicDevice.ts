/**
 * The vGIC-v2 KVM device (KVM_DEV_TYPE_ARM_VGIC_V2), after arch/arm64/kvm/vgic/vgic-kvm-device.c (vgic_create,
 * vgic_v2_{set,get,has}_attr, vgic_{set,get}_common_attr, kvm_vgic_addr, vgic_check_iorange) and vgic-init.c
 * (kvm_vgic_create, vgic_init).
 *
 * Modelled: GRP_ADDR (DIST/CPU base), GRP_NR_IRQS, GRP_CTRL/CTRL_INIT, and GRP_DIST_REGS / GRP_CPU_REGS, whose
 * registers (userspace's view of the distributor and of each vCPU's CPU interface) are in vgic/vgicUaccessV2.ts.
 * Errnos and their order follow Linux 6.1 (docs/ABI.md §8.1 says where mainline differs).
 */
import { errno } from '../abi/errno.js';
import {
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CPU_REGS,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
  KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
  KVM_VGIC_V2_ADDR_TYPE_CPU,
  KVM_VGIC_V2_ADDR_TYPE_DIST,
  KVM_VGIC_V2_CPU_SIZE,
  KVM_VGIC_V2_DIST_SIZE,
  KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION,
  type KvmDeviceAttr,
  kvmDevArmVgicAttrCpuid,
  kvmDevArmVgicAttrOffset,
} from '../abi/kvm.js';
import { errnoFromReturn } from '../host/file.js';
import { mutexLock } from '../sim/locks.js';
import { markShared } from '../sim/snapshot.js';
import { op, type TaskGen } from '../sim/task.js';
import type { KvmDevice, KvmDeviceOps } from './device.js';
import { C_VGIC_MMIO, VGIC_V2_MAX_CPUS, Vgic } from './vgic/vgic.js';
import { vgicCheckIorange } from './vgic/vgicIorange.js';
import { vgicV2HasRegister, vgicV2RegsUaccess } from './vgic/vgicUaccessV2.js';
import { type KvmVm, VGIC_ADDR_UNDEF } from './vm.js';

const SZ_4K = 0x1000n;

function vmOf(dev: KvmDevice): KvmVm {
  return dev.vm;
}

function vgicOf(dev: KvmDevice): Vgic {
  return dev.privateAs(Vgic);
}

/** kvm_vgic_addr's type switch: the base slot, size; ENODEV (reported as ENXIO) for another type. */
function addrSlot(type: bigint): { which: 'dist' | 'cpu'; size: bigint } {
  if (type === BigInt(KVM_VGIC_V2_ADDR_TYPE_DIST)) return { which: 'dist', size: BigInt(KVM_VGIC_V2_DIST_SIZE) };
  if (type === BigInt(KVM_VGIC_V2_ADDR_TYPE_CPU)) return { which: 'cpu', size: BigInt(KVM_VGIC_V2_CPU_SIZE) };
  // kvm_vgic_addr returns -ENODEV; vgic_{set,get}_common_attr turn it into -ENXIO
  throw errno('ENXIO', `vGIC-v2 has no address type ${type}`);
}

/** vgic_v2_parse_attr (Linux 6.1): the cpuid of the attr must name an online vCPU, else EINVAL. */
function parseRegAttr(vm: KvmVm, attr: KvmDeviceAttr): { vcpuIdx: number; offset: number } {
  const vcpuIdx = kvmDevArmVgicAttrCpuid(attr.attr);
  if (vcpuIdx >= vm.vcpus.length) throw errno('EINVAL', `vGIC regs: no vCPU ${vcpuIdx}`);
  return { vcpuIdx, offset: kvmDevArmVgicAttrOffset(attr.attr) };
}

/** vgic_init under kvm->lock: 0 if done already; EBUSY while a vCPU is still being created (created != online). */
function vgicInitLocked(vm: KvmVm, vgic: Vgic): void {
  if (vgic.initialized) return;
  if (vm.createdVcpus !== vm.vcpus.length) throw errno('EBUSY', 'a vCPU is still being created');
  const r = vgic.vgicInit();
  if (r < 0) throw errnoFromReturn(r, 'vgic_init');
}

/**
 * vgic_v2_attr_regs_access (Linux 6.1) up to the register access: parse the attr (EINVAL), get_user the value of a
 * write (EFAULT), then under kvm->lock vgic_init and lock_all_vcpus (EBUSY: a vCPU is inside KVM_RUN).
 */
function* regsAccessPrepare(
  dev: KvmDevice,
  attr: KvmDeviceAttr,
  write: boolean,
): TaskGen<{ vcpuIdx: number; offset: number; val: number }> {
  const vm = vmOf(dev);
  const { vcpuIdx, offset } = parseRegAttr(vm, attr);
  const val = write ? vm.kernel.currentUser().mem.readU32(attr.addr) : 0;
  yield* mutexLock(vm.lock);
  try {
    vgicInitLocked(vm, vgicOf(dev));
    // lock_all_vcpus: a vCPU inside KVM_RUN holds its mutex
    if (vm.vcpus.some((v) => v.inRun)) throw errno('EBUSY', 'vGIC regs: a vCPU is running');
  } finally {
    vm.lock.unlock();
  }
  return { vcpuIdx, offset, val };
}

function* setAttr(dev: KvmDevice, attr: KvmDeviceAttr): TaskGen<number> {
  const vm = vmOf(dev);
  const vgic = vgicOf(dev);
  const mem = vm.kernel.currentUser().mem;
  switch (attr.group) {
    case KVM_DEV_ARM_VGIC_GRP_ADDR: {
      const addr = mem.readU64(attr.addr);
      const { which, size } = addrSlot(attr.attr);
      yield* mutexLock(vm.lock);
      try {
        const cur = which === 'dist' ? vm.vgicDistBase : vm.vgicCpuBase;
        vgicCheckIorange(vm.ipaBits, cur !== VGIC_ADDR_UNDEF, addr, SZ_4K, size, which);
        if (which === 'dist') vm.vgicDistBase = addr;
        else vm.vgicCpuBase = addr;
      } finally {
        vm.lock.unlock();
      }
      return 0;
    }
    case KVM_DEV_ARM_VGIC_GRP_NR_IRQS: {
      const val = mem.readU32(attr.addr);
      yield* mutexLock(vm.lock);
      const r = vgic.kvmVgicSetNrIrqs(val);
      vm.lock.unlock();
      if (r < 0) throw errnoFromReturn(r, 'KVM_DEV_ARM_VGIC_GRP_NR_IRQS');
      return 0;
    }
    case KVM_DEV_ARM_VGIC_GRP_CTRL: {
      if (attr.attr !== BigInt(KVM_DEV_ARM_VGIC_CTRL_INIT)) throw errno('ENXIO', `vGIC ctrl attr ${attr.attr}`);
      yield* mutexLock(vm.lock);
      try {
        vgicInitLocked(vm, vgic);
      } finally {
        vm.lock.unlock();
      }
      return 0;
    }
    case KVM_DEV_ARM_VGIC_GRP_DIST_REGS:
    case KVM_DEV_ARM_VGIC_GRP_CPU_REGS: {
      const { vcpuIdx, offset, val } = yield* regsAccessPrepare(dev, attr, true);
      yield op(C_VGIC_MMIO, vm.oid);
      vgicV2RegsUaccess(vgic.vcpu(vcpuIdx), attr.group, offset, true, val);
      return 0;
    }
    default:
      throw errno('ENXIO', `vGIC-v2 has no attribute group ${attr.group}`);
  }
}

function* getAttr(dev: KvmDevice, attr: KvmDeviceAttr): TaskGen<number> {
  const vm = vmOf(dev);
  const vgic = vgicOf(dev);
  const mem = vm.kernel.currentUser().mem;
  switch (attr.group) {
    case KVM_DEV_ARM_VGIC_GRP_ADDR: {
      // kvm_vgic_addr reads the address even on a get for a V3 redistributor region (the index is in it)
      if (attr.attr === BigInt(KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION)) mem.readU64(attr.addr);
      const { which } = addrSlot(attr.attr);
      yield* mutexLock(vm.lock);
      const v = which === 'dist' ? vm.vgicDistBase : vm.vgicCpuBase;
      vm.lock.unlock();
      mem.writeU64(attr.addr, v);
      return 0;
    }
    case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
      mem.writeU32(attr.addr, vgic.nrSpis + 32);
      return 0;
    case KVM_DEV_ARM_VGIC_GRP_DIST_REGS:
    case KVM_DEV_ARM_VGIC_GRP_CPU_REGS: {
      const { vcpuIdx, offset } = yield* regsAccessPrepare(dev, attr, false);
      yield op(C_VGIC_MMIO, vm.oid);
      mem.writeU32(attr.addr, vgicV2RegsUaccess(vgic.vcpu(vcpuIdx), attr.group, offset, false, 0));
      return 0;
    }
    default:
      throw errno('ENXIO', `vGIC-v2 cannot get attribute group ${attr.group}`);
  }
}

function* hasAttr(dev: KvmDevice, attr: KvmDeviceAttr): TaskGen<number> {
  switch (attr.group) {
    case KVM_DEV_ARM_VGIC_GRP_ADDR:
      if (attr.attr === BigInt(KVM_VGIC_V2_ADDR_TYPE_DIST) || attr.attr === BigInt(KVM_VGIC_V2_ADDR_TYPE_CPU)) return 0;
      break;
    case KVM_DEV_ARM_VGIC_GRP_DIST_REGS:
    case KVM_DEV_ARM_VGIC_GRP_CPU_REGS: {
      // vgic_v2_has_attr_regs
      const { offset } = parseRegAttr(vmOf(dev), attr);
      if (vgicV2HasRegister(vgicOf(dev), attr.group, offset)) return 0;
      break;
    }
    case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
      return 0;
    case KVM_DEV_ARM_VGIC_GRP_CTRL:
      if (attr.attr === BigInt(KVM_DEV_ARM_VGIC_CTRL_INIT)) return 0;
      break;
  }
  throw errno('ENXIO', `vGIC-v2 does not have attribute ${attr.group}/${attr.attr}`);
}

export const vgicV2DeviceOps: KvmDeviceOps = markShared({
  name: 'kvm-arm-vgic-v2',
  /** vgic_create → kvm_vgic_create (called with kvm->lock held). */
  *create(dev: KvmDevice, _type: number): TaskGen<void> {
    const vm = dev.vm;
    if (vm.vgic !== null) throw errno('EEXIST', 'the VM already has an in-kernel irqchip');
    if (vm.vcpus.some((v) => v.hasRunOnce)) throw errno('EBUSY', 'a vCPU has already run');
    vm.maxVcpus = VGIC_V2_MAX_CPUS;
    if (vm.vcpus.length > vm.maxVcpus) throw errno('E2BIG', `a GICv2 VM has at most ${VGIC_V2_MAX_CPUS} vCPUs`);
    dev.private_ = vm.createVgic();
  },
  /** vgic_destroy: kfree(dev); the vGIC state itself goes with kvm_arch_destroy_vm. */
  *destroy(_dev: KvmDevice): TaskGen<void> {},
  setAttr,
  getAttr,
  hasAttr,
});
