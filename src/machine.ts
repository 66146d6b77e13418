/**
 * createHost: the modelled machine assembled from its layers — engine, GICv2, the host kernel with its IRQ layer,
 * VFIO with vfio-platform, KVM (/dev/kvm), and the platform devices of the host description. This is the public entry point code
 * outside the repository drives (see docs/API.md).
 */

import { errno } from './abi/errno.js';
import { bootHostIrq, type GicVersion, type HostIrq, type HostIrqV2, type HostIrqV3 } from './host/irq/boot.js';
import type { IrqDesc } from './host/irq/irqDesc.js';
import { Kernel } from './host/kernel.js';
import type { Process } from './host/process.js';
import { MAX_PES } from './hw/gicv3/regs.js';
import { ItsMsiBus, MsiDevice } from './hw/msiDevice.js';
import { PlatformDevice } from './hw/platformDevice.js';
import type { GuestFactory } from './kvm/guest.js';
import { Kvm, type KvmTraceHooks } from './kvm/kvm.js';
import { type ForwardingVariant, irqBypassOptionsFor, kvmVfioOpsFor } from './kvm/variants/index.js';
import { type KvmVcpuStat, kvmVcpuOf } from './kvm/vcpu.js';
import type { Engine } from './sim/engine.js';
import { markImmutable } from './sim/snapshot.js';
import type { VfioDevice } from './vfio/device.js';
import { VfioPciDevice, vfioPciOps } from './vfio/pci/vfioPci.js';
import { VfioPlatformDevice, vfioPlatformOps } from './vfio/platform/vfioPlatform.js';
import { Vfio } from './vfio/vfio.js';

export interface HostIrqSpec {
  /** The GIC INTID of the line (an SPI, 32..1019). */
  intid: number;
  trigger: 'level' | 'edge';
}

export interface HostDeviceSpec {
  /** The platform device name ('fff51000.ethernet'), as VFIO_GROUP_GET_DEVICE_FD takes it. */
  name: string;
  iommuGroup: number;
  irqs: HostIrqSpec[];
  /** Whether the device has a reset handler (VFIO_DEVICE_FLAGS_RESET); default true. */
  reset?: boolean;
}

/** An MSI-capable PCI function behind the GICv3 ITS, bound to vfio-pci (only its interrupt side is modelled). */
export interface HostMsiDeviceSpec {
  /** The PCI name ('0000:01:00.0'), as VFIO_GROUP_GET_DEVICE_FD takes it. */
  name: string;
  iommuGroup: number;
  /** The ITS DeviceID of its writes (its requester ID). */
  deviceId: number;
  /** MSI vectors (a power of two, 1..32); its MSI-X table has as many entries. */
  vectors: number;
}

export interface HostOptions {
  cpus?: number;
  devices?: HostDeviceSpec[];
  /** Seed of every PRNG stream of the run. */
  seed?: number;
  /** CPU clock in Hz (converts cycles to time); default 2 GHz. */
  hz?: number;
  /** Cost overrides by name (cycles). */
  costs?: Readonly<Record<string, number>>;
  /**
   * The host's interrupt controller: 'v2' (default; GICv2 with the virtualization extensions) or 'v3' (GICv3 with
   * affinity routing and the system-register CPU interface; no GICv2 compatibility, so a VM needs the vGIC-v3).
   */
  gic?: GicVersion;
  /** INTIDs the GIC implements (multiple of 32); default 256. */
  nrIrqs?: number;
  /** GICv3 only: GICv3.1 Extended SPIs, INTIDs 4096 .. 4096 + nrEspis - 1 (multiple of 32, ≤ 1024); default 0. */
  nrEspis?: number;
  /** List registers per CPU; default 4. */
  nrLrs?: number;
  /** MSI-capable PCI functions bound to vfio-pci (GICv3 only: their interrupts are LPIs through the ITS). */
  msiDevices?: HostMsiDeviceSpec[];
  /** LPIs the GICv3 implements (a multiple of 32); default 0, or 1024 with msiDevices. With LPIs the host boots its ITS driver. */
  nrLpis?: number;
  /** GICv4.1 with this many vPEs (GICv3 with LPIs only): the host boots its GICv4 layer too (host.irq.v4). Default 0. */
  nrVpes?: number;
  /** The guest kernel a vCPU runs (default: a minimal guest that boots the GIC and idles in WFI). */
  guestFactory?: GuestFactory;
  /** KVM tracepoint hooks (kvm_entry, kvm_exit, ...). */
  kvmTrace?: KvmTraceHooks;
  /**
   * The kvm-vfio flavour: 'protocol' (default, the quiesce protocol), the checker's 'naive' and 'rfc-v1', or 'bypass'
   * (the 2015 series' IRQ bypass forwarding of platform SPIs, not upstream) and its checker twin 'bypass-no-bracket';
   * 'vlpi-no-pending-transfer' (the checker's: kvm_vgic_v4_set_forwarding without its transfer of the pending state);
   * 'vlpi-map-invalidates-its-cache' (the checker's fix: set_forwarding drops the vITS translations it cached).
   */
  forwarding?: ForwardingVariant;
  /**
   * Linux IRQ numbering of SPIs: 'linear' (default; never equal to the INTID, as on any DT system today) or 'legacy'
   * (Linux IRQ = INTID for SPIs, as with the arm32 GIC legacy domains of the seed's time).
   */
  irqNumbering?: 'linear' | 'legacy';
}

