/**
 * The vITS KVM device (KVM_DEV_TYPE_ARM_VGIC_ITS), after arch/arm64/kvm/vgic/vgic-its.c of Linux 6.1
 * (vgic_its_create, vgic_its_destroy, vgic_its_{set,get,has}_attr, vgic_its_ctrl, vgic_its_attr_regs_access,
 * vgic_its_has_attr_regs, vgic_register_its_iodev) and Documentation/virt/kvm/devices/arm-vgic-its.rst.
 *
 * Groups: ADDR (KVM_VGIC_ITS_ADDR_TYPE, the 128 KiB frame, 64 KiB aligned; any other type is ENODEV), CTRL (INIT,
 * RESET, SAVE_TABLES, RESTORE_TABLES; an unknown control attribute does nothing and returns 0, as vgic_its_ctrl's
 * switch has no default), ITS_REGS (the GITS_* registers by offset: 64-bit registers as u64, the others as u32 in a
 * u64). Errnos and their order are the kernel's. Accesses that take kvm->lock are frames.
 *
 * Deviation: the model keeps the vGIC's LPI state (struct vgic_dist's propbaser, LPI list, translation cache) in the
 * vGIC object the vGIC device creates; Linux's vgic_dist always exists, so it accepts an ITS before the vGIC. Here an
 * ITS needs an in-kernel vGIC first (ENODEV otherwise), which QEMU's order (GIC, then ITS) always satisfies.
 */
import { errno } from '../abi/errno.js';
import {
  KVM_DEV_ARM_ITS_CTRL_RESET,
  KVM_DEV_ARM_ITS_RESTORE_TABLES,
  KVM_DEV_ARM_ITS_SAVE_TABLES,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_ARM_VGIC_GRP_ITS_REGS,
  KVM_VGIC_ITS_ADDR_TYPE,
  KVM_VGIC_V3_ITS_SIZE,
  type KvmDeviceAttr,
} from '../abi/kvm.js';
import { errnoFromReturn } from '../host/file.js';
import { type Boundary, Frame, returnNow } from '../sim/frame.js';
import { mutexLock } from '../sim/locks.js';
import { markShared } from '../sim/snapshot.js';
import { op } from '../sim/task.js';
import type { KvmDevice, KvmDeviceOps } from './device.js';
import { C_VGIC_MMIO } from './vgic/vgic.js';
import { vgicCheckIorange } from './vgic/vgicIorange.js';
import { VGIC_ADDR_UNDEF, VgicIts, vgicItsFreeAll } from './vgic/vgicIts.js';
import { GITS_BASER_TYPE_COLLECTION, GITS_BASER_TYPE_DEVICE, GITS_BASER_TYPE_SHIFT } from './vgic/vgicItsCommands.js';
import {
  INITIAL_BASER_VALUE,
  INITIAL_PROPBASER_VALUE,
  vgicItsCommitV0,
  vgicItsFindRegion,
  vgicItsRegRead,
  vgicItsReset,
  vgicItsUaccessAlign,
  vgicItsUaccessLen,
  vgicItsUaccessWrite,
} from './vgic/vgicItsMmio.js';
import { vgicItsRestoreTablesV0, vgicItsSaveTablesV0 } from './vgic/vgicItsTables.js';
import { vgicLpiTranslationCacheInit } from './vgic/vgicLpi.js';
import { VgicV4Init } from './vgic/vgicV4.js';
import { vgicV4FlushOps } from './vgic/vgicV4Ops.js';

const SZ_64K = 0x1_0000n;
/** The access's first step: copy-in and the checks before any lock. */
const PC_START = 0;
/** GRP_ADDR set: the base is registered (vgic_register_its_iodev). */
const PC_ADDR = 1;
/** kvm->lock is held. */
const PC_LOCKED = 2;
/** The locked access (vgic_its_ctrl, vgic_its_attr_regs_access), then unlock and copy-out. */
const PC_ACCESS = 3;
/** The access's host calls on forwarded vLPIs returned (vgicV4Ops.ts), still under kvm->lock. */
const PC_V4_OPS = 4;

/** vgic_its_set_attr / vgic_its_get_attr as a frame: GRP_ADDR without a lock, CTRL (but INIT) and ITS_REGS under kvm->lock. */
class VgicItsAttr extends Frame<number> {
  private held = false;
  private val = 0n;
  private ret = 0;
  private readonly its: VgicIts;

  constructor(
    private readonly dev: KvmDevice,
    private readonly attr: KvmDeviceAttr,
    private readonly isWrite: boolean,
  ) {
    super();
    this.its = dev.privateAs(VgicIts);
  }

