/**
 * The line ledger of a scenario run: per passed-through device line, what was asserted, delivered, coalesced and
 * orphaned, feeding the MetricsCollector as it happens.
 *
 * A raise is `coalesced` when the device condition was still set (one pending state per INTID), `orphaned` when no VM
 * owned the line (before its irqfd step, after its device was closed), else outstanding until a guest handler entry
 * that finds the condition set delivers it. A delivery with nothing outstanding is a duplicate — except one answering
 * an orphaned raise that a late irqfd still delivered, which turns that orphan into a delivery (`settle`).
 * Deactivation and re-arm latencies are counted once per raise.
 *
 * An MSI vector of a PCI function (`MsiVectorState`) is an edge with no line to sample: each MSI the device sends is
 * one event, outstanding until the guest driver's handler runs; that handler serves every event the device has
 * queued on the vector (as a driver drains its completion ring), so one entry delivers the oldest and coalesces the
 * others. An MSI sent while no VM owns the vector is orphaned. Whatever is still outstanding at the end is lost: an
 * MSI the hardware dropped or that never reached the guest cannot hide.
 */
import type { IrqDesc } from '../host/irq/irqDesc.js';
import type { MsiDevice } from '../hw/msiDevice.js';
import type { PlatformDevice } from '../hw/platformDevice.js';
import type { HostDevice, HostMsiDevice } from '../machine.js';
import type { Engine } from '../sim/engine.js';
import type { Metrics, MetricsCollector } from './metrics.js';
import type { Scenario, ScenarioEvent } from './schema.js';

/** What the ledger keeps of every passed-through interrupt source, a wired line or an MSI vector. */
interface LedgerEntryState {
  /** Position in the ledger (the metrics' line index). */
  readonly idx: number;
  readonly device: string;
  readonly index: number;
  readonly intid: number;
  /** A VM's irqfd carries it (set by the irqfd step, cleared by closing the device / destroy). */
  owned: boolean;
  outstanding: number;
  orphanPending: number;
  lastAssertAt: number;
  /** Trace sequence number of the current raise. */
  seq: number;
  raisedN: number;
  deliveredN: number;
  deactivatedN: number;
}

/** An MSI vector of a PCI function; `intid` is the LPI the guest maps it to. */
export interface MsiVectorState extends LedgerEntryState {
  readonly kind: 'msi';
  readonly msi: MsiDevice;
}

export type LedgerEntry = LineState | MsiVectorState;

export interface LineState extends LedgerEntryState {
  readonly kind: 'line';
  readonly hw: PlatformDevice;
  readonly desc: IrqDesc;
  readonly trigger: 'level' | 'edge';
  /** A level line the device withdraws after this many cycles unless served, or undefined. */
  readonly hold: number | undefined;
  /** `seq` of the raise the last counted deactivation answered. */
  deactSeq: number;
  /** `seq` of the raise the last counted re-arm (deactivated, and unmasked if masked) answered. */
  rearmSeq: number;
  /** The pending self-deassert timer (hold), -1 if none. */
  holdTimer: number;
  /** A `via: eventfd` workload drives this IRQ: the I/O backend writes the irqfd, the physical line stays low. */
  readonly viaEventfd: boolean;
}

/** The state of a source nothing has raised yet, unowned. */
function unserved(): Omit<LedgerEntryState, 'idx' | 'device' | 'index' | 'intid'> {
  return {
    owned: false,
    outstanding: 0,
    orphanPending: 0,
    lastAssertAt: 0,
    seq: 0,
    raisedN: 0,
    deliveredN: 0,
    deactivatedN: 0,
  };
}

export class LineLedger {
  readonly lines: LineState[] = [];
  readonly vectors: MsiVectorState[] = [];
  private readonly byName = new Map<string, LedgerEntry>();
  private readonly byIntid = new Map<number, LineState>();
  private readonly orphanDelivered: number[] = [];
  private seq = 0;

