/**
 * A scenario file under the checker: the YAML scenario becomes a CheckableScenario, with no per-file code.
 *
 * - Set-up (run under the TimedScheduler until quiescent, not explored): the host, devices and VM of the file, the
 *   VMM steps up to the first one that waits (`at` or `after`), the vCPU threads in KVM_RUN.
 * - Concurrent phase (explored): the remaining VMM steps, in order, on one VMM thread (CPU 0); per device line that
 *   a workload drives, one hardware event agent asserting it `raises` times (level: assert, edge: a pulse); the
 *   vCPUs running the guest.
 * - Time is abstracted: `at`, `after`, `delay`, workload periods and costs only order the timed simulator's run; here
 *   every order is possible, which is the point. The guest's retargeting actions (`vms[].retarget`) are all due when
 *   the concurrent phase starts, in file order. The guest is idle between interrupts (a `busy` or `compute` guest
 *   never quiesces, and its compute steps change nothing the invariants look at).
 *
 * Each VM of the file gets its guest kernel and is built the QEMU way, in file order; a step acts on its `vm`.
 *
 * A PCI function's MSI vectors (bus: pci) are checked as msiRace.ts checks its one: the guest's ITS driver serves each
 * wired vector with a counting handler, each driven vector is written `raises` times by a hardware event agent, and
 * msiInvariants.ts judges them; the set-up steps from the first MSI irqfd run once the guests booted (runner.ts).
 *
 * What cannot be checked (ScenarioCheckError says which and why): sweeps, guest trap-loop workloads
 * (hvc, mmio: they never quiesce), scenarios with no device line or MSI vector driven by a physical workload (nothing
 * to check), `via: eventfd` workloads, a driven MSI vector no irqfd step wires, and steps other than assign, deassign,
 * close and ioctl in the concurrent phase (an ioctl's `expect` is the timed run's check: here its errno is an outcome
 * like any other, judged by the invariants).
 */

import type { ErrnoError } from '../abi/errno.js';
import { KVM_DEV_VFIO_DEVICE, KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ, KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ } from '../abi/kvm.js';
import { createGuestKernel, type GuestKernel } from '../guest/guestKernel.js';
import type { GuestItsDevice, GuestItsOptions } from '../guest/itsDriver.js';
import type { Process, SyscallHandle } from '../host/process.js';
import type { KvmVm } from '../kvm/vm.js';
import { createHost, type Host, type HostDevice, type HostMsiDevice } from '../machine.js';
import { loadScenario } from '../scenario/loader.js';
import { type PciFunction, pciFunctions } from '../scenario/pciFunctions.js';
import { fdRefsOf, type Scenario, type ScenarioStep, stepsForMode } from '../scenario/schema.js';
import { uapiConstant } from '../scenario/vmm.js';
import { callTask, callWhat, kvmRunCall, type ScriptEntry, submitTask, VmmScript } from '../scenario/vmmCall.js';
import { guestGicOptions, scenarioHostOptions, type VmmEvents, VmmInterpreter } from '../scenario/vmmInterpreter.js';
import type { Engine, TimerHandler } from '../sim/engine.js';
import { markImmutable } from '../sim/snapshot.js';
import type { CheckableScenario, CheckedLine, CheckedMsi, CheckInstance, CheckOptions, Variant } from './model.js';
import { MsiDriverHandler, MsiRaise } from './msiRace.js';

export class ScenarioCheckError extends Error {}

/** The VMM steps the concurrent phase runs (on its VMM thread). */
const CONCURRENT_STEPS: readonly string[] = ['assign', 'deassign', 'close', 'ioctl'];

/** Why a scenario cannot be checked, or null when it can. */
export function uncheckable(s: Scenario): string | null {
  if (s.sweep) return 'a sweep: check one point (set the swept parameter in a copy)';
  if (s.paths) return 'compare paths: check one path (set its parameters and mode in a copy)';
  for (const vm of s.vms) {
    const w = vm.guest.workload;
    if (typeof w === 'object' && !('compute' in w)) return 'a guest trap loop (hvc/mmio) never quiesces';
  }
  if (s.workloads.some((x) => x.via === 'eventfd')) return 'a `via: eventfd` workload drives no physical line';
  const all = driven(s);
  if (all.length === 0) return 'no device line is driven by a workload: nothing for the invariants to see';
  const steps = stepsOf(s);
  for (const d of all)
    if (d.pci && !steps.some((st) => st.step === 'irqfd' && st.device === d.device && st.index === d.index))
      return `MSI vector ${d.index} of ${d.device} is driven but no irqfd step wires it: no guest LPI takes it`;
  const { concurrent } = split(s);
  for (const st of concurrent) {
    if (!CONCURRENT_STEPS.includes(st.step))
      return `a '${st.step}' step that waits (at/after): only assign, deassign, close and ioctl run in the concurrent phase`;
  }
  return null;
}