/** A vCPU's counters (KVM's per-vCPU stats, kvm_vcpu_stat), as `Host.vcpuStats` returns them. */
export interface VcpuStats {
  /** vcpu->vcpu_id. */
  readonly id: number;
  /** The live counters: entries, exits, halts, kicks, signal exits, MMIO exits (kernel/user), ... */
  readonly stat: Readonly<KvmVcpuStat>;
  /** Guest exits by reason: IRQ (MAINTENANCE among them), WFx, DABT_LOW, HVC64, SYS64 (a snapshot). */
  readonly exits: Readonly<Record<string, number>>;
  /** KVM_RUN returns to the VMM by run->exit_reason name (KVM_EXIT_MMIO, KVM_EXIT_INTR, ...; a snapshot). */
  readonly userspaceExits: Readonly<Record<string, number>>;
}

/** One passed-through device: the hardware, its IRQ descriptors and its VFIO side. */
export interface HostDevice {
  readonly spec: HostDeviceSpec;
  readonly hw: PlatformDevice;
  readonly descs: readonly IrqDesc[];
  readonly vfio: VfioDevice;
  readonly vdev: VfioPlatformDevice;
}

/** One MSI-capable function: the hardware (fire its vectors with `hw.fire(k)`) and its vfio-pci side. */
export interface HostMsiDevice {
  readonly spec: HostMsiDeviceSpec;
  readonly hw: MsiDevice;
  readonly vfio: VfioDevice;
  readonly vdev: VfioPciDevice;
}

/** Which host self-check a finding comes from (Host.findings). */
export type HostFindingKind =
  | 'genirq-warn'
  | 'gic-unpredictable'
  | 'vgic-hw-lr-inactive'
  | 'disable-depth'
  | 'left-active'
  | 'still-forwarded'
  | 'leak';

export interface HostFinding {
  readonly kind: HostFindingKind;
  readonly message: string;
}

/** The machine; `I` narrows its IRQ layer to one GIC version when the options fixed it (see createHost). */
export class Host<I extends HostIrq = HostIrq> {
  readonly kernel: Kernel;
  readonly engine: Engine;
  readonly irq: I;
  readonly vfio: Vfio;
  readonly kvm: Kvm;
  readonly devices: HostDevice[] = [];
  readonly msiDevices: HostMsiDevice[] = [];
  private readonly vfioProducers: boolean;

