/**
 * The scenario document: what machine to build, which devices to pass through to which VM, how the VMM drives the
 * ABI, how the devices raise their IRQs, and what to measure. A zod schema is the single source of truth: it
 * validates, fills in defaults, converts every duration to cycles of the host clock and cross-checks references, and
 * its JSON Schema (`scenarioJsonSchema()`, printed by `irqfwd schema`) is what editors complete against.
 *
 * Parsing is idempotent: `Scenario.parse(Scenario.parse(x))` equals `Scenario.parse(x)` — the resolved document
 * (defaults explicit, durations in cycles, the default VMM plan expanded, event names parsed) is itself a valid
 * input. The runner relies on it to re-validate a scenario after substituting a sweep value.
 *
 * docs/CLI.md documents every field; the comments here say what the model does with it.
 */
import { z } from 'zod';
import { ERRNO } from '../abi/errno.js';
import * as abi from '../abi/index.js';
import { COST_PROFILES, PROFILE_NAMES, type ProfileName } from '../sim/profiles.js';
import { createdFdAt, FD_CREATING_REQUESTS } from './createdFd.js';
import { isMetricPath } from './metrics.js';

// ---------------------------------------------------------------------------------------------------------------
// Durations

const DURATION_RE = /^\s*(\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*(s|ms|us|µs|ns|cycles?|cyc)\s*$/;

/** A duration written with a unit, before the host clock is known. Resolved to cycles at the end of parsing. */
class DurationTag {
  constructor(
    readonly value: number,
    readonly unit: 'ns' | 'cycles',
  ) {}

  cycles(hz: number): number {
    return this.unit === 'cycles' ? Math.round(this.value) : Math.round((this.value * hz) / 1e9);
  }
}

const UNIT_NS: Readonly<Record<string, number>> = { s: 1e9, ms: 1e6, us: 1e3, µs: 1e3, ns: 1 };

/** "10ms" → 10 ms; "2.5us"; "500ns"; "1s"; "3000cycles". Undefined when the text is not a duration. */
export function parseDurationText(text: string): { value: number; unit: 'ns' | 'cycles' } | undefined {
  const m = DURATION_RE.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  const u = m[2]!;
  if (!Number.isFinite(n)) return undefined;
  if (u.startsWith('cyc')) return { value: n, unit: 'cycles' };
  return { value: n * UNIT_NS[u]!, unit: 'ns' };
}

/** Converts a duration (cycles as a number, or a string with a unit) to cycles at `hz`. */
export function durationToCycles(d: number | string, hz: number): number {
  if (typeof d === 'number') return d;
  const p = parseDurationText(d);
  if (!p) throw new RangeError(`not a duration: '${d}'`);
  return new DurationTag(p.value, p.unit).cycles(hz);
}

const DURATION_HELP =
  'a duration: cycles (a non-negative integer) or a string with a unit: "10ms", "2.5us", "500ns", "1s", "3000cycles"';

const Duration = z
  .union(
    [
      z.number().int().nonnegative(),
      z
        .string()
        .regex(DURATION_RE)
        .transform((s) => {
          const p = parseDurationText(s)!;
          return new DurationTag(p.value, p.unit);
        }),
    ],
    { error: `expected ${DURATION_HELP}` },
  )
  .meta({ description: DURATION_HELP });

/** Replaces every DurationTag in the parsed tree by cycles: the output type of the schema. */
type Resolved<T> = T extends DurationTag
  ? number
  : T extends readonly (infer U)[]
    ? Resolved<U>[]
    : T extends object
      ? { [K in keyof T]: Resolved<T[K]> }
      : T;

function resolveDurations(v: unknown, hz: number): unknown {
  if (v instanceof DurationTag) return v.cycles(hz);
  if (Array.isArray(v)) return v.map((x) => resolveDurations(x, hz));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = resolveDurations(x, hz);
    return out;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------------------------
// Names and events

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/;
const Name = z
  .string()
  .regex(NAME_RE, { error: 'expected a name: letters, digits and _ . : - (no spaces, no / or #)' })
  .meta({ description: 'a name: letters, digits and _ . : -' });

const ID_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const StepId = z
  .string()
  .regex(ID_RE, { error: 'expected a step id: a letter or _ then letters, digits, _ . -' })
  .meta({ description: 'an identifier other steps can wait for with `after`' });

export type IrqEventKind = 'raised' | 'delivered' | 'deactivated';

/** What `after` waits for: a step's completion, or the n-th (1-based) raise/delivery/deactivation of a device IRQ. */
export type ScenarioEvent =
  | { kind: 'step'; id: string }
  | { kind: IrqEventKind; device: string; index: number; n: number };

const EVENT_RE = /^(raised|delivered|deactivated):([^/#\s]+)\/(\d+)#(\d+)$/;

const EVENT_HELP =
  'an event: the id of a step ("assign0"), or "raised:<device>/<index>#<n>", "delivered:<device>/<index>#<n>" or ' +
  '"deactivated:<device>/<index>#<n>" (the n-th, from 1, assertion of the line / guest handler entry / physical deactivation)';

const EventObject = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('step'), id: StepId }),
  z.strictObject({
    kind: z.enum(['raised', 'delivered', 'deactivated']),
    device: Name,
    index: z.number().int().nonnegative(),
    n: z.number().int().positive(),
  }),
]);

const Event = z
  .union(
    [
      z.string().transform((s, ctx): ScenarioEvent => {
        const m = EVENT_RE.exec(s);
        if (m) {
          const n = Number(m[4]);
          if (n < 1)
            ctx.issues.push({ code: 'custom', message: 'event counts start at 1 (#1 is the first)', input: s });
          return { kind: m[1] as IrqEventKind, device: m[2]!, index: Number(m[3]), n };
        }
        if (ID_RE.test(s)) return { kind: 'step', id: s };
        ctx.issues.push({ code: 'custom', message: `expected ${EVENT_HELP}`, input: s });
        return z.NEVER;
      }),
      EventObject,
    ],
    { error: `expected ${EVENT_HELP}` },
  )
  .meta({ description: EVENT_HELP });

/** `at` (absolute time) or `after` (an event, then `delay`); neither: right after the previous step. */
const Timing = {
  at: Duration.optional().meta({ description: 'simulated time at which this happens (waits if still in the future)' }),
  after: Event.optional(),
  delay: Duration.optional().meta({ description: 'extra wait after `after`' }),
};

// ---------------------------------------------------------------------------------------------------------------
// Host and devices

const Gic = z
  .strictObject({
    version: z
      .enum(['v2', 'v3'])
      .default('v2')
      .meta({
        description:
          "the GIC architecture: 'v2' (GICv2 + virtualization extensions) or 'v3' (affinity routing, ICC_* system " +
          'registers; no GICv2 compatibility, so its VMs need a vGIC-v3)',
      }),
    nrIrqs: z
      .number()
      .int()
      .min(64)
      .max(1024)
      .multipleOf(32)
      .default(256)
      .meta({ description: 'INTIDs the distributor implements (GICD_TYPER.ITLinesNumber), a multiple of 32' }),
    nrEspis: z.number().int().min(0).max(1024).multipleOf(32).default(0).meta({
      description:
        'v3 only: GICv3.1 Extended SPIs (INTIDs 4096 .. 4096 + nrEspis - 1, GICD_TYPER.ESPI_range), a multiple of 32',
    }),
    nrLrs: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(4)
      .meta({ description: 'list registers per CPU interface (GICH_VTR.ListRegs + 1); real GICv2 parts have 4' }),
    nrLpis: z.number().int().min(32).max(57344).multipleOf(32).optional().meta({
      description:
        'v3 only: LPIs (INTIDs 8192 ..), which give the host an ITS for its PCI functions’ MSIs; default 1024 with a bus: pci device, else none',
    }),
    nrVpes: z
      .number()
      .int()
      .min(1)
      .max(65536)
      .optional()
      .meta({
        description:
          'v3 with LPIs only: a GICv4.1 with this many vPEs (one per vCPU of a VM with a vITS): a forwarded run maps each ' +
          'passed-through MSI as a vLPI (its_map_vlpi, direct injection); a normal run boots KVM with ' +
          'kvm-arm.vgic_v4_enable=0 (its default), so the vITS injects every MSI in software',
      }),
  })
  .meta({ description: 'the host GIC' });

