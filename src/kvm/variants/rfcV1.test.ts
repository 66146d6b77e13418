/**
 * The rfc-v1 variant: a port of the seed patch with its defects. Its happy path needs what the seed's author had:
 *  - a host whose Linux IRQ numbers equal the GIC INTIDs (irqNumbering 'legacy', the 2014 arm32 GIC domain),
 *    or the vGIC puts the Linux IRQ number in the LR as the physical INTID;
 *  - ASSIGN and DEASSIGN only while the IRQ is idle (the seed leaves the critical section to "the client");
 *  - DEASSIGN of only what was assigned, with the device fd still open (else a NULL dereference);
 *  - DEASSIGN before teardown (else free_all_fwd_irq's blind EOI).
 */
import { describe, expect, it } from 'vitest';
import {
  devOf,
  expectForwardedLevelRun,
  type Fixture,
  fixture,
  GSI,
  teardownClean,
  totals,
} from '../../../test/fixtures/fwdFixture.js';
import { attr, errnoOf, place, setAttr, u32Buf } from '../../../test/fixtures/kvmSetup.js';
import {
  KVM_DEV_VFIO_DEVICE,
  KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ,
  KVM_DEV_VFIO_GROUP,
  KVM_DEV_VFIO_GROUP_DEL,
  KVM_SET_DEVICE_ATTR,
  kvmArchForwardedIrq,
} from '../../abi/kvm.js';
import { ModelError } from '../../sim/errors.js';
import { KvmArchFwdIrq, RfcV1KvmVfio, setFwdState } from './rfcV1/kvmVfioArm.js';

const legacy = () => fixture({ forwarding: 'rfc-v1', irqNumbering: 'legacy' });

function archData(f: Fixture) {
  const dev = f.host.kvm.vms[0]!.devices.find((d) => d.private_ instanceof RfcV1KvmVfio)!;
  return (dev.private_ as RfcV1KvmVfio).archData;
}

const vfioRefs = (f: Fixture) => f.s.kernel.refs.list('vfio_device').find((r) => r.name.includes('ethernet'))!.refs;

function crash(g: () => unknown): string {
  try {
    g();
  } catch (e) {
    if (e instanceof ModelError) return e.message;
    throw e;
  }
  throw new Error('expected a ModelError');
}

describe('rfc-v1: the happy path', () => {
  it('legacy numbering, idle assign: 100 level IRQs handled once each, 0 maintenance exits, deassign, clean teardown', () => {
    const f = legacy();
    const desc = devOf(f).descs[0]!;
    expect(desc.irq).toBe(80); // Linux IRQ = INTID: the seed's confusion is latent
    const refs0 = vfioRefs(f);
    expect(f.assign(0)).toBe(0);
    expect(vfioRefs(f)).toBe(refs0 + 1);
    expect(desc.forwardedToVcpu).toBe(true);
    expect(f.host.kvm.vms[0]!.vgic!.vgicGetIrq(80)!.hwintid).toBe(80);
    expectForwardedLevelRun(f, 100);
    expect(f.deassign(0)).toBe(0);
    expect(vfioRefs(f)).toBe(refs0);
    expect(desc.forwardedToVcpu).toBe(false);
    expect(archData(f).assignedDeviceList).toEqual([]);
    teardownClean(f);
  });
});

