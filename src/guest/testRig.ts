// Test-only rig for the guest: an engine, a real GICv2, a platform device, and per vCPU a host thread running a
// minimal KVM-like run loop of its own (KVM proper is not used): enter the guest; on a data abort emulate the GICD
// (a tiny fake register file, or the real vGIC MMIO emulation); on WFI poll until an LR is pending; re-enter.
import { Gic } from '../hw/gic/gic.js';
import { LrState, lrState } from '../hw/gic/listRegister.js';
import { GICH_HCR_EN } from '../hw/gic/regs.js';
import { PlatformDevice, type PlatformIrqLine } from '../hw/platformDevice.js';
import { ESR_ELx_EC_DABT_LOW, ESR_ELx_EC_WFx } from '../kvm/arm/esr.js';
import type { Vgic, VgicCpu } from '../kvm/vgic/vgic.js';
import { vgicMmioRead, vgicMmioWrite } from '../kvm/vgic/vgicMmioV2.js';
import { defineCost } from '../sim/costs.js';
import type { GuestCpu } from '../sim/cpu.js';
import { Engine } from '../sim/engine.js';
import { enterGuest, op, type Task, type TaskGen } from '../sim/task.js';
import type { GuestDeviceLineOptions } from './deviceDriver.js';
import { VIRT_GICD_BASE } from './gicDriver.js';
import { createGuestKernel, type GuestKernel, type GuestKernelOptions } from './guestKernel.js';

const C_TEST_POLL = defineCost('test_guest_rig_poll', 100, 'test rig only: host run loop polling for a pending LR');

export interface GicdAccess {
  vcpu: number;
  at: number;
  write: boolean;
  offset: number;
  len: number;
  data: number;
}

export interface RigOptions {
  vcpus?: number;
  lines?: PlatformIrqLine[];
  /** Guest driver options per device line (device filled in); default one per line. */
  deviceOpts?: Omit<GuestDeviceLineOptions, 'device' | 'line'>[];
  kernel?: Omit<GuestKernelOptions, 'engine' | 'gic' | 'vcpus' | 'devices'>;
  /** Emulate the GICD with the real vGIC instead of the fake register file. */
  vgic?: { vgic: Vgic; vcpus: VgicCpu[] };
  /** Build the vGIC after the engine and GIC exist. */
  makeVgic?: (engine: Engine, gic: Gic) => { vgic: Vgic; vcpus: VgicCpu[] };
  nrIrqs?: number;
}

export interface Rig {
  engine: Engine;
  gic: Gic;
  dev: PlatformDevice;
  kernel: GuestKernel;
  hosts: Task[];
  guests: GuestCpu[];
  gicd: GicdAccess[];
  /** The fake GICD's 32-bit words by offset. */
  fakeRegs: Map<number, number>;
  exits: { vcpu: number; reason: number }[];
  vgic: { vgic: Vgic; vcpus: VgicCpu[] } | null;
}

function lrPending(gic: Gic, cpu: number): boolean {
  const vif = gic.vif(cpu);
  for (let i = 0; i < vif.nrLrs; i++) if ((lrState(vif.readLr(i)) & LrState.Pending) !== 0) return true;
  return false;
}

export function makeRig(opts: RigOptions = {}): Rig {
  const nrVcpus = opts.vcpus ?? 1;
  const nrIrqs = opts.nrIrqs ?? 128;
  const engine = new Engine({ cpus: nrVcpus });
  const gic = new Gic({
    nrCpus: nrVcpus,
    nrIrqs,
    onVirqLineChange: (cpu, level) => engine.setVirqLine(cpu, level),
  });
  const lines = opts.lines ?? [{ intid: 40, trigger: 'level' }];
  const dev = new PlatformDevice('dev0', lines, gic.distributor);
  const vg = opts.makeVgic ? opts.makeVgic(engine, gic) : (opts.vgic ?? null);
  const devices = lines.map((_, i) => ({ ...(opts.deviceOpts?.[i] ?? {}), device: dev, line: i }));
  const kernel = createGuestKernel({ ...(opts.kernel ?? {}), engine, gic, vcpus: nrVcpus, devices });
  const gicd: GicdAccess[] = [];
  const fakeRegs = new Map<number, number>();
  fakeRegs.set(0x4, ((nrIrqs >> 5) - 1) | ((nrVcpus - 1) << 5));
  const exits: { vcpu: number; reason: number }[] = [];
  const hosts: Task[] = [];
  const guests: GuestCpu[] = [];

  function emulate(i: number, g: GuestCpu): void {
    const offset = g.exitArg - VIRT_GICD_BASE;
    const { isWrite, len, data } = g.mmio;
    gicd.push({ vcpu: i, at: engine.now, write: isWrite, offset, len, data });
    if (vg !== null) {
      const v = vg.vcpus[i]!;
      if (isWrite) vgicMmioWrite(v, offset, len, data);
      else g.trapTask!.resumeValue = vgicMmioRead(v, offset, len);
      return;
    }
    const word = offset & ~3;
    const shift = (offset & 3) * 8;
    const old = fakeRegs.get(word) ?? 0;
    if (isWrite) {
      const mask = len === 1 ? 0xff << shift : 0xffffffff;
      fakeRegs.set(word, ((old & ~mask) | ((data << shift) & mask)) >>> 0);
    } else {
      g.trapTask!.resumeValue = len === 1 ? (old >>> shift) & 0xff : old;
    }
  }

  function* runLoop(i: number): TaskGen {
    const g = guests[i]!;
    const vif = gic.vif(i);
    if (vg !== null) vg.vgic.kvmVgicLoad(vg.vcpus[i]!, vif);
    else vif.writeHcr(GICH_HCR_EN);
    for (;;) {
      if (vg !== null) vg.vgic.kvmVgicFlushHwstate(vg.vcpus[i]!);
      yield enterGuest(g);
      if (vg !== null) vg.vgic.kvmVgicSyncHwstate(vg.vcpus[i]!);
      exits.push({ vcpu: i, reason: g.exitReason });
      if (g.exitReason === ESR_ELx_EC_DABT_LOW) emulate(i, g);
      else if (g.exitReason === ESR_ELx_EC_WFx) {
        const pending = () => (vg !== null ? vg.vgic.kvmVgicVcpuPendingIrq(vg.vcpus[i]!) : lrPending(gic, i));
        while (!pending()) yield op(C_TEST_POLL);
      }
      yield op(C_TEST_POLL);
    }
  }

  for (let i = 0; i < nrVcpus; i++) {
    const host = engine.spawn(`vcpu${i}`, i, runLoop(i));
    hosts.push(host);
    guests.push(kernel.createGuestCpu(i, host));
  }
  return { engine, gic, dev, kernel, hosts, guests, gicd, fakeRegs, exits, vgic: vg };
}

/** Run until every vCPU has booted and sits in WFI (its host thread polling). */
export function bootRig(r: Rig): void {
  r.engine.runUntil(() => r.kernel.booted, 'guest boot');
  r.engine.runUntil(() => r.kernel.vcpus.every((v) => v.stats.wfis > 0), 'guest idle');
  r.engine.run(1000);
}
