/**
 * Tracepoints: named events with typed fields and a TP_printk-style format.
 *
 * A record stores an event's fields as numbers in consecutive argument slots (see ring.ts): integers and booleans
 * take one slot, strings one slot holding an interned-string id, and a full 64-bit value (`u64`) two slots, low
 * then high 32 bits, so that kernel virtual addresses survive the trip through a Float64 slot. `long`/`ulong` are
 * 64-bit C types whose values the model keeps below 2^53, so they fit one slot.
 *
 * The events we share with Linux keep the kernel's system, name, field names and TP_printk format verbatim, with
 * __print_symbolic tables copied as data; each definition names the header it comes from. Ours live under the
 * `irqfwd` system and follow the same `key=value` style.
 */
import { KVM_EXIT_REASON_NAMES, KVM_EXIT_X86_WRMSR } from '../abi/kvm.js';
import { UNPREDICTABLE_REG_NAMES, UNPREDICTABLE_WHY_NAMES } from './gicUnpredictable.js';
import { type CompiledFormat, compileFormat, type PrintfArg, sprintf } from './printf.js';

export type FieldType = 'int' | 'uint' | 'long' | 'ulong' | 'u64' | 'bool' | 'str';

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
}

export interface EventField extends FieldSpec {
  /** First argument slot of this field in a record (a `u64` also uses slot + 1). */
  readonly slot: number;
}

/** A decoded field: u64 fields decode to bigint, bool to boolean, str to the string, the rest to number. */
export type FieldValue = number | bigint | boolean | string;
export type FieldValues = Readonly<Record<string, FieldValue>>;

export interface EventSpec {
  readonly name: string;
  readonly system: string;
  /** Where the definition comes from: a kernel header path, or 'irqfwd'. */
  readonly source: string;
  readonly fields: readonly FieldSpec[];
  /** The TP_printk format string. */
  readonly fmt: string;
  /** The TP_printk arguments computed from the fields (ternaries and __print_symbolic go here). */
  readonly printArgs: (f: FieldValues) => PrintfArg[];
}

export interface EventDef extends Omit<EventSpec, 'fields'> {
  readonly id: number;
  readonly fields: readonly EventField[];
  /** Argument slots a record of this event uses. */
  readonly slots: number;
  readonly format: CompiledFormat;
}

/** Resolves interned-string ids (the ring's intern table implements this). */
export interface StringLookup {
  str(id: number): string;
}

/** Argument slots per record. */
export const MAX_ARGS = 8;

const TWO32 = 4294967296;

/** Low 32 bits of a u64 value, for the first of its two slots. */
export function u64lo(v: number | bigint): number {
  if (typeof v === 'bigint') return Number(BigInt.asUintN(32, v));
  return (v % TWO32) >>> 0;
}

/** High 32 bits of a u64 value, for the second of its two slots. */
export function u64hi(v: number | bigint): number {
  if (typeof v === 'bigint') return Number(BigInt.asUintN(32, v >> 32n));
  return Math.floor(v / TWO32) >>> 0;
}

/** __print_symbolic: the symbol for a value, or the value as 0x%lx when the table has none (trace_print_symbols_seq). */
export function printSymbolic(value: FieldValue, table: ReadonlyMap<number, string>): string {
  const n = typeof value === 'bigint' ? Number(value) : Number(value);
  return table.get(n) ?? `0x${BigInt.asUintN(64, BigInt(Math.trunc(n))).toString(16)}`;
}

export class EventRegistry {
  private readonly defs: EventDef[] = [];
  private readonly byNameMap = new Map<string, EventDef>();

  /** Add an event; ids are assigned in registration order. */
  register(spec: EventSpec): EventDef {
    const key = spec.name;
    if (this.byNameMap.has(key)) throw new RangeError(`tracepoint ${spec.system}:${spec.name} is already registered`);
    let slot = 0;
    const fields: EventField[] = [];
    for (const f of spec.fields) {
      fields.push({ name: f.name, type: f.type, slot });
      slot += f.type === 'u64' ? 2 : 1;
    }
    if (slot > MAX_ARGS) throw new RangeError(`tracepoint ${spec.name} needs ${slot} slots; a record has ${MAX_ARGS}`);
    const format = compileFormat(spec.fmt);
    const def: EventDef = { ...spec, id: this.defs.length, fields, slots: slot, format };
    this.defs.push(def);
    this.byNameMap.set(key, def);
    return def;
  }

