/**
 * Little-endian codecs for fixed-layout uapi structs (arm64 kernel layout: natural alignment, __u64 8-aligned).
 *
 * A codec is declared from its members' byte offsets, so each struct file reads like the C declaration. Bytes no
 * member covers (padding, reserved pad[] the kernel never reads) encode as zero and are ignored on decode.
 *
 * __u64 members decode to a bigint, losslessly: a handler sees exactly the 64 bits userspace wrote and decides itself
 * what an out-of-range value means. An address past TASK_SIZE faults only when the handler dereferences it (UserMemory
 * takes bigint addresses for that), and a KVM_HAS_DEVICE_ATTR that never reads `addr` must not fail because of it.
 * Decoding therefore never throws once minsz bytes are present: every bit pattern is a value.
 * Encoding checks ranges: a value that does not fit its member is a model bug (ModelError).
 */
import { ModelError } from '../sim/errors.js';

export type NumberKind = 'u8' | 'u16' | 'u32' | 's32';

/** A __u8/__u16/__u32/__s32 member: decodes to a number. */
export interface NumberField {
  readonly kind: NumberKind;
  readonly offset: number;
}

/** A __u64 member: decodes to a bigint; encodes from a bigint or a non-negative safe integer. */
export interface U64Field {
  readonly kind: 'u64';
  readonly offset: number;
}

/** A `__u8 name[length]` or `__u32 name[length]` member: decodes to a number array. */
export interface ArrayField {
  readonly kind: 'u8[]' | 'u32[]';
  readonly offset: number;
  readonly length: number;
}

export type Field = NumberField | U64Field | ArrayField;
export type Fields = Readonly<Record<string, Field>>;

/** The decoded value of a struct: a number per 8..32-bit member, a bigint per __u64, a number array per array. */
export type StructValue<F extends Fields> = {
  [K in keyof F]: F[K] extends ArrayField ? readonly number[] : F[K] extends U64Field ? bigint : number;
};

/**
 * What `encode`/`write` accept: like StructValue, but a __u64 may also be given as a number and an array member may
 * be left out (it encodes as zeros).
 */
export type StructInit<F extends Fields> = {
  [K in keyof F as F[K] extends ArrayField ? never : K]: F[K] extends U64Field ? bigint | number : number;
} & {
  [K in keyof F as F[K] extends ArrayField ? K : never]?: readonly number[];
};

export const u8 = (offset: number): NumberField => ({ kind: 'u8', offset });
export const u16 = (offset: number): NumberField => ({ kind: 'u16', offset });
export const u32 = (offset: number): NumberField => ({ kind: 'u32', offset });
export const s32 = (offset: number): NumberField => ({ kind: 's32', offset });
export const u64 = (offset: number): U64Field => ({ kind: 'u64', offset });
export const u8Array = (offset: number, length: number): ArrayField => ({ kind: 'u8[]', offset, length });
export const u32Array = (offset: number, length: number): ArrayField => ({ kind: 'u32[]', offset, length });

const ELEM_WIDTH: Readonly<Record<Field['kind'], number>> = {
  u8: 1,
  u16: 2,
  u32: 4,
  s32: 4,
  u64: 8,
  'u8[]': 1,
  'u32[]': 4,
};

function fieldWidth(f: Field): number {
  return f.kind === 'u8[]' || f.kind === 'u32[]' ? ELEM_WIDTH[f.kind] * f.length : ELEM_WIDTH[f.kind];
}

const U64_MAX = (1n << 64n) - 1n;

export interface StructCodec<F extends Fields> {
  /** The C struct name, e.g. 'kvm_irqfd'. */
  readonly name: string;
  /** sizeof(struct). */
  readonly size: number;
  /** The fewest bytes the kernel copies (offsetofend of the last mandatory member); equals size unless declared. */
  readonly minsz: number;
  readonly fields: F;
  offsetof(field: keyof F & string): number;
  offsetofend(field: keyof F & string): number;
  /**
   * Decodes from `view` at `offset`. The view may stop anywhere at or after minsz; members past its end read as 0
   * (as a handler sees only the minsz prefix it copied). Fewer than minsz bytes is a caller bug (ModelError).
   */
  read(view: DataView, offset?: number): StructValue<F>;
  /** Encodes into `view` at `offset`: all sizeof bytes, or the prefix the view has room for (at least minsz). */
  write(view: DataView, value: StructInit<F>, offset?: number): void;
  /** sizeof bytes, padding zeroed. */
  encode(value: StructInit<F>): Uint8Array;
  decode(bytes: Uint8Array): StructValue<F>;
}

export interface StructOptions<F extends Fields> {
  /** The member whose offsetofend is the kernel's minsz (argsz-style VFIO structs). */
  readonly minszField?: keyof F & string;
}

function checkLayout(name: string, size: number, fields: Fields): void {
  const covered = new Uint8Array(size);
  for (const [key, f] of Object.entries(fields)) {
    const width = fieldWidth(f);
    if (f.offset % ELEM_WIDTH[f.kind] !== 0) throw new ModelError(`${name}.${key} at ${f.offset} is misaligned`);
    if (f.offset < 0 || f.offset + width > size) throw new ModelError(`${name}.${key} lies outside sizeof ${size}`);
    for (let i = f.offset; i < f.offset + width; i++) {
      if (covered[i] !== 0) throw new ModelError(`${name}.${key} overlaps another member at byte ${i}`);
      covered[i] = 1;
    }
  }
}

