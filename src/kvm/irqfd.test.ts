import { describe, expect, it } from 'vitest';
import {
  buildVm,
  createDevice,
  createVm,
  errnoOf,
  irqfd,
  readEventfd,
  setAttr,
  setup,
  writeEventfd,
} from '../../test/fixtures/kvmSetup.js';
import {
  KVM_CREATE_VCPU,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_IRQFD,
  KVM_IRQFD_FLAG_DEASSIGN,
  KVM_IRQFD_FLAG_RESAMPLE,
  KVM_RUN,
} from '../abi/kvm.js';
import { EFD_NONBLOCK, EPOLLHUP, eventfdCtxFdget, eventfdCtxPut } from '../host/eventfd.js';

function running(opts: Parameters<typeof setup>[0] = {}) {
  const s = setup(opts);
  const built = buildVm(s);
  const t = s.p.thread('vcpu0', 1);
  const h = t.ioctlAsync(built.vcpus[0]!, KVM_RUN, 0);
  s.kernel.settle();
  const vm = s.kvm.vms[0]!;
  return { s, ...built, h, kvmVm: vm, vc: vm.vcpus[0]! };
}

describe('KVM_IRQFD (virt/kvm/eventfd.c)', () => {
  it('a write to the irqfd eventfd injects SPI gsi + 32, which the guest takes (irqfd_wakeup, in atomic context)', () => {
    const { s, vm } = running({ guest: { spis: [{ intid: 40, edge: true }] } });
    const efd = s.p.eventfd(0, 0);
    expect(irqfd(s.p, vm, efd, 8)).toBe(0);
    writeEventfd(s.p, efd);
    s.kernel.settle();
    expect(s.guest.statsOf(0).byIntid.get(40)).toBe(1);
    writeEventfd(s.p, efd);
    s.kernel.settle();
    expect(s.guest.statsOf(0).byIntid.get(40)).toBe(2);
    expect(s.kvm.vms[0]!.irqfds.items[0]!.injections).toBe(2);
  });

  it('resample: the guest EOI exits on the maintenance IRQ, lowers the line and signals the resamplefd once', () => {
    const { s, vm, vc, kvmVm } = running({ guest: { spis: [{ intid: 40 }] } });
    const efd = s.p.eventfd(0, 0);
    const rfd = s.p.eventfd(0, EFD_NONBLOCK);
    irqfd(s.p, vm, efd, 8, KVM_IRQFD_FLAG_RESAMPLE, rfd);
    const before = vc.stat.maintenanceExits;
    writeEventfd(s.p, efd);
    s.kernel.settle();
    expect(s.guest.statsOf(0).byIntid.get(40)).toBe(1);
    expect(vc.stat.maintenanceExits - before).toBe(1);
    expect(readEventfd(s.p, rfd)).toBe(1n);
    expect(kvmVm.vgic!.spis[8]!.lineLevel).toBe(false);
    expect(kvmVm.irqfds.resamplerOf(8)!.acks).toBe(1);
    expect(errnoOf(() => readEventfd(s.p, rfd))).toBe('EAGAIN');
    expect(s.host.genirq.badIrqs).toEqual([]);
    expect(s.host.genirq.warnings()).toEqual([]);
  });

  it('one resampler per GSI, shared by its irqfds; the last one out lowers the line', () => {
    const s = setup();
    const { vm } = buildVm(s);
    const [a, b, r1, r2] = [s.p.eventfd(), s.p.eventfd(), s.p.eventfd(), s.p.eventfd()];
    irqfd(s.p, vm, a!, 3, KVM_IRQFD_FLAG_RESAMPLE, r1!);
    irqfd(s.p, vm, b!, 3, KVM_IRQFD_FLAG_RESAMPLE, r2!);
    const irqfds = s.kvm.vms[0]!.irqfds;
    expect(irqfds.resamplers.length).toBe(1);
    expect(irqfds.resamplerOf(3)!.irqfds.length).toBe(2);
    irqfd(s.p, vm, a!, 3, KVM_IRQFD_FLAG_DEASSIGN);
    expect(irqfds.resamplers.length).toBe(1);
    irqfd(s.p, vm, b!, 3, KVM_IRQFD_FLAG_DEASSIGN);
    expect(irqfds.resamplers.length).toBe(0);
  });

  it('irqfd is an exclusive priority waiter (irqfd_ptable_queue_proc → add_wait_queue_priority): irqfd_wakeup consumes the count and ends the walk, so a virqfd-like waiter and readers never see the event; EPOLLHUP still reaches everyone', () => {
    const { s, vm } = running({ guest: { spis: [{ intid: 40, edge: true }] } });
    const efd = s.p.eventfd(0, EFD_NONBLOCK);
    const ctx = eventfdCtxFdget(s.p.files, efd); // a second in-kernel waiter, added before the irqfd
    const keys: number[] = [];
    ctx.addWaitEntry({
      *wake(_c, key) {
        keys.push(key);
        return 0;
      },
    });
    expect(irqfd(s.p, vm, efd, 8)).toBe(0);
    writeEventfd(s.p, efd);
    s.kernel.settle();
    expect(s.guest.statsOf(0).byIntid.get(40)).toBe(1);
    expect(keys).toEqual([]); // the walk stopped at the irqfd
    expect(ctx.count).toBe(0n); // eventfd_ctx_do_read in irqfd_wakeup
    expect(errnoOf(() => readEventfd(s.p, efd))).toBe('EAGAIN');
    s.p.close(efd);
    s.kernel.settle();
    expect(keys).toEqual([EPOLLHUP]); // irqfd_wakeup returns 0 for EPOLLHUP: the walk goes on
    expect(s.kvm.vms[0]!.irqfds.items.length).toBe(0);
    eventfdCtxPut(ctx);
  });

  it('EBUSY for an eventfd that already backs an irqfd of this VM (kvm_irqfd_assign)', () => {
    const s = setup();
    const { vm } = buildVm(s);
    const efd = s.p.eventfd();
    irqfd(s.p, vm, efd, 1);
    expect(errnoOf(() => irqfd(s.p, vm, efd, 2))).toBe('EBUSY');
    expect(s.kernel.refs.count('kvm_irqfd')).toBe(1);
  });

  it('EAGAIN before the vGIC is initialised, whatever the fds (kvm_irqfd_assign: kvm_arch_intc_initialized)', () => {
    const s = setup();
    const vm = createVm(s);
    const efd = s.p.eventfd();
    expect(errnoOf(() => irqfd(s.p, vm, efd, 1))).toBe('EAGAIN'); // no vGIC at all
    s.p.ioctl(vm, KVM_CREATE_VCPU, 0);
    const vgic = createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_V2);
    expect(errnoOf(() => irqfd(s.p, vm, efd, 1))).toBe('EAGAIN'); // created, not initialised
    expect(errnoOf(() => irqfd(s.p, vm, 77, 1))).toBe('EAGAIN'); // before the fd is looked up
    expect(errnoOf(() => irqfd(s.p, vm, efd, 1, 4))).toBe('EINVAL'); // kvm_irqfd's flags check comes first
    expect(irqfd(s.p, vm, efd, 1, KVM_IRQFD_FLAG_DEASSIGN)).toBe(0); // deassign has no such check
    expect(s.kernel.refs.count('kvm_irqfd')).toBe(0);
    setAttr(s.p, vgic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, 0);
    expect(irqfd(s.p, vm, efd, 1)).toBe(0);
  });

  it('EBADF for a closed fd, EINVAL for a non-eventfd or bad flags, EFAULT for the struct (kvm_irqfd)', () => {
    const s = setup();
    const { vm } = buildVm(s);
    const efd = s.p.eventfd();
    expect(errnoOf(() => irqfd(s.p, vm, 77, 1))).toBe('EBADF');
    expect(errnoOf(() => irqfd(s.p, vm, 0xffff_ffff, 1))).toBe('EBADF');
    expect(errnoOf(() => irqfd(s.p, vm, vm, 1))).toBe('EINVAL');
    expect(errnoOf(() => irqfd(s.p, vm, efd, 1, 4))).toBe('EINVAL');
    expect(errnoOf(() => irqfd(s.p, vm, efd, 1, KVM_IRQFD_FLAG_RESAMPLE, 99))).toBe('EBADF');
    expect(errnoOf(() => irqfd(s.p, vm, efd, 1, KVM_IRQFD_FLAG_RESAMPLE, vm))).toBe('EINVAL');
    expect(errnoOf(() => irqfd(s.p, vm, 77, 1, KVM_IRQFD_FLAG_DEASSIGN))).toBe('EBADF');
    expect(errnoOf(() => s.p.ioctl(vm, KVM_IRQFD, 0x40))).toBe('EFAULT');
    expect(s.kernel.refs.count('kvm_irqfd')).toBe(0);
    expect(irqfd(s.p, vm, efd, 1)).toBe(0);
  });

  it('deassign stops injection, returns 0 even without a match, and the irqfd is freed', () => {
    const { s, vm } = running({ guest: { spis: [{ intid: 40, edge: true }] } });
    const efd = s.p.eventfd();
    irqfd(s.p, vm, efd, 8);
    expect(irqfd(s.p, vm, efd, 9, KVM_IRQFD_FLAG_DEASSIGN)).toBe(0); // wrong gsi: no match
    expect(s.kernel.refs.count('kvm_irqfd')).toBe(1);
    expect(irqfd(s.p, vm, efd, 8, KVM_IRQFD_FLAG_DEASSIGN)).toBe(0);
    expect(s.kernel.refs.count('kvm_irqfd')).toBe(0);
    writeEventfd(s.p, efd);
    s.kernel.settle();
    expect(s.guest.statsOf(0).irqs).toBe(0);
  });

  it('closing the eventfd (EPOLLHUP) detaches and frees the irqfd and its eventfd context', () => {
    const s = setup();
    const { vm } = buildVm(s);
    const efd = s.p.eventfd();
    const rfd = s.p.eventfd();
    irqfd(s.p, vm, efd, 4, KVM_IRQFD_FLAG_RESAMPLE, rfd);
    const ctxBefore = s.kernel.refs.count('eventfd_ctx');
    s.p.close(efd);
    s.kernel.settle();
    expect(s.kernel.refs.count('kvm_irqfd')).toBe(0);
    expect(s.kvm.vms[0]!.irqfds.resamplers.length).toBe(0);
    expect(s.kernel.refs.count('eventfd_ctx')).toBe(ctxBefore - 1); // rfd's ctx stays with its fd
  });

  it('an eventfd signalled before KVM_IRQFD injects at once (the inject work)', () => {
    const { s, vm } = running({ guest: { spis: [{ intid: 45, edge: true }] } });
    const efd = s.p.eventfd(3, 0);
    irqfd(s.p, vm, efd, 13);
    s.kernel.settle();
    expect(s.guest.statsOf(0).byIntid.get(45)).toBe(1);
  });

  it('a GSI past nr_spis is accepted and never injects', () => {
    const { s, vm } = running();
    const efd = s.p.eventfd();
    expect(irqfd(s.p, vm, efd, 500)).toBe(0);
    writeEventfd(s.p, efd);
    s.kernel.settle();
    expect(s.guest.statsOf(0).irqs).toBe(0);
  });

  it('process exit tears everything down: irqfds, devices, vCPUs and the VM leave no reference', () => {
    const { s, vm } = running({ guest: { spis: [{ intid: 40 }] } });
    const efd = s.p.eventfd();
    const rfd = s.p.eventfd();
    irqfd(s.p, vm, efd, 8, KVM_IRQFD_FLAG_RESAMPLE, rfd);
    writeEventfd(s.p, efd);
    s.kernel.settle();
    s.p.exit();
    s.kernel.settle();
    expect(s.kernel.leaks()).toEqual([]);
    expect(s.kvm.vms.length).toBe(0);
  });
});
