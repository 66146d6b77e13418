import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  closest,
  DEFAULT_SCENARIO,
  expandPaths,
  expandSweep,
  formatPath,
  loadScenario,
  loadScenarioFile,
  ScenarioError,
  sweepPoint,
} from './loader.js';
import { Scenario } from './schema.js';

const SCENARIOS = fileURLToPath(new URL('../../scenarios/', import.meta.url));

function problemsOf(text: string, file = 'test.yaml', opts = {}) {
  try {
    loadScenario(text, file, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return e as ScenarioError;
  }
  throw new Error('expected a ScenarioError');
}

describe('loadScenario error positions', () => {
  it('names the file, the line and column of the value, the path and what was expected', () => {
    const e = problemsOf(
      ['name: t', 'vms:', '  - name: vm0', '    guest:', '      eoiMode: 2', ''].join('\n'),
      'bad.yaml',
    );
    expect(e.message).toBe('bad.yaml:5:16: vms[0].guest.eoiMode: expected 0 or 1 (GICV_CTLR.EOImode), got 2');
    expect(e.problems[0]).toMatchObject({ line: 5, col: 16, path: 'vms[0].guest.eoiMode' });
  });

  it('points an unknown field at its key', () => {
    const e = problemsOf('host:\n  cpus: 2\n  cpuz: 3\n');
    expect(e.message).toBe("test.yaml:3:3: host.cpuz: unknown field 'cpuz'");
  });

  it('points a missing required field at its parent mapping', () => {
    const e = problemsOf('devices:\n  - iommuGroup: 3\n    irqs: [{ intid: 80 }]\n');
    expect(e.message).toBe("test.yaml:2:5: devices[0].name: missing required field 'name': expected a string");
  });

  it('reports cross-reference errors at the referring value', () => {
    const text = [
      'devices:',
      '  - { name: d0, iommuGroup: 7, irqs: [{ intid: 80 }] }',
      'workloads:',
      '  - { device: d1, kind: periodic, period: 10us }',
      '',
    ].join('\n');
    const e = problemsOf(text);
    expect(e.message).toBe("test.yaml:4:15: workloads[0].device: unknown device 'd1' (devices: d0)");
  });

  it('reports YAML syntax errors with their position', () => {
    const e = problemsOf('name: x\nvms: [1,\n');
    expect(e.problems[0]!.line).toBeGreaterThan(0);
    expect(e.message).toMatch(/^test\.yaml:\d+:\d+: YAML: /);
  });

  it('reports several problems in file order', () => {
    const e = problemsOf('seed: -1\nmode: sideways\n');
    expect(e.problems.map((p) => [p.line, p.path])).toEqual([
      [1, 'seed'],
      [2, 'mode'],
    ]);
    expect(e.message.split('\n')[1]).toContain('expected one of normal | forwarded | both, got "sideways"');
  });

  it('rejects a top level that is not a mapping', () => {
    expect(problemsOf('- 1\n- 2\n').message).toContain('expected a mapping');
  });

  it('accepts JSON', () => {
    const s = loadScenario('{"name": "j", "duration": 1000, "mode": "normal"}', 'j.json');
    expect(s).toMatchObject({ name: 'j', duration: 1000, mode: 'normal' });
  });

  it('names a scenario after its file when it has no name', () => {
    expect(loadScenario('seed: 3\n', 'dir/my-test.yaml').name).toBe('my-test');
  });

  it('checks host.costs names when the known costs are given, suggesting the closest', () => {
    const e = problemsOf('host:\n  costs:\n    gicd_wrte: 10\n', 'c.yaml', { knownCosts: ['gicd_write', 'gicd_read'] });
    expect(e.message).toBe(
      "c.yaml:3:5: host.costs.gicd_wrte: unknown cost 'gicd_wrte' (did you mean 'gicd_write'?); see `irqfwd help costs`",
    );
    expect(
      loadScenario('host:\n  costs:\n    gicd_write: 10\n', 'c.yaml', { knownCosts: ['gicd_write'] }).host.costs,
    ).toEqual({
      gicd_write: 10,
    });
  });

  it('applies --seed and --profile overrides before converting durations', () => {
    const s = loadScenario('duration: 1ms\nhost: { costProfile: xgene }\n', 'o.yaml', { seed: 9, profile: 'a15' });
    expect(s.seed).toBe(9);
    expect(s.host.costProfile).toBe('a15');
    expect(s.duration).toBe(1_700_000);
  });

  it('loadScenarioFile reports an unreadable file as a ScenarioError', () => {
    expect(() => loadScenarioFile('/nonexistent/x.yaml')).toThrow('/nonexistent/x.yaml: cannot read: no such file');
  });
});

describe('shipped scenarios', () => {
  const files = readdirSync(SCENARIOS).filter((f) => f.endsWith('.yaml'));

  it('include the required set', () => {
    expect(files.sort()).toEqual(
      expect.arrayContaining([
        'default.yaml',
        'edge.yaml',
        'multi-vcpu-retarget.yaml',
        'lr-overflow.yaml',
        'assign-deassign-inflight.yaml',
        'teardown-inflight.yaml',
        'rate-sweep.yaml',
        'hypercall.yaml',
        'virq-completion.yaml',
        'io-latency-in.yaml',
        'io-latency-out.yaml',
      ]),
    );
  });

  it.each(files)('%s validates, has a description, and re-parses to itself', (f) => {
    const s = loadScenarioFile(`${SCENARIOS}${f}`);
    expect(s.name).toBe(f.replace(/\.yaml$/, ''));
    expect(s.description.length).toBeGreaterThan(40);
    expect(Scenario.parse(s)).toEqual(s);
    for (const p of expandSweep(s)) expect(p.scenario.sweep).toBeUndefined();
  });

  it('DEFAULT_SCENARIO is scenarios/default.yaml byte for byte', () => {
    expect(readFileSync(`${SCENARIOS}default.yaml`, 'utf8')).toBe(DEFAULT_SCENARIO);
  });

  it('the default scenario is the level passthrough of the issue', () => {
    const s = loadScenario(DEFAULT_SCENARIO, 'default');
    expect(s.host.cpus).toBe(2);
    expect(s.vms).toHaveLength(1);
    expect(s.vms[0]!.vcpus).toBe(1);
    expect(s.devices).toEqual([
      {
        name: 'fff51000.ethernet',
        iommuGroup: 7,
        reset: true,
        irqs: [{ intid: 80, trigger: 'level', hold: 'until-ack', clear: 'driver-ack' }],
      },
    ]);
    expect(s.mode).toBe('both');
    expect(s.workloads[0]).toMatchObject({ kind: 'periodic', count: 1000 });
  });
});

describe('sweeps', () => {
  it('rate-sweep expands to one validated scenario per value, durations at the scenario clock', () => {
    const s = loadScenarioFile(`${SCENARIOS}rate-sweep.yaml`);
    const points = expandSweep(s);
    expect(points.map((p) => p.value)).toEqual(['100us', '50us', '20us', '10us', '5us', '2us']);
    const w = points[5]!.scenario.workloads[0]!;
    expect(w.kind === 'periodic' && w.period).toBe(2 * 2400);
  });

  it('a sweep value that does not validate is reported at sweep.values[i]', () => {
    const text = [
      'devices: [{ name: d0, iommuGroup: 7, irqs: [{ intid: 80 }] }]',
      'workloads: [{ device: d0, kind: periodic, period: 10us }]',
      'sweep:',
      '  param: workloads[0].period',
      '  values: [10us, fast]',
      '',
    ].join('\n');
    const e = problemsOf(text, 's.yaml');
    expect(e.problems).toHaveLength(1);
    expect(e.message).toMatch(
      /^s\.yaml:5:18: sweep\.values\[1\]: with workloads\[0\]\.period = "fast": workloads\[0\]\.period: expected a duration/,
    );
  });

  it('a sweep param that does not exist is an error', () => {
    const s = Scenario.parse({});
    expect(() => sweepPoint(s, 'host.nothing', 1)).toThrow("sweep.param 'host.nothing' does not exist");
    expect(() => sweepPoint(s, 'workloads[3].period', 1)).toThrow('does not exist');
  });
});

describe('compare paths', () => {
  it('compare-paths: each path is the scenario with its parameters set, in its mode, with its expectations', () => {
    const s = loadScenarioFile(`${SCENARIOS}compare-paths.yaml`);
    const points = expandPaths(s);
    expect(points.map((p) => [p.name, p.mode, p.scenario.mode, p.scenario.host.gic.version])).toEqual([
      ['irqfd-v2', 'normal', 'normal', 'v2'],
      ['hwbit-v2', 'forwarded', 'forwarded', 'v2'],
      ['hwbit-v3', 'forwarded', 'forwarded', 'v3'],
      ['vlpi-v41', 'forwarded', 'forwarded', 'v3'],
    ]);
    for (const p of points) expect(p.scenario.paths).toBeUndefined();
    // the exits expectations name hwbit-v3 and vlpi-v41; the lost one holds for every path
    expect(points.map((p) => p.scenario.expect.map((e) => e.metric))).toEqual([
      ['irqs.lost'],
      ['irqs.lost'],
      ['irqs.lost', 'exits.perIrq.total'],
      ['irqs.lost', 'exits.perIrq.total'],
    ]);
    // vlpi-v41 sets whole parts (a list of devices, the VMM plan) and a field the scenario leaves out (nrVpes)
    const v41 = points[3]!.scenario;
    expect(v41.host.gic).toMatchObject({ version: 'v3', nrVpes: 4 });
    expect(v41.devices.map((d) => [d.name, d.bus, d.msi?.vectors])).toEqual([['0000:01:00.0', 'pci', 1]]);
    expect(v41.vmm.map((st) => st.step)).toEqual(['open-device', 'irqfd']);
    // the MSI route's GSI follows the VM's 224 SPI routes (kvm_irqchip_get_virq); an MSI has no resamplefd
    expect(v41.vmm[1]).toMatchObject({ gsi: 224, resample: false });
    expect(v41.workloads[0]!.device).toBe('0000:01:00.0');
    expect(expandPaths(loadScenarioFile(`${SCENARIOS}default.yaml`))).toEqual([]);
  });

  const base = [
    'devices: [{ name: d0, iommuGroup: 7, irqs: [{ intid: 80 }] }]',
    'workloads: [{ device: d0, kind: periodic, period: 10us }]',
  ];

  it('a path whose parameters do not validate is reported at paths[i].set', () => {
    const e = problemsOf(
      [
        ...base,
        'paths:',
        '  - { name: a, mode: normal }',
        '  - { name: b, mode: normal, set: { host.gic.nrLrs: 99 } }',
        '',
      ].join('\n'),
      'p.yaml',
    );
    expect(e.problems).toHaveLength(1);
    expect(e.message).toMatch(/^p\.yaml:5:35: paths\[1\]\.set: with host\.gic\.nrLrs = 99: host\.gic\.nrLrs: /);
  });

  it.each([
    [['  - { name: a, mode: normal }', '  - { name: a, mode: forwarded }'], "path name 'a' is used twice"],
    [['  - { name: a, mode: normal }', '  - { name: b, mode: normal, set: { mode: forwarded } }'], "cannot set 'mode'"],
    [['  - { name: a, mode: normal }', '  - { name: b, mode: normal, set: { host.nothing: 1 } }'], 'does not exist'],
    [['  - { name: a, mode: normal }'], 'expected'],
    [
      ['  - { name: a, mode: normal }', '  - { name: b, mode: normal }', 'sweep: { param: seed, values: [1, 2] }'],
      'cannot be combined',
    ],
    [
      [
        '  - { name: a, mode: normal }',
        '  - { name: b, mode: normal }',
        'expect: [{ metric: irqs.lost, value: 0, path: c }]',
      ],
      "no compare path is named 'c'",
    ],
  ])('paths %j: %s', (lines, msg) => {
    expect(problemsOf([...base, 'paths:', ...lines, ''].join('\n')).message).toContain(msg);
  });
});

describe('MSI-capable PCI functions (bus: pci) and GICv4.1 hosts', () => {
  const host = 'host: { gic: { version: v3, nrVpes: 4 } }';
  const fn = "devices: [{ name: '0000:01:00.0', bus: pci, iommuGroup: 7, msi: { vectors: 2 } }]";
  const plan = [
    'vmm:',
    "  - { step: open-device, device: '0000:01:00.0' }",
    "  - { step: irqfd, device: '0000:01:00.0', index: 1 }",
  ];
  const load = (lines: readonly string[]) => loadScenario([...lines, ''].join('\n'), 'msi.yaml');

  it('a function with a vITS-backed plan loads: its vector irqfd gets the first MSI GSI, no resample, no assign', () => {
    const s = load([host, fn, ...plan]);
    expect(s.vmm[1]).toMatchObject({ step: 'irqfd', index: 1, gsi: 224, resample: false });
    // the default plan: open-device, then an irqfd per vector (the forwarding is irqbypass's, no assign step)
    const d = load([host, fn]);
    expect(d.vmm.map((st) => [st.step, 'gsi' in st ? st.gsi : null])).toEqual([
      ['open-device', null],
      ['irqfd', 224],
      ['irqfd', 225],
    ]);
  });

  it.each([
    [["devices: [{ name: '0000:01:00.0', bus: pci, iommuGroup: 7, msi: { vectors: 1 } }]"], 'devices[0].bus', 'GICv3'],
    [
      [host, "devices: [{ name: 'nic0', bus: pci, iommuGroup: 7, msi: { vectors: 1 } }]"],
      'devices[0].name',
      'domain:bus:slot.function',
    ],
    [[host, "devices: [{ name: '0000:01:00.0', bus: pci, iommuGroup: 7 }]"], 'devices[0].msi', 'msi: { vectors'],
    [
      [host, "devices: [{ name: '0000:01:00.0', bus: pci, iommuGroup: 7, msi: { vectors: 3 } }]"],
      'devices[0].msi.vectors',
      'power of two',
    ],
    [
      [
        host,
        "devices: [{ name: '0000:01:00.0', bus: pci, iommuGroup: 7, msi: { vectors: 1 }, irqs: [{ intid: 80 }] }]",
      ],
      'devices[0].irqs',
      'not wired IRQs',
    ],
    [
      [host, 'devices: [{ name: d0, iommuGroup: 7, irqs: [{ intid: 80 }], msi: { vectors: 1 } }]'],
      'devices[0].msi',
      'bus: pci devices',
    ],
    [[host, 'devices: [{ name: d0, iommuGroup: 7 }]'], 'devices[0].irqs', 'at least one IRQ'],
    [['host: { gic: { nrVpes: 4 } }'], 'host.gic.nrVpes', 'GICv4.1 feature'],
    [['host: { gic: { version: v3, nrVpes: 4 } }'], 'host.gic.nrVpes', 'needs LPIs'],
    [
      [
        'host: { gic: { version: v3, nrVpes: 4, nrLpis: 32 } }',
        "devices: [{ name: '0000:01:00.0', bus: pci, iommuGroup: 7, msi: { vectors: 32 } }]",
        'vms: [{ vcpus: 8 }]',
      ],
      'host.gic.nrVpes',
      'one vPE per vCPU',
    ],
    [
      [host, fn, ...plan.slice(0, 2), "  - { step: irqfd, device: '0000:01:00.0', index: 2 }"],
      'vmm[1].index',
      '2 MSI vector(s)',
    ],
    [
      [host, fn, ...plan.slice(0, 2), "  - { step: irqfd, device: '0000:01:00.0', resample: true }"],
      'vmm[1].resample',
      'no resamplefd',
    ],
    [
      [host, fn, ...plan.slice(0, 2), "  - { step: irqfd, device: '0000:01:00.0', gsi: 5 }"],
      'vmm[1].gsi',
      "follow the VM's SPI routes",
    ],
    [[host, fn, ...plan, "  - { step: assign, device: '0000:01:00.0', index: 1 }"], 'vmm[2]', 'irqbypass'],
    [['host: { gic: { version: v3 } }', fn, ...plan], 'mode', 'GICv4.1 (host.gic.nrVpes)'],
    [
      [host, fn, ...plan, "workloads: [{ device: '0000:01:00.0', kind: periodic, period: 10us, via: eventfd }]"],
      'workloads[0].via',
      'MSI',
    ],
    [
      [
        host,
        fn,
        ...plan,
        "workloads: [{ device: d, kind: periodic, period: 10us, after: 'deactivated:0000:01:00.0/0#1' }]",
      ],
      'workloads[0].after',
      'no active state',
    ],
  ])('%j is reported at %s', (lines, path, msg) => {
    const e = problemsOf([...lines, ''].join('\n'));
    const p = e.problems.find((x) => x.path === path);
    expect(p?.message, e.message).toContain(msg);
  });
});

describe('helpers', () => {
  it('formatPath writes indexes in brackets', () => {
    expect(formatPath(['vms', 0, 'guest', 'eoiMode'])).toBe('vms[0].guest.eoiMode');
    expect(formatPath([])).toBe('');
  });

  it('closest finds typos, not unrelated names', () => {
    expect(closest('vgic_sync', ['vgic_sync_hwstate', 'vgic_sink'])).toBe('vgic_sink');
    expect(closest('zzz', ['gicd_write'])).toBeUndefined();
  });
});
