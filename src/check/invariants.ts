/**
 * The checker's invariants: named predicates over a machine at the end of a schedule (quiescent) and after its
 * teardown. Each returns the violations it finds as messages; an empty list means it holds. The run-level outcomes
 * the explorer itself detects (a model exception, a deadlock, a spin loop) are reported under the names below too,
 * so that a verdict always names one invariant.
 */
import type { HostFindingKind } from '../machine.js';
import { UseAfterFreeError } from '../sim/errors.js';
import type { CheckedLine, CheckInstance } from './model.js';
import { msiDuplicate, msiForwarded, msiLayerLeaks, msiLost, msiMasked, msiPending, perMsi } from './msiInvariants.js';

export type InvariantName =
  | 'no-lost-irq'
  | 'no-duplicate-irq'
  | 'no-irq-left-active'
  | 'no-irq-left-pending'
  | 'no-irq-left-disabled'
  | 'no-irq-left-forwarded'
  | 'balanced-disable-depth'
  | 'no-leak-after-teardown'
  | 'no-genirq-warn'
  | 'no-gic-unpredictable'
  | 'hw-lr-names-active-intid'
  | 'no-model-error'
  | 'no-use-after-free'
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

function lineState(inst: CheckInstance, l: CheckedLine) {
  const d = l.device;
  const desc = d.descs[l.line]!;
  const intid = d.spec.irqs[l.line]!.intid;
  const vm = l.kvmVm ?? inst.host.kvm.vms[0];
  const vgic = vm !== undefined && inst.host.kvm.vms.includes(vm) ? vm.vgic : null; // a destroyed VM's vGIC is gone
  const virq = l.guestIntid !== undefined && vgic !== null ? vgic.vgicGetIrq(l.guestIntid) : undefined;
  return {
    desc,
    intid,
    hw: d.hw,
    vfioIrq: d.vdev.irqs[l.line]!,
    dist: inst.host.irq.gic.distributor,
    /** The guest has acknowledged the vIRQ and not deactivated it (the normal path holds the line masked then). */
    guestActive: virq?.active === true,
  };
}

/**
 * The invariant each kind of host.findings() belongs to, so a teardown violation is named by what went wrong (a
 * blind GICC_DIR is no-gic-unpredictable, not a leak).
 */
const HOST_FINDING_INVARIANT: Readonly<Record<HostFindingKind, InvariantName>> = {
  'genirq-warn': 'no-genirq-warn',
  'gic-unpredictable': 'no-gic-unpredictable',
  'vgic-hw-lr-inactive': 'hw-lr-names-active-intid',
  'disable-depth': 'balanced-disable-depth',
  'left-active': 'no-irq-left-active',
  'still-forwarded': 'no-irq-left-forwarded',
  leak: 'no-leak-after-teardown',
};

export function teardownInvariant(kind: HostFindingKind): InvariantName {
  return HOST_FINDING_INVARIANT[kind];
}

/** The messages of the host's own checks of one kind, at quiescence. */
function hostFindings(inst: CheckInstance, kind: HostFindingKind): string[] {
  return inst.host
    .findings()
    .filter((f) => f.kind === kind)
    .map((f) => f.message);
}

/** Messages of `check` over every checked line. */
function perLine(inst: CheckInstance, check: (l: CheckedLine, s: ReturnType<typeof lineState>) => string[]): string[] {
  return inst.lines.flatMap((l) => check(l, lineState(inst, l)));
}

/**
 * Model errors that are a use of freed memory (host/kref.ts: a UseAfterFreeError, itself or as the cause of the
 * error a failed syscall ends with) get their own name.
 */
export function modelErrorInvariant(err: unknown): InvariantName {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof UseAfterFreeError) return 'no-use-after-free';
  }
  return 'no-model-error';
}

