/**
 * Checkable scenarios: a deterministic builder for a fresh machine whose set-up phase runs under the TimedScheduler
 * until quiescent (not explored), then a concurrent phase whose interleavings the checker explores, and the
 * end-of-run observations the invariants (invariants.ts) judge. Exploration is stateless: every schedule starts from
 * the machine the builder made (a copy of it, machineCopy.ts) and replays a prefix of choices.
 */
import { EFD_CLOEXEC, EFD_NONBLOCK } from '../abi/eventfd.js';
import {
  KVM_DEV_VFIO_DEVICE,
  KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ,
  KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ,
  KVM_IRQFD_FLAG_RESAMPLE,
  KVM_RUN,
  KVM_SET_DEVICE_ATTR,
  kvmArchForwardedIrq,
  kvmDeviceAttr,
} from '../abi/kvm.js';
import { VFIO_DEVICE_SET_IRQS, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD } from '../abi/vfio.js';
import { vfioIrqSetEventfdData, vfioIrqSetWithData } from '../abi/vfioStructs.js';
import { createGuestKernel, type GuestKernel } from '../guest/guestKernel.js';
import type { Process, SyscallHandle } from '../host/process.js';
import type { PlatformDevice } from '../hw/platformDevice.js';
import { FORWARDING_VARIANTS, type ForwardingVariant } from '../kvm/variants/index.js';
import type { KvmVm } from '../kvm/vm.js';
import { createHost, type Host, type HostDevice, type HostMsiDevice } from '../machine.js';
import {
  createKvmVfio,
  createQemuVm,
  kvmIrqfd,
  kvmVfioGroupAdd,
  mask,
  openVfioDevice,
  place,
  trigger,
  unmask,
  unmaskEventfd,
} from '../scenario/vmm.js';
import type { Engine, TimerHandler } from '../sim/engine.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { type MsiOp, msiRaceScenario } from './msiRace.js';

export type Variant = ForwardingVariant;
export const VARIANTS: readonly Variant[] = FORWARDING_VARIANTS;

/**
 * A device line the invariants check. `lastOp`: what the scenario's ASSIGN/DEASSIGNs of it leave it in — for a
 * scenario file, the last one that succeeded (a line switched only by failed calls: its set-up state, else
 * 'deassign', i.e. not forwarded); none: never switched.
 */
export interface CheckedLine {
  readonly device: HostDevice;
  readonly line: number;
  readonly lastOp?: 'assign' | 'deassign';
  /** The vINTID the guest sees it as: a vIRQ the guest holds active explains a masked line. */
  readonly guestIntid?: number;
  /** The VM whose guest sees it (default the first). */
  readonly kvmVm?: KvmVm;
}

/**
 * What the guest driver's handler of an MSI vector noted: its runs and, at its last run, the function's message count
 * and the ITS's drops (msiInvariants.ts itsDrops).
 */
export interface MsiDriverCounts {
  readonly name: string;
  readonly runs: number;
  readonly sentAtLastRun: number;
  readonly itsDropsAtLastRun: number;
}

/** An MSI vector the invariants check: the function's vector, the guest driver's handler of it, its vLPI. */
export interface CheckedMsi {
  readonly fn: HostMsiDevice;
  readonly vector: number;
  readonly handler: MsiDriverCounts;
  /** The VM whose guest takes it, and the LPI its vITS translates the message to (the vINTID when forwarded). */
  readonly kvmVm: KvmVm;
  readonly vintid: number;
}

