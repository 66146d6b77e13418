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
 * What cannot be checked (ScenarioCheckError says which and why): sweeps, guest trap-loop workloads
 * (hvc, mmio: they never quiesce), scenarios with no device line driven by a physical workload (nothing to check),
 * `via: eventfd` workloads, and steps other than assign, deassign, close and ioctl in the concurrent phase (an ioctl's
 * `expect` is the timed run's check: here its errno is an outcome like any other, judged by the invariants).
 */

import type { ErrnoError } from '../abi/errno.js';
import { KVM_DEV_VFIO_DEVICE, KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ, KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ } from '../abi/kvm.js';
import { createGuestKernel, type GuestKernel } from '../guest/guestKernel.js';
import type { Process, SyscallHandle } from '../host/process.js';
import type { KvmVm } from '../kvm/vm.js';
import { createHost, type Host, type HostDevice } from '../machine.js';
import { loadScenario } from '../scenario/loader.js';
import { fdRefsOf, type Scenario, type ScenarioStep, stepsForMode } from '../scenario/schema.js';
import { uapiConstant } from '../scenario/vmm.js';
import { callTask, callWhat, kvmRunCall, type ScriptEntry, submitTask, VmmScript } from '../scenario/vmmCall.js';
import { guestGicOptions, scenarioHostOptions, type VmmEvents, VmmInterpreter } from '../scenario/vmmInterpreter.js';
import type { Engine, TimerHandler } from '../sim/engine.js';
import type { CheckableScenario, CheckedLine, CheckInstance, CheckOptions, Variant } from './model.js';

export class ScenarioCheckError extends Error {}

/** The VMM steps the concurrent phase runs (on its VMM thread). */
const CONCURRENT_STEPS: readonly string[] = ['assign', 'deassign', 'close', 'ioctl'];

/** Why a scenario cannot be checked, or null when it can. */
export function uncheckable(s: Scenario): string | null {
  if (s.sweep) return 'a sweep: check one point (set the swept parameter in a copy)';
  if (s.paths) return 'compare paths: check one path (set its parameters and mode in a copy)';
  if (s.devices.some((d) => d.bus === 'pci'))
    return "a PCI function's MSIs (bus: pci): the checker drives platform devices' wired lines only";
  for (const vm of s.vms) {
    const w = vm.guest.workload;
    if (typeof w === 'object' && !('compute' in w)) return 'a guest trap loop (hvc/mmio) never quiesces';
  }
  if (s.workloads.some((x) => x.via === 'eventfd')) return 'a `via: eventfd` workload drives no physical line';
  if (drivenLines(s).length === 0) return 'no device line is driven by a workload: nothing for the invariants to see';
  const { concurrent } = split(s);
  for (const st of concurrent) {
    if (!CONCURRENT_STEPS.includes(st.step))
      return `a '${st.step}' step that waits (at/after): only assign, deassign, close and ioctl run in the concurrent phase`;
  }
  return null;
}

function drivenLines(s: Scenario): { device: string; index: number }[] {
  const out: { device: string; index: number }[] = [];
  for (const w of s.workloads) {
    if (w.via === 'eventfd') continue;
    if (!out.some((x) => x.device === w.device && x.index === w.index)) out.push({ device: w.device, index: w.index });
  }
  return out;
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
  const s = loadScenario(text, file);
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
    description: `${file}: ${concurrent.length > 0 ? concurrent.map(stepName).join(', ') : 'no VMM step'} on a VMM thread while ${drivenLines(s).length} line(s) are asserted ${raises}× each and the vCPU(s) run`,
    build: () => buildFromScenario(s, variant, raises, seed, numbering),
  };
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
  const host = createHost({ ...scenarioHostOptions(s), seed, forwarding: variant, irqNumbering });
  const deviceOf = (name: string): HostDevice => host.devices.find((d) => d.spec.name === name)!;
  const { setup, concurrent } = split(s);
  const wired = stepsOf(s).filter((st) => st.step === 'irqfd');
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
        .filter((st) => st.vm === spec.name)
        .map((st) => ({ device: deviceOf(st.device).hw, line: st.index, intid: 32 + st.gsi, handlerCycles: 0 })),
    }),
  );
  // set-up: a refusal is the scenario's error (a raw ioctl's errno is an outcome, as in the concurrent phase)
  const vmm = new VmmInterpreter(host, p, s, new SetupRefusals());
  vmm.createVms((_spec, i) => guests[i]!);
  for (const st of setup) {
    if (!SETUP_STEPS.includes(st.step))
      throw new ScenarioCheckError(`a '${st.step}' set-up step is not supported by the checker`);
    vmm.exec(st);
  }
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
  const ledger = new SwitchLedger(setupState, switches, script);
  const lines: CheckedLine[] = [];
  for (const l of drivenLines(s)) {
    const device = deviceOf(l.device);
    const w = wired.find((st) => st.device === l.device && st.index === l.index);
    const key = `${l.device}/${l.index}`;
    lines.push(new ScenarioLine(device, l.index, ledger, key, w === undefined ? undefined : vmm.vm(w.vm).kvmVm, w));
    if (raises > 0) host.engine.after(1, new LineRaise(host.engine, device, l.index, raises));
  }
  return new ScenarioInstance(host, guests, lines, raises, control, p);
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

/** A scenario file's machine at the start of its concurrent phase; teardown is the VMM's exit. */
class ScenarioInstance implements CheckInstance {
  readonly guest: GuestKernel;
  readonly device: HostDevice;
  readonly line: number;

  constructor(
    readonly host: Host,
    readonly guests: readonly GuestKernel[],
    readonly lines: readonly CheckedLine[],
    readonly raises: number,
    readonly control: readonly { what: string; handle: SyscallHandle }[],
    private readonly process: Process,
  ) {
    this.guest = guests[0]!;
    this.device = lines[0]!.device;
    this.line = lines[0]!.line;
  }

  teardown(): void {
    this.process.exit();
  }
}