  constructor(
    private readonly engine: Engine,
    private readonly c: MetricsCollector,
    devices: readonly HostDevice[],
    s: Pick<Scenario, 'devices' | 'workloads'>,
    msiDevices: readonly { fn: HostMsiDevice; lpiBase: number }[] = [],
  ) {
    for (const d of devices) {
      const spec = s.devices.find((x) => x.name === d.spec.name);
      d.spec.irqs.forEach((irq, index) => {
        const irqSpec = spec?.irqs[index];
        const l: LineState = {
          kind: 'line',
          idx: this.lines.length,
          device: d.spec.name,
          index,
          intid: irq.intid,
          hw: d.hw,
          desc: d.descs[index]!,
          trigger: irqSpec?.trigger ?? 'level',
          hold: typeof irqSpec?.hold === 'number' ? irqSpec.hold : undefined,
          ...unserved(),
          deactSeq: 0,
          rearmSeq: 0,
          holdTimer: -1,
          viaEventfd: s.workloads.some((w) => w.via === 'eventfd' && w.device === d.spec.name && w.index === index),
        };
        this.lines.push(l);
        this.byIntid.set(irq.intid, l);
        this.byName.set(`${l.device}/${index}`, l);
      });
    }
    for (const { fn, lpiBase } of msiDevices) {
      for (let index = 0; index < fn.spec.vectors; index++) {
        const v: MsiVectorState = {
          kind: 'msi',
          idx: this.lines.length + this.vectors.length,
          device: fn.spec.name,
          index,
          intid: lpiBase + index,
          msi: fn.hw,
          ...unserved(),
        };
        this.vectors.push(v);
        this.byName.set(`${v.device}/${index}`, v);
      }
    }
  }

  line(device: string, index: number): LedgerEntry | undefined {
    return this.byName.get(`${device}/${index}`);
  }

  lineOfIntid(intid: number): LineState | undefined {
    return this.byIntid.get(intid);
  }

  /** The device asserts its line or sends an MSI (a `via: line` workload event). */
  raise(l: LedgerEntry): void {
    if (l.kind === 'msi') {
      this.sendMsi(l);
      return;
    }
    this.c.raised(l.idx);
    l.raisedN++;
    if (l.hw.isAsserted(l.index)) {
      this.c.coalesced(l.idx);
    } else {
      l.seq = ++this.seq;
      l.lastAssertAt = this.engine.now;
      if (l.owned) l.outstanding++;
      else {
        this.c.orphaned(l.idx);
        l.orphanPending++;
      }
    }
    l.hw.assert(l.index);
    if (l.trigger === 'level' && l.hold !== undefined) {
      if (l.holdTimer >= 0) this.engine.cancelTimer(l.holdTimer);
      l.holdTimer = this.engine.after(l.hold, {
        name: `${l.device}/${l.index}.hold`,
        fire: () => {
          l.holdTimer = -1;
          if (!l.hw.isAsserted(l.index)) return;
          // the device withdrew the condition before a driver served it: accounted as coalesced, not lost
          if (l.outstanding > 0) {
            l.outstanding--;
            this.c.coalesced(l.idx);
          }
          l.hw.deassert(l.index);
        },
      });
    }
  }

  /** The function sends vector `index`'s message (a posted write; latched by the device while the vector is masked). */
  private sendMsi(v: MsiVectorState): void {
    this.c.raised(v.idx);
    v.raisedN++;
    if (!v.owned) {
      this.c.orphaned(v.idx);
      v.orphanPending++;
    } else if (v.outstanding++ === 0) {
      v.seq = ++this.seq;
      v.lastAssertAt = this.engine.now;
    }
    v.msi.fire(v.index);
  }

  /**
   * A `via: eventfd` event. `carried`: a VM's irqfd carries it; `busy`: the backend is still in its previous write.
   * Returns whether the backend must write the eventfd now (the event is outstanding). A raise while the previous
   * one has not reached the guest yet is coalesced (the vIRQ is still pending: one pending state per INTID), as is
   * one while the backend is busy (it batches it).
   */
  signal(l: LineState, carried: boolean, busy: boolean): boolean {
    this.c.raised(l.idx);
    l.raisedN++;
    if (!carried || !l.owned) {
      this.c.orphaned(l.idx);
      return false;
    }
    if (l.outstanding > 0 || busy) {
      this.c.coalesced(l.idx);
      return false;
    }
    l.seq = ++this.seq;
    l.outstanding++;
    return true;
  }

