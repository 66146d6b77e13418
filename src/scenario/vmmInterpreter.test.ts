import { describe, expect, it } from 'vitest';
import type { ErrnoError } from '../abi/errno.js';
import { createGuestKernel } from '../guest/guestKernel.js';
import { hostGicV2 } from '../host/irq/boot.js';
import { createHost } from '../machine.js';
import { loadScenario } from './loader.js';
import { type Scenario, stepsForMode } from './schema.js';
import { scenarioHostOptions, VmmInterpreter } from './vmmInterpreter.js';

const YAML = `
name: vmm
duration: 100us
devices:
  - { name: dev0, iommuGroup: 3, irqs: [{ intid: 70 }, { intid: 71, trigger: edge }] }
  - { name: dev1, iommuGroup: 3, irqs: [{ intid: 72 }] }
vms: [{ vcpus: 1 }]
vmm:
  - { step: open-device, device: dev0 }
  - { step: open-device, device: dev1 }
  - { step: irqfd, device: dev0, index: 0 }
  - { step: assign, device: dev0, index: 0 }
  - { step: close, what: device, device: dev0 }
  - { step: deassign, device: dev0, index: 0 }
`;

function vmm(s: Scenario = loadScenario(YAML, 'vmm.yaml')) {
  const host = createHost({ ...scenarioHostOptions(s), seed: s.seed });
  const p = host.process();
  const failed: string[] = [];
  const events: string[] = [];
  const interp = new VmmInterpreter(host, p, s, {
    failed: (what, e: ErrnoError) => failed.push(`${what}: ${e.errno}`),
    note: () => {},
    wired: (_v, device, index, w) => events.push(`wired ${device}/${index} gsi ${w.gsi}`),
    unowned: (device, vmGone) => events.push(`unowned ${device}${vmGone ? ' (VM gone)' : ''}`),
  });
  interp.createVms((spec) => createGuestKernel({ engine: host.engine, gic: hostGicV2(host.irq), vcpus: spec.vcpus }));
  return { s, host, p, interp, failed, events, steps: stepsForMode(s, 'forwarded') };
}

describe('VmmInterpreter', () => {
  it('runs the plan the QEMU way: one container and group for two devices of a group, irqfd, ASSIGN', () => {
    const { host, interp, failed, events, steps } = vmm();
    for (const st of steps.slice(0, 4)) interp.exec(st);
    expect(failed).toEqual([]);
    expect(events).toEqual(['wired dev0/0 gsi 38']);
    const v = interp.vms[0]!;
    expect(interp.fdRef(v, 'group:dev0')).toBe(interp.fdRef(v, 'group:dev1'));
    expect(interp.fdRef(v, 'device:dev0')).not.toBe(interp.fdRef(v, 'device:dev1'));
    expect(interp.fdRef(v, 'irqfd:dev0/0')).toBe(interp.wiring('dev0', 0)!.trigger);
    expect(host.devices[0]!.vdev.irqs[0]!.fwd).not.toBeNull();
  });

  it('a step on a closed device fails with EBADF and the VMM goes on; closing drops the lines first', () => {
    const { interp, failed, events, steps } = vmm();
    for (const st of steps) interp.exec(st);
    expect(failed).toEqual(['deassign dev0: EBADF']);
    expect(events).toContain('unowned dev0');
    expect(interp.fdRef(interp.vms[0]!, 'device:dev0')).toBe(-1);
  });

  it('plan lays a step out with the fds as they are now and records nothing: the device stays open', () => {
    const { interp, steps } = vmm();
    for (const st of steps.slice(0, 4)) interp.exec(st);
    const v = interp.vms[0]!;
    const dev = interp.fdRef(v, 'device:dev0');
    expect(interp.plan(steps[4]!)).toMatchObject([{ kind: 'close', fd: dev }]);
    expect(interp.fdRef(v, 'device:dev0')).toBe(dev);
    expect(interp.plan(steps[3]!)).toMatchObject([{ kind: 'ioctl', fd: v.kvmVfio }]);
  });

  it('destroy: DEASSIGN, irqfds off, every fd of the VM closed, the lines released with the VM', () => {
    const { p, host, interp, events, steps } = vmm();
    for (const st of steps.slice(0, 4)) interp.exec(st);
    interp.destroy(interp.vms[0]!, true);
    expect(events.slice(1).sort()).toEqual(['unowned dev0 (VM gone)', 'unowned dev1 (VM gone)']);
    expect(p.files.openFds()).toEqual([]);
    expect(host.devices[0]!.vdev.irqs[0]!.fwd).toBeNull();
    p.exit();
    host.settle();
    expect(host.checkInvariants({ teardown: true })).toEqual([]);
  });
});
