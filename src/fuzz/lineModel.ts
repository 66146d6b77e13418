/**
 * The reference model's view of one passed-through line: the genirq descriptor state that decides whether the GIC
 * has it enabled (depth, IRQD_IRQ_STARTED, masked at the chip) and vfio-platform's `irq_ctx->masked`. The model
 * keeps every state the sequence so far can have left: one where the ioctls decide it, several where a signal runs
 * a chain the model does not follow (an IRQ delivered to a guest whose EOI is resampled into an unmask virqfd).
 *
 * It exists for 6.1's unmask of a released index: `vfio_platform_unmask` calls `enable_irq` on a line `free_irq`
 * shut down (depth 1), and `__enable_irq` → `irq_startup` enables it at the GIC with no action
 * (kernel/irq/manage.c __enable_irq, kernel/irq/chip.c irq_startup) — the line stays enabled after teardown.
 */
export interface LineState {
  readonly depth: number;
  readonly started: boolean;
  /** Unmasked at the GIC (GICD_ISENABLER): set by irq_startup/irq_enable, cleared by mask_irq and irq_shutdown. */
  readonly chipOn: boolean;
  /** vfio_platform_irq.masked. */
  readonly masked: boolean;
}

/** What the line is attached to when it fires or is switched. */
export interface LineUse {
  readonly requested: boolean;
  readonly forwarded: boolean;
  readonly level: boolean;
}

/** A descriptor nobody requested yet: depth 1, not started, masked at the chip (irq_desc defaults). */
export const LINE_AT_BOOT: LineState = { depth: 1, started: false, chipOn: false, masked: false };

/** __enable_irq: depth 1 → irq_startup (depth 0, unmasked at the chip), deeper → one less. */
export function enableIrq(s: LineState): LineState {
  if (s.depth === 0) throw new Error('reference model: unbalanced enable_irq (the kernel WARNs)');
  if (s.depth === 1) return { ...s, depth: 0, started: true, chipOn: true };
  return { ...s, depth: s.depth - 1 };
}

/** disable_irq_nosync: depth + 1; the lazy disable leaves the chip alone until the line fires. */
export function disableIrqNosync(s: LineState): LineState {
  return { ...s, depth: s.depth + 1 };
}

/** vfio_platform_mask: the first mask disables the line. */
export function vfioMask(s: LineState): LineState {
  return s.masked ? s : { ...disableIrqNosync(s), masked: true };
}

/** vfio_platform_unmask: the first unmask enables it — on a released index too (the 6.1 case above). */
export function vfioUnmask(s: LineState): LineState {
  return s.masked ? { ...enableIrq(s), masked: false } : s;
}

/** vfio_set_trigger's request: IRQ_NOAUTOEN makes __setup_irq set depth 1; an unmasked index is enabled. */
export function requestTrigger(s: LineState): LineState {
  const r = { ...s, depth: 1 };
  return r.masked ? r : enableIrq(r);
}

/** free_irq of the last action: irq_shutdown (depth 1, masked at the chip) if it was started. */
export function freeIrq(s: LineState): LineState {
  return s.started ? { ...s, depth: 1, started: false, chipOn: false } : s;
}

/**
 * The line fires while asserted (handle_fasteoi_irq): an action-less or disabled line is masked at the chip; an
 * unmasked level index runs vfio_automasked_irq_handler (mask, signal); a forwarded or edge one only signals.
 */
export function fire(s: LineState, u: LineUse): LineState {
  if (!s.started || !s.chipOn) return s;
  if (!u.requested || s.depth > 0) return { ...s, chipOn: false };
  if (u.forwarded || !u.level) return s;
  return vfioMask(s);
}

/** Whether firing runs a handler that hands the IRQ on (signals the trigger or calls the forwarding consumer). */
export function delivers(s: LineState, u: LineUse): boolean {
  return s.started && s.chipOn && u.requested && s.depth === 0 && (u.forwarded || !u.level || !s.masked);
}

/** A level line held asserted fires until it is masked at the chip (the handler's lazy disable lets it refire). */
export function fireWhileAsserted(s: LineState, u: LineUse): LineState {
  let cur = s;
  for (;;) {
    const next = fire(cur, u);
    if (key(next) === key(cur)) return cur;
    cur = next;
  }
}

/**
 * kvm_arch_set_fwd_state around the switch: disable, the transfer, enable. Forwarding enables an automasked index
 * (VFIO's mask is not used while forwarded); unforwarding masks it again only when the guest still holds the vIRQ,
 * which the reference model cannot know — both outcomes stay possible.
 */
export function forward(s: LineState): LineState[] {
  const off = disableIrqNosync(s);
  return [enableIrq(off.masked ? { ...enableIrq(off), masked: false } : off)];
}

export function unforward(s: LineState): LineState[] {
  const off = disableIrqNosync(s);
  return [enableIrq(off), enableIrq(vfioMask(off))];
}

export function key(s: LineState): string {
  return `${s.depth}${s.started ? 'S' : 's'}${s.chipOn ? 'E' : 'e'}${s.masked ? 'M' : 'm'}`;
}

/** The distinct states of `list`, in a stable order. */
export function dedupe(list: readonly LineState[]): LineState[] {
  const seen = new Map<string, LineState>();
  for (const s of list) if (!seen.has(key(s))) seen.set(key(s), s);
  return [...seen.values()].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** Every state reachable from `list` by any sequence of `ops` (each op is applied zero or more times). */
export function closure(list: readonly LineState[], ops: readonly ((s: LineState) => LineState)[]): LineState[] {
  const seen = new Map<string, LineState>();
  const work = [...list];
  while (work.length > 0) {
    const s = work.pop()!;
    if (seen.has(key(s))) continue;
    seen.set(key(s), s);
    for (const op of ops) work.push(op(s));
  }
  return dedupe([...seen.values()]);
}
