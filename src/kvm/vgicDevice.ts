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
import { type Boundary, Frame, returnNow } from '../sim/frame.js';
import { mutexLock } from '../sim/locks.js';
import { markShared } from '../sim/snapshot.js';
import { op } from '../sim/task.js';
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

/** vgic_set_common_attr / vgic_get_common_attr: copy in (set), then kvm->lock for the groups that take it. */
const CA_START = 0;
/** kvm->lock held: the access, unlock, copy out (get). */
const CA_LOCKED = 1;

/** vgic_set_common_attr and vgic_get_common_attr (Linux 6.1) as a frame: GRP_ADDR, GRP_NR_IRQS, GRP_CTRL. */
class VgicCommonAttr extends Frame<number> {
  /** The value copied in (a set's address or SPI count). */
  private val = 0n;
  /** GRP_ADDR: the base slot. */
  private which: 'dist' | 'cpu' = 'dist';
  private size = 0n;

  constructor(
    private readonly dev: KvmDevice,
    private readonly attr: KvmDeviceAttr,
    private readonly write: boolean,
  ) {
    super();
  }

  protected step(): Boundary {
    const vm = vmOf(this.dev);
    const mem = vm.kernel.currentUser().mem;
    const attr = this.attr;
    if (this.pc !== CA_START) {
      let r: number;
      try {
        r = this.write ? this.setLocked() : this.getLocked();
      } finally {
        vm.lock.unlock();
      }
      if (r < 0) throw errnoFromReturn(r, 'KVM_DEV_ARM_VGIC_GRP_NR_IRQS');
      if (!this.write) mem.writeU64(attr.addr, this.val);
      return this.return_(0);
    }
    switch (attr.group) {
      case KVM_DEV_ARM_VGIC_GRP_ADDR: {
        if (this.write) this.val = mem.readU64(attr.addr);
        // kvm_vgic_addr reads the address even on a get for a V3 redistributor region (the index is in it)
        else if (attr.attr === BigInt(KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION)) mem.readU64(attr.addr);
        const { which, size } = addrSlot(attr.attr);
        this.which = which;
        this.size = size;
        break;
      }
      case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
        if (!this.write) {
          mem.writeU32(attr.addr, vgicOf(this.dev).nrSpis + 32);
          return this.return_(0);
        }
        this.val = BigInt(mem.readU32(attr.addr));
        break;
      case KVM_DEV_ARM_VGIC_GRP_CTRL:
        if (!this.write) throw errno('ENXIO', `vGIC-v2 cannot get attribute group ${attr.group}`);
        if (attr.attr !== BigInt(KVM_DEV_ARM_VGIC_CTRL_INIT)) throw errno('ENXIO', `vGIC ctrl attr ${attr.attr}`);
        break;
      default:
        if (this.write) throw errno('ENXIO', `vGIC-v2 has no attribute group ${attr.group}`);
        throw errno('ENXIO', `vGIC-v2 cannot get attribute group ${attr.group}`);
    }
    this.pc = CA_LOCKED;
    return this.call(mutexLock(vm.lock));
  }

  /** vgic_set_common_attr under kvm->lock: kvm_vgic_addr's set, kvm->arch.vgic.nr_spis, vgic_init. */
  private setLocked(): number {
    const vm = vmOf(this.dev);
    switch (this.attr.group) {
      case KVM_DEV_ARM_VGIC_GRP_ADDR: {
        const cur = this.which === 'dist' ? vm.vgicDistBase : vm.vgicCpuBase;
        vgicCheckIorange(vm.ipaBits, cur !== VGIC_ADDR_UNDEF, this.val, SZ_4K, this.size, this.which);
        if (this.which === 'dist') vm.vgicDistBase = this.val;
        else vm.vgicCpuBase = this.val;
        return 0;
      }
      case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
        return vgicOf(this.dev).kvmVgicSetNrIrqs(Number(this.val));
      default:
        vgicInitLocked(vm, vgicOf(this.dev));
        return 0;
    }
  }

  /** vgic_get_common_attr under kvm->lock: kvm_vgic_addr's get. */
  private getLocked(): number {
    const vm = vmOf(this.dev);
    this.val = this.which === 'dist' ? vm.vgicDistBase : vm.vgicCpuBase;
    return 0;
  }
}

/** vgic_v2_attr_regs_access: parse, copy in (a write), then kvm->lock. */
const RA_START = 0;
/** kvm->lock held: vgic_init, lock_all_vcpus. */
const RA_LOCKED = 1;
/** The register access (kvm->lock released), then copy out (a read). */
const RA_ACCESS = 2;

/**
 * vgic_v2_attr_regs_access (Linux 6.1) as a frame: parse the attr (EINVAL), get_user the value of a write (EFAULT),
 * then under kvm->lock vgic_init and lock_all_vcpus (EBUSY: a vCPU is inside KVM_RUN); the register access is a step
 * of its own, charged as one emulated access.
 */
