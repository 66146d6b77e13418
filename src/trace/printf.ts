/**
 * A small C printf for trace output: enough of the kernel's vsnprintf (lib/vsprintf.c) to render TP_printk
 * formats byte for byte. Formats are compiled once; rendering is only done by the writers, never on the hot path.
 *
 * Supported: flags `-0#+ `, width, precision, length modifiers hh h l ll z (arm64: long = 64 bits), conversions
 * d i u x X c s %. Integer arguments may be numbers or bigints; they are wrapped to the width the length modifier
 * names, as C would.
 */

export type PrintfArg = number | bigint | string | boolean;

interface Conv {
  readonly minus: boolean;
  readonly zero: boolean;
  readonly alt: boolean;
  readonly plus: boolean;
  readonly space: boolean;
  readonly width: number;
  readonly prec: number;
  readonly bits: number;
  readonly conv: string;
}

export type Segment = string | Conv;

export interface CompiledFormat {
  readonly fmt: string;
  readonly segments: readonly Segment[];
  /** Number of arguments the format consumes. */
  readonly arity: number;
}

const SPEC = /%([-0#+ ]*)(\d+)?(?:\.(\d+))?(hh|h|ll|l|z)?([diuxXcs%])/y;

export function compileFormat(fmt: string): CompiledFormat {
  const segments: Segment[] = [];
  let lit = '';
  let arity = 0;
  let i = 0;
  while (i < fmt.length) {
    const ch = fmt[i]!;
    if (ch !== '%') {
      lit += ch;
      i++;
      continue;
    }
    SPEC.lastIndex = i;
    const m = SPEC.exec(fmt);
    if (m === null) throw new SyntaxError(`unsupported printf conversion at ${i} in ${JSON.stringify(fmt)}`);
    i = SPEC.lastIndex;
    const conv = m[5]!;
    if (conv === '%') {
      lit += '%';
      continue;
    }
    if (lit !== '') segments.push(lit);
    lit = '';
    const flags = m[1] ?? '';
    const len = m[4] ?? '';
    segments.push({
      minus: flags.includes('-'),
      zero: flags.includes('0'),
      alt: flags.includes('#'),
      plus: flags.includes('+'),
      space: flags.includes(' '),
      width: m[2] === undefined ? 0 : Number(m[2]),
      prec: m[3] === undefined ? -1 : Number(m[3]),
      bits: len === 'l' || len === 'll' || len === 'z' ? 64 : len === 'h' ? 16 : len === 'hh' ? 8 : 32,
      conv,
    });
    arity++;
  }
  if (lit !== '') segments.push(lit);
  return { fmt, segments, arity };
}

function toBig(v: PrintfArg): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'boolean') return v ? 1n : 0n;
  if (typeof v === 'number') return BigInt(Math.trunc(v));
  throw new TypeError(`integer conversion given a string ${JSON.stringify(v)}`);
}

function pad(body: string, c: Conv, sign: string, prefix: string): string {
  const len = sign.length + prefix.length + body.length;
  if (len >= c.width) return sign + prefix + body;
  const fill = c.width - len;
  if (c.minus) return sign + prefix + body + ' '.repeat(fill);
  // '0' is ignored when a precision is given for an integer conversion (C11 7.21.6.1).
  if (c.zero && c.prec < 0 && c.conv !== 's' && c.conv !== 'c') return sign + prefix + '0'.repeat(fill) + body;
  return ' '.repeat(fill) + sign + prefix + body;
}

function convert(c: Conv, v: PrintfArg): string {
  switch (c.conv) {
    case 's': {
      let s = typeof v === 'string' ? v : String(v);
      if (c.prec >= 0) s = s.slice(0, c.prec);
      return pad(s, c, '', '');
    }
    case 'c':
      return pad(typeof v === 'string' ? v.slice(0, 1) : String.fromCharCode(Number(v) & 0xff), c, '', '');
    case 'd':
    case 'i': {
      const n = BigInt.asIntN(c.bits, toBig(v));
      const neg = n < 0n;
      let body = (neg ? -n : n).toString(10);
      if (c.prec >= 0) body = c.prec === 0 && n === 0n ? '' : body.padStart(c.prec, '0');
      return pad(body, c, neg ? '-' : c.plus ? '+' : c.space ? ' ' : '', '');
    }
    default: {
      const n = BigInt.asUintN(c.bits, toBig(v));
      let body = c.conv === 'u' ? n.toString(10) : n.toString(16);
      if (c.conv === 'X') body = body.toUpperCase();
      if (c.prec >= 0) body = c.prec === 0 && n === 0n ? '' : body.padStart(c.prec, '0');
      const prefix = c.alt && n !== 0n && c.conv !== 'u' ? (c.conv === 'X' ? '0X' : '0x') : '';
      return pad(body, c, '', prefix);
    }
  }
}

/** Render a compiled format with its arguments (exactly `arity` of them). */
export function sprintf(f: CompiledFormat, args: readonly PrintfArg[]): string {
  if (args.length !== f.arity) {
    throw new RangeError(`format ${JSON.stringify(f.fmt)} takes ${f.arity} arguments, got ${args.length}`);
  }
  let out = '';
  let k = 0;
  for (const s of f.segments) out += typeof s === 'string' ? s : convert(s, args[k++]!);
  return out;
}

/** One-shot convenience for tests and writers. */
export function cprintf(fmt: string, ...args: PrintfArg[]): string {
  return sprintf(compileFormat(fmt), args);
}