  get size(): number {
    return this.defs.length;
  }

  get list(): readonly EventDef[] {
    return this.defs;
  }

  byId(id: number): EventDef {
    const d = this.defs[id];
    if (d === undefined) throw new RangeError(`no tracepoint with id ${id}`);
    return d;
  }

  byName(name: string): EventDef | undefined {
    return this.byNameMap.get(name);
  }

  /** Decode the fields of a record whose argument slots start at args[base]. */
  decode(def: EventDef, args: ArrayLike<number>, base: number, strings: StringLookup): Record<string, FieldValue> {
    const out: Record<string, FieldValue> = {};
    for (const f of def.fields) {
      const v = args[base + f.slot]!;
      switch (f.type) {
        case 'u64':
          out[f.name] = (BigInt(args[base + f.slot + 1]! >>> 0) << 32n) | BigInt(v >>> 0);
          break;
        case 'bool':
          out[f.name] = v !== 0;
          break;
        case 'str':
          out[f.name] = strings.str(v);
          break;
        default:
          out[f.name] = v;
      }
    }
    return out;
  }

  /** The TP_printk text of decoded fields. */
  formatFields(def: EventDef, values: FieldValues): string {
    return sprintf(def.format, def.printArgs(values));
  }
}

// ---- symbol tables -------------------------------------------------------------------------------------------

/**
 * include/trace/events/kvm.h kvm_trace_exit_reason (ERSN(x) = { KVM_EXIT_x, "KVM_EXIT_x" }): the uapi names up to
 * KVM_EXIT_X86_WRMSR, the last one the tracepoint's table lists.
 */
export const KVM_TRACE_EXIT_REASON: ReadonlyMap<number, string> = new Map(
  [...KVM_EXIT_REASON_NAMES].filter(([reason]) => reason <= KVM_EXIT_X86_WRMSR),
);

export const ARM_EXCEPTION_IRQ = 0;
export const ARM_EXCEPTION_EL1_SERROR = 1;
export const ARM_EXCEPTION_TRAP = 2;
export const ARM_EXCEPTION_IL = 3;
/** arch/arm64/include/asm/virt.h HVC_STUB_ERR, returned as ARM_EXCEPTION_HYP_GONE. */
export const ARM_EXCEPTION_HYP_GONE = 0xbadca11;

/** arch/arm64/include/asm/kvm_asm.h kvm_arm_exception_type (ARM_EXCEPTION_IL has no entry: it prints as 0x3). */
export const KVM_ARM_EXCEPTION_TYPE: ReadonlyMap<number, string> = new Map([
  [ARM_EXCEPTION_IRQ, 'IRQ'],
  [ARM_EXCEPTION_EL1_SERROR, 'SERROR'],
  [ARM_EXCEPTION_TRAP, 'TRAP'],
  [ARM_EXCEPTION_HYP_GONE, 'HYP_GONE'],
]);