const Host = z.strictObject({
  cpus: z.number().int().min(1).max(32, { error: 'the GICv3 model has at most 32 PEs (a GICv2: 8)' }).default(2),
  hz: z
    .number()
    .positive()
    .optional()
    .meta({ description: 'CPU clock in Hz; default: the cost profile clock (2.4e9 xgene, 1.7e9 a15, 2e9 default)' }),
  gic: Gic.prefault({}),
  costProfile: z.enum(PROFILE_NAMES as [ProfileName, ...ProfileName[]]).default('default'),
  costs: z
    .record(z.string(), z.number().nonnegative())
    .default({})
    .meta({ description: 'per-step cost overrides in cycles, by cost name (see `irqfwd help costs`)' }),
});

const DeviceIrq = z.strictObject({
  intid: z.number().int().meta({
    description:
      'the physical INTID of the line: an SPI, 32 ≤ intid < min(gic.nrIrqs, 1020), or an Extended SPI, 4096 ≤ intid < 4096 + gic.nrEspis',
  }),
  trigger: z.enum(['level', 'edge']).default('level'),
  hold: z
    .union([z.literal('until-ack'), Duration])
    .default('until-ack')
    .meta({
      description:
        'level: how long the line stays asserted after an event if the guest driver never clears it ("until-ack": forever)',
    }),
  clear: z.enum(['driver-ack', 'self']).default('driver-ack').meta({
    description:
      'level: who deasserts the line: the guest driver writing the device register ("driver-ack"), or the device itself after `hold` ("self")',
  }),
  affinity: z
    .union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative()).min(1)])
    .optional()
    .meta({
      description:
        'host CPU(s) the SPI is routed to (GICD_ITARGETSR); a list targets several CPUs (1-of-N: each is signalled, the first to read GICC_IAR takes it, the others read 1023); default: the CPU of its target vCPU',
    }),
});

/** A PCI function's name as vfio-pci's VFIO_GROUP_GET_DEVICE_FD matches it: dev_name, domain:bus:slot.function. */
export const PCI_BDF_RE = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/;

const Msi = z
  .strictObject({
    vectors: z
      .number()
      .int()
      .min(1)
      .max(32)
      .refine((n) => (n & (n - 1)) === 0, { error: 'expected a power of two (MSI Multiple Message Capable)' })
      .meta({
        description: 'MSI vectors of the function (a power of two, 1..32); workloads and irqfd steps index them',
      }),
    msix: z.boolean().default(false).meta({
      description: 'pass them through as MSI-X (VFIO_PCI_MSIX_IRQ_INDEX) instead of MSI (VFIO_PCI_MSI_IRQ_INDEX)',
    }),
  })
  .meta({ description: 'bus: pci: the message-signalled interrupts of the function' });

const Device = z.strictObject({
  name: Name.meta({
    description:
      'the device name as VFIO_GROUP_GET_DEVICE_FD takes it: a platform device ("fff51000.ethernet") or, bus: pci, the function\'s domain:bus:slot.function ("0000:01:00.0")',
  }),
  bus: z.enum(['platform', 'pci']).optional().meta({
    description:
      'platform (default): a vfio-platform device with wired SPIs (irqs); pci: an MSI-capable PCI function bound to vfio-pci (msi), on a GICv3 host with an ITS',
  }),
  iommuGroup: z.number().int().nonnegative().meta({ description: 'the /dev/vfio/<group> number' }),
  reset: z.boolean().default(true).meta({ description: 'whether the device has a reset (VFIO_DEVICE_FLAGS_RESET)' }),
  irqs: z
    .array(DeviceIrq)
    .default([])
    .meta({ description: 'platform: the VFIO IRQ indexes of the device, in order: index 0 is the first' }),
  msi: Msi.optional(),
  deviceId: z.number().int().min(0).max(0xffff).optional().meta({
    description:
      'bus: pci: the requester ID its MSI writes carry (the host ITS DeviceID); default bus << 8 | slot << 3 | function of its name',
  }),
});

// ---------------------------------------------------------------------------------------------------------------
// VMs and guests

const GuestWorkload = z
  .union(
    [
      z.enum(['idle', 'busy']),
      z.strictObject({ compute: Duration.meta({ description: 'guest compute between WFIs' }) }),
      z.strictObject({
        hvc: z.strictObject({ every: Duration.meta({ description: 'a null hypercall (HVC #0) every so often' }) }),
      }),
      z.strictObject({
        mmio: z.strictObject({
          every: Duration,
          exit: z
            .enum(['kernel', 'user'])
            .default('kernel')
            .meta({ description: 'handled in the kernel (ioeventfd) or by the VMM (KVM_EXIT_MMIO)' }),
        }),
      }),
    ],
    {
      error:
        'expected a guest workload: "idle", "busy", {compute: <duration>}, {hvc: {every: <duration>}} or {mmio: {every: <duration>, exit: kernel|user}}',
    },
  )
  .meta({
    description:
      'what the vCPU does between interrupts: idle (WFI), busy (never WFI: the vCPU is always running), compute then WFI, a hypercall loop, or a trapped MMIO doorbell loop',
  });

const Guest = z.strictObject({
  eoiMode: z
    .union([z.literal(0), z.literal(1)], { error: 'expected 0 or 1 (GICV_CTLR.EOImode)' })
    .default(0)
    .meta({ description: 'GICV_CTLR.EOImode: 0 = EOIR drops priority and deactivates, 1 = a separate DIR write' }),
  handlerCycles: Duration.default(1000).meta({
    description: 'the guest device driver handler, between GICV_IAR and GICV_EOIR (it silences the device)',
  }),
  workload: GuestWorkload.default('idle'),
  eoi: z
    .enum(['always', 'never'])
    .default('always')
    .meta({
      description:
        'never: a faulty guest that acknowledges and handles each interrupt but never deactivates it (EOImode 0: no ' +
        'GICV_EOIR, its running priority stays raised; EOImode 1: the priority drop but no GICV_DIR)',
    }),
});

const Retarget = z.strictObject({
  ...Timing,
  intid: z.number().int().meta({ description: 'the virtual INTID (guest view: gsi + 32)' }),
  vcpu: z.number().int().nonnegative(),
});

const Vm = z.strictObject({
  name: Name.default('vm0'),
  vcpus: z
    .number()
    .int()
    .min(1)
    .max(512, { error: 'a vGIC-v3 VM has at most 512 vCPUs (VGIC_V3_MAX_CPUS); a vGIC-v2 one 8' })
    .default(1),
  pinning: z
    .array(z.number().int().nonnegative())
    .optional()
    .meta({ description: 'pinning[i] is the physical CPU vCPU i runs on; default: vCPU i on CPU (i + 1) mod cpus' }),
  guest: Guest.prefault({}),
  retarget: z
    .array(Retarget)
    .default([])
    .meta({ description: 'the guest rewrites a vIRQ target (GICD_ITARGETSR) at a time or after an event' }),
});

// ---------------------------------------------------------------------------------------------------------------
// The VMM control sequence