  /** A guest handler entry served the line, `cycles` after its raise; an MSI vector's handler serves all it queued. */
  delivered(l: LedgerEntry, cycles: number): void {
    if (l.outstanding > 0) {
      l.outstanding--;
      this.c.delivered(l.idx, cycles);
      if (l.kind === 'msi') for (; l.outstanding > 0; l.outstanding--) this.c.coalesced(l.idx);
    } else if (l.orphanPending > 0) {
      l.orphanPending--;
      this.orphanDelivered[l.idx] = (this.orphanDelivered[l.idx] ?? 0) + 1;
      this.c.delivered(l.idx, cycles);
    } else {
      this.c.duplicate(l.idx);
    }
    l.deliveredN++;
  }

  /**
   * A line's VM is gone mid-run (a `destroy` or `die` step): raises not yet delivered can no longer reach a guest
   * (the vIRQ state went with the vGIC), so they count as orphaned; a guest already in the handler may still deliver
   * one (`delivered` turns that orphan back into a delivery).
   */
  release(l: LedgerEntry): void {
    l.owned = false;
    for (; l.outstanding > 0; l.outstanding--) {
      this.c.orphaned(l.idx);
      l.orphanPending++;
    }
  }

  /**
   * The physical INTID was deactivated. Counted once per raise: the lazy-disable path of handle_fasteoi_irq activates
   * and deactivates a still-asserted level line once more, masked, after the unmask-less DIR. The raise is re-armed
   * now unless the host IRQ is disabled (the normal level path's automask): then at the VFIO unmask. Returns whether
   * it counted.
   */
  deactivated(intid: number): boolean {
    const l = this.byIntid.get(intid);
    if (l === undefined || l.deactSeq === l.seq) return false;
    l.deactSeq = l.seq;
    l.deactivatedN++;
    this.c.deactivated(this.engine.now - l.lastAssertAt);
    if (l.desc.depth === 0) this.rearmed(l);
    return true;
  }

  /** vfio_platform_unmask re-enabled host IRQ `irq`: the re-arm of a raise already deactivated. */
  unmasked(l: LineState): void {
    if (l.deactSeq === l.seq && l.rearmSeq !== l.seq && l.desc.depth === 0) this.rearmed(l);
  }

  private rearmed(l: LineState): void {
    l.rearmSeq = l.seq;
    this.c.rearmed(this.engine.now - l.lastAssertAt);
  }

  /** Some owned line still has a raise on its way to the guest. */
  inFlight(): boolean {
    return (
      this.lines.some((l) => l.owned && l.outstanding > 0) || this.vectors.some((v) => v.owned && v.outstanding > 0)
    );
  }

  /** Whether a `raised` / `delivered` / `deactivated` event of the plan has happened. */
  happened(ev: Exclude<ScenarioEvent, { kind: 'step' }>): boolean {
    const l = this.line(ev.device, ev.index);
    if (l === undefined) return false;
    const n = ev.kind === 'raised' ? l.raisedN : ev.kind === 'delivered' ? l.deliveredN : l.deactivatedN;
    return n >= ev.n;
  }

  /** Orphaned raises that a late irqfd delivered after all are not orphaned: correct the finished metrics. */
  settle(m: Metrics): void {
    for (let i = 0; i < m.lines.length; i++) {
      const fix = this.orphanDelivered[i] ?? 0;
      if (fix === 0) continue;
      const line = m.lines[i]!;
      line.orphaned -= fix;
      m.irqs.orphaned -= fix;
      const lost = Math.max(0, line.raised - line.delivered - line.coalesced - line.orphaned);
      m.irqs.lost += lost - line.lost;
      line.lost = lost;
    }
  }
}
