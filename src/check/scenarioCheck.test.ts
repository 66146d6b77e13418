import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expandPaths, loadScenario } from '../scenario/loader.js';
import { findUncopyable } from '../sim/snapshot.js';
import { explore, replay } from './explore.js';
import type { InvariantName } from './invariants.js';
import { startsFromCopy } from './machineCopy.js';
import { raceScenario } from './model.js';
import { pct } from './pct.js';
import { formatReplayFile, parseReplayFile, replayFile, replayFileOf } from './replay.js';
import { ScenarioCheckError, scenarioFromYaml, uncheckable } from './scenarioCheck.js';

const DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));
const text = (name: string): string => readFileSync(`${DIR}${name}.yaml`, 'utf8');

/** The shipped scenarios the checker can run (docs/CLI.md), and why the others cannot be. */
const CHECKABLE = [
  'assign-deassign-inflight',
  'check-assign-before-vcpu',
  'check-assign-race',
  'check-bad-gsi',
  'check-closed-fd',
  'check-deassign-unassigned',
  'check-enomem',
  'check-msi-readd',
  'check-msi-rearm',
  'check-retarget',
  'check-two-vms',
  'default',
  'edge',
  'gicv3-default',
  'lr-overflow',
  'multi-vcpu-retarget',
  'teardown-inflight',
  'virq-completion',
] as const;
const UNCHECKABLE: Readonly<Record<string, RegExp>> = {
  hypercall: /trap loop/,
  'io-latency-in': /via: eventfd/,
  'io-latency-out': /trap loop/,
  'rate-sweep': /a sweep/,
  'compare-paths': /compare paths: check one path/,
};

describe('scenario files under the checker', () => {
  it('the shipped scenarios that can be checked build; the others say why not', () => {
    for (const f of CHECKABLE) expect(uncheckable(loadScenario(text(f), f))).toBeNull();
    for (const [f, why] of Object.entries(UNCHECKABLE)) {
      expect(uncheckable(loadScenario(text(f), f))).toMatch(why);
      expect(() => scenarioFromYaml(text(f), f)).toThrow(ScenarioCheckError);
    }
    // compare-paths' vlpi-v41 column on its own: a PCI function's MSI, checkable like a wired line
    const msi = expandPaths(loadScenario(text('compare-paths'), 'compare-paths'))[3]!.scenario;
    expect(uncheckable(msi)).toBeNull();
  });

  it('check-assign-race.yaml is the built-in race: same search, same counterexample (naive)', () => {
    const file = explore(scenarioFromYaml(text('check-assign-race'), 'check-assign-race', { variant: 'naive' }), {
      bound: 1,
    });
    const builtin = explore(raceScenario({ variant: 'naive' }), { bound: 1 });
    expect(file.stats.schedules).toBe(builtin.stats.schedules);
    expect(file.counterexample!.violations.map((v) => v.invariant)).toEqual(['no-irq-left-active']);
    expect(file.counterexample!.schedule).toEqual(builtin.counterexample!.schedule);
  });

  it('a replay file of a scenario file carries its text and reproduces without reading the file', () => {
    const sc = scenarioFromYaml(text('assign-deassign-inflight'), 'scenarios/assign-deassign-inflight.yaml', {
      variant: 'naive',
    });
    const cx = explore(sc, { bound: 1 }).counterexample!;
    const f = parseReplayFile(formatReplayFile(replayFileOf(sc, cx.violations[0]!.invariant, cx.schedule)));
    expect(f.options.file).toBe('scenarios/assign-deassign-inflight.yaml');
    expect(f.options.yaml).toBe(text('assign-deassign-inflight'));
    expect(replayFile(f).violations.map((v) => v.invariant)).toEqual(cx.violations.map((v) => v.invariant));
  });

  it('protocol: the default order of every checkable shipped scenario satisfies every invariant', () => {
    for (const f of CHECKABLE) expect(replay(scenarioFromYaml(text(f), f), []).violations).toEqual([]);
  });

  it('every checkable shipped scenario holds no closure: its schedules start from copies of one build', () => {
    for (const f of CHECKABLE) {
      const sc = scenarioFromYaml(text(f), f);
      expect(findUncopyable(sc.build()), f).toEqual([]);
      // two schedules: the first builds, both run on copies; the second still judges the lines by its own outcomes
      expect(replay(sc, []).violations).toEqual([]);
      expect(replay(sc, []).violations).toEqual([]);
      expect(startsFromCopy(sc), f).toBe(true);
    }
  });
});