/** arch/arm64/include/asm/kvm_arm.h kvm_arm_exception_class: ECN(x) = { ESR_ELx_EC_x, "x" } (values: asm/esr.h). */
export const KVM_ARM_EXCEPTION_CLASS: ReadonlyMap<number, string> = new Map([
  [0x00, 'UNKNOWN'],
  [0x01, 'WFx'],
  [0x03, 'CP15_32'],
  [0x04, 'CP15_64'],
  [0x05, 'CP14_MR'],
  [0x06, 'CP14_LS'],
  [0x07, 'FP_ASIMD'],
  [0x08, 'CP10_ID'],
  [0x09, 'PAC'],
  [0x0c, 'CP14_64'],
  [0x15, 'SVC64'],
  [0x16, 'HVC64'],
  [0x17, 'SMC64'],
  [0x18, 'SYS64'],
  [0x19, 'SVE'],
  [0x1a, 'ERET'],
  [0x1f, 'IMP_DEF'],
  [0x20, 'IABT_LOW'],
  [0x21, 'IABT_CUR'],
  [0x22, 'PC_ALIGN'],
  [0x24, 'DABT_LOW'],
  [0x25, 'DABT_CUR'],
  [0x26, 'SP_ALIGN'],
  [0x28, 'FP_EXC32'],
  [0x2c, 'FP_EXC64'],
  [0x2f, 'SERROR'],
  [0x30, 'BREAKPT_LOW'],
  [0x31, 'BREAKPT_CUR'],
  [0x32, 'SOFTSTP_LOW'],
  [0x33, 'SOFTSTP_CUR'],
  [0x34, 'WATCHPT_LOW'],
  [0x35, 'WATCHPT_CUR'],
  [0x38, 'BKPT32'],
  [0x3a, 'VECTOR32'],
  [0x3c, 'BRK64'],
]);

/** include/trace/events/kvm.h kvm_trace_symbol_mmio. */
export const KVM_TRACE_MMIO_READ_UNSATISFIED = 0;
export const KVM_TRACE_MMIO_READ = 1;
export const KVM_TRACE_MMIO_WRITE = 2;
export const KVM_TRACE_SYMBOL_MMIO: ReadonlyMap<number, string> = new Map([
  [KVM_TRACE_MMIO_READ_UNSATISFIED, 'unsatisfied-read'],
  [KVM_TRACE_MMIO_READ, 'read'],
  [KVM_TRACE_MMIO_WRITE, 'write'],
]);

/** GICH_LR<n>.State encoding (GICv2 IHI 0048B §5.3.11). */
export const LR_STATE_INVALID = 0;
export const LR_STATE_PENDING = 1;
export const LR_STATE_ACTIVE = 2;
export const LR_STATE_PENDING_ACTIVE = 3;
export const LR_STATE_NAMES: ReadonlyMap<number, string> = new Map([
  [LR_STATE_INVALID, 'invalid'],
  [LR_STATE_PENDING, 'pending'],
  [LR_STATE_ACTIVE, 'active'],
  [LR_STATE_PENDING_ACTIVE, 'pending+active'],
]);

/** What the VFIO platform handler did with an interrupt (vfio_platform_irq `action`). */
export const VFIO_IRQ_AUTOMASKED = 0;
export const VFIO_IRQ_FORWARDED = 1;
export const VFIO_IRQ_EDGE = 2;
export const VFIO_IRQ_ACTION_NAMES: ReadonlyMap<number, string> = new Map([
  [VFIO_IRQ_AUTOMASKED, 'automasked'],
  [VFIO_IRQ_FORWARDED, 'forwarded'],
  [VFIO_IRQ_EDGE, 'edge'],
]);

/** What the ITS did with a translation request (its_translate `result`). */
export const ITS_XLATE_DROPPED = 0;
export const ITS_XLATE_LPI = 1;
export const ITS_XLATE_VLPI = 2;
export const ITS_XLATE_VPT = 3;
export const ITS_XLATE_NAMES: ReadonlyMap<number, string> = new Map([
  [ITS_XLATE_DROPPED, 'dropped'],
  [ITS_XLATE_LPI, 'lpi'],
  [ITS_XLATE_VLPI, 'vlpi'],
  [ITS_XLATE_VPT, 'vpt'],
]);

/** ITS command numbers (ARM IHI 0069 §5.3, DW0[7:0]) and the names its_cmd prints. */
export const ITS_CMD_NAMES: ReadonlyMap<number, string> = new Map([
  [0x01, 'MOVI'],
  [0x03, 'INT'],
  [0x04, 'CLEAR'],
  [0x05, 'SYNC'],
  [0x08, 'MAPD'],
  [0x09, 'MAPC'],
  [0x0a, 'MAPTI'],
  [0x0b, 'MAPI'],
  [0x0c, 'INV'],
  [0x0d, 'INVALL'],
  [0x0e, 'MOVALL'],
  [0x0f, 'DISCARD'],
  [0x21, 'VMOVI'],
  [0x22, 'VMOVP'],
  [0x25, 'VSYNC'],
  [0x29, 'VMAPP'],
  [0x2a, 'VMAPTI'],
  [0x2b, 'VMAPI'],
  [0x2d, 'VINVALL'],
  [0x2e, 'INVDB'],
]);

