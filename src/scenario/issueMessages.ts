/**
 * zod's default issue messages ("Too small: expected number to be >=1", "Invalid option: expected one of
 * "normal"|"both"") in the project's voice: `expected an integer ≥ 1`, `expected one of normal | forwarded | both`.
 * Passed as the per-parse error map, so a message the schema spells out itself still wins.
 */
import type { z } from 'zod';

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  bigint: 'an integer',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  tuple: 'a list',
  null: 'null',
};

const show = (v: unknown): string => (typeof v === 'string' ? v : String(v));

function bound(origin: string, cmp: string, n: number | bigint): string {
  if (origin === 'array' || origin === 'set') return `expected a list with ${cmp} ${n} item${n === 1 ? '' : 's'}`;
  if (origin === 'string') return `expected a string of ${cmp} ${n} character${n === 1 ? '' : 's'}`;
  return `expected ${origin === 'int' ? 'an integer' : 'a number'} ${cmp} ${n}`;
}

/** The project's message for a zod issue, or undefined to keep zod's (codes this does not know). */
export function issueMessage(iss: z.core.$ZodRawIssue): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      return `expected ${TYPE_WORDS[iss.expected] ?? iss.expected}`;
    case 'invalid_value':
      return iss.values.length === 1
        ? `expected ${show(iss.values[0])}`
        : `expected one of ${iss.values.map(show).join(' | ')}`;
    case 'too_small':
      return bound(iss.origin, iss.exact ? 'exactly' : iss.inclusive ? 'at least' : 'more than', iss.minimum);
    case 'too_big':
      return bound(iss.origin, iss.exact ? 'exactly' : iss.inclusive ? 'at most' : 'less than', iss.maximum);
    case 'not_multiple_of':
      return `expected a multiple of ${iss.divisor}`;
    case 'invalid_format':
      return iss.format === 'regex' && 'pattern' in iss
        ? `expected a string matching ${String(iss.pattern)}`
        : `expected ${iss.format}`;
    case 'invalid_union':
      return 'expected one of the forms the schema allows (irqfwd schema)';
    default:
      return undefined;
  }
}
