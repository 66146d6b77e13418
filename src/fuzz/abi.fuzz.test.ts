import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
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
    expect(() => teardown(r)).toThrow(/leak: vfio_device/);
  });

  it('a command prints its arguments and, once run, the fds they resolved to (the readable repro)', () => {
    const [cmds] = fc.sample(fuzzCommands(12), { seed: 11, numRuns: 1 });
    const real = new FuzzReal(new FuzzStats());
    fc.modelRun(() => ({ model: new AbiModel(), real }), cmds!);
    teardown(real);
    const text = String(cmds);
    expect(text).toMatch(/^\w+\(/);
    expect(text).toMatch(/ \[[^\]]*fd\d/);
  });
});