const KVM_ARM_IRQ_TYPE_CPU = 0;
const KVM_ARM_IRQ_TYPE_SPI = 1;
const KVM_ARM_IRQ_TYPE_PPI = 2;
const EINTR = 4;

// ---- the standard events -------------------------------------------------------------------------------------

const n = (v: FieldValue): number => Number(v);
const b = (v: FieldValue): number => (v === true || (typeof v === 'number' && v !== 0) ? 1 : 0);
const onOff = (v: FieldValue): string => (b(v) ? 'on' : 'off');
const big = (v: FieldValue): bigint => (typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v))));

const f = (name: string, type: FieldType): FieldSpec => ({ name, type });
const seqField = f('seq', 'uint');

/**
 * Every event irqfwd knows, in id order. The model emits with the EV_* constants below; a test pins that each
 * constant is the index of its definition.
 */
export const STANDARD_EVENTS: readonly EventSpec[] = [
  // include/trace/events/irq.h (TRACE_SYSTEM irq)
  {
    name: 'irq_handler_entry',
    system: 'irq',
    source: 'include/trace/events/irq.h',
    fields: [f('irq', 'int'), f('name', 'str')],
    fmt: 'irq=%d name=%s',
    printArgs: (v) => [n(v.irq!), String(v.name)],
  },
  {
    name: 'irq_handler_exit',
    system: 'irq',
    source: 'include/trace/events/irq.h',
    fields: [f('irq', 'int'), f('ret', 'int')],
    fmt: 'irq=%d ret=%s',
    printArgs: (v) => [n(v.irq!), n(v.ret!) !== 0 ? 'handled' : 'unhandled'],
  },
  // include/trace/events/kvm.h (TRACE_SYSTEM kvm)
  {
    name: 'kvm_userspace_exit',
    system: 'kvm',
    source: 'include/trace/events/kvm.h',
    fields: [f('reason', 'uint'), f('errno', 'int')],
    fmt: 'reason %s (%d)',
    printArgs: (v) => {
      const e = n(v.errno!);
      const r = n(v.reason!);
      const what = e < 0 ? (e === -EINTR ? 'restart' : 'error') : printSymbolic(r, KVM_TRACE_EXIT_REASON);
      return [what, e < 0 ? -e : r];
    },
  },
  {
    name: 'kvm_vcpu_wakeup',
    system: 'kvm',
    source: 'include/trace/events/kvm.h',
    fields: [f('ns', 'u64'), f('waited', 'bool'), f('valid', 'bool')],
    fmt: '%s time %lld ns, polling %s',
    printArgs: (v) => [b(v.waited!) ? 'wait' : 'poll', big(v.ns!), b(v.valid!) ? 'valid' : 'invalid'],
  },
  {
    name: 'kvm_set_irq',
    system: 'kvm',
    source: 'include/trace/events/kvm.h',
    fields: [f('gsi', 'uint'), f('level', 'int'), f('irq_source_id', 'int')],
    fmt: 'gsi %u level %d source %d',
    printArgs: (v) => [n(v.gsi!), n(v.level!), n(v.irq_source_id!)],
  },
  {
    // arm64 defines no kvm_irqchips table, so the numeric variant of the format applies.
    name: 'kvm_ack_irq',
    system: 'kvm',
    source: 'include/trace/events/kvm.h',
    fields: [f('irqchip', 'uint'), f('pin', 'uint')],
    fmt: 'irqchip %d pin %u',
    printArgs: (v) => [n(v.irqchip!), n(v.pin!)],
  },
  {
    name: 'kvm_mmio',
    system: 'kvm',
    source: 'include/trace/events/kvm.h',
    fields: [f('type', 'uint'), f('len', 'uint'), f('gpa', 'u64'), f('val', 'u64')],
    fmt: 'mmio %s len %u gpa 0x%llx val 0x%llx',
    printArgs: (v) => [printSymbolic(v.type!, KVM_TRACE_SYMBOL_MMIO), n(v.len!), big(v.gpa!), big(v.val!)],
  },
  // arch/arm64/kvm/trace_arm.h (TRACE_SYSTEM kvm)
  {
    name: 'kvm_entry',
    system: 'kvm',
    source: 'arch/arm64/kvm/trace_arm.h',
    fields: [f('vcpu_pc', 'u64')],
    fmt: 'PC: 0x%016lx',
    printArgs: (v) => [big(v.vcpu_pc!)],
  },
  {
    name: 'kvm_exit',
    system: 'kvm',
    source: 'arch/arm64/kvm/trace_arm.h',
    fields: [f('ret', 'int'), f('esr_ec', 'uint'), f('vcpu_pc', 'u64')],
    fmt: '%s: HSR_EC: 0x%04x (%s), PC: 0x%016lx',
    printArgs: (v) => [
      printSymbolic(v.ret!, KVM_ARM_EXCEPTION_TYPE),
      n(v.esr_ec!),
      printSymbolic(v.esr_ec!, KVM_ARM_EXCEPTION_CLASS),
      big(v.vcpu_pc!),
    ],
  },
  {
    name: 'kvm_irq_line',
    system: 'kvm',
    source: 'arch/arm64/kvm/trace_arm.h',
    fields: [f('type', 'uint'), f('vcpu_idx', 'int'), f('irq_num', 'int'), f('level', 'int')],
    fmt: 'Inject %s interrupt (%d), vcpu->idx: %d, num: %d, level: %d',
    printArgs: (v) => {
      const t = n(v.type!);
      const what =
        t === KVM_ARM_IRQ_TYPE_CPU
          ? 'CPU'
          : t === KVM_ARM_IRQ_TYPE_PPI
            ? 'VGIC PPI'
            : t === KVM_ARM_IRQ_TYPE_SPI
              ? 'VGIC SPI'
              : 'UNKNOWN';
      return [what, t, n(v.vcpu_idx!), n(v.irq_num!), n(v.level!)];
    },
  },
  {
    name: 'kvm_mmio_emulate',
    system: 'kvm',
    source: 'arch/arm64/kvm/trace_arm.h',
    fields: [f('vcpu_pc', 'u64'), f('instr', 'u64'), f('cpsr', 'u64')],
    fmt: 'Emulate MMIO at: 0x%016lx (instr: %08lx, cpsr: %08lx)',
    printArgs: (v) => [big(v.vcpu_pc!), big(v.instr!), big(v.cpsr!)],
  },
  {
    name: 'kvm_toggle_cache',
    system: 'kvm',
    source: 'arch/arm64/kvm/trace_arm.h',
    fields: [f('vcpu_pc', 'u64'), f('was', 'bool'), f('now', 'bool')],
    fmt: 'VM op at 0x%016lx (cache was %s, now %s)',
    printArgs: (v) => [big(v.vcpu_pc!), onOff(v.was!), onOff(v.now!)],
  },
  // arch/arm64/kvm/vgic/trace.h (TRACE_SYSTEM kvm)
  {
    name: 'vgic_update_irq_pending',
    system: 'kvm',
    source: 'arch/arm64/kvm/vgic/trace.h',
    fields: [f('vcpu_id', 'ulong'), f('irq', 'uint'), f('level', 'bool')],
    fmt: 'VCPU: %ld, IRQ %d, level: %d',
    printArgs: (v) => [n(v.vcpu_id!), n(v.irq!), b(v.level!)],
  },
  // ---- irqfwd's own events (TRACE_SYSTEM irqfwd) ----
  {
    name: 'device_assert',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('dev', 'str'), f('intid', 'uint'), seqField],
    fmt: 'dev=%s intid=%u seq=%u',
    printArgs: (v) => [String(v.dev), n(v.intid!), n(v.seq!)],
  },
  {
    name: 'device_deassert',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('dev', 'str'), f('intid', 'uint'), seqField],
    fmt: 'dev=%s intid=%u seq=%u',
    printArgs: (v) => [String(v.dev), n(v.intid!), n(v.seq!)],
  },
  {
    name: 'gic_iar',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('intid', 'uint'), seqField],
    fmt: 'intid=%u seq=%u',
    printArgs: (v) => [n(v.intid!), n(v.seq!)],
  },
  {
    name: 'gic_eoir',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('intid', 'uint'), f('eoimode', 'uint'), seqField],
    fmt: 'intid=%u eoimode=%u seq=%u',
    printArgs: (v) => [n(v.intid!), n(v.eoimode!), n(v.seq!)],
  },
  {
    name: 'gic_dir',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('intid', 'uint'), seqField],
    fmt: 'intid=%u seq=%u',
    printArgs: (v) => [n(v.intid!), n(v.seq!)],
  },
  {
    name: 'gic_lr_write',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [
      f('vcpu', 'uint'),
      f('lr', 'uint'),
      f('vintid', 'uint'),
      f('pintid', 'uint'),
      f('hw', 'bool'),
      f('eoi', 'bool'),
      f('state', 'uint'),
      seqField,
    ],
    fmt: 'vcpu=%u lr=%u vintid=%u pintid=%u hw=%u eoi=%u state=%s seq=%u',
    printArgs: (v) => [
      n(v.vcpu!),
      n(v.lr!),
      n(v.vintid!),
      n(v.pintid!),
      b(v.hw!),
      b(v.eoi!),
      printSymbolic(v.state!, LR_STATE_NAMES),
      n(v.seq!),
    ],
  },
  {
    name: 'vgic_maintenance',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('vcpu', 'uint'), f('lr', 'uint'), f('vintid', 'uint'), seqField],
    fmt: 'vcpu=%u lr=%u vintid=%u seq=%u',
    printArgs: (v) => [n(v.vcpu!), n(v.lr!), n(v.vintid!), n(v.seq!)],
  },
  {
    name: 'vgic_hw_deactivate',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('vcpu', 'uint'), f('vintid', 'uint'), f('pintid', 'uint'), seqField],
    fmt: 'vcpu=%u vintid=%u pintid=%u seq=%u',
    printArgs: (v) => [n(v.vcpu!), n(v.vintid!), n(v.pintid!), n(v.seq!)],
  },
  {
    name: 'vfio_platform_irq',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('dev', 'str'), f('index', 'uint'), f('irq', 'int'), f('action', 'uint'), seqField],
    fmt: 'dev=%s index=%u irq=%d action=%s seq=%u',
    printArgs: (v) => [
      String(v.dev),
      n(v.index!),
      n(v.irq!),
      printSymbolic(v.action!, VFIO_IRQ_ACTION_NAMES),
      n(v.seq!),
    ],
  },
  {
    name: 'vfio_unmask',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('dev', 'str'), f('index', 'uint'), f('irq', 'int'), seqField],
    fmt: 'dev=%s index=%u irq=%d seq=%u',
    printArgs: (v) => [String(v.dev), n(v.index!), n(v.irq!), n(v.seq!)],
  },
  {
    name: 'eventfd_signal',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('fd', 'int'), f('count', 'ulong'), seqField],
    fmt: 'fd=%d count=%lu seq=%u',
    printArgs: (v) => [n(v.fd!), n(v.count!), n(v.seq!)],
  },
  {
    name: 'irqfd_inject',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('gsi', 'uint'), f('vintid', 'uint'), f('level', 'int'), seqField],
    fmt: 'gsi=%u vintid=%u level=%d seq=%u',
    printArgs: (v) => [n(v.gsi!), n(v.vintid!), n(v.level!), n(v.seq!)],
  },
  {
    name: 'irqfd_resample',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('gsi', 'uint'), f('vintid', 'uint'), seqField],
    fmt: 'gsi=%u vintid=%u seq=%u',
    printArgs: (v) => [n(v.gsi!), n(v.vintid!), n(v.seq!)],
  },
  {
    name: 'guest_irq_entry',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('vcpu', 'uint'), f('intid', 'uint'), seqField],
    fmt: 'vcpu=%u intid=%u seq=%u',
    printArgs: (v) => [n(v.vcpu!), n(v.intid!), n(v.seq!)],
  },
  {
    name: 'guest_eoi',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('vcpu', 'uint'), f('intid', 'uint'), seqField],
    fmt: 'vcpu=%u intid=%u seq=%u',
    printArgs: (v) => [n(v.vcpu!), n(v.intid!), n(v.seq!)],
  },
  {
    name: 'kvm_vfio_assign_irq',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('dev', 'str'), f('index', 'uint'), f('gsi', 'uint'), f('hwintid', 'uint'), f('ret', 'int')],
    fmt: 'dev=%s index=%u gsi=%u hwintid=%u ret=%d',
    printArgs: (v) => [String(v.dev), n(v.index!), n(v.gsi!), n(v.hwintid!), n(v.ret!)],
  },
  {
    name: 'kvm_vfio_deassign_irq',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('dev', 'str'), f('index', 'uint'), f('gsi', 'uint'), f('ret', 'int')],
    fmt: 'dev=%s index=%u gsi=%u ret=%d',
    printArgs: (v) => [String(v.dev), n(v.index!), n(v.gsi!), n(v.ret!)],
  },
  {
    name: 'irq_forward_set',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('irq', 'int'), f('forwarded', 'bool'), f('vcpu', 'int')],
    fmt: 'irq=%d forwarded=%u vcpu=%d',
    printArgs: (v) => [n(v.irq!), b(v.forwarded!), n(v.vcpu!)],
  },
  // ---- GICv3 ITS and GICv4.1 (irqfwd): the hardware's steps, then KVM's where Linux has no tracepoint ----
  {
    name: 'its_cmd',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [
      f('cmd', 'uint'),
      f('devid', 'uint'),
      f('eventid', 'uint'),
      f('intid', 'uint'),
      f('vpeid', 'int'),
      f('ok', 'bool'),
    ],
    fmt: 'cmd=%s devid=%u eventid=%u intid=%u vpeid=%d ok=%u',
    printArgs: (v) => [
      printSymbolic(v.cmd!, ITS_CMD_NAMES),
      n(v.devid!),
      n(v.eventid!),
      n(v.intid!),
      n(v.vpeid!),
      b(v.ok!),
    ],
  },
  {
    name: 'its_translate',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [
      f('devid', 'uint'),
      f('eventid', 'uint'),
      f('intid', 'uint'),
      f('vpeid', 'int'),
      f('vcpu', 'int'),
      f('pe', 'int'),
      f('result', 'uint'),
    ],
    fmt: 'devid=%u eventid=%u intid=%u vpeid=%d vcpu=%d pe=%d result=%s',
    printArgs: (v) => [
      n(v.devid!),
      n(v.eventid!),
      n(v.intid!),
      n(v.vpeid!),
      n(v.vcpu!),
      n(v.pe!),
      printSymbolic(v.result!, ITS_XLATE_NAMES),
    ],
  },
  {
    name: 'gic_vpendbaser',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [
      f('pe', 'uint'),
      f('vpeid', 'uint'),
      f('vcpu', 'int'),
      f('valid', 'bool'),
      f('doorbell', 'bool'),
      f('pendinglast', 'bool'),
    ],
    fmt: 'pe=%u vpeid=%u vcpu=%d valid=%u doorbell=%u pendinglast=%u',
    printArgs: (v) => [n(v.pe!), n(v.vpeid!), n(v.vcpu!), b(v.valid!), b(v.doorbell!), b(v.pendinglast!)],
  },
  {
    name: 'gic_vpe_doorbell',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('pe', 'uint'), f('vpeid', 'uint'), f('vcpu', 'int'), f('intid', 'uint'), f('vintid', 'uint')],
    fmt: 'pe=%u vpeid=%u vcpu=%d intid=%u vintid=%u',
    printArgs: (v) => [n(v.pe!), n(v.vpeid!), n(v.vcpu!), n(v.intid!), n(v.vintid!)],
  },
  {
    name: 'gic_vlpi_iar',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('pe', 'uint'), f('vpeid', 'uint'), f('vcpu', 'int'), f('vintid', 'uint')],
    fmt: 'pe=%u vpeid=%u vcpu=%d vintid=%u',
    printArgs: (v) => [n(v.pe!), n(v.vpeid!), n(v.vcpu!), n(v.vintid!)],
  },
  {
    name: 'vgic_v4_doorbell',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('vcpu', 'uint'), f('irq', 'int')],
    fmt: 'vcpu=%u irq=%d',
    printArgs: (v) => [n(v.vcpu!), n(v.irq!)],
  },
  {
    name: 'vgic_its_inject',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('devid', 'uint'), f('eventid', 'uint'), f('vintid', 'uint'), f('vcpu', 'int'), f('cached', 'bool')],
    fmt: 'devid=%u eventid=%u vintid=%u vcpu=%d cached=%u',
    printArgs: (v) => [n(v.devid!), n(v.eventid!), n(v.vintid!), n(v.vcpu!), b(v.cached!)],
  },
  {
    name: 'gic_unpredictable',
    system: 'irqfwd',
    source: 'irqfwd',
    fields: [f('reg', 'uint'), f('why', 'uint'), f('intid', 'uint')],
    fmt: 'reg=%s why=%s intid=%u',
    printArgs: (v) => [
      printSymbolic(v.reg!, UNPREDICTABLE_REG_NAMES),
      printSymbolic(v.why!, UNPREDICTABLE_WHY_NAMES),
      n(v.intid!),
    ],
  },
];