describe('rfc-v1: reproduced defects', () => {
  it('INTID confusion (set_fwd_state): on a linear domain the LR gets HW=1 with pINTID 3, the Linux IRQ number', () => {
    const f = fixture({ forwarding: 'rfc-v1' });
    expect(devOf(f).descs[0]!.irq).toBe(3);
    expect(f.assign(0)).toBe(0);
    expect(f.host.kvm.vms[0]!.vgic!.vgicGetIrq(80)!.hwintid).toBe(3);
    f.raise(0, 1);
    expect(crash(() => f.host.settle(1_000_000))).toMatch(/HW=1 with pINTID 3/);
  });

  it("INTID confusion: the guest's EOI deactivates INTID 33 (the Linux IRQ number), 80 stays active, 2 of 3 IRQs lost", () => {
    const f = fixture({ forwarding: 'rfc-v1', padIrqs: 30 });
    expect(devOf(f).descs[0]!.irq).toBe(33);
    f.assign(0);
    f.raise(0, 3);
    f.host.settle(2_000_000);
    expect(totals(f).handled[0]).toBe(1);
    expect(f.host.irq.gic.distributor.isActive(80)).toBe(true);
    expect(f.host.irq.gic.vif(1).unpredictableCount).toBe(1); // GICV_EOIR → deactivate of inactive INTID 33
  });

  it('validate_deassign `!kvm_vdev`: DEASSIGN of a never-assigned IRQ dereferences NULL', () => {
    const f = legacy();
    expect(crash(() => f.deassign(0))).toMatch(/seed defect: validate_deassign .*NULL kvm_vdev/);
  });

  it('wrong errnos: already forwarded and not forwarded are EINVAL (not EEXIST / ENOENT)', () => {
    const f = legacy();
    f.assign(0);
    expect(errnoOf(() => f.assign(0))).toBe('EINVAL');
    expect(errnoOf(() => f.deassign(1))).toBe('EINVAL');
    f.deassign(0);
    teardownClean(f);
  });

  it('get_vfio_device NULL for a closed fd: IS_ERR misses it, ASSIGN and DEASSIGN dereference NULL', () => {
    const f = legacy();
    f.s.p.close(f.dev.device);
    expect(crash(() => f.assign(0))).toMatch(/seed defect: .*get_vfio_device\(\d+\) returned NULL.*validate_forward/);
    expect(crash(() => f.deassign(0))).toMatch(/seed defect: .*returned NULL.*put_external_user/);
  });

  it('validate_forward checks no guest_irq: an SPI past the vGIC reaches vgic_map_phys_irq', () => {
    const f = legacy();
    expect(crash(() => f.assign(0, 5000))).toMatch(/seed defect: validate_forward accepted guest_irq 5000/);
  });

  it('no EPERM: after GROUP_DEL the VM can still forward the device IRQ', () => {
    const f = legacy();
    const { p } = f.s;
    setAttr(p, f.kvfio, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_DEL, u32Buf(p, f.dev.group));
    expect(f.assign(0)).toBe(0);
    expect(devOf(f).descs[0]!.forwardedToVcpu).toBe(true);
  });

  it('free_all_fwd_irq CLEANUP: teardown without DEASSIGN writes a blind GICC_DIR for the inactive INTID 80', () => {
    const f = legacy();
    f.assign(0);
    f.raise(0, 3);
    f.host.settle();
    expect(f.host.irq.gic.distributor.isActive(80)).toBe(false);
    f.s.p.exit();
    f.host.settle();
    expect(f.host.checkInvariants({ teardown: true })).toEqual(['GIC: 1 UNPREDICTABLE access(es) on CPU 0']);
  });

  it('insert_and_forward OOM: set_fwd_state(pfwd, false) re-forwards; ENOMEM leaves the IRQ forwarded and unrecorded', () => {
    const f = legacy();
    f.s.p.main.ut.failNth = 2; // fail-nth: kzalloc(pfwd) succeeds, kzalloc(kvm_vdev) fails
    const refs0 = vfioRefs(f);
    expect(errnoOf(() => f.assign(0))).toBe('ENOMEM');
    expect(vfioRefs(f)).toBe(refs0);
    expect(devOf(f).descs[0]!.forwardedToVcpu).toBe(true);
    expect(f.host.kvm.vms[0]!.vgic!.vgicGetIrq(80)!.hw).toBe(true);
    expect(archData(f).assignedDeviceList).toEqual([]);
    expect(f.s.p.main.ut.failNth).toBe(0);
    // nothing records it, so it cannot be deassigned either
    expect(crash(() => f.deassign(0))).toMatch(/seed defect: validate_deassign/);
  });

  it("set_fwd_state's invalid-action branch calls enable_irq twice: Unbalanced enable WARN", () => {
    const f = legacy();
    const d = devOf(f);
    const vm = f.host.kvm.vms[0]!;
    const pfwd = new KvmArchFwdIrq(vm, d.vdev.genirq, d.vdev.irqs[0]!);
    pfwd.hwirq = d.descs[0]!.irq;
    pfwd.guestIrq = GSI[0]!;
    pfwd.vcpu = vm.vcpus[0]!;
    f.host.engine.spawn(
      'set_fwd_state',
      0,
      (function* () {
        yield* setFwdState(pfwd, 3);
      })(),
    );
    expect(crash(() => f.host.settle(100_000))).toMatch(/WARNING: Unbalanced enable for IRQ 80/);
  });

  it("set_fwd_state's disable_irq busy-waits in synchronize_irq while the forwarded INTID is active for the guest", () => {
    const f = legacy();
    const { p } = f.s;
    f.assign(0);
    f.raise(0, 3);
    const virq = f.host.kvm.vms[0]!.vgic!.vgicGetIrq(80)!;
    f.host.engine.runUntil(() => virq.onLr, 'the forwarded vIRQ in a list register');
    const t = p.thread('deassign', 0);
    const arg = place(p, kvmArchForwardedIrq.encode({ fd: f.dev.device, irq_index: 0, guest_irq: GSI[0]! }));
    const h = t.ioctlAsync(
      f.kvfio,
      KVM_SET_DEVICE_ATTR,
      attr(p, KVM_DEV_VFIO_DEVICE, KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ, arg),
    );
    const desc = devOf(f).descs[0]!;
    const dist = f.host.irq.gic.distributor;
    f.host.engine.runUntil(
      () => t.task.polling && dist.isActive(80) && !desc.inprogress,
      'DEASSIGN spinning on the guest-held INTID',
    );
    expect(h.done).toBe(false);
    f.host.settle();
    expect(h.result()).toBe(0); // the guest's EOI releases it here (another CPU); on the vCPU's own CPU it never would
    teardownClean(f);
  });
});
