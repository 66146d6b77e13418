/**
 * The real side of the ABI fuzzer: a host with two platform devices in separate IOMMU groups, one VMM process, and
 * the raw syscalls the commands issue (structs laid out in the process's memory, as a VMM would).
 */
import { ErrnoError } from '../abi/errno.js';
import { createGuest } from '../createGuest.js';
import type { Process, SyscallHandle } from '../host/process.js';
import { DefaultGuest } from '../kvm/guest.js';
import { createHost, type Host, type HostDeviceSpec, type HostMsiDeviceSpec } from '../machine.js';

/** The passed-through devices: index 0 has a level and an edge line, index 1 one level line. */
export const FUZZ_DEVICES: readonly HostDeviceSpec[] = [
  {
    name: 'fff51000.ethernet',
    iommuGroup: 7,
    irqs: [
      { intid: 80, trigger: 'level' },
      { intid: 81, trigger: 'edge' },
    ],
  },
  { name: 'fff52000.serial', iommuGroup: 8, irqs: [{ intid: 82, trigger: 'level' }] },
];

/** The MSI flavour's vfio-pci function (msiCommands.ts): 4 MSI / MSI-X vectors, ITS DeviceID 9, IOMMU group 3. */
export const FUZZ_MSI_DEVICE: HostMsiDeviceSpec = { name: '0000:02:00.0', iommuGroup: 3, deviceId: 9, vectors: 4 };

/** The fixed host: 'gicv2' (commands.ts) or 'msi', a GICv3 host with an ITS, the pci function and device 0 beside it. */
export type FuzzFlavour = 'gicv2' | 'msi';

/** An address no allocation ever covers (the first 64 KiB are never mapped): every access faults. */
export const BAD_PTR = 0x10;

/** What a syscall did: its result, or the errno name it failed with. */
export type Outcome = { readonly ok: true; readonly value: number } | { readonly ok: false; readonly errno: string };

export class FuzzMachine {
  readonly host: Host;
  readonly p: Process;
  readonly guest: DefaultGuest;
  /** KVM_RUN calls left running (the vCPU threads). */
  readonly runs: SyscallHandle[] = [];
  /** IRQs the guests acknowledged, and device line raises. */
  raised = 0;
  private threads = 0;

  constructor(flavour: FuzzFlavour = 'gicv2') {
    // The guest enables the vINTIDs the fuzzer routes to (guest SPIs 48..51); only 80 (gsi 48) is level, and the
    // commands give gsi 48 a resampler: a level vINTID behind a plain irqfd stays asserted and storms the guest.
    this.guest = new DefaultGuest({
      spis: [{ intid: 80 }, { intid: 81, edge: true }, { intid: 82, edge: true }, { intid: 83, edge: true }],
    });
    this.host =
      flavour === 'gicv2'
        ? createHost({ cpus: 2, devices: [...FUZZ_DEVICES], guestFactory: this.guest })
        : createHost({ cpus: 2, gic: 'v3', devices: [FUZZ_DEVICES[0]!], msiDevices: [FUZZ_MSI_DEVICE] });
    // the MSI flavour's vCPUs run an idle guest over the GICv3 system registers (no ITS driver: it maps nothing)
    if (flavour === 'msi') createGuest(this.host, { vcpus: 2 });
    this.p = this.host.process();
  }

  get delivered(): number {
    return this.guest.totalIrqs;
  }

  /** Run `fn` (a syscall); an ErrnoError becomes the outcome, every other exception propagates. */
  attempt(fn: () => number): Outcome {
    try {
      return { ok: true, value: fn() };
    } catch (e) {
      if (e instanceof ErrnoError) return { ok: false, errno: e.errno };
      throw e;
    }
  }

  /** Bytes in user memory (freed by `free`), or BAD_PTR. */
  place(bytes: Uint8Array, bad = false): number {
    if (bad) return BAD_PTR;
    return this.p.mem.allocBytes(bytes);
  }

  free(addr: number): void {
    if (addr !== BAD_PTR && addr !== 0) this.p.mem.free(addr);
  }

  /** ioctl with a struct argument placed for the call and freed after it; `after` reads results back first. */
  ioctlStruct(fd: number, req: number, bytes: Uint8Array, bad: boolean, after?: (addr: number) => void): Outcome {
    const a = this.place(bytes, bad);
    try {
      return this.attempt(() => {
        const r = this.p.ioctl(fd, req, a);
        after?.(a);
        return r;
      });
    } finally {
      this.free(a);
    }
  }

  /** Start KVM_RUN on a new thread of the process; it stays in the guest until the process exits. */
  startRun(fd: number, req: number): Outcome {
    const th = this.p.thread(`vcpu-run${this.threads++}`, 1);
    const h = th.ioctlAsync(fd, req, 0);
    this.settle();
    if (!h.done) {
      this.runs.push(h);
      return { ok: true, value: -1 };
    }
    return this.attempt(() => h.result());
  }

  /** A device raises line `line` (level: asserted for a while, then withdrawn; edge: one pulse); IRQs flow. */
  raise(dev: number, line: number): void {
    const spec = FUZZ_DEVICES[dev]!;
    const hw = this.host.device(spec.name);
    this.raised++;
    if (spec.irqs[line]!.trigger === 'level') {
      hw.assert(line);
      this.host.run(300_000);
      hw.deassert(line);
    } else {
      hw.pulse(line);
    }
    this.settle();
  }

  /** Quiesce; a model that has not after 5 M steps is reported (the default 50 M takes minutes to give up). */
  settle(): void {
    this.host.settle(5_000_000);
  }
}