  protected step(): Boundary {
    const vm = this.dev.vm;
    const its = this.its;
    const { group, attr: a, addr } = this.attr;
    switch (this.pc) {
      case PC_START:
        return this.start();
      case PC_ADDR:
        its.base = this.val;
        return this.return_(0);
      case PC_LOCKED:
        this.held = true;
        this.pc = PC_ACCESS;
        return this.yield_(op(C_VGIC_MMIO, vm.oid, its.oid));
      case PC_ACCESS: {
        this.ret = group === KVM_DEV_ARM_VGIC_GRP_CTRL ? this.ctrl(a) : this.regs(a);
        const ops = vgicV4FlushOps(vm);
        this.pc = PC_V4_OPS;
        if (ops !== null) return this.call(ops);
        return this.step();
      }
      default: {
        this.unlock();
        if (this.ret < 0) throw errnoFromReturn(this.ret, 'vgic-its');
        if (!this.isWrite) vm.kernel.currentUser().mem.writeU64(addr, this.val); // put_user
        return this.return_(0);
      }
    }
  }

  private start(): Boundary {
    const vm = this.dev.vm;
    const its = this.its;
    const { group, attr: a, addr } = this.attr;
    const mem = vm.kernel.currentUser().mem;
    switch (group) {
      case KVM_DEV_ARM_VGIC_GRP_ADDR:
        if (a !== BigInt(KVM_VGIC_ITS_ADDR_TYPE)) throw errno('ENODEV', `vITS has no address type ${a}`);
        if (!this.isWrite) {
          mem.writeU64(addr, its.base);
          return this.return_(0);
        }
        this.val = mem.readU64(addr);
        // vgic_check_iorange, then vgic_register_its_iodev (its EBUSY for a set base cannot follow EEXIST)
        vgicCheckIorange(
          vm.ipaBits,
          its.base !== VGIC_ADDR_UNDEF,
          this.val,
          SZ_64K,
          BigInt(KVM_VGIC_V3_ITS_SIZE),
          'ITS',
        );
        this.pc = PC_ADDR;
        return this.yield_(op(C_VGIC_MMIO, vm.oid, its.oid));
      case KVM_DEV_ARM_VGIC_GRP_CTRL:
        if (!this.isWrite) break;
        if (a === BigInt(KVM_DEV_ARM_VGIC_CTRL_INIT)) return this.return_(0); // nothing to do
        this.pc = PC_LOCKED;
        return this.call(mutexLock(vm.lock));
      case KVM_DEV_ARM_VGIC_GRP_ITS_REGS:
        if (this.isWrite) this.val = mem.readU64(addr); // get_user: EFAULT first
        if ((a & vgicItsUaccessAlign(a)) !== 0n)
          throw errno('EINVAL', `GITS register offset 0x${a.toString(16)} is misaligned`);
        this.pc = PC_LOCKED;
        return this.call(mutexLock(vm.lock));
    }
    throw errno('ENXIO', `vITS cannot ${this.isWrite ? 'set' : 'get'} attribute group ${group}`);
  }

  /** vgic_its_ctrl under kvm->lock and its_lock: lock_all_vcpus (EBUSY), then the action. */
  private ctrl(a: bigint): number {
    if (this.dev.vm.vcpus.some((v) => v.inRun)) return this.busy();
    switch (a) {
      case BigInt(KVM_DEV_ARM_ITS_CTRL_RESET):
        vgicItsReset(this.its);
        return 0;
      case BigInt(KVM_DEV_ARM_ITS_SAVE_TABLES):
        return vgicItsSaveTablesV0(this.its);
      case BigInt(KVM_DEV_ARM_ITS_RESTORE_TABLES):
        return vgicItsRestoreTablesV0(this.its);
      default:
        return 0;
    }
  }

  /** vgic_its_attr_regs_access under kvm->lock: ENXIO without a base or a register there, EBUSY with a vCPU running. */
  private regs(a: bigint): number {
    const its = this.its;
    if (its.base === VGIC_ADDR_UNDEF) throw errno('ENXIO', 'GITS registers before the ITS base address is set');
    const r = a < 0x1_0000n ? vgicItsFindRegion(Number(a)) : null;
    if (r === null) throw errno('ENXIO', `no GITS register at offset 0x${a.toString(16)}`);
    if (this.dev.vm.vcpus.some((v) => v.inRun)) return this.busy();
    const len = vgicItsUaccessLen(r);
    if (this.isWrite) return vgicItsUaccessWrite(its, r, Number(a), len, this.val);
    this.val = vgicItsRegRead(its, r, Number(a), len);
    return 0;
  }

  private busy(): never {
    throw errno('EBUSY', 'vITS: a vCPU is running (lock_all_vcpus failed)');
  }

  private unlock(): void {
    if (!this.held) return;
    this.held = false;
    this.dev.vm.lock.unlock();
  }

  protected override unwind(): void {
    this.unlock();
  }
}

