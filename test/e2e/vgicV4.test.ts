// GICv4.1 direct injection end to end through the public API (arch/arm64/kvm/vgic/vgic-v4.c): on a GICv4.1 host the
// VMM of vfioPciMsiGuest.test.ts — vfio-pci MSI vector 0 on an eventfd, an MSI route to the guest's vITS, KVM_IRQFD —
// makes irqbypass connect the irqfd to vfio-pci's producer; kvm_arch_irq_bypass_add_producer →
// kvm_vgic_v4_set_forwarding → its_map_vlpi turns the function's LPI into vLPI 8192 of the vCPU's vPE. Then each MSI
// is the ITS's VMAPTI translation straight into the resident vPE: no host IRQ, no eventfd, no exit.
import { describe, expect, it } from 'vitest';
import { KVM_IRQFD_FLAG_DEASSIGN } from '../../src/abi/kvm.js';
import { LPI_PROP_ENABLED, LPI_PROP_GROUP1 } from '../../src/host/irq/its/itsInit.js';
import { ITS_CMD_DISCARD, ITS_CMD_INV, ITS_CMD_MOVI } from '../../src/hw/gicv3/its.js';
import { kvmIrqfd } from '../../src/scenario/vmm.js';
import { forwardedMsi, GSI, GUEST_DEVID, guestCommands, LPI, setGuestProp } from '../fixtures/vgicV4Setup.js';

