/**
 * The checker's invariants: named predicates over a machine at the end of a schedule (quiescent) and after its
 * teardown. Each returns the violations it finds as messages; an empty list means it holds. The run-level outcomes
 * the explorer itself detects (a model exception, a deadlock, a spin loop) are reported under the names below too,
 * so that a verdict always names one invariant.
 */
import type { CheckInstance } from './model.js';

export type InvariantName =
  | 'no-lost-irq'
  | 'no-duplicate-irq'
  | 'no-irq-left-active'
  | 'no-irq-left-disabled'
  | 'no-irq-left-forwarded'
  | 'balanced-disable-depth'
  | 'no-leak-after-teardown'
  | 'no-genirq-warn'
  | 'no-gic-unpredictable'
  | 'no-model-error'
  | 'no-lockdep-report'
  | 'no-deadlock'
  | 'no-livelock';

export interface Violation {
  readonly invariant: InvariantName;
  readonly message: string;
}

export interface Invariant {
  readonly name: InvariantName;
  readonly description: string;
  /** At the end of the concurrent phase (the machine quiescent). */
  atEnd?(inst: CheckInstance): string[];
  /** After the VMM process exited and the machine settled again. */
  afterTeardown?(inst: CheckInstance): string[];
}

function lineState(inst: CheckInstance) {
  const d = inst.device;
  const desc = d.descs[inst.line]!;
  const intid = d.spec.irqs[inst.line]!.intid;
  return { desc, intid, hw: d.hw, vfioIrq: d.vdev.irqs[inst.line]!, dist: inst.host.irq.gic.distributor };
}

export const INVARIANTS: readonly Invariant[] = [
  {
    name: 'no-lost-irq',
    description:
      'every assertion of the line was acknowledged by the guest driver or merged into one still pending (level coalescing); none is left asserted at quiescence',
    atEnd(inst) {
      const { hw } = lineState(inst);
      const i = inst.line;
      const out: string[] = [];
      if (hw.isAsserted(i)) {
        out.push(
          `line ${i} still asserted at quiescence: raised ${hw.raised[i]}, acknowledged by the guest ${hw.acked[i]}, coalesced ${hw.coalesced[i]}`,
        );
      } else if (hw.raised[i]! !== hw.acked[i]! + hw.coalesced[i]! + hw.withdrawn[i]!) {
        out.push(
          `line ${i}: raised ${hw.raised[i]} ≠ acknowledged ${hw.acked[i]} + coalesced ${hw.coalesced[i]} + withdrawn ${hw.withdrawn[i]}`,
        );
      }
      return out;
    },
  },
  {
    name: 'no-duplicate-irq',
    description:
      'every run of the guest driver is explained by a host-side delivery: runs (served + found nothing) ≤ VFIO trigger signals. A run that finds nothing (noStatus) is not by itself a duplicate: a level INTID the host acknowledged while the line was still high is re-delivered once the guest has cleared the device (a spurious IRQ_NONE, also on hardware)',
    atEnd(inst) {
      const signals = inst.device.vdev.irqs[inst.line]!.signals;
      return inst.guest.devices
        .filter((d) => d.handled + d.noStatus > signals)
        .map(
          (d) =>
            `guest driver ${d.name} ran ${d.handled + d.noStatus} time(s) (${d.noStatus} with no condition pending) for ${signals} host delivery(ies): delivered twice`,
        );
    },
  },
  {
    name: 'no-irq-left-active',
    description: 'the physical INTID is not active at quiescence',
    atEnd(inst) {
      const { dist, intid } = lineState(inst);
      return dist.isActive(intid) ? [`INTID ${intid} left active at quiescence`] : [];
    },
  },
  {
    name: 'no-irq-left-disabled',
    description: 'the host IRQ is enabled (depth 0) and not VFIO-masked at quiescence while its trigger is set',
    atEnd(inst) {
      const { desc, vfioIrq } = lineState(inst);
      const out: string[] = [];
      if (desc.actions.length > 0 && desc.depth !== 0) out.push(`${desc} left disabled (depth ${desc.depth})`);
      if (vfioIrq.masked) out.push(`VFIO irq ${inst.line} left masked at quiescence`);
      return out;
    },
  },
  {
    name: 'no-irq-left-forwarded',
    description: 'after the scenario deassigned, the IRQ is no longer forwarded (host descriptor and vGIC)',
    atEnd(inst) {
      const { desc } = lineState(inst);
      const last = inst.control.at(-1)?.what ?? '';
      return last.endsWith('deassign') && desc.forwardedToVcpu ? [`${desc} still forwarded after DEASSIGN`] : [];
    },
  },
  {
    name: 'balanced-disable-depth',
    description: 'the disable depth matches VFIO’s mask state (host.checkInvariants) and never went negative',
    atEnd(inst) {
      const { desc } = lineState(inst);
      const out = inst.host.checkInvariants().filter((m) => m.includes('disable depth'));
      if (desc.depth < 0) out.push(`${desc} disable depth ${desc.depth} < 0`);
      return out;
    },
  },
  {
    name: 'no-genirq-warn',
    description: 'genirq issued no WARN (unbalanced enable, ...) and took no IRQ it does not own',
    atEnd(inst) {
      return inst.host.checkInvariants().filter((m) => m.startsWith('genirq WARN') || m.startsWith('bad IRQ'));
    },
  },
  {
    name: 'no-gic-unpredictable',
    description: 'no access drove the GIC into UNPREDICTABLE behaviour (e.g. deactivating an inactive INTID)',
    atEnd(inst) {
      return inst.host.checkInvariants().filter((m) => m.startsWith('GIC:'));
    },
  },
  {
    name: 'no-lockdep-report',
    description: 'lockdep reported no AA, ABBA or IRQ-safety inversion',
    atEnd(inst) {
      return inst.host.engine.lockdep.reports.map((r) => `lockdep ${r.kind}: ${r.message}`);
    },
  },
  {
    name: 'no-leak-after-teardown',
    description:
      'after the VMM exits: no leaked reference, nothing requested, enabled, active or forwarded, no WARN (host.checkInvariants({teardown}))',
    afterTeardown(inst) {
      return inst.host.checkInvariants({ teardown: true });
    },
  },
];

/** Evaluate the end-of-run invariants (the machine is quiescent). */
export function checkAtEnd(inst: CheckInstance): Violation[] {
  const out: Violation[] = [];
  for (const inv of INVARIANTS) {
    if (inv.atEnd === undefined) continue;
    for (const message of inv.atEnd(inst)) out.push({ invariant: inv.name, message });
  }
  return out;
}

/** Evaluate the teardown invariants (the VMM exited, the machine settled). */
export function checkAfterTeardown(inst: CheckInstance): Violation[] {
  const out: Violation[] = [];
  for (const inv of INVARIANTS) {
    if (inv.afterTeardown === undefined) continue;
    for (const message of inv.afterTeardown(inst)) out.push({ invariant: inv.name, message });
  }
  return out;
}
