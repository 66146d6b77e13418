// A GICv3 machine end to end (createHost({ gic: 'v3' })): a VMM of raw ioctls builds a VM with a vGIC-v3
// (KVM_DEV_TYPE_ARM_VGIC_V3, QEMU virt's addresses), the guest runs irq-gic-v3.c (createGuest picks it on a GICv3
// host), and the passed-through device's two lines reach it: the edge line through an irqfd (vfio eventfd →
// irqfd_wakeup → kvm_vgic_inject_irq, a software ICH_LR), the level line forwarded (KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ:
// a HW ICH_LR naming the physical INTID, which the guest's ICC_EOIR1_EL1 / ICC_DIR_EL1 deactivates).
import { describe, expect, it } from 'vitest';
import { errnoOf } from '../../src/abi/errno.js';
import {
  createGuest,
  createHost,
  EFD_NONBLOCK,
  KVM_ARM_PREFERRED_TARGET,
  KVM_ARM_VCPU_INIT,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_DEV_TYPE_ARM_VGIC_V3,
  KVM_RUN,
  KVM_SET_DEVICE_ATTR,
  KVM_VGIC_V3_ADDR_TYPE_DIST,
  KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION,
  kvmDeviceAttr,
  kvmVcpuInit,
  kvmVgicV3RdistRegionAttr,
  type Process,
  vgicV3ListRegisters,
} from '../../src/index.js';
import {
  assignIrq,
  createKvmVfio,
  kvmCreateDevice,
  kvmIrqfd,
  kvmVfioGroupAdd,
  openVfioDevice,
  trigger,
} from '../../src/scenario/vmm.js';
import { DEV, ethernetDevice } from '../fixtures/vfioDevice.js';

const LEVEL = 80; // line 0: forwarded
const EDGE = 81; // line 1: irqfd

function setU64(p: Process, dev: number, group: number, attr: number, value: bigint): void {
  const v = p.mem.alloc(8);
  p.mem.writeU64(v, value);
  const a = p.mem.alloc(kvmDeviceAttr.size);
  kvmDeviceAttr.write(p.mem.view(a, kvmDeviceAttr.size), { flags: 0, group, attr: BigInt(attr), addr: BigInt(v) });
  p.ioctl(dev, KVM_SET_DEVICE_ATTR, a);
}

function v3Machine(eoiMode: 0 | 1) {
  const host = createHost({ gic: 'v3', cpus: 2, devices: [ethernetDevice()] });
  const hw = host.device(DEV);
  const guest = createGuest(host, {
    vcpus: 1,
    eoiMode,
    devices: [
      { device: hw, line: 0, intid: LEVEL },
      { device: hw, line: 1, intid: EDGE },
    ],
  });
  const p = host.process();
  const vm = p.ioctl(p.open('/dev/kvm'), KVM_CREATE_VM, 0);
  const init = p.mem.alloc(kvmVcpuInit.size);
  p.ioctl(vm, KVM_ARM_PREFERRED_TARGET, init);
  const vcpu = p.ioctl(vm, KVM_CREATE_VCPU, 0);
  p.ioctl(vcpu, KVM_ARM_VCPU_INIT, init);
  expect(errnoOf(() => kvmCreateDevice(p, vm, KVM_DEV_TYPE_ARM_VGIC_V2))).toBe('ENODEV');
  const gic = kvmCreateDevice(p, vm, KVM_DEV_TYPE_ARM_VGIC_V3);
  setU64(p, gic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, 0x0800_0000n);
  setU64(
    p,
    gic,
    KVM_DEV_ARM_VGIC_GRP_ADDR,
    KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION,
    kvmVgicV3RdistRegionAttr(1, 0x080a_0000n, 0, 0),
  );
  setU64(p, gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, 0n);
  const dev = openVfioDevice(p, 7, DEV);
  const efd = p.eventfd(0, EFD_NONBLOCK);
  trigger(p, dev.device, 1, efd);
  kvmIrqfd(p, vm, efd, EDGE - 32);
  const lvl = p.eventfd(0, EFD_NONBLOCK);
  trigger(p, dev.device, 0, lvl);
  const kvfio = createKvmVfio(p, vm);
  kvmVfioGroupAdd(p, kvfio, dev.group);
  expect(assignIrq(p, kvfio, dev.device, 0, LEVEL - 32)).toBe(0);
  p.thread('vcpu0', 1).ioctlAsync(vcpu, KVM_RUN, 0);
  host.engine.runUntil(() => guest.booted, 'guest boot');
  host.settle();
  const kvm = host.kvm.vms[0]!;
  return { host, hw, guest, vgic: kvm.vgic!, kvmVcpu: kvm.vcpus[0]! };
}

describe('a GICv3 machine: the vGIC-v3 delivers an irqfd SPI and a forwarded SPI to the irq-gic-v3 guest', () => {
  for (const eoiMode of [0, 1] as const) {
    it(`EOImode ${eoiMode}: irqfd edge SPI (software LR), then the forwarded level SPI (HW LR, the guest deactivates INTID ${LEVEL})`, () => {
      const m = v3Machine(eoiMode);
      expect(m.vgic.isV3).toBe(true);
      expect(m.vgic.vgicGetIrq(LEVEL)!.hw).toBe(true);
      const dist = m.host.irq.gic.distributor;

      m.hw.pulse(1);
      m.host.settle();
      expect(m.guest.devices[1]!.handled).toBe(1);
      expect(m.vgic.vgicGetIrq(EDGE)!.hw).toBe(false);

      m.hw.assert(0);
      const hwLr = () => vgicV3ListRegisters(m.vgic, 0).some((l) => l.hw && l.pintid === LEVEL && l.vintid === LEVEL);
      m.host.engine.runUntil(hwLr, 'a HW list register for the forwarded SPI');
      expect(dist.isActive(LEVEL)).toBe(true); // the host acknowledged it and left it active for the guest
      m.host.engine.runUntil(() => m.guest.devices[0]!.handled === 1, 'forwarded delivery');
      m.host.settle();
      expect(dist.isActive(LEVEL)).toBe(false); // deactivated by the guest through the HW LR, not by the host
      expect(m.vgic.hwLrInactive).toBe(0);
      const st = m.guest.driver.cpuStats[0]!;
      expect([st.eoirWrites, st.dirWrites]).toEqual(eoiMode === 0 ? [2, 0] : [2, 2]);
      expect(vgicV3ListRegisters(m.vgic, 0)).toEqual([]);
      expect(m.host.irq.gic.vif(1).unpredictableCount).toBe(0);
      expect(m.host.checkInvariants()).toEqual([]);
    });
  }
});