/** A device index a workload drives: a platform device's wired line, or (`pci`) an MSI vector of a PCI function. */
interface Driven {
  readonly device: string;
  readonly index: number;
  readonly pci: boolean;
}

function driven(s: Scenario): Driven[] {
  const out: Driven[] = [];
  for (const w of s.workloads) {
    if (w.via === 'eventfd') continue;
    const pci = s.devices.find((d) => d.name === w.device)?.bus === 'pci';
    if (!out.some((x) => x.device === w.device && x.index === w.index))
      out.push({ device: w.device, index: w.index, pci });
  }
  return out;
}

function drivenLines(s: Scenario): Driven[] {
  return driven(s).filter((d) => !d.pci);
}

function drivenVectors(s: Scenario): Driven[] {
  return driven(s).filter((d) => d.pci);
}

function stepsOf(s: Scenario): ScenarioStep[] {
  return stepsForMode(s, s.mode === 'normal' ? 'normal' : 'forwarded');
}

/** Set-up: the steps before the first that waits; concurrent: the rest. */
function split(s: Scenario): { setup: ScenarioStep[]; concurrent: ScenarioStep[] } {
  const steps = stepsOf(s);
  const first = steps.findIndex((st) => st.at !== undefined || st.after !== undefined);
  return first < 0
    ? { setup: steps, concurrent: [] }
    : { setup: steps.slice(0, first), concurrent: steps.slice(first) };
}

/** The line a raw KVM_SET_DEVICE_ATTR ioctl ASSIGNs or DEASSIGNs (kvm_device_attr → kvm_arch_forwarded_irq), if any. */
function switchOf(st: Extract<ScenarioStep, { step: 'ioctl' }>): { key: string; op: 'assign' | 'deassign' } | null {
  const num = (v: unknown): number | undefined =>
    typeof v === 'number' ? v : typeof v === 'string' ? uapiConstant(v) : undefined;
  const f = st.struct?.name === 'kvm_device_attr' ? st.struct.fields : undefined;
  if (f === undefined || num(f.group) !== KVM_DEV_VFIO_DEVICE) return null;
  const attr = num(f.attr);
  const op =
    attr === KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ ? 'assign' : attr === KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ ? 'deassign' : null;
  const fwd = typeof f.addr === 'object' && 'struct' in f.addr ? f.addr.struct.fields : undefined;
  const dev = typeof fwd?.fd === 'string' ? /^device:(.+)$/.exec(fwd.fd)?.[1] : undefined;
  if (op === null || dev === undefined) return null;
  return { key: `${dev}/${num(fwd?.irq_index) ?? 0}`, op };
}

function stepName(st: ScenarioStep): string {
  if (st.step === 'assign' || st.step === 'deassign') return `${st.step} ${st.device}/${st.index}`;
  if (st.step === 'close') return `close ${st.what}${st.device !== undefined ? ` ${st.device}` : ''}`;
  if (st.step === 'ioctl') {
    const sw = switchOf(st);
    const what = sw !== null ? `${sw.op} ${sw.key}` : `${st.request}`;
    return `ioctl ${what}${st.failNth !== undefined ? ` (fail-nth ${st.failNth})` : ''}`;
  }
  return st.step;
}

/** A checkable scenario from a scenario file's text. */
export function scenarioFromYaml(text: string, file: string, opts: CheckOptions = {}): CheckableScenario {
  // the parsed file is the VMM's plan, read by every step and never written: copies share it, keys read it once
  const s = markImmutable(loadScenario(text, file));
  const why = uncheckable(s);
  if (why !== null) throw new ScenarioCheckError(`${file}: cannot be checked: ${why}`);
  const variant = opts.variant ?? 'protocol';
  const raises = opts.raises ?? 1;
  const seed = opts.seed ?? s.seed;
  const numbering = opts.irqNumbering ?? 'linear';
  const { concurrent } = split(s);
  return {
    name: s.name,
    variant,
    seed,
    options: {
      variant,
      raises,
      seed,
      file,
      yaml: text,
      ...(numbering === 'legacy' ? { irqNumbering: numbering } : {}),
    },
    description: `${file}: ${concurrent.length > 0 ? concurrent.map(stepName).join(', ') : 'no VMM step'} on a VMM thread while ${raisesOf(s)} ${raises}× each and the vCPU(s) run`,
    build: () => buildFromScenario(s, variant, raises, seed, numbering),
  };
}

