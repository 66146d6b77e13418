/** Test fixture for forwarding: a host, a VM wired the QEMU way, kvm-vfio with the device's group. */

import { expect } from 'vitest';
import { EFD_NONBLOCK } from '../abi/eventfd.js';
import {
  KVM_DEV_TYPE_VFIO,
  KVM_DEV_VFIO_DEVICE,
  KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ,
  KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ,
  KVM_DEV_VFIO_GROUP,
  KVM_DEV_VFIO_GROUP_ADD,
  KVM_IRQFD_FLAG_RESAMPLE,
  KVM_RUN,
  KVM_SET_DEVICE_ATTR,
  kvmArchForwardedIrq,
} from '../abi/kvm.js';
import { createGuestKernel, type GuestKernel } from '../guest/guestKernel.js';
import { createHost, type Host } from '../machine.js';
import { mask, openVfioDevice, trigger, unmask, unmaskEventfd } from '../scenario/vmm.js';
import type { TimerHandler } from '../sim/engine.js';
import { DEV, ethernetDevice } from '../vfio/testDevice.js';
import { attr, buildVm, createDevice, irqfd, type KvmSetup, place, setAttr, u32Buf } from './testSetup.js';
import type { ForwardingVariant } from './variants/index.js';

export { DEV };
export const GSI = [48, 49]; // guest SPIs: vINTIDs 80 and 81
export const PERIOD = 200_000;

export interface Fixture {
  host: Host;
  guest: GuestKernel;
  s: KvmSetup;
  vm: number;
  vcpus: number[];
  dev: { device: number; group: number; container: number };
  kvfio: number;
  efd: number[];
  resample: number;
  raise(line: number, count: number, start?: number): void;
  assign(index: number, gsi?: number): number;
  deassign(index: number): number;
  assignAsync(index: number, on: boolean): { done: boolean; result(): number };
}

export interface FixtureOptions {
  /** The guest computes instead of idling in WFI (the vCPU stays in guest mode). */
  busy?: boolean;
  vcpus?: number;
  eoiMode?: 0 | 1;
  /** The kvm-vfio flavour (default 'protocol'). */
  forwarding?: ForwardingVariant;
  irqNumbering?: 'linear' | 'legacy';
  /** Level lines of an unused device probed before DEV (INTIDs 100…): they push DEV's Linux IRQ numbers up. */
  padIrqs?: number;
}

