/**
 * A forwarded-IRQ machine for the benchmarks, built the way a VMM builds one: a scenario (devices, VMs, and a plan
 * of open-device, irqfd with resamplefd and assign per line) run by the scenario's VMM interpreter
 * (src/scenario/vmmInterpreter.ts: per VM KVM_CREATE_VM + vGIC + vCPUs, VFIO group/container/device, kvm-vfio
 * with the group, the irqfds, KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ per line), one KVM_RUN thread per vCPU — with no runner
 * and no metrics recorders, so what is timed is the model itself.
 *
 * Two hosts: a GICv2 one (vGIC-v2 VMs of ≤ 8 vCPUs, SPIs 32..1019) and, with `gic: 'v3'`, a GICv3.1 one (vGIC-v3 VMs,
 * the guest on irq-gic-v3.c) whose distributor also implements Extended SPIs: lines past the 988 SPIs take ESPIs
 * 4096.. (each VM still numbers its own lines as vSPIs from 32).
 *
 * IRQs come from one self-re-arming engine timer that asserts the lines round-robin every `period` cycles; each line
 * is a level line the guest driver acknowledges in its handler, so the per-IRQ work is the forwarded path only:
 * physical IRQ → exit (or WFI wake-up) → host vector → VFIO handler → irqfd → vGIC HW list register → guest handler
 * → guest EOI deactivates the physical INTID.
 */

import { VGIC_MAX_NR_IRQS } from '../src/abi/kvm.js';
import { GuestKernel } from '../src/guest/guestKernel.js';
import { createHost, type Host, type HostDeviceSpec } from '../src/machine.js';
import { loadScenario } from '../src/scenario/loader.js';
import { GUEST_COMPUTE_QUANTUM } from '../src/scenario/runner.js';
import { stepsForMode } from '../src/scenario/schema.js';
import { callTask, callWhat, kvmRunCall } from '../src/scenario/vmmCall.js';
import { guestGicOptions, scenarioHostOptions, VmmInterpreter } from '../src/scenario/vmmInterpreter.js';
import { costDefs } from '../src/sim/costs.js';
import type { TimerHandler } from '../src/sim/engine.js';
import { resolveCosts } from '../src/sim/profiles.js';

/** GICv2: SPIs are INTIDs 32..1019 — 988 lines at most on one host. */
export const MAX_SPIS = 988;
/** GICv2: 8 CPU interfaces; a GICv2 VM has at most 8 vCPUs (VGIC_V2_MAX_CPUS). */
export const MAX_CPUS = 8;
const FIRST_INTID = 32;
/** The GICv3 host's Extended SPIs (a multiple of 32): room for 1024 lines with its 988 SPIs. */
export const V3_ESPIS = 64;
const ESPI_BASE = 4096;
/** A vGIC (v2 or v3) VM has at most VGIC_MAX_NR_IRQS (992) INTIDs, so 960 SPIs: one VM cannot take every SPI of the host. */
export const MAX_VM_SPIS = VGIC_MAX_NR_IRQS - FIRST_INTID;

export interface FwdMachineOptions {
  /** Forwarded level lines in all (spread over devices of 32 lines, and over the VMs). */
  lines: number;
  /** vCPUs in all: VMs of up to `vcpusPerVm` vCPUs each. */
  vcpus: number;
  /** The host GIC (default 'v2'); 'v3' is a GICv3.1 with V3_ESPIS Extended SPIs. */
  gic?: 'v2' | 'v3';
  /** vCPUs per VM (default and most on GICv2: 8). */
  vcpusPerVm?: number;
  /** Physical CPUs (default min(8, vcpus + 1): CPU 0 for the VMM, one per vCPU up to 7). */
  cpus?: number;
  /** The guest computes (vCPU always running) instead of idling in WFI. */
  busy?: boolean;
  /** Cycles between two raises (all lines together). */
  period?: number;
  /** Guest handler cycles (default 1000, as in the default scenario). */
  handlerCycles?: number;
  /**
   * How many of the lines the raiser cycles over (default: all). Fewer active lines than forwarded ones separates
   * the cost of having many IRQs forwarded (a scan would show) from the cost of touching many (cache footprint).
   */
  activeLines?: number;
  /** Lines per device (default 32); devices are dealt to the VMs round-robin. */
  linesPerDevice?: number;
}

