/**
 * The tracing facade: a ring, the event registry, the intern table and comm registry, and the set of enabled
 * events. A disabled event costs one array load and one branch in emit(); nothing else runs.
 *
 * Selection follows tracefs `set_event` (kernel/trace/trace_events.c ftrace_set_clr_event): a token is
 * `system:event`, `system:` / `system:*` (the whole system), `*:event`, or a bare word matching an event name or a
 * system name; `*` anywhere is a wildcard; a leading `!` disables instead of enabling.
 */
import { createStandardRegistry, type EventDef, type EventRegistry } from './events.js';
import { type CommRegistry, type InternTable, type RingOptions, TraceRing } from './ring.js';

export interface TracerOptions extends RingOptions {
  /** Defaults to the standard events (createStandardRegistry()). */
  registry?: EventRegistry;
  /** Initial selection in set_event syntax; default: every event. */
  events?: string;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${body}$`);
}

function matches(def: EventDef, token: string): boolean {
  const colon = token.indexOf(':');
  if (colon < 0) {
    const re = globToRegExp(token);
    return re.test(def.name) || re.test(def.system);
  }
  const sys = token.slice(0, colon);
  const ev = token.slice(colon + 1);
  return globToRegExp(sys === '' ? '*' : sys).test(def.system) && globToRegExp(ev === '' ? '*' : ev).test(def.name);
}

export class Tracer {
  readonly events: EventRegistry;
  readonly ring: TraceRing;
  /** The user's selection, one byte per event id. */
  private readonly selected: Uint8Array;
  private readonly none: Uint8Array;
  /** What emit() tests: `selected` while tracing is on, all zeros while it is off. */
  private active: Uint8Array;

  constructor(opts: TracerOptions = {}) {
    this.events = opts.registry ?? createStandardRegistry();
    this.ring = new TraceRing(opts);
    this.selected = new Uint8Array(Math.max(1, this.events.size));
    this.none = new Uint8Array(this.selected.length);
    this.active = this.selected;
    this.setEvent(opts.events ?? '*:*');
  }

  get comms(): CommRegistry {
    return this.ring.comms;
  }

  get strings(): InternTable {
    return this.ring.strings;
  }

  intern(s: string): number {
    return this.ring.intern(s);
  }

  /** Record an event if it is enabled. Allocates nothing. */
  emit(
    eventId: number,
    cpu: number,
    pid: number,
    a0 = 0,
    a1 = 0,
    a2 = 0,
    a3 = 0,
    a4 = 0,
    a5 = 0,
    a6 = 0,
    a7 = 0,
  ): void {
    if (this.active[eventId] === 0) return;
    this.ring.emit(eventId, cpu, pid, a0, a1, a2, a3, a4, a5, a6, a7);
  }

  isEnabled(eventId: number): boolean {
    return this.active[eventId] === 1;
  }

  /** tracing_on. */
  get on(): boolean {
    return this.active === this.selected;
  }

  set on(v: boolean) {
    this.active = v ? this.selected : this.none;
  }

  /** `echo spec > set_event`: replace the selection. */
  setEvent(spec: string): void {
    this.selected.fill(0);
    this.appendEvent(spec);
  }

  /** `echo spec >> set_event`: add (or, with `!`, remove) events. Returns how many events the tokens touched. */
  appendEvent(spec: string): number {
    let touched = 0;
    for (const raw of spec.split(/\s+/)) {
      if (raw === '') continue;
      const neg = raw.startsWith('!');
      const token = neg ? raw.slice(1) : raw;
      let hit = 0;
      for (const def of this.events.list) {
        if (!matches(def, token)) continue;
        this.selected[def.id] = neg ? 0 : 1;
        hit++;
      }
      if (hit === 0) throw new RangeError(`set_event: no tracepoint matches ${JSON.stringify(raw)}`);
      touched += hit;
    }
    return touched;
  }

  /** The enabled events as tracefs lists them in set_event (`system:event`, registry order). */
  listEnabled(): string[] {
    return this.events.list.filter((d) => this.selected[d.id] === 1).map((d) => `${d.system}:${d.name}`);
  }
}