/** vgic_its_has_attr (vgic_its_has_attr_regs for ITS_REGS: EINVAL misaligned, ENXIO no register). */
/** vgic_its_create: with the vGIC initialised, vgic_v4_init first. */
const IC_START = 0;
/** vgic_v4_init returned: the translation cache, then the ITS. */
const IC_V4_INIT = 1;

/**
 * vgic_its_create as a frame: with the vGIC already initialised the translation cache is set up now (else at
 * vgic_init); the VM gets has_its and msis_require_devid, the tables their initial attributes, PROPBASER its initial
 * value.
 */
class VgicItsCreate extends Frame {
  constructor(private readonly dev: KvmDevice) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const vm = this.dev.vm;
    const vgic = vm.vgic;
    if (this.pc === IC_START) {
      if (vgic === null)
        throw errno('ENODEV', 'the model needs the in-kernel vGIC before an ITS (see vgicItsDevice.ts)');
      if (vgic.initialized) {
        this.pc = IC_V4_INIT;
        return this.call(new VgicV4Init(vm));
      }
    } else {
      if ((sent as number) < 0) throw errnoFromReturn(sent as number, 'vgic_v4_init');
      vgicLpiTranslationCacheInit(vgic!);
    }
    const its = new VgicIts(vm, vm.kernel.engine.newOid('vgic_its'));
    vgic!.msisRequireDevid = true;
    vgic!.hasIts = true;
    its.baserDeviceTable = INITIAL_BASER_VALUE | (GITS_BASER_TYPE_DEVICE << GITS_BASER_TYPE_SHIFT);
    its.baserCollTable = INITIAL_BASER_VALUE | (GITS_BASER_TYPE_COLLECTION << GITS_BASER_TYPE_SHIFT);
    vgic!.propbaser = INITIAL_PROPBASER_VALUE;
    vgicItsCommitV0(its); // vgic_its_set_abi(its, NR_ITS_ABIS - 1)
    vm.vgicIts.push(its);
    this.dev.private_ = its;
    return this.return_(undefined);
  }
}

/** vgic_its_destroy: free the ITS's tables. */
const ID_START = 0;
/** The queued host calls (its_free_ite's its_unmap_vlpi) ran: the frame leaves the bus. */
const ID_FLUSHED = 1;

/**
 * vgic_its_destroy as a frame: its devices and collections go (the LPI references with them, its_free_ite unmapping
 * a vLPI still forwarded); the frame leaves the bus.
 */
class VgicItsDestroy extends Frame {
  constructor(private readonly dev: KvmDevice) {
    super();
  }

  protected step(): Boundary {
    const its = this.dev.privateAs(VgicIts);
    const vm = this.dev.vm;
    if (this.pc === ID_START) {
      vgicItsFreeAll(its);
      const ops = vgicV4FlushOps(vm);
      if (ops !== null) {
        this.pc = ID_FLUSHED;
        return this.call(ops);
      }
    }
    vm.vgicIts.splice(vm.vgicIts.indexOf(its), 1);
    return this.return_(undefined);
  }
}

function hasAttr(_dev: KvmDevice, attr: KvmDeviceAttr): Frame<number> {
  const a = attr.attr;
  switch (attr.group) {
    case KVM_DEV_ARM_VGIC_GRP_ADDR:
      if (a === BigInt(KVM_VGIC_ITS_ADDR_TYPE)) return returnNow(0);
      break;
    case KVM_DEV_ARM_VGIC_GRP_CTRL:
      if (
        a === BigInt(KVM_DEV_ARM_VGIC_CTRL_INIT) ||
        a === BigInt(KVM_DEV_ARM_ITS_CTRL_RESET) ||
        a === BigInt(KVM_DEV_ARM_ITS_SAVE_TABLES) ||
        a === BigInt(KVM_DEV_ARM_ITS_RESTORE_TABLES)
      )
        return returnNow(0);
      break;
    case KVM_DEV_ARM_VGIC_GRP_ITS_REGS:
      if ((a & vgicItsUaccessAlign(a)) !== 0n)
        throw errno('EINVAL', `GITS register offset 0x${a.toString(16)} is misaligned`);
      if (a < 0x1_0000n && vgicItsFindRegion(Number(a)) !== null) return returnNow(0);
      break;
  }
  throw errno('ENXIO', `vITS does not have attribute ${attr.group}/${a}`);
}

export const vgicItsDeviceOps: KvmDeviceOps = markShared({
  name: 'kvm-arm-vgic-its',
  create: (dev) => new VgicItsCreate(dev),
  destroy: (dev) => new VgicItsDestroy(dev),
  setAttr: (dev, attr) => new VgicItsAttr(dev, attr, true),
  getAttr: (dev, attr) => new VgicItsAttr(dev, attr, false),
  hasAttr,
});