export const FDREF_RE = /^(kvm|vm|kvm-vfio|vcpu|device|group|container|irqfd|resamplefd)(?::([^/#\s]+))?(?:\/(\d+))?$/;
/** A name an ioctl step's `as` binds to the fd it creates (lower case, so never a uapi constant). */
export const BOUND_FD_RE = /^[a-z][a-z0-9-]*$/;
const FDREF_HELP =
  'an fd reference: "kvm", "vm[:<vm>]", "vcpu:<i>" (of the first VM) or "vcpu:<vm>/<i>", "kvm-vfio[:<vm>]", ' +
  '"device:<device>", "group:<device>", "container:<device>", "irqfd:<device>/<index>", "resamplefd:<device>/<index>", ' +
  'or a name an earlier ioctl step bound with `as`';
const FdRef = z
  .string()
  .refine((s) => FDREF_RE.test(s) || BOUND_FD_RE.test(s), { error: `expected ${FDREF_HELP}` })
  .meta({ description: FDREF_HELP });

/** A value of an ioctl argument or struct member: a number, a uapi constant or fd reference, or a pointer. */
export type ArgValue = number | string | { struct: StructSpec } | { s32: number | string };
export interface StructSpec {
  name: string;
  fields: Record<string, ArgValue>;
  /** Its trailing flexible array as __s32 elements (vfio_irq_set's DATA_EVENTFD fds). */
  data?: (number | string)[];
  /** Its trailing flexible array as structs in place (kvm_irq_routing's kvm_irq_routing_entry entries). */
  entries?: StructSpec[];
}

const ArgValue: z.ZodType<ArgValue> = z.lazy(() =>
  z
    .union(
      [
        z.number().int(),
        z.string().meta({ description: 'a uapi constant name (KVM_DEV_VFIO_GROUP) or an fd reference (device:foo)' }),
        z
          .strictObject({ struct: StructSpecSchema })
          .meta({ description: 'a pointer to a struct placed in user memory' }),
        z
          .strictObject({ s32: z.union([z.number().int(), z.string()]) })
          .meta({ description: 'a pointer to an __s32 (e.g. the group fd of KVM_DEV_VFIO_GROUP_ADD)' }),
      ],
      { error: 'expected a number, a constant or fd reference, {struct: {name, fields}} or {s32: value}' },
    )
    .meta({ id: 'ArgValue', description: 'an ioctl argument or struct member value' }),
);

const StructSpecSchema: z.ZodType<StructSpec> = z.lazy(() =>
  z
    .strictObject({
      name: z.string().meta({ description: 'the C struct name: kvm_device_attr, kvm_irqfd, vfio_irq_set, ...' }),
      fields: z.record(z.string(), ArgValue).default({}),
      data: z
        .array(z.union([z.number().int(), z.string()]))
        .optional()
        .meta({
          description:
            "__s32 elements after the struct (its flexible array member: vfio_irq_set's eventfds): numbers, constants or fd references",
        }),
      entries: z.array(StructSpecSchema).optional().meta({
        description:
          "structs laid out in place after the struct, in order (its flexible array of structs: KVM_SET_GSI_ROUTING's kvm_irq_routing_entry entries, whose union is u0..u3: irqchip/pin, or address_lo/address_hi/data/devid)",
      }),
    })
    .meta({ id: 'StructSpec', description: 'a uapi struct placed in user memory: its C name and member values' }),
);

const vmField = { vm: Name.optional().meta({ description: 'the VM (default: the first)' }) };
const idField = { id: StepId.optional() };

const OpenDevice = z
  .strictObject({
    step: z.literal('open-device'),
    device: Name,
    ...vmField,
    ...idField,
    ...Timing,
  })
  .meta({
    description:
      'open /dev/vfio/vfio and the group, VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_GROUP_GET_DEVICE_FD, then ' +
      'KVM_DEV_VFIO_GROUP_ADD on the VM kvm-vfio device (created at the first open, as QEMU does)',
  });

const Irqfd = z
  .strictObject({
    step: z.literal('irqfd'),
    device: Name,
    index: z.number().int().nonnegative().default(0),
    gsi: z.number().int().nonnegative().optional().meta({
      description:
        'the GSI of the irqfd: a guest SPI number, default intid − 32; for an MSI vector the GSI of its MSI route, default the next free one after the VM’s SPIs (kvm_irqchip_get_virq)',
    }),
    resample: z
      .boolean()
      .optional()
      .meta({ description: 'default: true for a level IRQ, false for edge; an MSI vector has none' }),
    ...vmField,
    ...idField,
    ...Timing,
  })
  .meta({
    description:
      'the QEMU normal path: SET_IRQS MASK; eventfds; KVM_IRQFD (with KVM_IRQFD_FLAG_RESAMPLE for level); ' +
      'SET_IRQS UNMASK eventfd = the resamplefd; SET_IRQS TRIGGER eventfd = the irqfd eventfd. For an MSI vector ' +
      '(bus: pci) QEMU’s vfio_msi_enable once the guest has booted: an eventfd, KVM_SET_GSI_ROUTING with its MSI ' +
      'route, KVM_IRQFD, SET_IRQS TRIGGER on the MSI (MSI-X) index',
  });

const Assign = z
  .strictObject({
    step: z.literal('assign'),
    device: Name,
    index: z.number().int().nonnegative().default(0),
    gsi: z.number().int().nonnegative().optional().meta({ description: 'default: the gsi of the irqfd step' }),
    ...vmField,
    ...idField,
    ...Timing,
  })
  .meta({
    description:
      'KVM_SET_DEVICE_ATTR KVM_DEV_VFIO_DEVICE / KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ {fd, irq_index, guest_irq}: forward ' +
      'the IRQ. Skipped in the normal-mode run.',
  });

const Deassign = z
  .strictObject({
    step: z.literal('deassign'),
    device: Name,
    index: z.number().int().nonnegative().default(0),
    gsi: z.number().int().nonnegative().optional(),
    ...vmField,
    ...idField,
    ...Timing,
  })
  .meta({ description: 'KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ: stop forwarding. Skipped in the normal-mode run.' });

const Close = z
  .strictObject({
    step: z.literal('close'),
    what: z.enum(['device', 'group', 'kvm-vfio', 'vm']),
    device: Name.optional().meta({ description: 'for what: device | group' }),
    ...vmField,
    ...idField,
    ...Timing,
  })
  .meta({
    description:
      'close(2) one fd: the VFIO device fd; the group (KVM_DEV_VFIO_GROUP_DEL first, as QEMU does); the kvm-vfio device fd; the VM fd',
  });

const Destroy = z.strictObject({ step: z.literal('destroy'), ...vmField, ...idField, ...Timing }).meta({
  description:
    'QEMU shutdown: stop the vCPUs, deassign, release irqfds, close device, group, container, kvm-vfio, vCPU and VM fds',
});

const Die = z
  .strictObject({
    step: z.literal('die'),
    order: z.enum(['fd', 'random']).default('fd').meta({
      description:
        'fd: exit_group as Linux runs it (close_files in fd order); random: the threads are killed, then every fd is closed in a seeded random order',
    }),
    window: Duration.default(0).meta({
      description: 'the death comes at a seeded random instant in [0, window) after the step is due',
    }),
    ...vmField,
    ...idField,
    ...Timing,
  })
  .meta({
    description:
      'the VMM process dies (SIGKILL): its vCPU threads leave KVM_RUN and every fd it holds is closed, with no QEMU shutdown sequence (no deassign, no GROUP_DEL); later steps are skipped',
  });

const Ioctl = z
  .strictObject({
    step: z.literal('ioctl'),
    fd: FdRef,
    request: z
      .union([z.string(), z.number().int().nonnegative()])
      .meta({ description: 'a request name (KVM_SET_DEVICE_ATTR) or number' }),
    struct: StructSpecSchema.optional().meta({ description: 'the argument: a struct placed in user memory' }),
    arg: z
      .union([z.number().int(), z.string()])
      .optional()
      .meta({ description: 'the argument as a scalar (number, constant or fd reference)' }),
    expect: z
      .string()
      .default('ok')
      .meta({ description: '"ok" or the errno name the call must fail with (EINVAL); a mismatch is a violation' }),
    failNth: z.number().int().positive().optional().meta({
      description:
        'fault injection: the VMM writes N to /proc/thread-self/fail-nth first, so the Nth kernel allocation of the call fails (ENOMEM)',
    }),
    as: z
      .string()
      .regex(BOUND_FD_RE, { error: 'expected a name for the new fd: a lower-case letter, then a-z, 0-9 and -' })
      .optional()
      .meta({
        description: `bind the fd the call creates to this name, an fd reference for later ioctl steps (${FD_CREATING_REQUESTS})`,
      }),
    ...vmField,
    ...idField,
    ...Timing,
  })
  .meta({ description: 'a raw ioctl, for experts' });

const Step = z.discriminatedUnion('step', [OpenDevice, Irqfd, Assign, Deassign, Close, Destroy, Die, Ioctl], {
  error: (iss) =>
    iss.code === 'invalid_union'
      ? 'expected step: open-device | irqfd | assign | deassign | close | destroy | die | ioctl'
      : undefined,
});

// ---------------------------------------------------------------------------------------------------------------
// Workloads

const workloadCommon = {
  device: Name,
  index: z.number().int().nonnegative().default(0),
  via: z
    .enum(['line', 'eventfd'])
    .default('line')
    .meta({
      description:
        'line: the device asserts its IRQ line (a physical IRQ); eventfd: a host thread writes the trigger eventfd ' +
        'of that IRQ directly (no physical IRQ: the I/O-latency-in path)',
    }),
  start: Duration.default(0).meta({ description: 'time of the first event' }),
  after: Event.optional().meta({ description: 'start only after this event (then `start` counts from it)' }),
  count: z.number().int().positive().optional().meta({ description: 'stop after this many events' }),
  until: Duration.optional().meta({ description: 'stop at this time (default: the scenario duration)' }),
};

const Periodic = z.strictObject({
  kind: z.literal('periodic'),
  period: Duration,
  ...workloadCommon,
});

const Poisson = z.strictObject({
  kind: z.literal('poisson'),
  rate: z.number().positive().optional().meta({ description: 'mean events per second' }),
  meanInterval: Duration.optional(),
  ...workloadCommon,
});

const Burst = z.strictObject({
  kind: z.literal('burst'),
  size: z.number().int().positive().meta({ description: 'events per burst' }),
  spacing: Duration.meta({ description: 'between events of a burst' }),
  every: Duration.meta({ description: 'between the starts of two bursts' }),
  ...workloadCommon,
});

const Workload = z.discriminatedUnion('kind', [Periodic, Poisson, Burst], {
  error: (iss) => (iss.code === 'invalid_union' ? 'expected kind: periodic | poisson | burst' : undefined),
});

// ---------------------------------------------------------------------------------------------------------------
// Expectations and sweeps

const Expectation = z.strictObject({
  metric: z
    .string()
    .meta({ description: 'a numeric metric path: "exits.perIrq.total", "probes.hypercall.cycles.mean"' }),
  mode: z.enum(['normal', 'forwarded']).optional().meta({ description: 'default: every mode that runs' }),
  path: Name.optional().meta({ description: 'with paths: only that path’s run (default: every path of the mode)' }),
  value: z.number().optional(),
  anchor: z
    .string()
    .optional()
    .meta({ description: 'a published figure of the cost profile (hypercall, virqCompletion, ioLatencyIn, ...)' }),
  tolerance: z
    .number()
    .nonnegative()
    .optional()
    .meta({ description: 'relative: 0.1 = ±10 %; default 0.1 with anchor, 0 with value' }),
});

const ComparePath = z.strictObject({
  name: Name.meta({ description: 'the column heading, and the suffix of its trace file' }),
  mode: z
    .enum(['normal', 'forwarded'])
    .meta({ description: 'normal: the irqfd path; forwarded: with the assign steps' }),
  set: z
    .record(
      z.string(),
      z.union([z.number(), z.string(), z.boolean(), z.array(z.unknown()), z.record(z.string(), z.unknown())]),
    )
    .default({})
    .meta({
      description:
        'parameters this path changes, each a path in the scenario as in sweep.param, to a value, a mapping or a list ' +
        '(validated as that part of a scenario): { "host.gic.version": v3 }, { devices: [...] }; a field the scenario ' +
        'leaves out can be set too',
    }),
});

const Sweep = z.strictObject({
  param: z.string().meta({ description: 'a path in the scenario: "workloads[0].period", "host.gic.nrLrs"' }),
  values: z.array(z.union([z.number(), z.string()])).min(1),
});

// ---------------------------------------------------------------------------------------------------------------
// The document

const Document = z.strictObject({
  name: Name.default('scenario'),
  description: z.string().default(''),
  seed: z.number().int().min(0).max(0xffffffff).default(1),
  duration: Duration.prefault('10ms').meta({
    description: 'simulated time; workloads stop here, then the VMM tears down (if teardown) and the run drains',
  }),
  mode: z
    .enum(['normal', 'forwarded', 'both'])
    .default('both')
    .meta({ description: 'normal: irqfd path; forwarded: with the assign steps; both: run each and compare' }),
  host: Host.prefault({}),
  devices: z.array(Device).default([]),
  vms: z.array(Vm).min(1).prefault([{}]),
  vmm: z.array(Step).optional().meta({
    description:
      'the VMM control sequence, run in order by one VMM thread; default: per device open-device, then per IRQ irqfd and assign',
  }),
  workloads: z.array(Workload).default([]),
  teardown: z
    .boolean()
    .default(true)
    .meta({ description: 'destroy the VM at the end (unless a step already did) and check nothing is left behind' }),
  expect: z.array(Expectation).default([]),
  sweep: Sweep.optional(),
  paths: z
    .array(ComparePath)
    .min(2)
    .max(8)
    .optional()
    .meta({
      description:
        'the columns of a compare: each runs the scenario in its mode with its `set` parameters changed (e.g. the ' +
        'same device on a GICv2 and a GICv3 host); replaces `mode`',
    }),
});

type Doc = Resolved<z.output<typeof Document>>;

export type Mode = 'normal' | 'forwarded';
export type DurationInput = number | string;
type Step = Doc['vmm'] extends (infer S)[] | undefined ? S : never;

/** Resolved step types: defaults filled in (vm, index, gsi, resample) by the schema. */
export type ScenarioStep =
  | (Extract<Step, { step: 'irqfd' }> & { vm: string; gsi: number; resample: boolean })
  | (Extract<Step, { step: 'assign' | 'deassign' }> & { vm: string; gsi: number })
  | (Extract<Step, { step: 'open-device' | 'close' | 'destroy' | 'die' | 'ioctl' }> & { vm: string });

export type ScenarioVm = Doc['vms'][number] & { pinning: number[] };
export type ScenarioHost = Doc['host'] & { hz: number };

/** The resolved scenario: every default explicit, every duration in cycles at `host.hz`. */
export type Scenario = Omit<Doc, 'vmm' | 'vms' | 'host'> & {
  host: ScenarioHost;
  vms: ScenarioVm[];
  vmm: ScenarioStep[];
};
export type ScenarioDevice = Scenario['devices'][number];
export type ScenarioDeviceIrq = ScenarioDevice['irqs'][number];
export type ScenarioWorkload = Scenario['workloads'][number];
export type ScenarioExpectation = Scenario['expect'][number];
export type ScenarioInput = z.input<typeof Document>;

// ---------------------------------------------------------------------------------------------------------------
// Cross-checks and resolution

type Ctx = z.core.$RefinementCtx<unknown>;
type Path = (string | number)[];

const REQUEST_NAMES: ReadonlySet<string> = new Set(
  Object.entries(abi)
    .filter(([k, v]) => typeof v === 'number' && /^(KVM|VFIO)_/.test(k))
    .map(([k]) => k),
);

interface CodecLike {
  readonly name: string;
  readonly fields: Readonly<Record<string, unknown>>;
  readonly size: number;
}
function isCodec(v: unknown): v is CodecLike {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { name?: unknown }).name === 'string' &&
    typeof (v as { fields?: unknown }).fields === 'object' &&
    typeof (v as { size?: unknown }).size === 'number'
  );
}
const STRUCTS: ReadonlyMap<string, CodecLike> = new Map(
  (Object.values(abi) as unknown[]).filter(isCodec).map((c) => [c.name, c]),
);

/** Known uapi constant names (KVM_*, VFIO_*) and fd-ref-shaped strings are the string values an ioctl may use. */
export function isUapiConstant(name: string): boolean {
  return typeof (abi as Record<string, unknown>)[name] === 'number';
}

/** The fd references a raw ioctl step makes: its fd, and every string argument or member that is no uapi constant. */
export function fdRefsOf(s: { fd: string; arg?: number | string; struct?: StructSpec }): string[] {
  const out = [s.fd];
  const value = (v: ArgValue): void => {
    if (typeof v === 'string') {
      if (!isUapiConstant(v)) out.push(v);
    } else if (typeof v === 'object') {
      if ('s32' in v) value(v.s32);
      else {
        for (const f of [...Object.values(v.struct.fields), ...(v.struct.data ?? [])]) value(f);
        for (const e of v.struct.entries ?? []) value({ struct: e });
      }
    }
  };
  if (s.arg !== undefined) value(s.arg);
  if (s.struct !== undefined) value({ struct: s.struct });
  return out;
}

export function structNames(): string[] {
  return [...STRUCTS.keys()];
}

type DocDevice = Doc['devices'][number];

/** The IRQ indexes of a device: its wired lines, or (bus: pci) its MSI vectors. */
function nrLines(dev: Pick<DocDevice, 'bus' | 'irqs' | 'msi'>): number {
  return dev.bus === 'pci' ? (dev.msi?.vectors ?? 0) : dev.irqs.length;
}

function linesWord(dev: DocDevice): string {
  return dev.bus === 'pci' ? 'MSI vector(s)' : 'IRQ(s)';
}

/** The first GSI after a VM's SPI routes: QEMU's kvm_irqchip_get_virq gives the MSI routes the GSIs from here. */
export function firstMsiGsi(nrIrqs: number): number {
  return Math.min(nrIrqs, abi.VGIC_MAX_NR_IRQS) - 32;
}

function issue(ctx: Ctx, path: Path, message: string): void {
  ctx.issues.push({ code: 'custom', message, path, input: undefined });
}

function crossCheck(d: Doc, ctx: Ctx): void {
  const nrIrqs = d.host.gic.nrIrqs;
  const maxIntid = Math.min(nrIrqs, 1020) - 1;
  // a VM's vGIC has the host's INTIDs, up to the most KVM_DEV_ARM_VGIC_GRP_NR_IRQS takes (the runner's VMM)
  const maxVintid = Math.min(nrIrqs, abi.VGIC_MAX_NR_IRQS) - 1;
  const cpus = d.host.cpus;
  if (d.host.gic.version === 'v2' && cpus > 8)
    issue(ctx, ['host', 'cpus'], 'a GICv2 has at most 8 CPU interfaces (GICD_ITARGETSR is 8 bits)');
  const nrEspis = d.host.gic.nrEspis;
  if (d.host.gic.version === 'v2' && nrEspis > 0)
    issue(ctx, ['host', 'gic', 'nrEspis'], 'Extended SPIs are a GICv3.1 feature: a GICv2 has none');
  const isEspi = (intid: number) => intid >= 4096 && intid < 4096 + nrEspis;
  if (d.host.gic.version === 'v2')
    d.vms.forEach((vm, i) => {
      if (vm.vcpus > 8) issue(ctx, ['vms', i, 'vcpus'], 'a GICv2 VM has at most 8 vCPUs (VGIC_V2_MAX_CPUS)');
    });

  const { nrLpis, nrVpes } = d.host.gic;
  const nrVectors = d.devices.reduce((n, dev) => n + (dev.bus === 'pci' ? nrLines(dev) : 0), 0);
  if (d.host.gic.version === 'v2') {
    if (nrLpis !== undefined)
      issue(ctx, ['host', 'gic', 'nrLpis'], 'LPIs are a GICv3 feature (an ITS): a GICv2 has none');
    if (nrVpes !== undefined) issue(ctx, ['host', 'gic', 'nrVpes'], 'vPEs are a GICv4.1 feature: a GICv2 has none');
  } else {
    if (nrVpes !== undefined && nrLpis === undefined && nrVectors === 0)
      issue(
        ctx,
        ['host', 'gic', 'nrVpes'],
        'a GICv4.1 needs LPIs (an ITS): set host.gic.nrLpis or pass a bus: pci device',
      );
    if (nrLpis !== undefined && nrLpis < nrVectors)
      issue(
        ctx,
        ['host', 'gic', 'nrLpis'],
        `${nrLpis} LPIs cannot back the ${nrVectors} MSI vectors of the PCI functions (one host LPI each)`,
      );
  }

  // devices
  const devByName = new Map<string, { i: number; dev: Doc['devices'][number] }>();
  const intidOwner = new Map<number, string>();
  d.devices.forEach((dev, i) => {
    if (devByName.has(dev.name)) issue(ctx, ['devices', i, 'name'], `duplicate device name '${dev.name}'`);
    else devByName.set(dev.name, { i, dev });
    const p: Path = ['devices', i];
    if (dev.bus === 'pci') {
      if (!PCI_BDF_RE.test(dev.name))
        issue(
          ctx,
          [...p, 'name'],
          `a PCI function is named domain:bus:slot.function in lower-case hex ("0000:01:00.0"), got '${dev.name}'`,
        );
      if (dev.msi === undefined)
        issue(ctx, [...p, 'msi'], 'a bus: pci device needs msi: { vectors: <n> } (its message-signalled interrupts)');
      if (dev.irqs.length > 0)
        issue(ctx, [...p, 'irqs'], 'a bus: pci device signals with MSIs (msi), not wired IRQs: remove irqs');
      if (d.host.gic.version !== 'v3')
        issue(ctx, [...p, 'bus'], "a PCI function's MSIs need a GICv3 with an ITS: set host.gic.version: v3");
    } else {
      if (dev.irqs.length === 0) issue(ctx, [...p, 'irqs'], 'a passthrough device needs at least one IRQ');
      if (dev.msi !== undefined) issue(ctx, [...p, 'msi'], 'msi is for bus: pci devices; a platform device has irqs');
      if (dev.deviceId !== undefined)
        issue(ctx, [...p, 'deviceId'], 'deviceId is the requester ID of a bus: pci device; a platform device has none');
    }
    dev.irqs.forEach((irq, j) => {
      const p: Path = ['devices', i, 'irqs', j];
      if ((irq.intid < 32 || irq.intid > maxIntid) && !isEspi(irq.intid))
        issue(
          ctx,
          [...p, 'intid'],
          `INTID ${irq.intid} is not an SPI of this GIC: expected 32..${maxIntid} (0..31 are SGIs/PPIs; gic.nrIrqs = ${nrIrqs})` +
            (nrEspis > 0 ? ` or an Extended SPI 4096..${4095 + nrEspis}` : ''),
        );
      const owner = intidOwner.get(irq.intid);
      if (owner !== undefined)
        issue(ctx, [...p, 'intid'], `INTID ${irq.intid} is already the line of ${owner}; INTIDs must be unique`);
      else intidOwner.set(irq.intid, `${dev.name} irqs[${j}]`);
      if (irq.trigger === 'level' && irq.clear === 'self' && irq.hold === 'until-ack')
        issue(ctx, [...p, 'hold'], 'clear: self needs a hold duration (how long the device keeps its line asserted)');
      for (const c of irq.affinity === undefined ? [] : [irq.affinity].flat())
        if (c >= cpus) issue(ctx, [...p, 'affinity'], `CPU ${c} does not exist (host.cpus = ${cpus})`);
    });
  });

  // VMs
  const vmByName = new Map<string, Doc['vms'][number]>();
  d.vms.forEach((vm, i) => {
    if (vmByName.has(vm.name)) issue(ctx, ['vms', i, 'name'], `duplicate VM name '${vm.name}'`);
    else vmByName.set(vm.name, vm);
    if (vm.pinning) {
      if (vm.pinning.length !== vm.vcpus)
        issue(
          ctx,
          ['vms', i, 'pinning'],
          `pinning lists ${vm.pinning.length} CPUs for ${vm.vcpus} vCPUs: give one physical CPU per vCPU`,
        );
      vm.pinning.forEach((c, j) => {
        if (c >= cpus) issue(ctx, ['vms', i, 'pinning', j], `CPU ${c} does not exist (host.cpus = ${cpus})`);
      });
    }
    vm.retarget.forEach((r, j) => {
      const p: Path = ['vms', i, 'retarget', j];
      if (r.intid < 32 || r.intid > maxVintid)
        issue(ctx, [...p, 'intid'], `virtual INTID ${r.intid} is not an SPI: expected 32..${maxVintid}`);
      if (r.vcpu >= vm.vcpus) issue(ctx, [...p, 'vcpu'], `vCPU ${r.vcpu} does not exist (the VM has ${vm.vcpus})`);
      if (r.delay !== undefined && r.after === undefined) issue(ctx, [...p, 'delay'], 'delay needs after');
    });
  });
  const firstVm = d.vms[0]?.name ?? 'vm0';

  const vmOfPci = new Map<string, string>(); // a PCI function → the VM that opened it (its vITS serves it)
  const checkLine = (p: Path, device: string, index: number): Doc['devices'][number] | undefined => {
    const e = devByName.get(device);
    if (!e) {
      issue(
        ctx,
        [...p, 'device'],
        `unknown device '${device}' (devices: ${[...devByName.keys()].join(', ') || 'none'})`,
      );
      return undefined;
    }
    const n = nrLines(e.dev);
    if (index >= n)
      issue(ctx, [...p, 'index'], `device '${device}' has ${n} ${linesWord(e.dev)}: index must be < ${n}`);
    return e.dev;
  };

  const stepIds = new Set<string>();
  const allStepIds = new Set((d.vmm ?? []).map((s) => s.id).filter((x): x is string => x !== undefined));
  const checkEvent = (p: Path, ev: ScenarioEvent | undefined, earlierOnly: boolean) => {
    if (!ev) return;
    if (ev.kind === 'step') {
      const known = earlierOnly ? stepIds : allStepIds;
      if (!known.has(ev.id))
        issue(
          ctx,
          p,
          earlierOnly
            ? `no earlier step has id '${ev.id}' (a step can only wait for one before it)`
            : `no step has id '${ev.id}'`,
        );
      return;
    }
    const e = devByName.get(ev.device);
    if (!e) issue(ctx, p, `event names unknown device '${ev.device}'`);
    else if (ev.index >= nrLines(e.dev))
      issue(ctx, p, `event names IRQ index ${ev.index} of '${ev.device}', which has ${nrLines(e.dev)}`);
    else if (ev.kind === 'deactivated' && e.dev.bus === 'pci')
      issue(ctx, p, `'${ev.device}' signals LPIs, which have no active state: nothing is deactivated`);
  };

  // VMM
  const opened = new Set<string>(); // `${vm}\0${device}`
  const irqfds = new Map<string, number>(); // `${vm}\0${device}\0${index}` → gsi
  const assigned = new Set<string>();
  const bound = new Set<string>(); // the fd names of earlier ioctl steps' `as`
  let anyAssign = false;
  let anyIoctl = false;
  let anyMsi = false;
  (d.vmm ?? []).forEach((s, i) => {
    const p: Path = ['vmm', i];
    const vm = s.vm ?? firstVm;
    if (s.vm !== undefined && !vmByName.has(s.vm)) issue(ctx, [...p, 'vm'], `unknown VM '${s.vm}'`);
    if (s.delay !== undefined && s.after === undefined) issue(ctx, [...p, 'delay'], 'delay needs after');
    checkEvent([...p, 'after'], s.after, true);
    if (s.id !== undefined) {
      if (stepIds.has(s.id)) issue(ctx, [...p, 'id'], `duplicate step id '${s.id}'`);
      stepIds.add(s.id);
    }
    const needOpen = (device: string) => {
      if (!opened.has(`${vm}\0${device}`))
        issue(
          ctx,
          [...p, 'device'],
          `device '${device}' is not open in VM '${vm}': add an open-device step before this one`,
        );
    };
    switch (s.step) {
      case 'open-device': {
        const dev = checkLine(p, s.device, 0);
        if (!dev) break;
        opened.add(`${vm}\0${s.device}`);
        if (dev.bus !== 'pci') break;
        const other = vmOfPci.get(s.device);
        if (other !== undefined && other !== vm)
          issue(ctx, [...p, 'vm'], `PCI function '${s.device}' is already passed to VM '${other}'`);
        vmOfPci.set(s.device, vm);
        break;
      }
      case 'irqfd': {
        const dev = checkLine(p, s.device, s.index);
        if (!dev) break;
        needOpen(s.device);
        if (dev.bus === 'pci') {
          anyMsi = true;
          if (s.resample === true)
            issue(ctx, [...p, 'resample'], 'an MSI is an edge (a posted write): it has no resamplefd');
          if (s.gsi !== undefined && (s.gsi <= maxVintid - 32 || s.gsi >= abi.KVM_MAX_IRQ_ROUTES))
            issue(
              ctx,
              [...p, 'gsi'],
              `the GSI of an MSI route must follow the VM's SPI routes (0..${maxVintid - 32}) and stay below KVM_MAX_IRQ_ROUTES (${abi.KVM_MAX_IRQ_ROUTES})`,
            );
          break;
        }
        const irq = dev.irqs[s.index];
        const gsi = s.gsi ?? (irq ? irq.intid - 32 : 0);
        if (gsi + 32 > maxVintid)
          issue(ctx, [...p, 'gsi'], `gsi ${gsi} is vINTID ${gsi + 32}, past the VM's last SPI ${maxVintid}`);
        irqfds.set(`${vm}\0${s.device}\0${s.index}`, gsi);
        break;
      }
      case 'assign':
      case 'deassign': {
        anyAssign = true;
        const dev = checkLine(p, s.device, s.index);
        if (!dev) break;
        needOpen(s.device);
        if (dev.bus === 'pci') {
          issue(
            ctx,
            p,
            `${s.step} forwards a platform IRQ through kvm-vfio; the MSIs of PCI function '${s.device}' are forwarded by irqbypass in the forwarded run when the host GIC is a GICv4.1 (host.gic.nrVpes): remove this step`,
          );
          break;
        }
        const key = `${vm}\0${s.device}\0${s.index}`;
        if (s.step === 'assign') {
          if (!irqfds.has(key))
            issue(
              ctx,
              p,
              `assign of ${s.device} IRQ ${s.index} needs an earlier irqfd step for it (the vIRQ is still injected through the irqfd; forwarding changes how it completes)`,
            );
          assigned.add(key);
        } else if (!assigned.has(key)) {
          issue(
            ctx,
            p,
            `deassign of ${s.device} IRQ ${s.index}, which no earlier step assigns (to test ENOENT use an ioctl step with expect: ENOENT)`,
          );
        }
        break;
      }
      case 'close':
        if (s.what === 'device' || s.what === 'group') {
          if (s.device === undefined) issue(ctx, p, `close ${s.what} needs device: <name>`);
          else if (checkLine(p, s.device, 0)) needOpen(s.device);
        } else if (s.device !== undefined) issue(ctx, [...p, 'device'], `close ${s.what} takes no device`);
        break;
      case 'destroy':
        break;
      case 'die':
        if (i < (d.vmm ?? []).length - 1) issue(ctx, p, 'die must be the last step: the VMM process is gone after it');
        if (s.at === undefined && s.after === undefined)
          issue(ctx, p, 'die needs at or after: the VMM must have started its guests before it dies');
        break;
      case 'ioctl':
        anyIoctl = true;
        checkIoctl(s, p, ctx, devByName, vmByName, bound);
        break;
    }
  });
  const vlpis = anyMsi && nrVpes !== undefined;
  if (d.vmm !== undefined && d.devices.length > 0 && d.mode !== 'normal' && !anyAssign && !anyIoctl && !vlpis)
    issue(
      ctx,
      ['mode'],
      `mode '${d.mode}' runs a forwarded pass, but the vmm sequence has no assign step (nothing would be forwarded): add assign steps, ` +
        `${anyMsi ? 'make the host GIC a GICv4.1 (host.gic.nrVpes) to forward the MSIs, ' : ''}or set mode: normal`,
    );
  if (nrVpes !== undefined) {
    const msiVms = d.vmm === undefined ? (nrVectors > 0 ? [firstVm] : []) : [...vmOfPci.values()];
    const vcpus = d.vms.filter((vm) => msiVms.includes(vm.name)).reduce((n, vm) => n + vm.vcpus, 0);
    if (nrVpes < vcpus)
      issue(
        ctx,
        ['host', 'gic', 'nrVpes'],
        `${nrVpes} vPEs for the ${vcpus} vCPUs of the VMs with a vITS: vgic_v4_init needs one vPE per vCPU`,
      );
  }

  // workloads
  d.workloads.forEach((w, i) => {
    const p: Path = ['workloads', i];
    checkLine(p, w.device, w.index);
    checkEvent([...p, 'after'], w.after, false);
    if (w.via === 'eventfd' && devByName.get(w.device)?.dev.bus === 'pci')
      issue(
        ctx,
        [...p, 'via'],
        'via: eventfd drives a platform IRQ’s irqfd; a PCI function’s vector is driven by its MSI (via: line)',
      );
    if (w.kind === 'poisson' && (w.rate === undefined) === (w.meanInterval === undefined))
      issue(ctx, p, 'a poisson workload needs exactly one of rate (events per second) or meanInterval');
    if (d.vmm !== undefined) {
      const driven = d.vmm.some((s) => (s.step === 'irqfd' || s.step === 'open-device') && s.device === w.device);
      if (!driven)
        issue(
          ctx,
          [...p, 'device'],
          `workload drives '${w.device}', but no vmm step opens it: its IRQ would have no handler in the host`,
        );
      if (w.via === 'eventfd' && !d.vmm.some((s) => s.step === 'irqfd' && s.device === w.device && s.index === w.index))
        issue(
          ctx,
          [...p, 'via'],
          `via: eventfd writes the irqfd eventfd of ${w.device} IRQ ${w.index}, but no irqfd step creates it`,
        );
    }
  });

  // compare paths
  if (d.paths !== undefined) {
    if (d.sweep !== undefined) issue(ctx, ['paths'], 'paths and sweep cannot be combined: sweep one path in a copy');
    const seen = new Set<string>();
    d.paths.forEach((cp, i) => {
      if (seen.has(cp.name)) issue(ctx, ['paths', i, 'name'], `path name '${cp.name}' is used twice`);
      seen.add(cp.name);
      for (const param of Object.keys(cp.set)) {
        const top = param.split(/[.[]/)[0];
        if (top === 'paths' || top === 'sweep' || top === 'mode')
          issue(ctx, ['paths', i, 'set', param], `a path cannot set '${top}' (its mode is the path's own)`);
      }
    });
  }

  // expectations
  d.expect.forEach((e, i) => {
    const p: Path = ['expect', i];
    if ((e.value === undefined) === (e.anchor === undefined)) issue(ctx, p, 'give exactly one of value or anchor');
    if (e.path !== undefined && !d.paths?.some((cp) => cp.name === e.path))
      issue(ctx, [...p, 'path'], `no compare path is named '${e.path}'`);
    if (!isMetricPath(e.metric))
      issue(ctx, [...p, 'metric'], `'${e.metric}' is not a numeric metric (see docs/CLI.md "JSON output")`);
    if (e.anchor !== undefined && !PROFILE_NAMES.some((n) => e.anchor! in COST_PROFILES[n].anchors)) {
      const all = [...new Set(PROFILE_NAMES.flatMap((n) => Object.keys(COST_PROFILES[n].anchors)))];
      issue(ctx, [...p, 'anchor'], `no cost profile has an anchor '${e.anchor}' (anchors: ${all.join(', ')})`);
    }
  });
}

function checkIoctl(
  s: Extract<Step, { step: 'ioctl' }>,
  p: Path,
  ctx: Ctx,
  devices: ReadonlyMap<string, unknown>,
  vms: ReadonlyMap<string, Doc['vms'][number]>,
  bound: Set<string>,
): void {
  const checkFdRef = (path: Path, ref: string): boolean => {
    const m = FDREF_RE.exec(ref);
    if (!m) {
      if (!BOUND_FD_RE.test(ref)) return false;
      if (!bound.has(ref)) issue(ctx, path, `'${ref}' names no fd: no earlier ioctl step binds it with as: ${ref}`);
      return true;
    }
    const [, kind, name, idx] = m;
    if (kind === 'device' || kind === 'group' || kind === 'container' || kind === 'irqfd' || kind === 'resamplefd') {
      if (name === undefined || !devices.has(name)) issue(ctx, path, `fd reference '${ref}' names no device`);
      if ((kind === 'irqfd' || kind === 'resamplefd') !== (idx !== undefined))
        issue(
          ctx,
          path,
          `fd reference '${ref}': ${kind === 'irqfd' || kind === 'resamplefd' ? 'give /<index>' : 'no /<index> here'}`,
        );
    } else if (kind === 'vcpu') {
      if (name === undefined) issue(ctx, path, `fd reference '${ref}': write vcpu:<i> or vcpu:<vm>/<i>`);
    } else if (name !== undefined && !vms.has(name)) issue(ctx, path, `fd reference '${ref}' names no VM`);
    return true;
  };
  const checkValue = (path: Path, v: ArgValue): void => {
    if (typeof v === 'number') return;
    if (typeof v === 'string') {
      if (!isUapiConstant(v) && !checkFdRef(path, v))
        issue(ctx, path, `'${v}' is neither a uapi constant (KVM_*, VFIO_*) nor ${FDREF_HELP}`);
      return;
    }
    if ('s32' in v) {
      checkValue([...path, 's32'], v.s32);
      return;
    }
    checkStruct([...path, 'struct'], v.struct);
  };
  const checkStruct = (path: Path, st: StructSpec): void => {
    const codec = STRUCTS.get(st.name);
    if (!codec) {
      issue(ctx, [...path, 'name'], `unknown struct '${st.name}' (known: ${structNames().join(', ')})`);
      return;
    }
    for (const [f, v] of Object.entries(st.fields)) {
      if (!(f in codec.fields))
        issue(
          ctx,
          [...path, 'fields', f],
          `struct ${st.name} has no member '${f}' (members: ${Object.keys(codec.fields).join(', ')})`,
        );
      else checkValue([...path, 'fields', f], v);
    }
    st.data?.forEach((v, i) => {
      checkValue([...path, 'data', i], v);
    });
    if (st.data !== undefined && st.entries !== undefined)
      issue(ctx, path, 'give data or entries (the flexible array as __s32 or as structs), not both');
    st.entries?.forEach((e, i) => {
      checkStruct([...path, 'entries', i], e);
    });
  };
  if (!checkFdRef([...p, 'fd'], s.fd)) issue(ctx, [...p, 'fd'], `expected ${FDREF_HELP}`);
  if (typeof s.request === 'string' && !REQUEST_NAMES.has(s.request))
    issue(
      ctx,
      [...p, 'request'],
      `unknown ioctl request '${s.request}' (a KVM_* or VFIO_* name from docs/ABI.md, or a number)`,
    );
  if (s.struct !== undefined && s.arg !== undefined) issue(ctx, p, 'give struct or arg, not both');
  if (s.struct) checkStruct([...p, 'struct'], s.struct);
  if (s.arg !== undefined) checkValue([...p, 'arg'], s.arg);
  if (s.expect !== 'ok' && !(s.expect in ERRNO))
    issue(ctx, [...p, 'expect'], `expected "ok" or an errno name (EINVAL, EBUSY, ...), got '${s.expect}'`);
  if (s.as !== undefined) {
    const p2: Path = [...p, 'as'];
    if (FDREF_RE.test(s.as)) issue(ctx, p2, `'${s.as}' is a built-in fd reference: choose another name`);
    else if (bound.has(s.as)) issue(ctx, p2, `'${s.as}' is already bound by an earlier step: choose another name`);
    const req = typeof s.request === 'number' ? s.request : (abi as Record<string, unknown>)[s.request];
    if (typeof req === 'number' && createdFdAt(req) === undefined)
      issue(ctx, p2, `${s.request} creates no fd: as binds the fd of ${FD_CREATING_REQUESTS}`);
    if (s.expect !== 'ok') issue(ctx, p2, `as binds the fd of a call that succeeds, but this one expects ${s.expect}`);
    bound.add(s.as);
  }
}

/** The VMM plan when the document has none: open each device, then per IRQ irqfd (+ assign) as QEMU does. */
function defaultPlan(d: Doc): Step[] {
  const vm = d.vms[0]?.name ?? 'vm0';
  const steps: Step[] = [];
  for (const dev of d.devices) {
    steps.push({ step: 'open-device', device: dev.name, vm });
    for (let index = 0; index < nrLines(dev); index++) {
      steps.push({ step: 'irqfd', device: dev.name, index, vm });
      if (dev.bus !== 'pci') steps.push({ step: 'assign', device: dev.name, index, vm });
    }
  }
  return steps;
}

function resolveSteps(d: Doc): ScenarioStep[] {
  const firstVm = d.vms[0]?.name ?? 'vm0';
  const irqOf = (device: string, index: number) => d.devices.find((x) => x.name === device)?.irqs[index];
  const gsis = new Map<string, number>();
  const nextMsiGsi = new Map<string, number>(); // per VM
  return (d.vmm ?? defaultPlan(d)).map((s): ScenarioStep => {
    const vm = s.vm ?? firstVm;
    switch (s.step) {
      case 'irqfd': {
        if (d.devices.find((x) => x.name === s.device)?.bus === 'pci') {
          const gsi = s.gsi ?? nextMsiGsi.get(vm) ?? firstMsiGsi(d.host.gic.nrIrqs);
          nextMsiGsi.set(vm, Math.max(nextMsiGsi.get(vm) ?? 0, gsi + 1));
          return { ...s, vm, gsi, resample: false };
        }
        const irq = irqOf(s.device, s.index);
        const gsi = s.gsi ?? (irq ? irq.intid - 32 : 0);
        gsis.set(`${vm}\0${s.device}\0${s.index}`, gsi);
        return { ...s, vm, gsi, resample: s.resample ?? irq?.trigger !== 'edge' };
      }
      case 'assign':
      case 'deassign': {
        const irq = irqOf(s.device, s.index);
        const gsi = s.gsi ?? gsis.get(`${vm}\0${s.device}\0${s.index}`) ?? (irq ? irq.intid - 32 : 0);
        return { ...s, vm, gsi };
      }
      default:
        return { ...s, vm };
    }
  });
}

/** The scenario schema: parse (validate, fill defaults, resolve durations and the VMM plan) any input document. */
export const Scenario = Document.transform((raw, ctx): Scenario => {
  const hz = raw.host.hz ?? COST_PROFILES[raw.host.costProfile].hz;
  const d = resolveDurations(raw, hz) as Doc;
  crossCheck(d, ctx);
  // timing checks that need cycles
  if (d.duration <= 0) issue(ctx, ['duration'], 'duration must be positive');
  d.workloads.forEach((w, i) => {
    if (w.kind === 'periodic' && w.period <= 0) issue(ctx, ['workloads', i, 'period'], 'period must be positive');
    if (w.kind === 'burst') {
      if (w.spacing <= 0 && w.size > 1) issue(ctx, ['workloads', i, 'spacing'], 'spacing must be positive');
      if (w.every < w.size * w.spacing)
        issue(
          ctx,
          ['workloads', i, 'every'],
          `every (${w.every} cycles) is shorter than one burst (size × spacing = ${w.size * w.spacing} cycles)`,
        );
    }
    if (w.kind === 'poisson' && w.meanInterval !== undefined && w.meanInterval <= 0)
      issue(ctx, ['workloads', i, 'meanInterval'], 'meanInterval must be positive');
  });
  const cpus = d.host.cpus;
  return {
    ...d,
    host: { ...d.host, hz },
    vms: d.vms.map((vm) => ({
      ...vm,
      pinning: vm.pinning ?? Array.from({ length: vm.vcpus }, (_, i) => (i + 1) % cpus),
    })),
    vmm: resolveSteps(d),
  };
});

/** The modes a scenario runs, in output order. */
export function scenarioModes(s: Pick<Scenario, 'mode'>): Mode[] {
  return s.mode === 'both' ? ['normal', 'forwarded'] : [s.mode];
}

export type ComparePathSpec = NonNullable<Scenario['paths']>[number];

/** The VMM steps one mode runs: the normal pass skips assign and deassign. */
export function stepsForMode(s: Scenario, mode: Mode): ScenarioStep[] {
  return mode === 'forwarded' ? s.vmm : s.vmm.filter((x) => x.step !== 'assign' && x.step !== 'deassign');
}

/** JSON Schema (draft 2020-12) of the scenario document, for editors and `irqfwd schema`. */
export function scenarioJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(Document, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return {
    $schema: schema.$schema,
    $id: 'https://irqfwd.dev/schema/scenario.json',
    title: 'irqfwd scenario',
    description: 'A scenario for the irqfwd model of ARM KVM IRQ forwarding (docs/CLI.md).',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  };
}