describe('GICv4.1: a forwarded MSI is a direct vLPI (kvm_vgic_v4_set_forwarding, vgic_v4_load/put)', () => {
  it('irqbypass add_producer maps the LPI as vLPI 8192 (its_map_vlpi): irq->hw and host_irq set', () => {
    const { kvmVm, ctx } = forwardedMsi();
    const irq = kvmVm.vgic!.lpis.get(LPI)!;
    expect(irq.hw).toBe(true);
    expect(irq.hostIrq).toBe(ctx.producer!.irq);
  });

  it('with the vCPU resident and running: N MSIs handled by the guest with 0 exits and no eventfd signal', () => {
    const { host, handler, vcpu, hw, ctx, kvmVm } = forwardedMsi({ busy: true });
    const exits = vcpu.stat.exits;
    const N = 8;
    for (let i = 0; i < N; i++) {
      hw.fire(0);
      host.run(20_000);
    }
    expect(handler.handled).toBe(N);
    expect(vcpu.stat.exits - exits).toBe(0);
    expect(ctx.signals).toBe(0);
    expect(kvmVm.irqfds.items[0]!.injections).toBe(0);
  });

  it('with the vCPU blocked in WFI: the doorbell (vgic_v4_doorbell_handler) wakes it and it takes the vLPI', () => {
    const { host, handler, vcpu, hw, ctx, kvmVm } = forwardedMsi();
    expect(vcpu.wfiSleeping).toBe(true);
    const doorbell = host.irq.genirq.desc(kvmVm.vgic!.itsVm!.vpes[0]!.irq);
    host.settle(); // the vCPU back on its rcuwait after KVM_IRQFD's halt/resume (kvm_arch_irq_bypass_stop/start)
    const wakeups = vcpu.stat.kickWakeups;
    hw.fire(0);
    host.settle();
    expect([...doorbell.kstat]).toEqual([0, 1]); // once, on the CPU the vPE was last resident on
    // kvm_vcpu_kick → kvm_vcpu_wake_up found the vCPU on its rcuwait: halt_wakeup, the model's kickWakeups
    expect(vcpu.stat.kickWakeups - wakeups).toBe(1);
    expect(handler.handled).toBe(1);
    expect(ctx.signals).toBe(0);
    expect(vcpu.wfiSleeping).toBe(true); // back in WFI, non-resident again with its doorbell
  });

  it('KVM_IRQFD deassign with MSIs in flight (del_producer → its_unmap_vlpi): none lost, none left pending', () => {
    const { host, p, vm, efd, handler, hw, kvmVm, ctx } = forwardedMsi();
    hw.fire(0);
    hw.fire(0);
    kvmIrqfd(p, vm, efd, GSI, KVM_IRQFD_FLAG_DEASSIGN);
    host.settle();
    const irq = kvmVm.vgic!.lpis.get(LPI)!;
    expect(irq.hw).toBe(false);
    // an edge MSI fired twice before the guest took it may coalesce into one pending bit: at least one, and none left
    expect(handler.handled).toBeGreaterThanOrEqual(1);
    expect(irq.pendingLatch).toBe(false);
    expect(host.irq.gic.vlpis!.isPending(kvmVm.vgic!.itsVm!.vpes[0]!.vpeId, LPI)).toBe(false);
    hw.fire(0); // a physical LPI again: vfio_msihandler signals the eventfd, which no irqfd consumes now
    host.settle();
    expect(ctx.signals).toBe(1);
    expect(host.checkInvariants()).toEqual([]);
  });

  // the guest's vITS commands on the forwarded vLPI (vgic-its.c's irq->hw paths, src/kvm/vgic/vgicV4Ops.ts)
  it('guest INV after moving the priority below its PMR and back: the MSI waits in the vPE, then is taken with no exit', () => {
    const m = forwardedMsi({ busy: true });
    m.host.run(10_000);
    const exits = m.vcpu.stat.exits;
    setGuestProp(m, 0xf8 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED); // priority 0xf8: masked by the guest's PMR 0xf0
    guestCommands(m, [ITS_CMD_INV, GUEST_DEVID, 0, 0, 0, 0, 0, 0]);
    m.hw.fire(0);
    m.host.run(20_000);
    expect(m.handler.handled).toBe(0);
    setGuestProp(m, 0x80 | LPI_PROP_GROUP1 | LPI_PROP_ENABLED);
    guestCommands(m, [ITS_CMD_INV, GUEST_DEVID, 0, 0, 0, 0, 0, 0]);
    m.host.run(20_000);
    expect(m.handler.handled).toBe(1);
    expect(m.vcpu.stat.exits - exits).toBe(0); // the commands' own exits are emulated beside the run loop here
  });

  it('guest DISCARD with an MSI in flight: taken at most once, nothing left pending anywhere, later MSIs dropped by the vITS', () => {
    const m = forwardedMsi({ busy: true });
    m.host.run(10_000);
    m.hw.fire(0);
    guestCommands(m, [ITS_CMD_DISCARD, GUEST_DEVID, 0, 0, 0, 0, 0, 0]);
    m.host.run(20_000);
    const handled = m.handler.handled;
    expect(handled).toBeLessThanOrEqual(1);
    const vpe = m.kvmVm.vgic!.itsVm!.vpes[0]!;
    expect(m.host.irq.gic.vlpis!.isPending(vpe.vpeId, LPI)).toBe(false);
    expect(m.kvmVm.vgic!.lpis.has(LPI)).toBe(false);
    m.hw.fire(0);
    m.host.run(20_000);
    expect(m.handler.handled).toBe(handled);
    expect(m.ctx.signals).toBeGreaterThanOrEqual(1); // the host's LPI again: vfio_msihandler's eventfd
    expect(m.host.checkInvariants()).toEqual([]);
  });

  it('guest MOVI to vCPU 1: the next MSI is taken on vCPU 1, resident, with no exit', () => {
    const m = forwardedMsi({ busy: true, vcpus: 2 });
    m.host.run(10_000);
    guestCommands(m, [ITS_CMD_MOVI, GUEST_DEVID, 0, 0, 1, 0, 0, 0]);
    const v1 = m.kvmVm.vcpus[1]!;
    const exits = v1.stat.exits;
    m.hw.fire(0);
    m.host.run(20_000);
    expect(m.handler.handledOn).toEqual([1]);
    expect(v1.stat.exits - exits).toBe(0);
    expect(m.ctx.signals).toBe(0);
  });

  it.each([
    ['VM first', true],
    ['device first', false],
  ])('teardown in any order (%s): vgic_v4_teardown and its_unmap_vlpi leave no finding', (_name, vmFirst) => {
    const { host, p, vm, dev } = forwardedMsi();
    p.close(vmFirst ? vm : dev.device);
    host.settle();
    p.exit(); // every other fd, the vCPU threads' KVM_RUN ended first
    host.settle();
    expect(host.findings({ teardown: true })).toEqual([]);
  });
});