/**
 * rfc-v1 over the shipped checkable scenarios (docs/CHECKER.md has the defect table): the invariant each one's
 * default order violates first, with the host's Linux IRQ numbers linear (today's arm64) and legacy (= INTID).
 */
describe('rfc-v1 (the seed) under the checker', () => {
  const first = (numbering: 'linear' | 'legacy'): Record<string, InvariantName | 'none'> => {
    const out: Record<string, InvariantName | 'none'> = {};
    for (const f of CHECKABLE) {
      const sc = scenarioFromYaml(text(f), f, { variant: 'rfc-v1', irqNumbering: numbering });
      out[f] = replay(sc, []).violations[0]?.invariant ?? 'none';
    }
    return out;
  };

  it('linear numbering: the Linux IRQ number as the HW INTID crashes the first forwarded delivery', () => {
    expect(first('linear')).toEqual({
      'assign-deassign-inflight': 'no-model-error',
      'check-assign-before-vcpu': 'no-model-error',
      'check-assign-race': 'none',
      'check-bad-gsi': 'no-model-error',
      'check-closed-fd': 'no-model-error',
      'check-deassign-unassigned': 'no-model-error',
      'check-enomem': 'no-model-error',
      'check-msi-readd': 'none',
      'check-msi-rearm': 'none', // no wired line: rfc-v1's kvm-vfio switch is not on an MSI's path
      'check-retarget': 'none',
      'check-two-vms': 'no-gic-unpredictable',
      default: 'no-model-error',
      edge: 'no-model-error',
      // a GICv3 LR takes the small Linux IRQ number as pINTID: the guest's EOI deactivates that one, not the line's
      'gicv3-default': 'no-irq-left-active',
      'lr-overflow': 'no-model-error',
      'multi-vcpu-retarget': 'no-model-error',
      'teardown-inflight': 'no-irq-left-forwarded',
      'virq-completion': 'no-model-error',
    });
  });

  it('legacy numbering: the blind GICC_DIR of CLEANUP at teardown; the forwarded state outlives VFIO’s trigger', () => {
    expect(first('legacy')).toEqual({
      'assign-deassign-inflight': 'no-gic-unpredictable',
      'check-assign-before-vcpu': 'no-model-error',
      'check-assign-race': 'none',
      'check-bad-gsi': 'no-model-error',
      'check-closed-fd': 'no-model-error',
      'check-deassign-unassigned': 'no-model-error',
      'check-enomem': 'no-irq-left-forwarded',
      'check-msi-readd': 'none',
      'check-msi-rearm': 'none',
      'check-retarget': 'none',
      'check-two-vms': 'no-gic-unpredictable',
      default: 'no-gic-unpredictable',
      edge: 'no-gic-unpredictable',
      'gicv3-default': 'no-gic-unpredictable',
      'lr-overflow': 'no-gic-unpredictable',
      'multi-vcpu-retarget': 'no-gic-unpredictable',
      'teardown-inflight': 'no-irq-left-forwarded',
      'virq-completion': 'no-gic-unpredictable',
    });
  });

  it('the race file at preemption bound 1: ASSIGN inside the VFIO handler leaves the automask (legacy numbering)', () => {
    const sc = scenarioFromYaml(text('check-assign-race'), 'check-assign-race', {
      variant: 'rfc-v1',
      irqNumbering: 'legacy',
    });
    const cx = explore(sc, { bound: 1 }).counterexample!;
    expect(cx.violations.map((v) => v.invariant)).toContain('no-irq-left-disabled');
  });

  it('disable_irq in DEASSIGN spins while the guest holds the forwarded INTID active: a livelock, spinner named', () => {
    // the race file with a guest that never deactivates (scenario `guest.eoi: never`)
    const yaml = text('check-assign-race').replace('workload: idle }', 'workload: idle, eoi: never }');
    const sc = scenarioFromYaml(yaml, 'no-eoi', { variant: 'rfc-v1', irqNumbering: 'legacy' });
    const r = pct(sc, { runs: 200, depth: 2, seed: 1 });
    const v = r.counterexample!.violations[0]!;
    expect(v.invariant).toBe('no-livelock');
    expect(v.message).toMatch(/cpu0\(ctl-\d+\) polling irq_desc\.lock/);
    expect(r.stats.budgetHit).toBe(0);
    expect(pct(scenarioFromYaml(yaml, 'no-eoi'), { runs: 50, depth: 2, seed: 1 }).counterexample).toBeNull();
  });
});