/** A machine in the state the concurrent phase starts from, plus what the end-of-run checks look at. */
export interface CheckInstance {
  /** Every line to check. */
  readonly lines: readonly CheckedLine[];
  /** Every MSI vector to check (none: a scenario of wired lines only). */
  readonly msis?: readonly CheckedMsi[];
  readonly host: Host;
  readonly guest: GuestKernel;
  /** Every VM's guest kernel, when there are several (default: `guest`). */
  readonly guests?: readonly GuestKernel[];
  /** The passed-through device whose line the scenario drives (none: an MSI scenario). */
  readonly device?: HostDevice;
  /** Index of the driven line on the device (level-triggered). */
  readonly line?: number;
  /** Raises the scenario makes in the concurrent phase. */
  readonly raises: number;
  /** The VMM control syscalls of the concurrent phase: finished when the phase completed. */
  readonly control: readonly { what: string; handle: SyscallHandle }[];
  /** Tear the VM down (process exit), then the caller settles and checks the teardown invariants. */
  teardown(): void;
}

export interface CheckableScenario {
  readonly name: string;
  readonly variant: Variant;
  readonly seed: number;
  /** The options that rebuild this scenario (saved in replay files; replay.ts scenarioOfReplay). */
  readonly options: Readonly<CheckOptions>;
  readonly description: string;
  /**
   * Build a fresh host and VMM, run the set-up under the TimedScheduler until quiescent, and arm the concurrent
   * phase (threads submitted, hardware events armed) without running it. Must be deterministic.
   */
  build(): CheckInstance;
}

export interface RaceOptions {
  variant?: Variant;
  /** Assertions of the level line during the concurrent phase (default 1). */
  raises?: number;
  /** Control operations the VMM thread issues in order (default ASSIGN then DEASSIGN). */
  ops?: readonly ('assign' | 'deassign')[];
  /** Seed of the host's PRNG streams (default 1). */
  seed?: number;
  /** The MSI race's VMM calls in order (msiRace.ts). */
  msiOps?: readonly MsiOp[];
  /** Host Linux IRQ numbering (default linear; legacy: Linux IRQ = INTID for SPIs, the 2014 arm32 GIC domain). */
  irqNumbering?: 'linear' | 'legacy';
}

/** Options of every checkable scenario: a built-in one, or a scenario file (its name and text, saved verbatim). */
export interface CheckOptions extends RaceOptions {
  file?: string;
  yaml?: string;
}

export const RACE_DEVICE = 'fff51000.ethernet';
/** Guest SPI number (GSI) of the forwarded line: vINTID 32 + 48 = 80, the same number as the host INTID. */
export const RACE_GSI = 48;

/**
 * The canonical race: a VM with one vCPU (idle guest, a driver for the device's level line), the line wired the
 * QEMU way (irqfd + resamplefd) and kvm-vfio with the device's group. Concurrent phase: the VMM control thread
 * (CPU 0) issues ASSIGN then DEASSIGN of the line, the device asserts the line `raises` times (one hardware event
 * agent, re-armed after each assertion: the raises are ordered, their position against the other agents is free)
 * and the vCPU (CPU 1) runs the guest.
 */
export function raceScenario(opts: RaceOptions = {}): CheckableScenario {
  const variant = opts.variant ?? 'protocol';
  const raises = opts.raises ?? 1;
  const ops = opts.ops ?? ['assign', 'deassign'];
  const seed = opts.seed ?? 1;
  const numbering = opts.irqNumbering ?? 'linear';
  return {
    name: 'assign-race',
    variant,
    seed,
    options: { variant, raises, ops: [...ops], seed, ...(numbering === 'legacy' ? { irqNumbering: numbering } : {}) },
    description: `${ops.join('+')} on a thread while the device asserts a level line ${raises}× and the vCPU runs`,
    build: () => buildRace(variant, raises, ops, seed, numbering),
  };
}

/**
 * The IRQ bypass race: the same machine under a 'bypass' variant (default 'bypass': vfio-platform registers an IRQ
 * bypass producer per trigger, the 2015 series' option), the line wired with irqfd + resamplefd and its VFIO trigger on
 * the irqfd's eventfd, so the set-up ends with the pair connected (the SPI forwarded). Concurrent phase: the VMM
 * re-arms the trigger with the same eventfd (VFIO_DEVICE_SET_IRQS TRIGGER): vfio_set_trigger unregisters the old
 * producer (__disconnect: del_producer back to the irqfd path) and registers the new one (__connect: add_producer
 * forwards again), while the device asserts the line `raises` times and the vCPU runs. (KVM_IRQFD DEASSIGN would
 * remove the consumer instead, but an IRQ in flight then loses its resampler — lost on any variant.)
 */
