// A host whose GIC is a GICv3 (createHost({ gic: 'v3' })), driven through the public API and the real ioctls: the
// VFIO platform normal path up to the trigger eventfd, a reschedule IPI, and KVM's vGIC-v3 device.
import { describe, expect, it } from 'vitest';
import { ErrnoError, errnoOf } from '../../src/abi/errno.js';
import { EFD_NONBLOCK } from '../../src/abi/eventfd.js';
import { KVM_CREATE_VM, KVM_DEV_TYPE_ARM_VGIC_V2, KVM_DEV_TYPE_ARM_VGIC_V3 } from '../../src/abi/kvm.js';
import { PDEV_IRQ_ACK } from '../../src/hw/platformDevice.js';
import { createHost } from '../../src/machine.js';
import { loadScenario } from '../../src/scenario/loader.js';
import { kvmCreateDevice, openVfioDevice, readEventfd, trigger, unmask } from '../../src/scenario/vmm.js';
import { DEV, ethernetDevice } from '../fixtures/vfioDevice.js';

function v3Host() {
  const host = createHost({ gic: 'v3', cpus: 4, devices: [ethernetDevice()] });
  const p = host.process();
  return { host, p, h: openVfioDevice(p, 7, DEV), hw: host.device(DEV), dev: host.devices[0]! };
}

function drain(p: ReturnType<typeof v3Host>['p'], fd: number): bigint {
  try {
    return readEventfd(p, fd);
  } catch (e) {
    if (e instanceof ErrnoError && e.errno === 'EAGAIN') return 0n;
    throw e;
  }
}

describe('GICv3 host: vfio-platform normal path (vfio_automasked_irq_handler → eventfd_signal)', () => {
  it('a level SPI routed to CPU 2 is handled there, automasked, signalled once, and unmasked by VFIO', () => {
    const { host, p, h, hw, dev } = v3Host();
    expect(host.irq.version).toBe('v3');
    host.irq.gic.distributor.setRoute(80, 2); // the SPI's smp_affinity
    const efd = p.eventfd(0, EFD_NONBLOCK);
    trigger(p, h.device, 0, efd); // request_irq of the device's SPI
    const desc = dev.descs[0]!;
    expect(host.irq.gic.distributor.isEnabled(80)).toBe(true);
    hw.assert(0);
    host.settle();
    expect(drain(p, efd)).toBe(1n);
    expect(desc.kstat[2]).toBe(1);
    expect(dev.vdev.irqs[0]!.masked).toBe(true);
    expect(host.irq.gic.distributor.isActive(80)).toBe(false); // ICC_DIR_EL1 after the handler
    hw.writeReg(PDEV_IRQ_ACK, 1);
    unmask(p, h.device, 0);
    host.settle();
    expect(drain(p, efd)).toBe(0n);
    expect(desc.depth).toBe(0);
    expect(host.checkInvariants()).toEqual([]);
    p.exit();
    host.settle();
    expect(host.checkInvariants({ teardown: true })).toEqual([]);
  });

  it('an edge SPI pulsed twice while the first is handled is signalled twice (one per pulse)', () => {
    const { host, p, h, hw } = v3Host();
    const efd = p.eventfd(0, EFD_NONBLOCK);
    trigger(p, h.device, 1, efd);
    hw.pulse(1);
    host.settle();
    hw.pulse(1);
    host.settle();
    expect(drain(p, efd)).toBe(2n);
  });
});

describe('GICv3 host: KVM', () => {
  it('a reschedule IPI (smp_send_reschedule) reaches the target CPU as SGI 0 through ICC_SGI1R_EL1', () => {
    const { host } = v3Host();
    const ipi = host.irq.genirq.desc(host.kvm.ipiIrq);
    host.kernel.reschedIpi!.smpSendReschedule(0, 3);
    host.settle();
    expect(ipi.kstat[3]).toBe(1);
    expect(host.irq.gic.distributor.isActive(0, 3)).toBe(false);
  });

  it('offers the vGIC-v3 only: KVM_CREATE_DEVICE of a vGIC-v2 (no GICv2 compatibility) → ENODEV, of a vGIC-v3 → a v3 vGIC', () => {
    const { host, p } = v3Host();
    const kvm = p.open('/dev/kvm');
    const vm = p.ioctl(kvm, KVM_CREATE_VM, 0);
    expect(errnoOf(() => kvmCreateDevice(p, vm, KVM_DEV_TYPE_ARM_VGIC_V2))).toBe('ENODEV');
    expect(kvmCreateDevice(p, vm, KVM_DEV_TYPE_ARM_VGIC_V3)).toBeGreaterThan(0);
    expect(host.kvm.vms[0]!.vgic!.isV3).toBe(true);
  });

  it('a scenario with host.gic.version v3 is accepted with up to 32 CPUs; a GICv2 keeps its 8', () => {
    expect(loadScenario('host: { cpus: 16, gic: { version: v3 } }', 'v3.yaml').host.gic.version).toBe('v3');
    expect(() => loadScenario('host: { cpus: 16 }', 'v2.yaml')).toThrow(/at most 8 CPU interfaces/);
  });
});