/** What the concurrent phase's hardware agents do, in words. */
function raisesOf(s: Scenario): string {
  const lines = drivenLines(s).length;
  const vectors = drivenVectors(s).length;
  const l = `${lines} line(s) are asserted`;
  const v = `${vectors} MSI vector(s) are written`;
  return vectors === 0 ? l : lines === 0 ? v : `${l} and ${v}`;
}

/** The set-up steps the checker runs (under the timed scheduler, before the concurrent phase). */
const SETUP_STEPS: readonly string[] = ['open-device', 'irqfd', 'assign', 'deassign', 'close', 'ioctl'];

function buildFromScenario(
  s: Scenario,
  variant: Variant,
  raises: number,
  seed: number,
  irqNumbering: 'linear' | 'legacy',
): CheckInstance {
  const mode = s.mode === 'normal' ? 'normal' : 'forwarded';
  const host = createHost({ ...scenarioHostOptions(s, mode), seed, forwarding: variant, irqNumbering });
  const deviceOf = (name: string): HostDevice => host.devices.find((d) => d.spec.name === name)!;
  const { setup, concurrent } = split(s);
  const wired = stepsOf(s).filter((st) => st.step === 'irqfd');
  const msi = new ScenarioMsis(host, s, wired);
  const p = host.process();
  // One guest kernel and one QEMU-built VM per `vms[]` entry, in file order; the vCPUs find their guest by VM.
  const guests = s.vms.map((spec) =>
    createGuestKernel({
      ...(s.vms.length > 1 ? { name: spec.name } : {}), // one VM: the names of single-VM runs stay as they were
      engine: host.engine,
      ...guestGicOptions(host.irq, spec.guest.eoi),
      vcpus: spec.vcpus,
      eoiMode: spec.guest.eoiMode,
      devices: wired
        .filter((st) => st.vm === spec.name && msi.fn(st.device) === undefined)
        .map((st) => ({ device: deviceOf(st.device).hw, line: st.index, intid: 32 + st.gsi, handlerCycles: 0 })),
      ...msi.guestIts(spec.name),
    }),
  );
  // set-up: a refusal is the scenario's error (a raw ioctl's errno is an outcome, as in the concurrent phase)
  const vmm = new VmmInterpreter(host, p, s, new SetupRefusals());
  vmm.createVms((_spec, i) => guests[i]!);
  for (const st of setup)
    if (!SETUP_STEPS.includes(st.step))
      throw new ScenarioCheckError(`a '${st.step}' set-up step is not supported by the checker`);
  // QEMU wires a PCI function's MSIs when the guest's driver enables them, after its ITS driver mapped the device at
  // boot (runner.ts): the set-up steps from the first such irqfd run once the guests have booted
  const booted = setup.findIndex((st) => st.step === 'irqfd' && msi.fn(st.device) !== undefined);
  for (const st of booted < 0 ? setup : setup.slice(0, booted)) vmm.exec(st);
  for (const v of vmm.vms) {
    vmm.startVcpus(
      v,
      (i) => (vmm.vms.length > 1 ? `${v.name}/vcpu${i}` : `vcpu${i}`),
      (fd) => {
        const c = kvmRunCall(fd);
        return { what: callWhat(c), body: callTask(p, c) };
      },
    );
  }
  if (booted >= 0) {
    host.engine.runUntil(() => vmm.vms.every((v) => v.guest.booted), 'the guests to boot');
    for (const st of setup.slice(booted)) vmm.exec(st);
  }
  host.settle();
  // The guest's retargeting actions, due now: each is made by its vCPU the next time that vCPU runs its loop (woken
  // by an interrupt), so it races the VMM's calls and the raises like any other guest step.
  for (const v of vmm.vms)
    for (const r of v.spec.retarget) v.guest.scheduleRetarget({ at: host.engine.now, intid: r.intid, target: r.vcpu });

  // Concurrent phase: the calls are laid out now, so the VMM thread's body is only the syscalls — except a raw ioctl
  // naming an fd an earlier call of this phase creates (`as`), laid out when the VMM thread gets there. A step's
  // switch (ASSIGN/DEASSIGN of a line) is its last call's.
  const calls: ScriptEntry[] = [];
  const switches: ({ key: string; op: 'assign' | 'deassign' } | null)[] = [];
  const bindsLater = new Set(concurrent.flatMap((st) => (st.step === 'ioctl' && st.as !== undefined ? [st.as] : [])));
  for (const st of concurrent) {
    const late = st.step === 'ioctl' && fdRefsOf(st).some((r) => bindsLater.has(r));
    const planned: ScriptEntry[] = late ? [{ kind: 'late', step: st }] : vmm.plan(st);
    const sw =
      st.step === 'assign' || st.step === 'deassign'
        ? { key: `${st.device}/${st.index}`, op: st.step }
        : st.step === 'ioctl'
          ? switchOf(st)
          : null;
    planned.forEach((c, i) => {
      calls.push(c);
      switches.push(i === planned.length - 1 ? sw : null);
    });
  }
  // What the successful switches leave each line in: the set-up's, then every ASSIGN/DEASSIGN that returned.
  const setupState = new Map<string, 'assign' | 'deassign'>();
  for (const st of setup)
    if (st.step === 'assign' || st.step === 'deassign') setupState.set(`${st.device}/${st.index}`, st.step);
  const control: { what: string; handle: SyscallHandle }[] = [];
  let script: VmmScript | null = null;
  if (calls.length > 0) {
    const ctl = p.thread('ctl', 0);
    script = new VmmScript(p, ctl, calls, vmm);
    control.push({
      what: concurrent.map(stepName).join(', '),
      handle: submitTask(ctl, 'vmm', script),
    });
  }
  // what each call switches is fixed once laid out: immutable (copies share it, the state key hashes it once)
  const ledger = new SwitchLedger(setupState, markImmutable(switches), script);
  const lines: CheckedLine[] = [];
  for (const l of drivenLines(s)) {
    const device = deviceOf(l.device);
    const w = wired.find((st) => st.device === l.device && st.index === l.index);
    const key = `${l.device}/${l.index}`;
    lines.push(new ScenarioLine(device, l.index, ledger, key, w === undefined ? undefined : vmm.vm(w.vm).kvmVm, w));
    if (raises > 0) host.engine.after(1, new LineRaise(host.engine, device, l.index, raises));
  }
  const msis = drivenVectors(s).map((d) => msi.checked(d, (vm) => vmm.vm(vm).kvmVm, raises));
  return new ScenarioInstance(host, guests, lines, msis, raises, control, p);
}