  constructor(opts: HostOptions = {}) {
    checkHostOptions(opts);
    this.kernel = new Kernel({ cpus: opts.cpus ?? 2, seed: opts.seed, hz: opts.hz, costs: opts.costs });
    this.engine = this.kernel.engine;
    const nrLpis = opts.nrLpis ?? ((opts.msiDevices ?? []).length > 0 ? 1024 : 0);
    const { gic, nrIrqs, nrLrs, nrEspis, nrVpes } = opts;
    this.irq = bootHostIrq(this.engine, { gic, nrIrqs, nrLrs, nrEspis, nrLpis, nrVpes }) as I;
    this.vfio = new Vfio(this.kernel);
    this.irq.genirq.domain.identitySpis = opts.irqNumbering === 'legacy';
    this.kvm = new Kvm(this.kernel, this.irq, {
      guestFactory: opts.guestFactory,
      trace: opts.kvmTrace ?? null,
      kvmVfioOps: kvmVfioOpsFor(opts.forwarding ?? 'protocol'),
    });
    const bypass = irqBypassOptionsFor(opts.forwarding ?? 'protocol');
    this.kernel.irqBypass.bracket = bypass.bracket;
    this.kvm.vgicV4TransferPending = opts.forwarding !== 'vlpi-no-pending-transfer';
    this.kvm.vgicV4InvalidateItsCache = opts.forwarding === 'vlpi-map-invalidates-its-cache';
    this.vfioProducers = bypass.producers;
    for (const spec of opts.devices ?? []) this.addDevice(spec);
    for (const spec of opts.msiDevices ?? []) this.addMsiDevice(spec);
  }

  /** Probe an MSI-capable PCI function behind the ITS and bind it to vfio-pci. */
  private addMsiDevice(spec: HostMsiDeviceSpec): void {
    const irq = this.irq as HostIrq;
    if (irq.version !== 'v3' || irq.msiDomain === null) {
      throw new TypeError(`createHost: opts.msiDevices: ${spec.name} needs a GICv3 host with LPIs (gic: 'v3')`);
    }
    if ([...this.devices, ...this.msiDevices].some((d) => d.spec.name === spec.name)) {
      throw new TypeError(`createHost: opts.msiDevices: device ${spec.name} is described twice`);
    }
    const bus = new ItsMsiBus(irq.gic.its!, irq.msiDomain.host.its.physBase);
    const hw = new MsiDevice(spec.name, spec.deviceId, spec.vectors, bus, this.engine.newOid(`${spec.name}.msi`));
    const vdev = new VfioPciDevice(this.kernel, irq.genirq, irq.msiDomain, hw);
    const vfio = this.vfio.registerDevice(spec.name, spec.iommuGroup, vfioPciOps, vdev);
    this.msiDevices.push({ spec, hw, vfio, vdev });
  }

  /** The MSI-capable function `name`: `fire(k)` makes vector k's posted write. */
  msiDevice(name: string): MsiDevice {
    const d = this.msiDevices.find((x) => x.spec.name === name);
    if (d === undefined) throw errno('ENODEV', `host.msiDevice: no MSI device named ${String(name)}`);
    return d.hw;
  }

  /** Probe a platform device: map its INTIDs (irq_create_fwspec_mapping + gic_set_type), bind it to vfio-platform. */
  private addDevice(given: HostDeviceSpec): void {
    // fixed once the device is probed: an immutable copy (the caller's object stays its own), which copies of a state
    // share and the checker's state key hashes once
    const spec = markImmutable(structuredClone(given));
    if (this.devices.some((d) => d.spec.name === spec.name)) {
      throw new TypeError(`createHost: opts.devices: device ${spec.name} is described twice`);
    }
    const dist = this.irq.gic.distributor;
    const descs: IrqDesc[] = [];
    for (const l of spec.irqs) {
      // an SPI, or on a GICv3.1 an Extended SPI (a DT GIC_ESPI cell: gic_irq_domain_translate adds ESPI_BASE_INTID)
      const espi = this.irq.version === 'v3' && this.irq.gic.distributor.isEspi(l.intid);
      if (!espi && (l.intid < 32 || l.intid >= dist.nrIrqs || l.intid > 1019)) {
        throw new TypeError(
          `createHost: opts.devices: device ${spec.name}: INTID ${l.intid} is not an SPI of this GIC (32..${Math.min(dist.nrIrqs - 1, 1019)})`,
        );
      }
      if (
        this.devices.some((d) => d.spec.irqs.some((o) => o.intid === l.intid) || descs.some((x) => x.hwirq === l.intid))
      ) {
        throw new TypeError(`createHost: opts.devices: device ${spec.name}: INTID ${l.intid} is wired twice`);
      }
      descs.push(this.irq.genirq.createMapping(l.intid, l.trigger));
      dist.setConfig(l.intid, l.trigger);
    }
    const hw = new PlatformDevice(spec.name, spec.irqs, dist, 0, this.kernel.engine.newOid(`${spec.name}.regs`));
    const vdev = new VfioPlatformDevice(
      this.kernel,
      this.irq.genirq,
      this.vfio.virqfd,
      hw,
      descs.map((d) => ({ hwirq: d.irq, level: d.trigger === 'level' })),
      spec.reset ?? true,
    );
    vdev.irqBypassProducers = this.vfioProducers;
    const vfio = this.vfio.registerDevice(spec.name, spec.iommuGroup, vfioPlatformOps, vdev);
    this.devices.push({ spec, hw, descs, vfio, vdev });
  }