export const EV_IRQ_HANDLER_ENTRY = 0;
export const EV_IRQ_HANDLER_EXIT = 1;
export const EV_KVM_USERSPACE_EXIT = 2;
export const EV_KVM_VCPU_WAKEUP = 3;
export const EV_KVM_SET_IRQ = 4;
export const EV_KVM_ACK_IRQ = 5;
export const EV_KVM_MMIO = 6;
export const EV_KVM_ENTRY = 7;
export const EV_KVM_EXIT = 8;
export const EV_KVM_IRQ_LINE = 9;
export const EV_KVM_MMIO_EMULATE = 10;
export const EV_KVM_TOGGLE_CACHE = 11;
export const EV_VGIC_UPDATE_IRQ_PENDING = 12;
export const EV_DEVICE_ASSERT = 13;
export const EV_DEVICE_DEASSERT = 14;
export const EV_GIC_IAR = 15;
export const EV_GIC_EOIR = 16;
export const EV_GIC_DIR = 17;
export const EV_GIC_LR_WRITE = 18;
export const EV_VGIC_MAINTENANCE = 19;
export const EV_VGIC_HW_DEACTIVATE = 20;
export const EV_VFIO_PLATFORM_IRQ = 21;
export const EV_VFIO_UNMASK = 22;
export const EV_EVENTFD_SIGNAL = 23;
export const EV_IRQFD_INJECT = 24;
export const EV_IRQFD_RESAMPLE = 25;
export const EV_GUEST_IRQ_ENTRY = 26;
export const EV_GUEST_EOI = 27;
export const EV_KVM_VFIO_ASSIGN_IRQ = 28;
export const EV_KVM_VFIO_DEASSIGN_IRQ = 29;
export const EV_IRQ_FORWARD_SET = 30;
export const EV_ITS_CMD = 31;
export const EV_ITS_TRANSLATE = 32;
export const EV_GIC_VPENDBASER = 33;
export const EV_GIC_VPE_DOORBELL = 34;
export const EV_GIC_VLPI_IAR = 35;
export const EV_VGIC_V4_DOORBELL = 36;
export const EV_VGIC_ITS_INJECT = 37;
export const EV_GIC_UNPREDICTABLE = 38;

/** A registry holding STANDARD_EVENTS with ids equal to the EV_* constants. */
export function createStandardRegistry(): EventRegistry {
  const r = new EventRegistry();
  for (const s of STANDARD_EVENTS) r.register(s);
  return r;
}