export function bypassRaceScenario(opts: RaceOptions = {}): CheckableScenario {
  const variant = opts.variant ?? 'bypass';
  const raises = opts.raises ?? 1;
  const seed = opts.seed ?? 1;
  return {
    name: 'bypass-race',
    variant,
    seed,
    options: { variant, raises, seed },
    description: `SET_IRQS TRIGGER re-armed (irqbypass del_producer + add_producer) while the device asserts a level line ${raises}× and the vCPU runs`,
    build: () => buildBypassRace(variant, raises, seed),
  };
}

/** The checkable scenarios by name (scenario files come later). */
export const CHECK_SCENARIOS: Readonly<Record<string, (opts: RaceOptions) => CheckableScenario>> = {
  'assign-race': raceScenario,
  'bypass-race': bypassRaceScenario,
  'msi-race': msiRaceScenario,
};

export function checkScenario(name: string, opts: RaceOptions = {}): CheckableScenario {
  const make = CHECK_SCENARIOS[name];
  if (make === undefined) {
    throw new RangeError(`no checkable scenario '${name}' (have: ${Object.keys(CHECK_SCENARIOS).join(', ')})`);
  }
  return make(opts);
}

function buildRace(
  variant: Variant,
  raises: number,
  ops: readonly ('assign' | 'deassign')[],
  seed: number,
  irqNumbering: 'linear' | 'legacy',
): CheckInstance {
  const m = raceMachine(variant, seed, irqNumbering);
  const { host, device, hw, guest, p, dev } = m;
  const kvfio = createKvmVfio(p, m.qvm.vm);
  kvmVfioGroupAdd(p, kvfio, dev.group);
  runVcpu(m);

  // Concurrent phase. The ioctl arguments are laid out now, so the control thread's body is only the syscalls.
  const fwd = place(p, kvmArchForwardedIrq.encode({ fd: dev.device, irq_index: 0, guest_irq: RACE_GSI }));
  const attrOf = (a: number) =>
    place(p, kvmDeviceAttr.encode({ flags: 0, group: KVM_DEV_VFIO_DEVICE, attr: BigInt(a), addr: BigInt(fwd) }));
  const args = ops.map((o) => ({
    what: o,
    arg: attrOf(o === 'assign' ? KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ : KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ),
  }));
  const handle = p.thread('ctl', 0).submit(
    ops.join('+'),
    new ControlScript(
      p,
      kvfio,
      KVM_SET_DEVICE_ATTR,
      args.map((a) => a.arg),
    ),
  );
  if (raises > 0) host.engine.after(1, new DeviceRaise(host.engine, hw, raises));
  const lastOp = ops.at(-1);
  return new RaceInstance(host, guest, device, raises, ops.join('+'), handle, p, lastOp);
}

/** The VMM control thread's body: its ioctl calls in order (an errno ends it, as it ends the call). */
class ControlScript extends Frame<number> {
  constructor(
    private readonly p: Process,
    private readonly fd: number,
    private readonly request: number,
    private readonly args: readonly number[],
  ) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === this.args.length) return this.return_(0);
    return this.call(this.p.sysIoctl(this.fd, this.request, this.args[this.pc++]!));
  }
}

/** The device asserting its level line `left` more times, each assertion a hardware event after the previous one. */
class DeviceRaise implements TimerHandler {
  readonly name = 'device.raise';
  constructor(
    private readonly engine: Engine,
    private readonly hw: PlatformDevice,
    private left: number,
  ) {}

  fire(): void {
    this.hw.assert(0);
    if (--this.left > 0) this.engine.after(1, this);
  }
}

