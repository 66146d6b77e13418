import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EFD_NONBLOCK } from '../abi/eventfd.js';
import { VFIO_IRQ_SET_ACTION_TRIGGER } from '../abi/vfio.js';
import { openVfioDevice, setIrqNone, trigger, unmask } from '../scenario/vmm.js';
import { AbiModel, fail, ok } from './abiModel.js';
import { abiProperty, expectStep, FuzzMismatch, FuzzReal, FuzzStats, fuzzCommands, teardown } from './commands.js';
import { FUZZ_DEVICES } from './fuzzMachine.js';

describe('model-based ABI fuzzing', () => {
  it('800 random sequences agree with the reference model, keep the invariants and tear down clean', () => {
    const stats = new FuzzStats();
    fc.assert(abiProperty(stats), { numRuns: 800, seed: 20260925 });
    expect(stats.sequences).toBeGreaterThanOrEqual(800);
    // the sequences reach deep states: IRQs forwarded, delivered to a running guest, VFIO triggers replaced
    expect(stats.forwardAssigned).toBeGreaterThan(20);
    expect(stats.delivered).toBeGreaterThan(50);
    expect(stats.calls.get('DEVICE_SET_IRQS')?.get('ok') ?? 0).toBeGreaterThan(100);
    expect(stats.calls.get('KVFIO_DEVICE_IRQ')?.get('EPERM') ?? 0).toBeGreaterThan(0);
    expect(stats.calls.get('KVM_IRQFD')?.get('EBUSY') ?? 0).toBeGreaterThan(0);
  });
});

describe('the fuzzer is not vacuous', () => {
  it('a prediction that differs from the kernel model fails the step with both outcomes named', () => {
    const r = new FuzzReal(new FuzzStats());
    const out = r.attempt(() => r.p.open('/dev/vfio/99'));
    expect(out).toEqual({ ok: false, errno: 'ENOENT' });
    expect(() => expectStep(r, 'open', 'open(/dev/vfio/99)', fail('EBUSY'), out)).toThrow(
      /predicts EBUSY, the kernel model gave ENOENT/,
    );
    expect(() => expectStep(r, 'open', 'open(/dev/vfio/99)', ok(), out)).toThrow(FuzzMismatch);
  });

  it('a wrong result value (the fd number) is a mismatch too', () => {
    const r = new FuzzReal(new FuzzStats());
    const m = new AbiModel();
    m.openKvm(); // the model thinks fd 0 is taken: it predicts fd 1 for the next open
    const exp = m.openContainer();
    expect(exp).toEqual({ ok: true, value: 1 });
    const out = r.attempt(() => r.p.open('/dev/vfio/vfio'));
    expect(() => expectStep(r, 'open', 'open(/dev/vfio/vfio)', exp, out)).toThrow(/predicts success 1.*gave success 0/);
  });

  it('a model that forgets the container makes GET_DEVICE_FD disagree (EINVAL predicted, the kernel opens it)', () => {
    const r = new FuzzReal(new FuzzStats());
    const m = new AbiModel();
    const { p } = r;
    const c = p.open('/dev/vfio/vfio');
    const g = p.open(`/dev/vfio/${FUZZ_DEVICES[0]!.iommuGroup}`);
    m.openContainer();
    m.openGroup(FUZZ_DEVICES[0]!.iommuGroup);
    const cfd = p.mem.alloc(4);
    p.mem.writeS32(cfd, c);
    p.ioctl(g, 0x3b68, cfd); // VFIO_GROUP_SET_CONTAINER — the model is not told
    p.ioctl(c, 0x3b66, 1); // VFIO_SET_IOMMU
    const exp = m.getDeviceFd(g, FUZZ_DEVICES[0]!.name, false);
    expect(exp).toEqual({ ok: false, errno: 'EINVAL' });
    const out = r.attempt(() => p.ioctl(g, 0x3b6a, p.mem.writeString(FUZZ_DEVICES[0]!.name)));
    expect(() => expectStep(r, 'GROUP_GET_DEVICE_FD', 'GET_DEVICE_FD', exp, out)).toThrow(FuzzMismatch);
  });

  it('teardown reports a leaked reference', () => {
    const r = new FuzzReal(new FuzzStats());
    const dev = r.host.devices[0]!.vfio;
    dev.get(); // a reference nobody drops
    expect(() => teardown(r, new AbiModel())).toThrow(/leak: vfio_device/);
  });

  /** The real machine and the model, both through trigger → a raise masks it → release → (UNMASK) → exit. */
  function unmaskAfterRelease(modelSeesUnmask: boolean) {
    const r = new FuzzReal(new FuzzStats());
    const m = new AbiModel();
    const dev = FUZZ_DEVICES[0]!;
    const h = openVfioDevice(r.p, dev.iommuGroup, dev.name);
    m.openContainer();
    m.openGroup(dev.iommuGroup);
    m.setContainer(h.group, h.container, false);
    m.setIommu(h.container, 1);
    m.getDeviceFd(h.group, dev.name, false);
    const efd = r.p.eventfd(0, EFD_NONBLOCK);
    m.eventfd(0, EFD_NONBLOCK);
    const hdr = (flags: number, count: number) => ({ argsz: 24, flags, index: 0, start: 0, count });
    trigger(r.p, h.device, 0, efd);
    m.setIrqs(h.device, hdr(0x24, 1), efd, false);
    m.raise(0, 0);
    r.raise(0, 0);
    setIrqNone(r.p, h.device, 0, VFIO_IRQ_SET_ACTION_TRIGGER, 0);
    m.setIrqs(h.device, hdr(0x21, 0), -1, false);
    unmask(r.p, h.device, 0);
    if (modelSeesUnmask) m.setIrqs(h.device, hdr(0x11, 1), -1, false);
    return { r, m, intid: dev.irqs[0]!.intid };
  }

  it('the model predicts the line 6.1 leaves enabled (vfio_platform_unmask → enable_irq → irq_startup) exactly', () => {
    const { r, m, intid } = unmaskAfterRelease(true);
    expect(m.enabledAfterExit(0, 0)).toEqual([true]);
    teardown(r, m);
    expect(r.host.irq.gic.distributor.isEnabled(intid)).toBe(true);
    expect(r.stats.strayEnabled).toEqual({ exact: 1, either: 0 });
  });

  it('a model that misses the unmask is caught at teardown: the GIC has the line enabled, the model says disabled', () => {
    const { r, m } = unmaskAfterRelease(false);
    expect(m.enabledAfterExit(0, 0)).toEqual([false]);
    expect(() => teardown(r, m)).toThrow(/INTID 80 is enabled at the GIC, the model predicts disabled/);
  });

  it('a command prints its arguments and, once run, the fds they resolved to (the readable repro)', () => {
    const [cmds] = fc.sample(fuzzCommands(12), { seed: 11, numRuns: 1 });
    const real = new FuzzReal(new FuzzStats());
    const m = new AbiModel();
    fc.modelRun(() => ({ model: m, real }), cmds!);
    teardown(real, m);
    const text = String(cmds);
    expect(text).toMatch(/^\w+\(/);
    expect(text).toMatch(/ \[[^\]]*fd\d/);
  });
});