/** Wall milliseconds of the set-up phases (performance.now; the bench times itself, the model never does). */
export interface FwdSetupTimes {
  /** createHost: engine, GIC, genirq, VFIO platform devices. */
  host: number;
  /** KVM_CREATE_VM, vGIC, vCPUs, VFIO group/container/device opens, kvm-vfio device and GROUP_ADD. */
  vms: number;
  /** Per forwarded line: two eventfds, VFIO_DEVICE_SET_IRQS (mask, unmask-eventfd, trigger, unmask), KVM_IRQFD with
   *  resample, KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ — every ioctl through the model's syscall path. */
  forward: number;
  /** KVM_RUN threads started, guests booted (trapped GICD programming) and quiet. */
  boot: number;
}

export interface FwdMachine {
  host: Host;
  guests: GuestKernel[];
  period: number;
  busy: boolean;
  setup: FwdSetupTimes;
  /** IRQs the guests' drivers have served so far. */
  handled(): number;
  /** Raise `n` more IRQs (round-robin over the lines) and run until they are all handled. */
  run(n: number): void;
}

export function buildFwdMachine(opts: FwdMachineOptions): FwdMachine {
  const { lines, vcpus } = opts;
  const LINES_PER_DEVICE = opts.linesPerDevice ?? 32;
  const setup: FwdSetupTimes = { host: 0, vms: 0, forward: 0, boot: 0 };
  let t0 = performance.now();
  const v3 = opts.gic === 'v3';
  const maxLines = v3 ? MAX_SPIS + V3_ESPIS : MAX_SPIS;
  if (lines < 1 || lines > maxLines) throw new Error(`lines must be 1..${maxLines}`);
  const perVm = opts.vcpusPerVm ?? MAX_CPUS;
  if (!v3 && perVm > MAX_CPUS) throw new Error(`a vGIC-v2 VM has at most ${MAX_CPUS} vCPUs`);
  const nVms = Math.ceil(vcpus / perVm);
  const period = opts.period ?? 20_000; // 10 µs at 2 GHz
  const busy = opts.busy === true;
  const cpus = opts.cpus ?? Math.min(MAX_CPUS, vcpus + 1);
  // line k: SPI 32 + k while the SPIs last, then (GICv3) ESPI 4096 + k - 988
  const intidOf = (k: number) => (k < MAX_SPIS ? FIRST_INTID + k : ESPI_BASE + k - MAX_SPIS);
  const nDevices = Math.ceil(lines / LINES_PER_DEVICE);
  if (nDevices < nVms) throw new Error(`${vcpus} vCPUs need ≥ ${nVms} devices (one per VM): raise lines`);
  const devices: HostDeviceSpec[] = [];
  for (let d = 0; d < nDevices; d++) {
    const n = Math.min(LINES_PER_DEVICE, lines - d * LINES_PER_DEVICE);
    devices.push({
      name: `bench${d}`,
      iommuGroup: 10 + d,
      irqs: Array.from({ length: n }, (_, i) => ({
        intid: intidOf(d * LINES_PER_DEVICE + i),
        trigger: 'level' as const,
      })),
    });
  }
  // The machine as a scenario: VM m owns devices m, m + nVms, …; its lines take its SPIs in order (guest INTID
  // 32 + k for its k-th line, GSI k); one irqfd with a resamplefd and one ASSIGN per line.
  const vmDevices = Array.from({ length: nVms }, (_, m) => devices.filter((_, d) => d % nVms === m));
  const vmLines = vmDevices.map((mine) => mine.flatMap((spec) => spec.irqs.map((_, index) => ({ spec, index }))));
  let vcpuBase = 0;
  const vms = vmLines.map((vmLine, m) => {
    if (vmLine.length > MAX_VM_SPIS) {
      throw new Error(`VM ${m} would need ${vmLine.length} SPIs; a VM's vGIC has ${MAX_VM_SPIS}: add vCPUs (VMs)`);
    }
    const nv = Math.min(perVm, vcpus - m * perVm);
    // vCPU j of the machine runs on pCPU 1 + j mod (cpus - 1); CPU 0 is left to the host (the VMM's threads)
    const pinning = Array.from({ length: nv }, (_, i) => 1 + ((vcpuBase + i) % (cpus - 1)));
    vcpuBase += nv;
    return { name: `vm${m}`, vcpus: nv, pinning };
  });
  const vmm = vmDevices.flatMap((mine, m) => [
    ...mine.map((spec) => ({ step: 'open-device', device: spec.name, vm: `vm${m}` })),
    ...vmLines[m]!.flatMap(({ spec, index }, gsi) => [
      { step: 'irqfd', device: spec.name, index, gsi, resample: true, vm: `vm${m}` },
      { step: 'assign', device: spec.name, index, vm: `vm${m}` },
    ]),
  ]);
  const s = loadScenario(
    JSON.stringify({
      name: 'fwd-machine',
      duration: 1,
      seed: 1,
      host: {
        cpus,
        costProfile: 'xgene',
        gic: v3 ? { version: 'v3', nrIrqs: 1024, nrEspis: V3_ESPIS } : { nrIrqs: 1024 },
      },
      devices,
      vms,
      vmm,
    }),
    'fwd-machine.json',
  );
  const known = new Set(costDefs().map((d) => d.name));
  t0 = performance.now(); // the scenario's validation is not the host's set-up
  const host = createHost({
    ...scenarioHostOptions(s),
    seed: 1,
    costs: resolveCosts('xgene', {}, (n) => known.has(n)).costs,
  });
  setup.host = performance.now() - t0;
  // two eventfds per line (trigger + resamplefd, as QEMU wires them): raise RLIMIT_NOFILE as a VMM with many IRQs does
  const p = host.kernel.process({ maxFds: 4096 });
  const interp = new VmmInterpreter(host, p, s, {
    failed: (what, e) => {
      throw new Error(`${what}: ${e.message}`);
    },
    note: () => {},
  });
  const tVms = performance.now();
  interp.createVms(
    (spec, m) =>
      new GuestKernel({
        engine: host.engine,
        ...guestGicOptions(host.irq, undefined),
        vcpus: spec.vcpus,
        name: spec.name,
        devices: vmLines[m]!.map(({ spec: dev, index }, k) => ({
          device: host.device(dev.name),
          line: index,
          intid: FIRST_INTID + k,
          target: k % spec.vcpus,
          handlerCycles: opts.handlerCycles ?? 1000,
        })),
        workload: busy ? { stepCycles: GUEST_COMPUTE_QUANTUM } : undefined,
      }),
  );
  for (const st of stepsForMode(s, 'forwarded')) {
    t0 = performance.now();
    interp.exec(st);
    if (st.step !== 'open-device') setup.forward += performance.now() - t0;
  }
  for (const v of interp.vms) {
    interp.startVcpus(
      v,
      (i) => `${v.name}.vcpu${i}`,
      (fd) => {
        const c = kvmRunCall(fd);
        return { what: callWhat(c), body: callTask(p, c) };
      },
    );
  }
  setup.vms = performance.now() - tVms - setup.forward;
  const guests = interp.vms.map((v) => v.guest);
  const engine = host.engine;
  // boot the guests (trapped GICD writes), then let the machine go quiet (idle) or run a while (busy)
  if (busy) host.run(5_000_000);
  else host.settle();
  setup.boot = performance.now() - t0;

  const hws = host.devices.map((d) => d.hw);
  const handled = () => {
    let n = 0;
    for (const g of guests) for (const d of g.devices) n += d.handled;
    return n;
  };
  const active = Math.min(lines, opts.activeLines ?? lines);
  let next = 0;
  let left = 0;
  const raiser: TimerHandler = {
    name: 'raise',
    fire: () => {
      const k = next;
      next = next + 1 === active ? 0 : next + 1;
      hws[(k / LINES_PER_DEVICE) | 0]!.assert(k % LINES_PER_DEVICE);
      if (--left > 0) engine.after(period, raiser);
    },
  };
  return {
    host,
    guests,
    period,
    busy,
    setup,
    handled,
    run(n: number) {
      const target = handled() + n;
      left = n;
      engine.after(period, raiser);
      if (busy) {
        host.run(n * period + 200_000);
      } else {
        host.settle(Number.MAX_SAFE_INTEGER);
      }
      const got = handled();
      if (got !== target) throw new Error(`forwarded bench: ${got - (target - n)}/${n} IRQs handled`);
    },
  };
}