function u32Bits(name: string, key: string, v: number): number {
  // A C assignment of an int (e.g. fd -1) to a __u32 member wraps; anything outside int/u32 range is a model bug.
  if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0xffff_ffff) {
    throw new ModelError(`${name}.${key} = ${v} does not fit a 32-bit member`);
  }
  return v >>> 0;
}

type Member = number | bigint | readonly number[] | undefined;

function writeField(name: string, key: string, view: DataView, at: number, f: Field, v: Member): void {
  if (f.kind === 'u8[]' || f.kind === 'u32[]') {
    if (v === undefined) return; // left out: zeros
    if (typeof v === 'number' || typeof v === 'bigint' || v.length !== f.length) {
      throw new ModelError(`${name}.${key} must be an array of ${f.length} numbers`);
    }
    v.forEach((e, i) => {
      if (f.kind === 'u32[]') {
        view.setUint32(at + 4 * i, u32Bits(name, key, e), true);
      } else {
        if (!Number.isInteger(e) || e < 0 || e > 0xff) throw new ModelError(`${name}.${key}[${i}] = ${e} is not a u8`);
        view.setUint8(at + i, e);
      }
    });
    return;
  }
  if (v === undefined) throw new ModelError(`${name}.${key} is missing`);
  if (f.kind === 'u64') {
    const big = typeof v === 'bigint' ? v : typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : undefined;
    if (big === undefined || big < 0n || big > U64_MAX) {
      throw new ModelError(`${name}.${key} = ${String(v)} is not a __u64 (bigint, or a safe non-negative integer)`);
    }
    view.setBigUint64(at, big, true);
    return;
  }
  if (typeof v !== 'number') throw new ModelError(`${name}.${key} must be a number`);
  const bad = (range: string) => new ModelError(`${name}.${key} = ${v} is outside ${range}`);
  switch (f.kind) {
    case 'u8':
      if (!Number.isInteger(v) || v < 0 || v > 0xff) throw bad('0..0xff');
      view.setUint8(at, v);
      return;
    case 'u16':
      if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw bad('0..0xffff');
      view.setUint16(at, v, true);
      return;
    case 'u32':
      view.setUint32(at, u32Bits(name, key, v), true);
      return;
    case 's32':
      if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0x7fff_ffff) throw bad('the s32 range');
      view.setInt32(at, v, true);
      return;
  }
}

function readField(view: DataView, at: number, f: Field): number | bigint | readonly number[] {
  switch (f.kind) {
    case 'u8[]':
      return Array.from({ length: f.length }, (_, i) => view.getUint8(at + i));
    case 'u32[]':
      return Array.from({ length: f.length }, (_, i) => view.getUint32(at + 4 * i, true));
    case 'u8':
      return view.getUint8(at);
    case 'u16':
      return view.getUint16(at, true);
    case 'u32':
      return view.getUint32(at, true);
    case 's32':
      return view.getInt32(at, true);
    case 'u64':
      return view.getBigUint64(at, true);
  }
}

function zeroOf(f: Field): number | bigint | readonly number[] {
  if (f.kind === 'u8[]' || f.kind === 'u32[]') return new Array<number>(f.length).fill(0);
  return f.kind === 'u64' ? 0n : 0;
}

/** Declares a struct codec; the layout is checked (bounds, alignment, overlap) when the module loads. */
export function defineStruct<const F extends Fields>(
  name: string,
  size: number,
  fields: F,
  options: StructOptions<F> = {},
): StructCodec<F> {
  checkLayout(name, size, fields);
  const entries = Object.entries(fields);
  const fieldOf = (key: string): Field => {
    const f = fields[key];
    if (f === undefined) throw new ModelError(`${name} has no member ${key}`);
    return f;
  };
  const offsetofend = (key: string) => fieldOf(key).offset + fieldWidth(fieldOf(key));
  const minsz = options.minszField === undefined ? size : offsetofend(options.minszField);

  const available = (view: DataView, offset: number, verb: string): number => {
    const avail = view.byteLength - offset;
    if (!Number.isInteger(offset) || offset < 0 || avail < minsz) {
      throw new ModelError(`${verb} ${name}: ${Math.max(avail, 0)} bytes at offset ${offset}, minsz is ${minsz}`);
    }
    return Math.min(avail, size);
  };

  const codec: StructCodec<F> = {
    name,
    size,
    minsz,
    fields,
    offsetof: (key) => fieldOf(key).offset,
    offsetofend,
    read(view, offset = 0) {
      const avail = available(view, offset, 'read');
      const out: Record<string, number | bigint | readonly number[]> = {};
      for (const [key, f] of entries) {
        out[key] = f.offset + fieldWidth(f) <= avail ? readField(view, offset + f.offset, f) : zeroOf(f);
      }
      return out as StructValue<F>;
    },
    write(view, value, offset = 0) {
      const len = available(view, offset, 'write');
      const full = codec.encode(value);
      new Uint8Array(view.buffer, view.byteOffset + offset, len).set(full.subarray(0, len));
    },
    encode(value) {
      const bytes = new Uint8Array(size);
      const view = new DataView(bytes.buffer);
      const v = value as Readonly<Record<string, Member>>;
      for (const [key, f] of entries) writeField(name, key, view, f.offset, f, v[key]);
      return bytes;
    },
    decode(bytes) {
      return codec.read(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    },
  };
  return codec;
}