/** The checker's set-up refusals: an errno there is the scenario's error. */
class SetupRefusals implements VmmEvents {
  failed(_what: string, e: ErrnoError): void {
    throw e;
  }

  note(): void {}
}

/**
 * What the concurrent phase's ASSIGN/DEASSIGNs of each line left: the set-up's switch, then every call of the
 * script that returned 0 (`switches[i]`: what call i switches, if anything).
 */
class SwitchLedger {
  constructor(
    private readonly setupState: ReadonlyMap<string, 'assign' | 'deassign'>,
    private readonly switches: readonly ({ key: string; op: 'assign' | 'deassign' } | null)[],
    private readonly script: VmmScript | null,
  ) {}

  /** Whether the concurrent phase switches line `key` at all. */
  switched(key: string): boolean {
    return this.switches.some((sw) => sw?.key === key);
  }

  lastOp(key: string): 'assign' | 'deassign' {
    let op = this.setupState.get(key);
    this.script?.outcomes.forEach((o, i) => {
      const sw = this.switches[i];
      if (sw?.key === key && typeof o === 'number') op = sw.op;
    });
    return op ?? 'deassign';
  }
}

/** A line a workload drives; its last op is read at the end of the run, from the switches that succeeded. */
class ScenarioLine implements CheckedLine {
  readonly guestIntid: number | undefined;

  constructor(
    readonly device: HostDevice,
    readonly line: number,
    private readonly ledger: SwitchLedger,
    private readonly key: string,
    readonly kvmVm: KvmVm | undefined,
    wiring: { readonly gsi: number } | undefined,
  ) {
    this.guestIntid = wiring === undefined ? undefined : 32 + wiring.gsi;
  }