  /** A new user process (the VMM). */
  process(): Process {
    return this.kernel.process();
  }

  /** The hardware of a device, to drive its lines by index. */
  device(name: string): PlatformDevice {
    const d = this.devices.find((x) => x.spec.name === name);
    if (d === undefined)
      throw errno(
        'ENODEV',
        `host.device: no device named ${String(name)} (have: ${this.devices.map((x) => x.spec.name).join(', ')})`,
      );
    return d.hw;
  }

  /** The counters of the vCPU behind `vcpuFd` in process `p` (a ModelError if it is no vCPU fd). */
  vcpuStats(p: Process, vcpuFd: number): VcpuStats {
    const v = kvmVcpuOf(p, vcpuFd);
    return { id: v.id, stat: v.stat, exits: v.exitsByReason(), userspaceExits: v.userspaceExitsByReason() };
  }

  /** Advance simulated time by `cycles`. */
  run(cycles: number): void {
    if (typeof cycles !== 'number' || !Number.isSafeInteger(cycles) || cycles < 0)
      throw new TypeError(`host.run: cycles must be a non-negative safe integer, got ${String(cycles)}`);
    this.engine.run(cycles);
  }

  /** Run until nothing is runnable or scheduled; a ModelError if the model never quiesces. */
  settle(maxSteps?: number): void {
    if (maxSteps !== undefined && (typeof maxSteps !== 'number' || !Number.isSafeInteger(maxSteps) || maxSteps < 1))
      throw new TypeError(`host.settle: maxSteps must be a positive safe integer, got ${String(maxSteps)}`);
    this.engine.settle(maxSteps);
  }

  /**
   * The invariants that hold at every quiescent point (WARN-free genirq, no unowned INTID taken, GIC never driven
   * into UNPREDICTABLE behaviour, VFIO mask state matching the disable depth) and, with `teardown`, after every fd
   * is closed (no leaked reference, no requested IRQ, no enabled, active or forwarded line). Returns violations.
   */
  checkInvariants(opts: { teardown?: boolean } = {}): string[] {
    return this.findings(opts).map((f) => f.message);
  }

