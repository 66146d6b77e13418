/**
 * The checker's reach (docs/CHECKER.md "Fault injection and ABI misuse"): the check-*.yaml scenarios that inject an
 * allocation failure, DEASSIGN what was never assigned, pass a closed fd, name a guest SPI the VM lacks, or retarget
 * the vIRQ. The protocol variant passes each at preemption bound 1; rfc-v1 (the seed) violates a generic invariant.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { KvmVm } from '../kvm/vm.js';
import { explore, replay } from './explore.js';
import type { CheckInstance } from './model.js';
import { scenarioFromYaml } from './scenarioCheck.js';

const DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));
const text = (name: string): string => readFileSync(`${DIR}${name}.yaml`, 'utf8');
const REACH = [
  'check-enomem',
  'check-deassign-unassigned',
  'check-closed-fd',
  'check-bad-gsi',
  'check-assign-before-vcpu',
] as const;

describe('fault injection and ABI misuse under the checker', () => {
  it.each(REACH)('protocol: %s satisfies every invariant at preemption bound 1', (f) => {
    const r = explore(scenarioFromYaml(text(f), f), { bound: 1 });
    expect(r.counterexample).toBeNull();
    expect(r.stats.schedules).toBeGreaterThan(1);
  });

  it('rfc-v1, insert_and_forward OOM: set_fwd_state(pfwd, false) re-forwards, the failed ASSIGN leaves it forwarded', () => {
    const sc = scenarioFromYaml(text('check-enomem'), 'check-enomem', { variant: 'rfc-v1', irqNumbering: 'legacy' });
    const v = replay(sc, []).violations;
    expect(v[0]!.invariant).toBe('no-irq-left-forwarded');
    expect(v[0]!.message).toMatch(/every ASSIGN failed|ASSIGNs that all failed/);
  });

  it('raw ioctls in the set-up too: check-enomem with no waiting step — rfc-v1 is still forwarded after teardown', () => {
    const yaml = text('check-enomem').replace('    at: 50us\n', '');
    const run = (variant: 'protocol' | 'rfc-v1') =>
      replay(scenarioFromYaml(yaml, 'all-setup', { variant, irqNumbering: 'legacy' }), []).violations;
    expect(run('protocol')).toEqual([]);
    const v = run('rfc-v1');
    expect(v.map((x) => x.invariant)).toEqual(['no-irq-left-forwarded']);
    expect(v[0]!.message).toMatch(/^after teardown: .*still forwarded/);
  });

  it.each([
    ['check-deassign-unassigned', /validate_deassign .* NULL kvm_vdev/],
    ['check-closed-fd', /get_vfio_device\(\d+\) returned NULL .*IS_ERR missed it/],
    ['check-bad-gsi', /validate_forward accepted guest_irq 500/],
    // insert_and_forward: pfwd->vcpu = kvm_get_vcpu(kvm, 0), NULL before KVM_CREATE_VCPU, handed to vgic_map_phys_irq
    ['check-assign-before-vcpu', /kvm_get_vcpu\(kvm, 0\) is NULL; vgic_map_phys_irq dereferences it/],
  ] as const)('rfc-v1: %s is a kernel NULL dereference / BUG (no-model-error)', (f, why) => {
    const v = replay(scenarioFromYaml(text(f), f, { variant: 'rfc-v1' }), []).violations;
    expect(v.map((x) => x.invariant)).toEqual(['no-model-error']);
    expect(v[0]!.message).toMatch(why);
  });

  it('check-assign-before-vcpu (protocol): the `as` fds reach a second VM that has a vGIC and no vCPU until the phase creates it', () => {
    const sc = scenarioFromYaml(text('check-assign-before-vcpu'), 'check-assign-before-vcpu');
    let early: KvmVm | undefined;
    let vcpusAtSetup = -1;
    const build = () => {
      const inst = sc.build();
      early = inst.host.kvm.vms[1];
      vcpusAtSetup = early?.vcpus.length ?? -1;
      return inst;
    };
    // the machine the run used is the one built here, not a copy of it
    expect(replay({ ...sc, build }, [], { copyMachine: false }).violations).toEqual([]);
    expect(early!.vgic).not.toBeNull();
    expect(vcpusAtSetup).toBe(0);
    expect(early!.vcpus.map((v) => v.id)).toEqual([0]); // KVM_CREATE_VCPU on the `as` fd, after the refused ASSIGN
  });
});

describe('retargeting under the checker (check-retarget.yaml)', () => {
  it('protocol: the retarget races ASSIGN/DEASSIGN and two raises; every invariant holds, vCPU 1 takes one in some order', () => {
    const sc = scenarioFromYaml(text('check-retarget'), 'check-retarget', { raises: 2 });
    const built: CheckInstance[] = [];
    const r = explore(
      { ...sc, build: () => built[built.push(sc.build()) - 1]! },
      { bound: 1, maxSchedules: 40, copyMachine: false }, // each run on the machine built for it, to read its guest
    );
    expect(r.counterexample).toBeNull();
    // a vCPU 0 that took an interrupt made the retarget first thing after it (runs cut short by DPOR deliver none)
    const ran = built.map((i) => i.guest.stats()).filter((st) => st.irqsPerVcpu[0]! > 0);
    expect(ran.every((st) => st.retargets === 1)).toBe(true);
    expect(ran.some((st) => st.irqsPerVcpu[1]! > 0)).toBe(true);
  });
});

describe('two VMs under the checker (check-two-vms.yaml)', () => {
  const yaml = text('check-two-vms');
  const noCross = yaml.replace(/ {2}- step: ioctl\n(?: {4}.*\n)+/, '');

  it('protocol: each VM forwards its own IRQ, the cross-VM ASSIGN is refused; every invariant holds (bound 1, first 60)', () => {
    const r = explore(scenarioFromYaml(yaml, 'check-two-vms'), { bound: 1, maxSchedules: 60 });
    expect(r.counterexample).toBeNull();
    expect(r.stats.schedules).toBe(60);
  });

  it('rfc-v1: vm1 forwards vm0’s device (no ownership check); its destroy then EOIs an inactive INTID', () => {
    const v = replay(scenarioFromYaml(yaml, 'check-two-vms', { variant: 'rfc-v1', irqNumbering: 'legacy' }), []);
    expect(v.violations.map((x) => x.invariant)).toEqual(['no-gic-unpredictable']);
    expect(v.violations[0]!.message).toMatch(/^after teardown: GIC:/);
    expect(noCross).not.toBe(yaml);
    expect(
      replay(scenarioFromYaml(noCross, 'no-cross', { variant: 'rfc-v1', irqNumbering: 'legacy' }), []).violations,
    ).toEqual([]);
  });
});