  get lastOp(): 'assign' | 'deassign' | undefined {
    return this.ledger.switched(this.key) ? this.ledger.lastOp(this.key) : undefined;
  }
}

/** A workload's line asserted `left` more times (level: assert; edge: a pulse), each a hardware event. */
class LineRaise implements TimerHandler {
  readonly name: string;
  constructor(
    private readonly engine: Engine,
    private readonly device: HostDevice,
    private readonly index: number,
    private left: number,
  ) {
    this.name = `${device.spec.name}/${index}.raise`;
  }

  fire(): void {
    if (this.device.spec.irqs[this.index]!.trigger === 'edge') this.device.hw.pulse(this.index);
    else this.device.hw.assert(this.index);
    if (--this.left > 0) this.engine.after(1, this);
  }
}

/**
 * The scenario's PCI functions under the checker: per MSI vector an irqfd step wires, the guest driver's counting
 * handler (msiRace.ts MsiDriverHandler) on the vector's LPI in the guest's ITS driver; per vector a workload drives,
 * the function writing its message (msiRace.ts MsiRaise) and the vector as the MSI invariants see it.
 */
class ScenarioMsis {
  private readonly fns: readonly PciFunction[];
  private readonly handlers = new Map<string, MsiDriverHandler>();

  constructor(
    private readonly host: Host,
    s: Scenario,
    private readonly wired: readonly Extract<ScenarioStep, { step: 'irqfd' }>[],
  ) {
    this.fns = pciFunctions(s);
    const its = host.irq.version === 'v3' ? host.irq.gic.its : null;
    for (const st of wired) {
      const fn = this.fn(st.device);
      if (fn === undefined || its === null) continue;
      const key = `${st.device}/${st.index}`;
      if (!this.handlers.has(key)) this.handlers.set(key, new MsiDriverHandler(this.hostFn(fn).hw, st.index, its));
    }
  }

  fn(device: string): PciFunction | undefined {
    return this.fns.find((f) => f.name === device);
  }

  private hostFn(f: PciFunction): HostMsiDevice {
    return this.host.msiDevices.find((d) => d.spec.name === f.name)!;
  }

  /** The guest kernel's ITS option for VM `vm`: each function wired into it, one event per wired vector. */
  guestIts(vm: string): { its?: GuestItsOptions } {
    const devices: GuestItsDevice[] = [];
    for (const f of this.fns) {
      const vectors = [
        ...new Set(this.wired.filter((st) => st.vm === vm && st.device === f.name).map((st) => st.index)),
      ];
      const events = vectors.map((k) => ({
        eventId: k,
        lpi: f.lpiBase + k,
        handler: this.handlers.get(`${f.name}/${k}`)!,
      }));
      if (events.length > 0) devices.push({ deviceId: f.guestDeviceId, events });
    }
    return devices.length > 0 ? { its: { devices } } : {};
  }

  /** A driven vector as the invariants check it; its writes armed as hardware events. */
  checked(d: Driven, kvmVmOf: (vm: string) => KvmVm, raises: number): CheckedMsi {
    const f = this.fn(d.device)!;
    const fn = this.hostFn(f);
    const w = this.wired.find((st) => st.device === d.device && st.index === d.index)!;
    const engine = this.host.engine;
    if (raises > 0) engine.after(1, new MsiRaise(`${d.device}/${d.index}.msi`, engine, fn.hw, d.index, raises));
    const handler = this.handlers.get(`${d.device}/${d.index}`)!;
    return { fn, vector: d.index, handler, kvmVm: kvmVmOf(w.vm), vintid: f.lpiBase + d.index };
  }
}

/** A scenario file's machine at the start of its concurrent phase; teardown is the VMM's exit. */
class ScenarioInstance implements CheckInstance {
  readonly guest: GuestKernel;
  readonly device: HostDevice | undefined;
  readonly line: number | undefined;

  constructor(
    readonly host: Host,
    readonly guests: readonly GuestKernel[],
    readonly lines: readonly CheckedLine[],
    readonly msis: readonly CheckedMsi[],
    readonly raises: number,
    readonly control: readonly { what: string; handle: SyscallHandle }[],
    private readonly process: Process,
  ) {
    this.guest = guests[0]!;
    this.device = lines[0]?.device;
    this.line = lines[0]?.line;
  }

  teardown(): void {
    this.process.exit();
  }
}