  /** checkInvariants' violations, each with the kind of check that found it (what the checker files it under). */
  findings(opts: { teardown?: boolean } = {}): HostFinding[] {
    const out: HostFinding[] = [];
    const add = (kind: HostFindingKind, message: string) => out.push({ kind, message });
    for (const w of this.irq.genirq.warnings()) add('genirq-warn', `genirq WARN: ${w}`);
    for (const b of this.irq.genirq.badIrqs) add('genirq-warn', `bad IRQ: ${b}`);
    for (let cpu = 0; cpu < this.engine.cpus.length; cpu++) {
      const n = this.irq.gic.cpu(cpu).unpredictableCount + this.irq.gic.vif(cpu).unpredictableCount;
      if (n > 0) add('gic-unpredictable', `GIC: ${n} UNPREDICTABLE access(es) on CPU ${cpu}`);
    }
    if (this.irq.version === 'v3') {
      const g = this.irq.gic;
      const n = (g.distributor.lpis?.unpredictableCount ?? 0) + (g.vlpis?.unpredictableCount ?? 0);
      if (n > 0) add('gic-unpredictable', `GIC: ${n} UNPREDICTABLE redistributor register write(s)`);
    }
    for (const vm of this.kvm.vms) {
      const v = vm.vgic;
      if (v !== null && v.hwLrInactive > 0) {
        add(
          'vgic-hw-lr-inactive',
          `vGIC: ${v.hwLrInactive} HW=1 list register(s) named an inactive physical INTID (${v.hwLrInactiveFirst})`,
        );
      }
    }
    const dist = this.irq.gic.distributor;
    for (const d of this.devices) {
      d.descs.forEach((desc, i) => {
        const irq = d.vdev.irqs[i];
        if (irq?.masked === true && desc.action !== null && desc.depth < 1) {
          add('disable-depth', `${d.spec.name} index ${i}: VFIO masked but ${desc} has disable depth ${desc.depth}`);
        }
        if (!opts.teardown) return;
        const where = `${d.spec.name} index ${i} (${desc})`;
        if (desc.action !== null) add('leak', `${where}: still requested by '${desc.actionName}'`);
        // An enabled line genirq itself records as started and unmasked with no action is what 6.1 leaves after
        // vfio_platform_unmask → enable_irq on a freed line (__enable_irq → irq_startup): kernel state, not a leak.
        const started = desc.started && !desc.masked && desc.action === null;
        if (dist.isEnabled(desc.hwirq) && !started)
          add('leak', `${where}: INTID ${desc.hwirq} still enabled in the GIC`);
        if (dist.isActive(desc.hwirq)) add('left-active', `${where}: INTID ${desc.hwirq} left active`);
        if (desc.forwardedToVcpu) add('still-forwarded', `${where}: still forwarded to a vCPU`);
      });
    }
    if (opts.teardown) {
      for (const leak of this.kernel.leaks()) {
        if (!leak.startsWith('vfio_device ')) add('leak', `leak: ${leak}`);
      }
      for (const d of [...this.devices, ...this.msiDevices]) {
        if (d.vfio.refs !== 1) add('leak', `leak: vfio_device ${d.spec.name} refs=${d.vfio.refs} (1 = registration)`);
        if (d.vfio.openCount !== 0) add('leak', `${d.spec.name}: open count ${d.vfio.openCount} after teardown`);
      }
      const its = this.irq.version === 'v3' ? this.irq.its : null;
      for (const dev of its?.its.devices ?? []) {
        add('leak', `ITS: DeviceID ${dev.deviceId} still mapped (${dev.nrLpis} LPIs from ${dev.lpiBase})`);
      }
    }
    return out;
  }
}

const isInt = (v: unknown, min: number, max: number): boolean =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;

