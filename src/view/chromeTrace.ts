/**
 * The Chrome trace-event JSON the view reads: what src/trace/chromeJsonWriter.ts writes (and what a checker
 * counterexample is written as), validated just enough to render it. Unknown event phases are kept and ignored later.
 */

export interface ChromeEvent {
  readonly name: string;
  readonly ph: string;
  readonly ts?: number;
  readonly dur?: number;
  readonly pid?: number;
  readonly tid?: number;
  readonly cat?: string;
  readonly id?: number | string;
  readonly s?: string;
  readonly bp?: string;
  readonly args?: Readonly<Record<string, unknown>>;
}

export interface ChromeTrace {
  readonly traceEvents: readonly ChromeEvent[];
  readonly displayTimeUnit?: string;
  readonly otherData?: Readonly<Record<string, unknown>>;
}

/** Input the view cannot use; the CLI reports it as bad input (exit 2). */
export class ViewInputError extends Error {}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Validates a parsed JSON value as a Chrome trace (object form, or the bare array form chrome://tracing accepts). */
export function asChromeTrace(v: unknown, what: string): ChromeTrace {
  const events = Array.isArray(v) ? v : isRecord(v) ? v.traceEvents : undefined;
  if (!Array.isArray(events)) throw new ViewInputError(`${what}: not a Chrome trace (no traceEvents array)`);
  events.forEach((e, i) => {
    if (!isRecord(e) || typeof e.name !== 'string' || typeof e.ph !== 'string')
      throw new ViewInputError(`${what}: traceEvents[${i}] has no name or ph`);
    if (e.ts !== undefined && typeof e.ts !== 'number')
      throw new ViewInputError(`${what}: traceEvents[${i}].ts is not a number`);
  });
  if (Array.isArray(v)) return { traceEvents: v as ChromeEvent[] };
  const o = v as Record<string, unknown>;
  return {
    traceEvents: events as ChromeEvent[],
    ...(typeof o.displayTimeUnit === 'string' ? { displayTimeUnit: o.displayTimeUnit } : {}),
    ...(isRecord(o.otherData) ? { otherData: o.otherData } : {}),
  };
}

export function parseChromeTrace(text: string, what: string): ChromeTrace {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ViewInputError(`${what}: not JSON: ${(e as Error).message}`);
  }
  return asChromeTrace(v, what);
}

export type ViewFileKind = 'chrome' | 'replay' | 'scenario';

/**
 * What a file given to `irqfwd view` holds: a Chrome trace (`traceEvents`, or a bare event array), a checker replay
 * file (`schedule` array and `variant`, src/check/replay.ts), or else a scenario (YAML or JSON).
 */
export function classifyViewFile(text: string): ViewFileKind {
  const head = text.trimStart();
  if (!head.startsWith('{') && !head.startsWith('[')) return 'scenario';
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'scenario';
  }
  if (Array.isArray(v)) return 'chrome';
  if (!isRecord(v)) return 'scenario';
  if (Array.isArray(v.traceEvents)) return 'chrome';
  if (Array.isArray(v.schedule) && typeof v.variant === 'string') return 'replay';
  return 'scenario';
}