/**
 * A scenario file with a vfio-pci function (bus: pci) under the checker: its MSI workloads are the concurrent
 * writes, the VMM steps after the first timed one run on the VMM thread, msiInvariants.ts judges the vectors.
 */
describe('MSI scenario files under the checker (check-msi-rearm.yaml)', () => {
  const rearm = text('check-msi-rearm');
  /** KVM_IRQFD DEASSIGN of vector 0's irqfd (irqfd_shutdown → del_consumer → its_unmap_vlpi), the phase's first step. */
  const IRQFD_DEASSIGN = `
  - step: ioctl
    at: 50us
    fd: vm
    request: KVM_IRQFD
    struct: { name: kvm_irqfd, fields: { fd: "irqfd:0000:01:00.0/0", gsi: 224, flags: KVM_IRQFD_FLAG_DEASSIGN } }
`;
  /** The file with its concurrent VMM steps replaced (the set-up and the workloads kept). */
  const withSteps = (steps: string): string =>
    rearm.replace(/ {2}# DATA_EVENTFD[\s\S]*(?=workloads:)/, steps.replace(/^\n/, ''));

  it('the set-up ends with both vectors forwarded as vLPIs 8192 and 8193 of the vCPU’s vPE, the vCPU in WFI', () => {
    const inst = scenarioFromYaml(rearm, 'check-msi-rearm').build();
    expect(inst.lines).toEqual([]);
    expect(inst.msis!.map((m) => [m.vector, m.vintid, m.handler.name])).toEqual([
      [0, 8192, 'vfio-msi0'],
      [1, 8193, 'vfio-msi1'],
    ]);
    for (const m of inst.msis!) expect(m.kvmVm.vgic!.lpis.get(m.vintid)!.hw).toBe(true);
    expect(inst.host.kvm.vms[0]!.vcpus[0]!.inWfi).toBe(true);
    expect(inst.control.map((c) => c.what)).toEqual(['ioctl VFIO_DEVICE_SET_IRQS']);
  });

  it("'protocol': every schedule within preemption bound 1 satisfies every invariant (622 schedules)", () => {
    const r = explore(scenarioFromYaml(rearm, 'check-msi-rearm'), { bound: 1 });
    expect(r.counterexample).toBeNull();
    expect(r.completeness).toBe('bounded');
    expect(r.stats.schedules).toBe(622);
  });

  it("'vlpi-no-pending-transfer' from the file: set_forwarding leaves pending_latch, a HW=1 LR names INTID 0", () => {
    const sc = scenarioFromYaml(rearm, 'check-msi-rearm', { variant: 'vlpi-no-pending-transfer' });
    const r = explore(sc, { bound: 1 });
    const cx = r.counterexample!;
    expect(r.stats.schedules).toBe(160);
    expect(cx.violations.map((v) => v.invariant)).toEqual(['no-gic-unpredictable', 'hw-lr-names-active-intid']);
    expect(cx.violations[1]!.message).toContain('vINTID 8192 → inactive INTID 0');
    const f = parseReplayFile(formatReplayFile(replayFileOf(sc, 'no-gic-unpredictable', cx.schedule)));
    expect(f.options.yaml).toBe(rearm);
    expect(replayFile(f).violations).toEqual(cx.violations);
  });

  it('the VMM taking the vector away accounts for its messages: KVM_IRQFD DEASSIGN, close of the device fd', () => {
    const deassign = withSteps(`${IRQFD_DEASSIGN}  - { step: close, what: device, device: "0000:01:00.0" }
`);
    const r = explore(scenarioFromYaml(deassign, 'unwire'), { bound: 1 });
    expect(r.counterexample).toBeNull();
    expect(r.stats.schedules).toBe(314);
  });

  /**
   * Upstream (Linux 6.1) as modelled, with the protocol: kvm_vgic_v4_set_forwarding resolves the event through
   * vgic_its_resolve_lpi while irq->hw is still false, which caches the translation; once the vLPI is mapped,
   * vgic_its_inject_cached_translation (which does not look at irq->hw) can still set the emulated pending_latch of
   * the forwarded vLPI, and vgic_v3_populate_lr then writes a HW=1 LR with the vLPI's hwintid, 0. Two ways in: this
   * one, and the irqfd removed and added again (check-msi-readd.yaml, below; docs/CHECKER.md "The vITS translation
   * cache").
   */
  it('upstream: an MSI taken by the host while the vector is remapped reaches the stale cache (SET_IRQS of both)', () => {
    const both = withSteps(`
  - step: ioctl
    at: 50us
    fd: "device:0000:01:00.0"
    request: VFIO_DEVICE_SET_IRQS
    struct:
      name: vfio_irq_set
      fields: { argsz: 28, flags: 36, index: VFIO_PCI_MSIX_IRQ_INDEX, start: 0, count: 2 }
      data: ["irqfd:0000:01:00.0/0", "irqfd:0000:01:00.0/1"]
`);
    // vector 1's host LPI targets CPU 1: its vfio_msihandler runs there while the VMM thread maps the vLPI again
    const cx = explore(scenarioFromYaml(both, 'rearm-both'), { bound: 1, shrink: false }).counterexample!;
    expect(cx.violations.map((v) => v.message)).toEqual([
      'GIC: 1 UNPREDICTABLE access(es) on CPU 1',
      'vGIC: 1 HW=1 list register(s) named an inactive physical INTID (vcpu0 LR0 vINTID 8193 → inactive INTID 0)',
    ]);
  });
});

/**
 * The other way in, shipped as scenarios/check-msi-readd.yaml: KVM_IRQFD DEASSIGN then KVM_IRQFD again. An MSI taken
 * as a host LPI while the irqfd was away waits in the eventfd; kvm_irqfd_assign polls it (EPOLLIN: schedule_work of
 * the inject) before irq_bypass_register_consumer, so the work's kvm_set_msi runs after kvm_vgic_v4_set_forwarding
 * mapped the vLPI again — and vgic_its_inject_msi tries the translation cache first.
 */
describe('check-msi-readd.yaml: the irqfd removed and added again while the function writes the vector', () => {
  const readd = text('check-msi-readd');

  it('upstream (6.1, the default): the stale cached translation sets the forwarded vLPI’s latch — 26 choices', () => {
    const sc = scenarioFromYaml(readd, 'check-msi-readd');
    const r = explore(sc, { bound: 1 });
    const cx = r.counterexample!;
    expect(r.stats.schedules).toBe(172);
    expect(cx.violations.map((v) => v.invariant)).toEqual(['no-gic-unpredictable', 'hw-lr-names-active-intid']);
    expect(cx.violations[1]!.message).toContain('vcpu0 LR0 vINTID 8192 → inactive INTID 0');
    expect(cx.schedule.length).toBe(26);
    const f = parseReplayFile(formatReplayFile(replayFileOf(sc, 'hw-lr-names-active-intid', cx.schedule)));
    expect(replayFile(f).violations).toEqual(cx.violations);
  });

  it("'vlpi-map-invalidates-its-cache' (set_forwarding drops the cache it filled): bound 1 passes (389 schedules)", () => {
    const sc = scenarioFromYaml(readd, 'check-msi-readd', { variant: 'vlpi-map-invalidates-its-cache' });
    const r = explore(sc, { bound: 1 });
    expect(r.counterexample).toBeNull();
    expect(r.completeness).toBe('bounded');
    expect(r.stats.schedules).toBe(389);
  });
});