export const INVARIANTS: readonly Invariant[] = [
  {
    name: 'no-lost-irq',
    description:
      'every assertion of the line was acknowledged by the guest driver or merged into one still pending (level coalescing); none is left asserted at quiescence while the IRQ is still requested (an assertion after VFIO released the IRQ is orphaned, not lost)',
    atEnd(inst) {
      return perLine(inst, (l, { hw }) => {
        const i = l.line;
        const name = `${l.device.spec.name} line ${i}`;
        // an assertion nobody listens to (VFIO's trigger is gone) is orphaned, as on hardware: not lost
        if (hw.isAsserted(i) && lineState(inst, l).desc.action !== null)
          return [
            `${name} still asserted at quiescence: raised ${hw.raised[i]}, acknowledged by the guest ${hw.acked[i]}, coalesced ${hw.coalesced[i]}`,
          ];
        if (!hw.isAsserted(i) && hw.raised[i]! !== hw.acked[i]! + hw.coalesced[i]! + hw.withdrawn[i]!)
          return [
            `${name}: raised ${hw.raised[i]} ≠ acknowledged ${hw.acked[i]} + coalesced ${hw.coalesced[i]} + withdrawn ${hw.withdrawn[i]}`,
          ];
        return [];
      }).concat(perMsi(inst, (m) => msiLost(inst.host, m)));
    },
  },
  {
    name: 'no-duplicate-irq',
    description:
      'every run of the guest driver is explained by a host-side delivery: runs (served + found nothing) ≤ VFIO deliveries (trigger signals and forwarded consumer calls). A run that finds nothing (noStatus) is not by itself a duplicate: a level INTID the host acknowledged while the line was still high is re-delivered once the guest has cleared the device (a spurious IRQ_NONE, also on hardware)',
    atEnd(inst) {
      return perLine(inst, (l, { hw, vfioIrq }) => {
        const signals = vfioIrq.deliveries;
        return (inst.guests ?? [inst.guest])
          .flatMap((g) => g.devices)
          .filter((d) => d.device === hw && d.line === l.line && d.handled + d.noStatus > signals)
          .map(
            (d) =>
              `guest driver ${d.name} ran ${d.handled + d.noStatus} time(s) (${d.noStatus} with no condition pending) for ${signals} host delivery(ies): delivered twice`,
          );
      }).concat(perMsi(inst, msiDuplicate));
    },
  },
  {
    name: 'no-irq-left-active',
    description: 'the physical INTID is not active at quiescence',
    atEnd(inst) {
      return perLine(inst, (_l, { dist, intid }) =>
        dist.isActive(intid) ? [`INTID ${intid} left active at quiescence`] : [],
      );
    },
  },
  {
    name: 'no-irq-left-pending',
    description:
      'the physical INTID is not pending at quiescence while requested (nothing will ever take it: pending forever), nor latched pending after teardown with its line low (a stale IRQ for the next owner)',
    atEnd(inst) {
      return perLine(inst, (_l, { dist, intid, desc }) =>
        dist.isPending(intid) && desc.action !== null
          ? [`INTID ${intid} pending forever: still pending at quiescence while requested by '${desc.actionName}'`]
          : [],
      ).concat(perMsi(inst, (m) => msiPending(inst.host, m)));
    },
    afterTeardown(inst) {
      return perLine(inst, (l, { dist, intid, hw }) =>
        dist.isPending(intid) && !hw.isAsserted(l.line)
          ? [`INTID ${intid} latched pending after teardown although its line is low`]
          : [],
      );
    },
  },
  {
    name: 'no-irq-left-disabled',
    description:
      'the host IRQ is enabled (depth 0) and not VFIO-masked at quiescence while its trigger is set, unless the guest holds the vIRQ active (not yet EOId: the normal path keeps a level line masked until then)',
    atEnd(inst) {
      return perLine(inst, (l, { desc, vfioIrq, guestActive }) => {
        const out: string[] = [];
        if (guestActive) return out;
        if (desc.action !== null && desc.depth !== 0) out.push(`${desc} left disabled (depth ${desc.depth})`);
        if (vfioIrq.masked && vfioIrq.trigger !== null)
          out.push(`VFIO irq ${l.device.spec.name}/${l.line} left masked at quiescence`);
        return out;
      }).concat(perMsi(inst, msiMasked));
    },
  },
  {
    name: 'no-irq-left-forwarded',
    description:
      'the IRQ is not forwarded at quiescence when no ASSIGN of it stands (the last successful switch was DEASSIGN, or every ASSIGN failed: a failed call leaves nothing behind), nor once VFIO released it (trigger gone: device closed, trigger disabled)',
    atEnd(inst) {
      return perLine(inst, (l, { desc }) => {
        if (!desc.forwardedToVcpu) return [];
        if (l.lastOp === 'deassign')
          return [`${desc} still forwarded after DEASSIGN (or after ASSIGNs that all failed)`];
        // the forwarded state belongs to VFIO's trigger: when VFIO released the IRQ it must be gone too
        if (desc.action === null) return [`${desc} still forwarded although VFIO released it (no trigger)`];
        return [];
      }).concat(perMsi(inst, (m) => msiForwarded(inst.host, m)));
    },
  },
  {
    name: 'balanced-disable-depth',
    description: 'the disable depth matches VFIO’s mask state (host.findings) and never went negative',
    atEnd(inst) {
      const out = hostFindings(inst, 'disable-depth');
      return out.concat(
        perLine(inst, (_l, { desc }) => (desc.depth < 0 ? [`${desc} disable depth ${desc.depth} < 0`] : [])),
      );
    },
  },
  {
    name: 'no-genirq-warn',
    description: 'genirq issued no WARN (unbalanced enable, ...) and took no IRQ it does not own',
    atEnd(inst) {
      return hostFindings(inst, 'genirq-warn');
    },
  },
  {
    name: 'no-gic-unpredictable',
    description: 'no access drove the GIC into UNPREDICTABLE behaviour (e.g. deactivating an inactive INTID)',
    atEnd(inst) {
      return hostFindings(inst, 'gic-unpredictable');
    },
  },
  {
    name: 'hw-lr-names-active-intid',
    description:
      'every HW=1 list register KVM loaded named a physical INTID that was active then (else the guest’s EOI through it deactivates an inactive interrupt: UNPREDICTABLE, GICv2 §5.4); checked at each LR write by the vGIC (Vgic.hwLrInactive)',
    atEnd(inst) {
      return hostFindings(inst, 'vgic-hw-lr-inactive');
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
    name: 'no-use-after-free',
    description:
      'no freed kernel object (kref reached zero: files, eventfds, irqfds, KVM devices, the VM) is used or freed again; freed objects are poisoned (KObject.checkAlive) and a use ends the run with this name',
  },
  {
    name: 'no-leak-after-teardown',
    description:
      'after the VMM exits: no leaked reference, nothing requested, enabled, active or forwarded, no WARN (host.findings({teardown}), each filed under its kind’s invariant); on a host with an ITS no vPE left in the GIC’s vPE table, no LPI left allocated, no irqbypass producer or consumer left registered',
    afterTeardown(inst) {
      return msiLayerLeaks(inst.host);
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
    for (const message of inv.afterTeardown(inst))
      out.push({ invariant: inv.name, message: `after teardown: ${message}` });
  }
  for (const f of inst.host.findings({ teardown: true }))
    out.push({ invariant: teardownInvariant(f.kind), message: `after teardown: ${f.message}` });
  return out;
}