/** A race's machine at the start of its concurrent phase; teardown is the VMM's exit. */
class RaceInstance implements CheckInstance {
  readonly line = 0;
  readonly lines: readonly CheckedLine[];
  readonly control: readonly { what: string; handle: SyscallHandle }[];

  constructor(
    readonly host: Host,
    readonly guest: GuestKernel,
    readonly device: HostDevice,
    readonly raises: number,
    what: string,
    handle: SyscallHandle,
    private readonly process: Process,
    lastOp: 'assign' | 'deassign' | undefined,
  ) {
    this.lines = [{ device, line: 0, guestIntid: 32 + RACE_GSI, ...(lastOp !== undefined ? { lastOp } : {}) }];
    this.control = [{ what, handle }];
  }

  teardown(): void {
    this.process.exit();
  }
}

function buildBypassRace(variant: Variant, raises: number, seed: number): CheckInstance {
  const m = raceMachine(variant, seed, 'linear');
  const { host, device, hw, guest, p, dev } = m;
  runVcpu(m);

  const arg = place(
    p,
    vfioIrqSetWithData(
      { flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index: 0, start: 0, count: 1 },
      vfioIrqSetEventfdData([m.trig]),
    ),
  );
  const what = 'trigger';
  const handle = p.thread('ctl', 0).submit(what, new ControlScript(p, dev.device, VFIO_DEVICE_SET_IRQS, [arg]));
  if (raises > 0) host.engine.after(1, new DeviceRaise(host.engine, hw, raises));
  return new RaceInstance(host, guest, device, raises, what, handle, p, 'assign');
}

/** The race machine after its set-up ioctls, before its vCPU runs. */
interface RaceMachine {
  readonly host: Host;
  readonly device: HostDevice;
  readonly hw: PlatformDevice;
  readonly guest: GuestKernel;
  readonly p: Process;
  readonly qvm: ReturnType<typeof createQemuVm>;
  readonly dev: ReturnType<typeof openVfioDevice>;
  /** The irqfd's eventfd, also the VFIO trigger. */
  readonly trig: number;
}

/**
 * A VM with one vCPU (idle guest, a driver for the device's level line) and the line wired the QEMU way: MASK, irqfd
 * with resamplefd, UNMASK eventfd, TRIGGER, UNMASK.
 */
function raceMachine(variant: Variant, seed: number, irqNumbering: 'linear' | 'legacy'): RaceMachine {
  const host = createHost({
    cpus: 2,
    seed,
    forwarding: variant,
    irqNumbering,
    devices: [{ name: RACE_DEVICE, iommuGroup: 7, irqs: [{ intid: 80, trigger: 'level' }] }],
  });
  const device = host.devices[0]!;
  const hw: PlatformDevice = device.hw;
  const guest = createGuestKernel({
    engine: host.engine,
    gic: host.irq.gic,
    vcpus: 1,
    devices: [{ device: hw, line: 0, intid: 32 + RACE_GSI, handlerCycles: 0 }],
  });
  host.kvm.guestFactory = guest;
  const p = host.process();
  const qvm = createQemuVm(p, { vcpus: 1 });
  const dev = openVfioDevice(p, 7, RACE_DEVICE);
  const efdFlags = EFD_NONBLOCK | EFD_CLOEXEC;
  mask(p, dev.device, 0);
  const trig = p.eventfd(0, efdFlags);
  const rfd = p.eventfd(0, efdFlags);
  kvmIrqfd(p, qvm.vm, trig, RACE_GSI, KVM_IRQFD_FLAG_RESAMPLE, rfd);
  unmaskEventfd(p, dev.device, 0, rfd);
  trigger(p, dev.device, 0, trig);
  unmask(p, dev.device, 0);
  return { host, device, hw, guest, p, qvm, dev, trig };
}

/** Start the vCPU thread (CPU 1) in KVM_RUN and run the set-up to quiescence. */
function runVcpu(m: RaceMachine): void {
  m.p.thread('vcpu0', 1).ioctlAsync(m.qvm.vcpus[0]!, KVM_RUN, 0);
  m.host.settle();
}