/** createHost's options from code outside the repository: a TypeError naming the first option that does not fit. */
function checkHostOptions(opts: HostOptions): void {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`createHost: opts must be an object`);
  const bad = (what: string, v: unknown, expected: string) =>
    new TypeError(`createHost: opts.${what} must be ${expected}, got ${typeof v === 'bigint' ? `${v}n` : String(v)}`);
  if (opts.gic !== undefined && opts.gic !== 'v2' && opts.gic !== 'v3') throw bad('gic', opts.gic, "'v2' or 'v3'");
  // GICv2: at most 8 CPU interfaces (GICD_ITARGETSR has 8 bits); the GICv3 model: 32 PEs (MAX_PES)
  if (opts.gic === 'v3') {
    if (opts.cpus !== undefined && !isInt(opts.cpus, 1, MAX_PES))
      throw bad('cpus', opts.cpus, `an integer 1..${MAX_PES} (GICv3)`);
  } else if (opts.cpus !== undefined && !isInt(opts.cpus, 1, 8))
    throw bad('cpus', opts.cpus, 'an integer 1..8 (GICv2)');
  if (opts.seed !== undefined && !isInt(opts.seed, 0, 0xffff_ffff))
    throw bad('seed', opts.seed, 'an integer 0..2^32-1');
  if (opts.hz !== undefined && !(typeof opts.hz === 'number' && Number.isFinite(opts.hz) && opts.hz > 0))
    throw bad('hz', opts.hz, 'a positive number');
  if (opts.nrIrqs !== undefined && !(isInt(opts.nrIrqs, 64, 1024) && opts.nrIrqs % 32 === 0))
    throw bad('nrIrqs', opts.nrIrqs, 'a multiple of 32 in 64..1024');
  if (opts.nrLrs !== undefined && !isInt(opts.nrLrs, 1, 64)) throw bad('nrLrs', opts.nrLrs, 'an integer 1..64');
  if (
    opts.nrEspis !== undefined &&
    !(isInt(opts.nrEspis, 0, 1024) && opts.nrEspis % 32 === 0 && (opts.nrEspis === 0 || opts.gic === 'v3'))
  )
    throw bad('nrEspis', opts.nrEspis, 'a multiple of 32 in 0..1024, and 0 unless gic is v3 (GICv3.1 Extended SPIs)');
  for (const [name, c] of Object.entries(opts.costs ?? {}))
    if (!(typeof c === 'number' && Number.isFinite(c) && c >= 0))
      throw bad(`costs.${name}`, c, 'a non-negative number');
  // LPIs are INTIDs 8192 .. 2^16 - 1 of the GICv3's 16 ID bits
  if (opts.nrLpis !== undefined && !(opts.gic === 'v3' && isInt(opts.nrLpis, 32, 57344) && opts.nrLpis % 32 === 0))
    throw bad('nrLpis', opts.nrLpis, "a multiple of 32 in 32..57344, with gic: 'v3'");
  if (opts.nrVpes !== undefined && !(opts.gic === 'v3' && isInt(opts.nrVpes, 1, 65536) && (opts.nrLpis ?? 0) > 0))
    throw bad('nrVpes', opts.nrVpes, "an integer in 1..65536, with gic: 'v3' and nrLpis");
  if (opts.msiDevices !== undefined && !Array.isArray(opts.msiDevices))
    throw bad('msiDevices', opts.msiDevices, 'an array');
  (opts.msiDevices ?? []).forEach((d, i) => {
    if (d === null || typeof d !== 'object') throw bad(`msiDevices[${i}]`, d, 'a device description');
    if (typeof d.name !== 'string' || d.name === '') throw bad(`msiDevices[${i}].name`, d.name, 'a non-empty string');
    if (!isInt(d.iommuGroup, 0, 0x7fff_ffff)) throw bad(`msiDevices[${i}].iommuGroup`, d.iommuGroup, 'a group number');
    if (!isInt(d.deviceId, 0, 0xffff_ffff)) throw bad(`msiDevices[${i}].deviceId`, d.deviceId, 'a 32-bit DeviceID');
    if (!isInt(d.vectors, 1, 32) || (d.vectors & (d.vectors - 1)) !== 0)
      throw bad(`msiDevices[${i}].vectors`, d.vectors, 'a power of two in 1..32');
  });
  if (opts.devices !== undefined && !Array.isArray(opts.devices)) throw bad('devices', opts.devices, 'an array');
  (opts.devices ?? []).forEach((d, i) => {
    if (d === null || typeof d !== 'object') throw bad(`devices[${i}]`, d, 'a device description');
    if (typeof d.name !== 'string' || d.name === '') throw bad(`devices[${i}].name`, d.name, 'a non-empty string');
    if (!isInt(d.iommuGroup, 0, 0x7fff_ffff)) throw bad(`devices[${i}].iommuGroup`, d.iommuGroup, 'a group number');
    if (!Array.isArray(d.irqs) || d.irqs.length === 0) throw bad(`devices[${i}].irqs`, d.irqs, 'a non-empty array');
    d.irqs.forEach((q, j) => {
      if (q === null || typeof q !== 'object' || !isInt(q.intid, 0, 5119))
        throw bad(`devices[${i}].irqs[${j}].intid`, q?.intid, 'an INTID');
      if (q.trigger !== 'level' && q.trigger !== 'edge')
        throw bad(`devices[${i}].irqs[${j}].trigger`, q.trigger, "'level' or 'edge'");
    });
  });
}

/** The machine of `opts`; its `irq` is typed by the GIC version the options name (GICv2 unless `gic: 'v3'`). */
export function createHost(opts?: HostOptions & { gic?: 'v2' }): Host<HostIrqV2>;
export function createHost(opts: HostOptions & { gic: 'v3' }): Host<HostIrqV3>;
export function createHost(opts?: HostOptions): Host;
export function createHost(opts: HostOptions = {}): Host {
  return new Host(opts);
}
