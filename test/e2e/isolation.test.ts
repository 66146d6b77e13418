// Issue 9 part 3: isolation. A second process cannot use the first's fds, cannot open a VFIO group the first holds,
// cannot forward an IRQ of a device whose group its VM does not own; and one VM's forwarding never touches another
// VM's vGIC. Everything goes through the ioctl ABI (src/scenario/vmm.ts), as two QEMU processes would.
import { describe, expect, it } from 'vitest';
import { ErrnoError } from '../../src/abi/errno.js';
import { KVM_RUN } from '../../src/abi/kvm.js';
import { VFIO_DEVICE_GET_INFO, VFIO_GET_API_VERSION } from '../../src/abi/vfio.js';
import { createGuestKernel, type GuestKernel } from '../../src/guest/guestKernel.js';
import type { HostIrqV2 } from '../../src/host/irq/boot.js';
import type { Process } from '../../src/host/process.js';
import type { GuestFactory } from '../../src/kvm/guest.js';
import type { KvmVm } from '../../src/kvm/vm.js';
import { createHost, type Host } from '../../src/machine.js';
import {
  assignIrq,
  createKvmVfio,
  createQemuVm,
  deviceInfo,
  kvmVfioGroupAdd,
  openVfioDevice,
  type QemuVm,
  type VfioDeviceHandle,
  wireIrqfd,
} from '../../src/scenario/vmm.js';

const DEV_A = 'fff51000.ethernet'; // IOMMU group 7, level SPI 80
const DEV_B = 'fff52000.nic'; // IOMMU group 8, level SPI 90

function errnoOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ErrnoError) return e.errno;
    throw e;
  }
  return 'ok';
}

function twoDeviceHost(): Host<HostIrqV2> {
  const host = createHost({
    cpus: 3,
    devices: [
      { name: DEV_A, iommuGroup: 7, irqs: [{ intid: 80, trigger: 'level' }] },
      { name: DEV_B, iommuGroup: 8, irqs: [{ intid: 90, trigger: 'level' }] },
    ],
  });
  host.irq.gic.distributor.setTargets(80, 1 << 1);
  host.irq.gic.distributor.setTargets(90, 1 << 2);
  return host;
}

interface VmmSide {
  p: Process;
  vm: QemuVm;
  dev: VfioDeviceHandle;
  kvfio: number;
  guest: GuestKernel;
  kvmVm: KvmVm;
}

/**
 * Two VMM processes on one host: A runs VM1 (vCPU on CPU 1) with DEV_A forwarded, B runs VM2 (vCPU on CPU 2) with
 * DEV_B forwarded; each guest has the driver of its own device only. Both vCPUs end asleep in WFI.
 */
function twoVms(): { host: Host<HostIrqV2>; a: VmmSide; b: VmmSide } {
  const host = twoDeviceHost();
  const guests: GuestKernel[] = [DEV_A, DEV_B].map((name) =>
    createGuestKernel({
      engine: host.engine,
      gic: host.irq.gic,
      vcpus: 1,
      name: name === DEV_A ? 'vm1' : 'vm2',
      devices: [{ device: host.device(name), line: 0, handlerCycles: 1000 }],
    }),
  );
  const factory: GuestFactory = {
    createGuest: (env) => guests[host.kvm.vms.indexOf(env.vm)]!.createGuest(env),
  };
  host.kvm.guestFactory = factory;
  const side = (name: string, group: number, intid: number, cpu: number, i: number): VmmSide => {
    const p = host.process();
    const vm = createQemuVm(p, { vcpus: 1, nrIrqs: 256 });
    const kvmVm = host.kvm.vms[i]!;
    const dev = openVfioDevice(p, group, name);
    const kvfio = createKvmVfio(p, vm.vm);
    kvmVfioGroupAdd(p, kvfio, dev.group);
    wireIrqfd(p, vm.vm, dev.device, 0, intid - 32, true);
    assignIrq(p, kvfio, dev.device, 0, intid - 32);
    p.thread('CPU 0/KVM', cpu).ioctlAsync(vm.vcpus[0]!, KVM_RUN, 0);
    return { p, vm, dev, kvfio, guest: guests[i]!, kvmVm };
  };
  const a = side(DEV_A, 7, 80, 1, 0);
  const b = side(DEV_B, 8, 90, 2, 1);
  host.engine.runUntil(() => a.guest.booted && b.guest.booted, 'both guests to boot');
  host.settle();
  return { host, a, b };
}