class VgicV2AttrRegsAccess extends Frame<number> {
  private vcpuIdx = 0;
  private offset = 0;
  private val = 0;

  constructor(
    private readonly dev: KvmDevice,
    private readonly attr: KvmDeviceAttr,
    private readonly write: boolean,
  ) {
    super();
  }

  protected step(): Boundary {
    const vm = vmOf(this.dev);
    const attr = this.attr;
    switch (this.pc) {
      case RA_START: {
        const { vcpuIdx, offset } = parseRegAttr(vm, attr);
        this.vcpuIdx = vcpuIdx;
        this.offset = offset;
        this.val = this.write ? vm.kernel.currentUser().mem.readU32(attr.addr) : 0;
        this.pc = RA_LOCKED;
        return this.call(mutexLock(vm.lock));
      }
      case RA_LOCKED:
        try {
          vgicInitLocked(vm, vgicOf(this.dev));
          // lock_all_vcpus: a vCPU inside KVM_RUN holds its mutex
          if (vm.vcpus.some((v) => v.inRun)) throw errno('EBUSY', 'vGIC regs: a vCPU is running');
        } finally {
          vm.lock.unlock();
        }
        this.pc = RA_ACCESS;
        return this.yield_(op(C_VGIC_MMIO, vm.oid));
      default: {
        const vc = vgicOf(this.dev).vcpu(this.vcpuIdx);
        const v = vgicV2RegsUaccess(vc, attr.group, this.offset, this.write, this.val);
        if (!this.write) vm.kernel.currentUser().mem.writeU32(attr.addr, v);
        return this.return_(0);
      }
    }
  }
}

function isRegsGroup(group: number): boolean {
  return group === KVM_DEV_ARM_VGIC_GRP_DIST_REGS || group === KVM_DEV_ARM_VGIC_GRP_CPU_REGS;
}

/** vgic_v2_set_attr: the register groups, else vgic_set_common_attr. */
function setAttr(dev: KvmDevice, attr: KvmDeviceAttr): Frame<number> {
  return isRegsGroup(attr.group) ? new VgicV2AttrRegsAccess(dev, attr, true) : new VgicCommonAttr(dev, attr, true);
}

/** vgic_v2_get_attr: the register groups, else vgic_get_common_attr. */
function getAttr(dev: KvmDevice, attr: KvmDeviceAttr): Frame<number> {
  return isRegsGroup(attr.group) ? new VgicV2AttrRegsAccess(dev, attr, false) : new VgicCommonAttr(dev, attr, false);
}

/** vgic_v2_has_attr (it takes no lock). */
function hasAttr(dev: KvmDevice, attr: KvmDeviceAttr): Frame<number> {
  switch (attr.group) {
    case KVM_DEV_ARM_VGIC_GRP_ADDR:
      if (attr.attr === BigInt(KVM_VGIC_V2_ADDR_TYPE_DIST) || attr.attr === BigInt(KVM_VGIC_V2_ADDR_TYPE_CPU))
        return returnNow(0);
      break;
    case KVM_DEV_ARM_VGIC_GRP_DIST_REGS:
    case KVM_DEV_ARM_VGIC_GRP_CPU_REGS: {
      // vgic_v2_has_attr_regs
      const { offset } = parseRegAttr(vmOf(dev), attr);
      if (vgicV2HasRegister(vgicOf(dev), attr.group, offset)) return returnNow(0);
      break;
    }
    case KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
      return returnNow(0);
    case KVM_DEV_ARM_VGIC_GRP_CTRL:
      if (attr.attr === BigInt(KVM_DEV_ARM_VGIC_CTRL_INIT)) return returnNow(0);
      break;
  }
  throw errno('ENXIO', `vGIC-v2 does not have attribute ${attr.group}/${attr.attr}`);
}

export const vgicV2DeviceOps: KvmDeviceOps = markShared({
  name: 'kvm-arm-vgic-v2',
  /** vgic_create → kvm_vgic_create (called with kvm->lock held). */
  create(dev: KvmDevice, _type: number): Frame {
    const vm = dev.vm;
    if (vm.vgic !== null) throw errno('EEXIST', 'the VM already has an in-kernel irqchip');
    if (vm.vcpus.some((v) => v.hasRunOnce)) throw errno('EBUSY', 'a vCPU has already run');
    vm.maxVcpus = VGIC_V2_MAX_CPUS;
    if (vm.vcpus.length > vm.maxVcpus) throw errno('E2BIG', `a GICv2 VM has at most ${VGIC_V2_MAX_CPUS} vCPUs`);
    dev.private_ = vm.createVgic();
    return returnNow(undefined);
  },
  /** vgic_destroy: kfree(dev); the vGIC state itself goes with kvm_arch_destroy_vm. */
  destroy(_dev: KvmDevice): Frame {
    return returnNow(undefined);
  },
  setAttr,
  getAttr,
  hasAttr,
});
