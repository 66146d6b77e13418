import { describe, expect, it } from 'vitest';
import {
  durationToCycles,
  parseDurationText,
  Scenario,
  scenarioJsonSchema,
  scenarioModes,
  stepsForMode,
} from './schema.js';

const dev = { name: 'd0', iommuGroup: 7, irqs: [{ intid: 80 }] };

function issues(input: unknown): { path: string; message: string }[] {
  const r = Scenario.safeParse(input);
  if (r.success) return [];
  return r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

describe('durations', () => {
  it('parses units and converts with the clock', () => {
    expect(parseDurationText('10ms')).toEqual({ value: 1e7, unit: 'ns' });
    expect(parseDurationText('2.5us')).toEqual({ value: 2500, unit: 'ns' });
    expect(parseDurationText('3000cycles')).toEqual({ value: 3000, unit: 'cycles' });
    expect(parseDurationText('10 xs')).toBeUndefined();
    expect(durationToCycles('1ms', 2.4e9)).toBe(2_400_000);
    expect(durationToCycles(42, 2.4e9)).toBe(42);
  });

  it('converts document durations with the profile clock unless host.hz is given', () => {
    expect(Scenario.parse({ duration: '1ms', host: { costProfile: 'a15' } }).duration).toBe(1_700_000);
    expect(Scenario.parse({ duration: '1ms', host: { costProfile: 'xgene' } }).duration).toBe(2_400_000);
    expect(Scenario.parse({ duration: '1ms', host: { costProfile: 'xgene', hz: 1e9 } }).duration).toBe(1_000_000);
    expect(Scenario.parse({ duration: 5000 }).duration).toBe(5000);
  });
});

describe('defaults', () => {
  it('an empty document is a valid scenario: 2 CPUs, one 1-vCPU VM, 10 ms, both modes', () => {
    const s = Scenario.parse({});
    expect(s.host).toEqual({
      cpus: 2,
      gic: { version: 'v2', nrIrqs: 256, nrLrs: 4, nrEspis: 0 },
      costProfile: 'default',
      costs: {},
      hz: 2e9,
    });
    expect(s.vms).toHaveLength(1);
    expect(s.vms[0]).toMatchObject({ name: 'vm0', vcpus: 1, pinning: [1], guest: { eoiMode: 0, workload: 'idle' } });
    expect(s.duration).toBe(20_000_000);
    expect(scenarioModes(s)).toEqual(['normal', 'forwarded']);
    expect(s.vmm).toEqual([]);
  });

  it('the default VMM plan opens each device and sets up irqfd + assign per IRQ, QEMU order', () => {
    const s = Scenario.parse({ devices: [{ ...dev, irqs: [{ intid: 80 }, { intid: 81, trigger: 'edge' }] }] });
    expect(s.vmm).toEqual([
      { step: 'open-device', device: 'd0', vm: 'vm0' },
      { step: 'irqfd', device: 'd0', index: 0, vm: 'vm0', gsi: 48, resample: true },
      { step: 'assign', device: 'd0', index: 0, vm: 'vm0', gsi: 48 },
      { step: 'irqfd', device: 'd0', index: 1, vm: 'vm0', gsi: 49, resample: false },
      { step: 'assign', device: 'd0', index: 1, vm: 'vm0', gsi: 49 },
    ]);
    expect(stepsForMode(s, 'normal').map((x) => x.step)).toEqual(['open-device', 'irqfd', 'irqfd']);
    expect(stepsForMode(s, 'forwarded')).toHaveLength(5);
  });

  it('parses event names in after', () => {
    const s = Scenario.parse({
      devices: [dev],
      vmm: [
        { step: 'open-device', device: 'd0', id: 'open' },
        { step: 'irqfd', device: 'd0', after: 'open' },
        { step: 'assign', device: 'd0', after: 'delivered:d0/0#5', delay: '1us' },
      ],
    });
    expect(s.vmm[1]!.after).toEqual({ kind: 'step', id: 'open' });
    expect(s.vmm[2]!.after).toEqual({ kind: 'delivered', device: 'd0', index: 0, n: 5 });
    expect(s.vmm[2]!.delay).toBe(2000);
  });

  it('parsing is idempotent (the resolved scenario is a valid input)', () => {
    const once = Scenario.parse({
      duration: '2ms',
      devices: [dev],
      vms: [{ vcpus: 2, retarget: [{ at: '1ms', intid: 80, vcpu: 1 }] }],
      workloads: [{ device: 'd0', kind: 'burst', size: 4, spacing: '1us', every: '100us', after: 'raised:d0/0#1' }],
    });
    expect(Scenario.parse(once)).toEqual(once);
  });
});

describe('cross-checks', () => {
  it('an Extended SPI is a device INTID on a GICv3 host with nrEspis; a GICv2 has none and 8-vCPU VMs', () => {
    const v3 = { version: 'v3', nrIrqs: 1024, nrEspis: 32 };
    expect(issues({ host: { gic: v3 }, devices: [{ ...dev, irqs: [{ intid: 4127 }] }] })).toEqual([]);
    expect(issues({ host: { gic: v3 }, devices: [{ ...dev, irqs: [{ intid: 4128 }] }] })[0]!.message).toContain(
      'or an Extended SPI 4096..4127',
    );
    expect(issues({ host: { gic: { nrEspis: 32 } } })).toEqual([
      { path: 'host.gic.nrEspis', message: expect.stringContaining('GICv3.1 feature') },
    ]);
    expect(issues({ host: { gic: v3 }, vms: [{ vcpus: 16 }] })).toEqual([]);
    expect(issues({ vms: [{ vcpus: 16 }] })).toEqual([
      { path: 'vms.0.vcpus', message: expect.stringContaining('VGIC_V2_MAX_CPUS') },
    ]);
  });

  it('INTIDs must be SPIs below nrIrqs and unique', () => {
    expect(issues({ devices: [{ ...dev, irqs: [{ intid: 20 }] }] })).toEqual([
      { path: 'devices.0.irqs.0.intid', message: expect.stringContaining('INTID 20 is not an SPI') },
    ]);
    expect(issues({ devices: [{ ...dev, irqs: [{ intid: 300 }] }] })[0]!.message).toContain('expected 32..255');
    const dup = issues({ devices: [dev, { name: 'd1', iommuGroup: 8, irqs: [{ intid: 80 }] }] });
    expect(dup).toEqual([
      { path: 'devices.1.irqs.0.intid', message: expect.stringContaining('already the line of d0') },
    ]);
  });

  it("a VM's SPIs stop at INTID 991 on a 1024-INTID host: KVM takes at most 992 for GRP_NR_IRQS", () => {
    const host = { gic: { nrIrqs: 1024 } };
    const mode = 'normal';
    const line = { ...dev, irqs: [{ intid: 1000 }] };
    const vmm = [
      { step: 'open-device', device: 'd0' },
      { step: 'irqfd', device: 'd0' },
    ];
    expect(issues({ host, mode, devices: [line], vmm })).toEqual([
      { path: 'vmm.1.gsi', message: expect.stringContaining("past the VM's last SPI 991") },
    ]);
    expect(issues({ host, mode, devices: [line], vmm: [vmm[0], { ...vmm[1], gsi: 959 }] })).toEqual([]);
    expect(issues({ host, devices: [dev], vms: [{ retarget: [{ intid: 992, vcpu: 0 }] }] })).toEqual([
      { path: 'vms.0.retarget.0.intid', message: expect.stringContaining('expected 32..991') },
    ]);
  });

  it('device names, indexes and vCPU references are checked', () => {
    const r = issues({
      devices: [dev],
      vms: [{ vcpus: 2, pinning: [0, 5], retarget: [{ intid: 80, vcpu: 3 }] }],
      workloads: [
        { device: 'nope', kind: 'periodic', period: 10 },
        { device: 'd0', index: 2, kind: 'periodic', period: 10 },
      ],
    });
    expect(r.map((x) => x.path)).toEqual(
      expect.arrayContaining(['vms.0.pinning.1', 'vms.0.retarget.0.vcpu', 'workloads.0.device', 'workloads.1.index']),
    );
    expect(r.find((x) => x.path === 'workloads.0.device')!.message).toContain("unknown device 'nope'");
  });

  it('steps need an open device, assign needs an irqfd, deassign an assign, after an earlier step', () => {
    expect(
      issues({
        devices: [dev],
        vmm: [
          { step: 'irqfd', device: 'd0' },
          { step: 'open-device', device: 'd0' },
        ],
      }),
    ).toEqual(expect.arrayContaining([{ path: 'vmm.0.device', message: expect.stringContaining('not open') }]));
    const r = issues({
      devices: [dev],
      vmm: [
        { step: 'open-device', device: 'd0' },
        { step: 'deassign', device: 'd0' },
        { step: 'assign', device: 'd0', after: 'later' },
        { step: 'open-device', device: 'd0', id: 'later' },
      ],
    });
    expect(r).toEqual([
      { path: 'vmm.1', message: expect.stringContaining('which no earlier step assigns') },
      { path: 'vmm.2.after', message: expect.stringContaining("no earlier step has id 'later'") },
      { path: 'vmm.2', message: expect.stringContaining('needs an earlier irqfd') },
    ]);
  });

  it('a forwarded run needs an assign step', () => {
    const r = issues({
      devices: [dev],
      vmm: [
        { step: 'open-device', device: 'd0' },
        { step: 'irqfd', device: 'd0' },
      ],
    });
    expect(r).toEqual([{ path: 'mode', message: expect.stringContaining('no assign step') }]);
    expect(
      issues({
        mode: 'normal',
        devices: [dev],
        vmm: [
          { step: 'open-device', device: 'd0' },
          { step: 'irqfd', device: 'd0' },
        ],
      }),
    ).toEqual([]);
  });

  it('raw ioctl steps are checked against the ABI: request, struct, members, fd references, errno', () => {
    const ok = Scenario.safeParse({
      devices: [dev],
      vmm: [
        { step: 'open-device', device: 'd0' },
        { step: 'irqfd', device: 'd0' },
        {
          step: 'ioctl',
          fd: 'kvm-vfio',
          request: 'KVM_SET_DEVICE_ATTR',
          struct: {
            name: 'kvm_device_attr',
            fields: {
              group: 'KVM_DEV_VFIO_DEVICE',
              attr: 'KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ',
              addr: {
                struct: { name: 'kvm_arch_forwarded_irq', fields: { fd: 'device:d0', irq_index: 0, guest_irq: 48 } },
              },
            },
          },
        },
      ],
    });
    expect(ok.success).toBe(true);
    const bad = issues({
      mode: 'normal',
      devices: [dev],
      vmm: [
        {
          step: 'ioctl',
          fd: 'device:zz',
          request: 'KVM_FROB',
          struct: { name: 'kvm_irqfd', fields: { fdd: 1 } },
          expect: 'EWHAT',
        },
      ],
    });
    expect(bad.map((x) => x.path)).toEqual(['vmm.0.fd', 'vmm.0.request', 'vmm.0.struct.fields.fdd', 'vmm.0.expect']);
  });

  it('`entries` are structs checked like the struct they follow; `data` and `entries` together are refused', () => {
    const routing = (extra: object) => ({
      mode: 'normal',
      devices: [dev],
      vmm: [
        {
          step: 'ioctl',
          fd: 'vm',
          request: 'KVM_SET_GSI_ROUTING',
          struct: {
            name: 'kvm_irq_routing',
            fields: { nr: 2 },
            entries: [
              { name: 'kvm_irq_routing_entry', fields: { gsi: 1, type: 'KVM_IRQ_ROUTING_MSI', u3: 'device:zz' } },
              { name: 'kvm_irq_routing_entry', fields: { gsi: 2, pin: 3 } },
              { name: 'kvm_routing' },
            ],
            ...extra,
          },
        },
      ],
    });
    expect(issues(routing({})).map((x) => x.path)).toEqual([
      'vmm.0.struct.entries.0.fields.u3',
      'vmm.0.struct.entries.1.fields.pin',
      'vmm.0.struct.entries.2.name',
    ]);
    expect(issues(routing({ data: [1] })).map((x) => [x.path, x.message])).toContainEqual([
      'vmm.0.struct',
      'give data or entries (the flexible array as __s32 or as structs), not both',
    ]);
  });

  it('`as` binds the fd a creating ioctl returns; a name must be bound earlier, new, and by a call that creates one', () => {
    const create = { step: 'ioctl', fd: 'kvm', request: 'KVM_CREATE_VM', arg: 0, as: 'vm-b' } as const;
    const ok = Scenario.safeParse({
      mode: 'normal',
      devices: [dev],
      vmm: [
        create,
        {
          step: 'ioctl',
          fd: 'vm-b',
          request: 'KVM_CREATE_DEVICE',
          struct: { name: 'kvm_create_device', fields: { type: 'KVM_DEV_TYPE_VFIO' } },
          as: 'vfio-b',
        },
        { step: 'ioctl', fd: 'vfio-b', request: 'KVM_HAS_DEVICE_ATTR', struct: { name: 'kvm_device_attr' } },
      ],
    });
    expect(ok.success).toBe(true);
    const bad = issues({
      mode: 'normal',
      devices: [dev],
      vmm: [
        { step: 'ioctl', fd: 'vm-b', request: 'KVM_CREATE_VCPU', arg: 0 },
        create,
        { ...create, as: 'vm' },
        create,
        { step: 'ioctl', fd: 'vm-b', request: 'KVM_CHECK_EXTENSION', arg: 'later', as: 'x' },
        { ...create, as: 'y', expect: 'EMFILE' },
      ],
    });
    expect(issues({ vmm: [{ ...create, as: 'Upper' }] }).map((x) => [x.path, x.message])).toEqual([
      ['vmm.0.as', 'expected a name for the new fd: a lower-case letter, then a-z, 0-9 and -'],
    ]);
    expect(bad.map((x) => [x.path, x.message])).toEqual([
      ['vmm.0.fd', "'vm-b' names no fd: no earlier ioctl step binds it with as: vm-b"],
      ['vmm.2.as', "'vm' is a built-in fd reference: choose another name"],
      ['vmm.3.as', "'vm-b' is already bound by an earlier step: choose another name"],
      ['vmm.4.arg', "'later' names no fd: no earlier ioctl step binds it with as: later"],
      [
        'vmm.4.as',
        'KVM_CHECK_EXTENSION creates no fd: as binds the fd of KVM_CREATE_VM, KVM_CREATE_VCPU (their result), KVM_CREATE_DEVICE (its fd member)',
      ],
      ['vmm.5.as', 'as binds the fd of a call that succeeds, but this one expects EMFILE'],
    ]);
  });

  it('workload, expectation and timing rules', () => {
    const r = issues({
      devices: [dev],
      workloads: [
        { device: 'd0', kind: 'poisson' },
        { device: 'd0', kind: 'burst', size: 10, spacing: 100, every: 500 },
      ],
      expect: [
        { metric: 'irqs.nope', value: 1 },
        { metric: 'irqs.lost', anchor: 'nothing' },
      ],
    });
    expect(r.map((x) => x.path)).toEqual(
      expect.arrayContaining(['workloads.0', 'workloads.1.every', 'expect.0.metric', 'expect.1.anchor']),
    );
  });

  it('structural errors carry readable messages', () => {
    expect(issues({ vms: [{ guest: { eoiMode: 2 } }] })).toEqual([
      { path: 'vms.0.guest.eoiMode', message: 'expected 0 or 1 (GICV_CTLR.EOImode)' },
    ]);
    expect(issues({ duration: '10 parsecs' })[0]!.message).toContain('expected a duration');
    expect(issues({ vmm: [{ step: 'reboot' }] })[0]!.message).toContain('expected step: open-device | irqfd');
    expect(issues({ host: { cpus: 9 } })[0]!.message).toContain('at most 8');
    expect(issues({ bogus: 1 })[0]!.message).toContain('Unrecognized key');
  });
});

describe('JSON Schema', () => {
  it('is draft 2020-12 with the document fields and input-side durations', () => {
    const js = scenarioJsonSchema() as { $schema: string; properties: Record<string, { anyOf?: unknown[] }> };
    expect(js.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(Object.keys(js.properties)).toEqual(
      expect.arrayContaining([
        'name',
        'seed',
        'duration',
        'mode',
        'host',
        'devices',
        'vms',
        'vmm',
        'workloads',
        'sweep',
      ]),
    );
    expect(JSON.stringify(js.properties.duration)).toContain('"pattern"');
    expect(() => JSON.parse(JSON.stringify(js))).not.toThrow();
  });
});