/** Everything of a VM's vGIC a forwarded IRQ could touch: every SPI's state, the ap-list, the shadow LRs. */
function vgicState(vm: KvmVm) {
  const vgic = vm.vgic!;
  const spis: string[] = [];
  for (let i = 0; i < vgic.nrSpis; i++) {
    const irq = vgic.vgicGetIrq(32 + i)!;
    spis.push(
      `${irq.intid}:${+irq.lineLevel}${+irq.pendingLatch}${+irq.active}${+irq.onLr}${+irq.hw}/${irq.hwintid}/${irq.vcpu ?? '-'}`,
    );
  }
  const vc = vm.vcpus[0]!;
  const cpu = vc.vgicCpu!;
  return {
    spis,
    apCount: cpu.apCount,
    lrs: [...cpu.vgicLr],
    apr: cpu.vgicApr,
    exits: vc.stat.exits,
    irqExits: vc.stat.irqExits,
  };
}

describe('isolation between VMM processes (issue 9 part 3)', () => {
  it("process B cannot use A's fd numbers: its fd table is its own (EBADF, or B's own file at that number)", () => {
    const host = twoDeviceHost();
    const a = host.process();
    const devA = openVfioDevice(a, 7, DEV_A);
    expect(devA).toEqual({ container: 0, group: 1, device: 2 });
    const b = host.process();
    // fs/file.c fget: B's table has nothing at 2
    expect(errnoOf(() => b.ioctl(devA.device, VFIO_DEVICE_GET_INFO, 0))).toBe('EBADF');
    expect(errnoOf(() => b.close(devA.device))).toBe('EBADF');
    // B's own fd 0 is /dev/kvm, not A's container: the VFIO ioctl is not KVM's (kvm_dev_ioctl → -EINVAL)
    expect(b.open('/dev/kvm')).toBe(0);
    expect(errnoOf(() => b.ioctl(devA.container, VFIO_GET_API_VERSION, 0))).toBe('EINVAL');
    // A's fds are untouched by B's attempts
    expect(deviceInfo(a, devA.device).num_irqs).toBe(1);
    expect(a.files.openFds()).toEqual([0, 1, 2]);
    expect(b.files.openFds()).toEqual([0]);
  });

  it('process B cannot open a VFIO group A holds (vfio_group_fops_open: EBUSY) until A has exited', () => {
    const host = twoDeviceHost();
    const a = host.process();
    openVfioDevice(a, 7, DEV_A);
    const b = host.process();
    expect(errnoOf(() => b.open('/dev/vfio/7'))).toBe('EBUSY');
    // another group is B's to take
    const devB = openVfioDevice(b, 8, DEV_B);
    expect(devB.device).toBeGreaterThanOrEqual(0);
    a.exit();
    host.settle();
    const g = b.open('/dev/vfio/7');
    expect(g).toBeGreaterThanOrEqual(0);
  });

  it("B's VM cannot forward an IRQ of a device whose group was not added to B's kvm-vfio device (EPERM)", () => {
    const host = twoDeviceHost();
    const a = host.process();
    const devA = openVfioDevice(a, 7, DEV_A);
    const vmA = createQemuVm(a, { vcpus: 1 });
    const kvA = createKvmVfio(a, vmA.vm);
    kvmVfioGroupAdd(a, kvA, devA.group);
    wireIrqfd(a, vmA.vm, devA.device, 0, 48, true);
    expect(assignIrq(a, kvA, devA.device, 0, 48)).toBe(0);

    const b = host.process();
    const vmB = createQemuVm(b, { vcpus: 1 });
    const kvB = createKvmVfio(b, vmB.vm);
    const devB = openVfioDevice(b, 8, DEV_B);
    wireIrqfd(b, vmB.vm, devB.device, 0, 58, true);
    // src/kvm/vfio.ts kvmVfioSetDevice: the device's group must be on kv->group_list (docs/ABI.md §8.3)
    expect(errnoOf(() => assignIrq(b, kvB, devB.device, 0, 58))).toBe('EPERM');
    expect(host.devices[1]!.vdev.irqs[0]!.fwd).toBeNull();
    // the same within one process: A's second VM does not own group 7, which only A's first VM added
    const vmA2 = createQemuVm(a, { vcpus: 1 });
    const kvA2 = createKvmVfio(a, vmA2.vm);
    expect(errnoOf(() => assignIrq(a, kvA2, devA.device, 0, 48))).toBe('EPERM');
    // with the group added, B's ASSIGN goes through: the EPERM was the ownership check
    kvmVfioGroupAdd(b, kvB, devB.group);
    expect(assignIrq(b, kvB, devB.device, 0, 58)).toBe(0);
    // A's forwarding is still A's: INTID 80 mapped in VM1's vGIC only
    expect(host.kvm.vms[0]!.vgic!.vgicGetIrq(80)!.hw).toBe(true);
    expect(host.kvm.vms[1]!.vgic!.vgicGetIrq(80)!.hw).toBe(false);
    expect(host.kvm.vms[2]!.vgic!.vgicGetIrq(80)!.hw).toBe(false);
  });

  it("a burst on VM1's forwarded device never changes VM2's vGIC, and VM2's vCPU never enters or exits", () => {
    const { host, a, b } = twoVms();
    const vm2Before = vgicState(b.kvmVm);
    const handledB = b.guest.devices[0]!.handled;
    const handledA = a.guest.devices[0]!.handled;
    // a per-VM count of the KVM tracepoints during the burst
    const entries = new Map<KvmVm, number>();
    const exits = new Map<KvmVm, number>();
    host.kvm.trace = {
      kvmEntry: (v) => entries.set(v.vm, (entries.get(v.vm) ?? 0) + 1),
      kvmExit: (v) => exits.set(v.vm, (exits.get(v.vm) ?? 0) + 1),
      kvmUserspaceExit: () => {},
      kvmSetIrq: () => {},
    };
    const hw = host.device(DEV_A);
    for (let i = 0; i < 50; i++) {
      host.engine.at(host.engine.now + 1000 + i * 40_000, { name: `raise${i}`, fire: () => hw.assert(0) });
    }
    host.settle();
    expect(a.guest.devices[0]!.handled - handledA).toBe(50);
    expect(entries.get(a.kvmVm) ?? 0).toBeGreaterThanOrEqual(50);
    // VM2: not one entry or exit, its vGIC exactly as before, its guest saw nothing
    expect(entries.get(b.kvmVm) ?? 0).toBe(0);
    expect(exits.get(b.kvmVm) ?? 0).toBe(0);
    expect(vgicState(b.kvmVm)).toEqual(vm2Before);
    expect(b.guest.devices[0]!.handled).toBe(handledB);
    expect(b.guest.stats().spurious).toBe(0);
    // and the forwarded INTID is mapped in VM1 only
    expect(a.kvmVm.vgic!.vgicGetIrq(80)!.hw).toBe(true);
    expect(b.kvmVm.vgic!.vgicGetIrq(80)!.hw).toBe(false);
    expect(host.checkInvariants()).toEqual([]);
  });

  it('each process tears down only its own VM: after A exits, B still forwards and nothing of A is left', () => {
    const { host, a, b } = twoVms();
    a.p.exit();
    host.settle();
    expect(host.devices[0]!.descs[0]!.forwardedToVcpu).toBe(false);
    expect(host.devices[0]!.vdev.irqs[0]!.fwd).toBeNull();
    expect(host.irq.gic.distributor.isActive(80)).toBe(false);
    const handledB = b.guest.devices[0]!.handled;
    const hw = host.device(DEV_B);
    for (let i = 0; i < 20; i++) {
      host.engine.at(host.engine.now + 1000 + i * 40_000, { name: `raiseB${i}`, fire: () => hw.assert(0) });
    }
    host.settle();
    expect(b.guest.devices[0]!.handled - handledB).toBe(20);
    expect(host.devices[1]!.vdev.irqs[0]!.fwd).not.toBeNull();
    b.p.exit();
    host.settle();
    expect(host.checkInvariants({ teardown: true })).toEqual([]);
  });
});