/** A VM with one vCPU running (idle guest), the device wired the QEMU way (irqfd + resamplefd), kvm-vfio with its group. */
export function fixture(opts: FixtureOptions = {}): Fixture {
  const pad = Array.from({ length: opts.padIrqs ?? 0 }, (_, i) => ({ intid: 100 + i, trigger: 'level' as const }));
  const host = createHost({
    cpus: 3,
    forwarding: opts.forwarding,
    irqNumbering: opts.irqNumbering,
    devices: [...(pad.length > 0 ? [{ name: 'pad', iommuGroup: 9, irqs: pad }] : []), ethernetDevice()],
  });
  const hw = host.device(DEV);
  const guest = createGuestKernel({
    engine: host.engine,
    gic: host.irq.gic,
    vcpus: opts.vcpus ?? 1,
    eoiMode: opts.eoiMode ?? 0,
    workload: opts.busy === true ? { stepCycles: 200 } : undefined,
    devices: [
      { device: hw, line: 0, intid: 32 + GSI[0]!, handlerCycles: 2000 },
      { device: hw, line: 1, intid: 32 + GSI[1]!, handlerCycles: 2000 },
    ],
  });
  host.kvm.guestFactory = guest;
  const p = host.process();
  const s: KvmSetup = {
    kernel: host.kernel,
    host: host.irq,
    kvm: host.kvm,
    p,
    guest: undefined as never,
    kvmFd: p.open('/dev/kvm'),
  };
  const { vm, vcpus } = buildVm(s, opts.vcpus ?? 1);
  const dev = openVfioDevice(p, 7, DEV);
  // QEMU's vfio-platform irqfd setup: level with a resamplefd as the unmask eventfd, edge with a plain irqfd.
  const efd = [p.eventfd(0, EFD_NONBLOCK), p.eventfd(0, EFD_NONBLOCK)];
  const resample = p.eventfd(0, EFD_NONBLOCK);
  mask(p, dev.device, 0);
  irqfd(p, vm, efd[0]!, GSI[0]!, KVM_IRQFD_FLAG_RESAMPLE, resample);
  unmaskEventfd(p, dev.device, 0, resample);
  trigger(p, dev.device, 0, efd[0]!);
  unmask(p, dev.device, 0);
  irqfd(p, vm, efd[1]!, GSI[1]!);
  trigger(p, dev.device, 1, efd[1]!);
  const kvfio = createDevice(p, vm, KVM_DEV_TYPE_VFIO);
  setAttr(p, kvfio, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, u32Buf(p, dev.group));
  vcpus.forEach((v, i) => {
    p.thread(`vcpu${i}`, 1 + (i % 2)).ioctlAsync(v, KVM_RUN, 0);
  });
  if (opts.busy === true) host.run(5_000_000);
  else host.settle();
  const fwdArg = (index: number, gsi = GSI[index]!) =>
    place(p, kvmArchForwardedIrq.encode({ fd: dev.device, irq_index: index, guest_irq: gsi }));
  const ctl = p.thread('ctl', 0);
  return {
    host,
    guest,
    s,
    vm,
    vcpus,
    dev,
    kvfio,
    efd,
    resample,
    raise(line, count, start = host.engine.now + 1000) {
      for (let i = 0; i < count; i++) {
        const h: TimerHandler = { name: `raise${line}`, fire: () => (line === 0 ? hw.assert(0) : hw.pulse(1)) };
        host.engine.at(start + i * PERIOD, h);
      }
    },
    assign: (index, gsi) => setAttr(p, kvfio, KVM_DEV_VFIO_DEVICE, KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ, fwdArg(index, gsi)),
    deassign: (index) => setAttr(p, kvfio, KVM_DEV_VFIO_DEVICE, KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ, fwdArg(index)),
    assignAsync: (index, on) =>
      ctl.ioctlAsync(
        kvfio,
        KVM_SET_DEVICE_ATTR,
        attr(
          p,
          KVM_DEV_VFIO_DEVICE,
          on ? KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ : KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ,
          fwdArg(index),
        ),
      ),
  };
}

/** DEV as the host probed it. */
export function devOf(f: Fixture) {
  return f.host.devices.find((d) => d.spec.name === DEV)!;
}

export function totals(f: Fixture) {
  const vcpus = f.host.kvm.vms[0]!.vcpus;
  const sum = (k: 'irqExits' | 'maintenanceExits' | 'wfxExits') => vcpus.reduce((a, v) => a + v.stat[k], 0);
  const irqs = devOf(f).vdev.irqs;
  return {
    handled: f.guest.devices.map((d) => d.handled),
    noStatus: f.guest.devices.map((d) => d.noStatus),
    maintenance: sum('maintenanceExits'),
    irqExits: sum('irqExits'),
    unmasks: irqs[0]!.unmasks,
    signals: irqs.map((i) => i.signals),
  };
}

/**
 * Raise `count` IRQs on DEV's forwarded level line 0 and check the forwarded path: each handled once by the guest,
 * no maintenance exit, no VFIO unmask, the INTID left inactive, no invariant broken.
 */
export function expectForwardedLevelRun(f: Fixture, count: number): void {
  const before = totals(f);
  f.raise(0, count);
  f.host.settle();
  const t = totals(f);
  expect(t.handled[0]! - before.handled[0]!).toBe(count);
  expect(t.noStatus[0]).toBe(0);
  expect(t.maintenance - before.maintenance).toBe(0);
  expect(t.unmasks - before.unmasks).toBe(0);
  expect(f.host.irq.gic.distributor.isActive(devOf(f).spec.irqs[0]!.intid)).toBe(false);
  expect(f.host.checkInvariants()).toEqual([]);
}

export function teardownClean(f: Fixture): void {
  f.s.p.exit();
  f.host.settle();
  expect(f.host.checkInvariants({ teardown: true })).toEqual([]);
}
