/**
 * Named step costs. Model modules declare the costs of their steps once, at load time (`defineCost`), and refer to
 * them by the returned numeric id in the hot path. An engine copies the defaults into its own CostTable, which a
 * scenario or a calibrated profile overrides by name: the cost model is data, not code.
 */
export interface CostDef {
  readonly id: number;
  readonly name: string;
  readonly cycles: number;
  /** Where the default figure comes from (paper, table, commit), or why it is an estimate. */
  readonly source: string;
}

const defs: CostDef[] = [];
const byName = new Map<string, CostDef>();

export function defineCost(name: string, cycles: number, source: string): number {
  const existing = byName.get(name);
  if (existing) {
    if (existing.cycles !== cycles) throw new Error(`cost '${name}' defined twice with different defaults`);
    return existing.id;
  }
  const def: CostDef = { id: defs.length, name, cycles, source };
  defs.push(def);
  byName.set(name, def);
  return def.id;
}

export function costDefs(): readonly CostDef[] {
  return defs;
}

export function costId(name: string): number {
  const def = byName.get(name);
  if (!def) throw new Error(`unknown cost '${name}' (known: ${defs.map((d) => d.name).join(', ')})`);
  return def.id;
}

/** Per-engine cycle costs, indexed by cost id. */
export class CostTable {
  private cycles: Float64Array;

  constructor(overrides: Readonly<Record<string, number>> = {}) {
    this.cycles = new Float64Array(0);
    this.refresh();
    for (const [name, c] of Object.entries(overrides)) this.set(name, c);
  }

  /** Pick up costs defined after this table was made (modules load lazily). */
  private refresh(): void {
    if (this.cycles.length === defs.length) return;
    const next = new Float64Array(defs.length);
    next.set(this.cycles);
    for (let i = this.cycles.length; i < defs.length; i++) next[i] = defs[i]!.cycles;
    this.cycles = next;
  }

  get(id: number): number {
    if (id >= this.cycles.length) this.refresh();
    return this.cycles[id]!;
  }

  set(name: string, cycles: number): void {
    if (!(cycles >= 0)) throw new RangeError(`cost '${name}' must be a non-negative number of cycles, got ${cycles}`);
    this.refresh();
    this.cycles[costId(name)] = cycles;
  }

  byName(name: string): number {
    return this.get(costId(name));
  }
}

/** Costs of the engine's own transitions (the exception model); model layers define the rest. */
export const C_NONE = defineCost('none', 0, 'a step that models no work (bookkeeping boundary)');
export const C_EXC_ENTRY = defineCost(
  'exc_entry',
  30,
  'IRQ exception entry to the host vector: ASPLOS 2014 Table 3 trap to EL2 and back = 27 cycles (Cortex-A15)',
);
export const C_ERET = defineCost('eret', 10, 'exception return; estimate, small against exc_entry');
export const C_CTX_SWITCH = defineCost('ctx_switch', 2000, 'host thread switch (schedule()); estimate');
export const C_WFI_WAKE = defineCost('wfi_wake', 200, 'leaving WFI when an interrupt is signalled; estimate');
export const C_GUEST_EXIT = defineCost(
  'guest_exit',
  30,
  'exception from the guest to the hypervisor vector (the world switch save is charged by KVM steps)',
);
export const C_VEXC_ENTRY = defineCost('guest_exc_entry', 30, 'virtual IRQ exception entry inside the guest');
