import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEV, ethernetDevice } from '../../../test/fixtures/vfioDevice.js';
import { ErrnoError, errnoOf } from '../../abi/errno.js';
import { EFD_NONBLOCK } from '../../abi/eventfd.js';
import {
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  vfioIrqSet,
  vfioIrqSetWithData,
} from '../../abi/vfio.js';
import { PDEV_IRQ_ACK } from '../../hw/platformDevice.js';
import { createHost } from '../../machine.js';
import {
  mask,
  openVfioDevice,
  place,
  readEventfd,
  setIrqNone,
  trigger,
  unmask,
  unmaskEventfd,
  writeEventfd,
} from '../../scenario/vmm.js';

function setup() {
  const host = createHost({
    cpus: 2,
    devices: [ethernetDevice()],
  });
  const p = host.process();
  const h = openVfioDevice(p, 7, DEV);
  const hw = host.device(DEV);
  const dev = host.devices[0]!;
  return { host, p, h, hw, dev };
}

/** Count an eventfd without blocking (0 when empty). */
function drain(p: ReturnType<typeof setup>['p'], fd: number): bigint {
  try {
    return readEventfd(p, fd);
  } catch (e) {
    if (e instanceof ErrnoError && e.errno === 'EAGAIN') return 0n;
    throw e;
  }
}

describe('vfio-platform level IRQ: automasked handler (vfio_automasked_irq_handler)', () => {
  it('fires once, stays disabled until UNMASK, and fires again while the device still asserts', () => {
    const { host, p, h, hw, dev } = setup();
    const efd = p.eventfd(0, EFD_NONBLOCK);
    trigger(p, h.device, 0, efd);
    const desc = dev.descs[0]!;
    expect(desc.action!.name).toBe(`vfio-irq[${desc.irq}](${DEV})`);
    hw.assert(0);
    host.settle();
    expect(drain(p, efd)).toBe(1n);
    expect(dev.vdev.irqs[0]!.masked).toBe(true);
    expect(desc.depth).toBe(1);
    host.run(1_000_000);
    expect(drain(p, efd)).toBe(0n); // masked: no second signal however long the line stays high
    unmask(p, h.device, 0);
    host.settle();
    expect(drain(p, efd)).toBe(1n); // still asserted → fires again on unmask
    hw.writeReg(PDEV_IRQ_ACK, 1); // the (guest) driver silences the device
    unmask(p, h.device, 0);
    host.settle();
    expect(drain(p, efd)).toBe(0n);
    expect(dev.vdev.irqs[0]!.masked).toBe(false);
    expect(desc.depth).toBe(0);
    expect(host.checkInvariants()).toEqual([]);
  });

  it('an unmask eventfd (virqfd) re-enables the line when signalled, as a KVM resamplefd does', () => {
    const { host, p, h, hw, dev } = setup();
    const efd = p.eventfd(0, EFD_NONBLOCK);
    const resample = p.eventfd(0, EFD_NONBLOCK);
    trigger(p, h.device, 0, efd);
    unmaskEventfd(p, h.device, 0, resample);
    hw.assert(0);
    host.settle();
    expect(drain(p, efd)).toBe(1n);
    hw.writeReg(PDEV_IRQ_ACK, 1);
    hw.assert(0); // a new condition, raised while masked
    writeEventfd(p, resample, 1n);
    host.settle();
    expect(drain(p, efd)).toBe(1n);
    expect(dev.vdev.irqs[0]!.masked).toBe(true); // automasked again by the second delivery
    // virqfd consumed the resamplefd count in its wakeup (eventfd_ctx_do_read)
    expect(drain(p, resample)).toBe(0n);
  });

  it('mask/unmask are idempotent: never an unbalanced enable_irq', () => {
    const { host, p, h, dev } = setup();
    trigger(p, h.device, 0, p.eventfd(0, 0));
    unmask(p, h.device, 0);
    unmask(p, h.device, 0);
    mask(p, h.device, 0);
    mask(p, h.device, 0);
    expect(dev.descs[0]!.depth).toBe(1);
    unmask(p, h.device, 0);
    expect(dev.descs[0]!.depth).toBe(0);
    expect(host.checkInvariants()).toEqual([]);
  });

  it('a masked index stays disabled when a new trigger is installed (vfio_set_trigger)', () => {
    const { host, p, h, hw, dev } = setup();
    const efd = p.eventfd(0, EFD_NONBLOCK);
    mask(p, h.device, 0);
    trigger(p, h.device, 0, efd);
    hw.assert(0);
    host.settle();
    expect(drain(p, efd)).toBe(0n);
    expect(dev.descs[0]!.depth).toBe(1);
    unmask(p, h.device, 0);
    host.settle();
    expect(drain(p, efd)).toBe(1n);
  });

  it('loopback: TRIGGER with DATA_NONE runs the handler now; DATA_BOOL 0 does nothing', () => {
    const { p, h, dev } = setup();
    const efd = p.eventfd(0, EFD_NONBLOCK);
    trigger(p, h.device, 0, efd);
    const boolSet = (v: number) =>
      p.ioctl(
        h.device,
        VFIO_DEVICE_SET_IRQS,
        place(
          p,
          vfioIrqSetWithData(
            { flags: VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, index: 0, start: 0, count: 1 },
            new Uint8Array([v]),
          ),
        ),
      );
    boolSet(0);
    expect(drain(p, efd)).toBe(0n);
    setIrqNone(p, h.device, 0, VFIO_IRQ_SET_ACTION_TRIGGER);
    expect(drain(p, efd)).toBe(1n);
    expect(dev.vdev.irqs[0]!.masked).toBe(true);
  });
});

describe('vfio-platform edge IRQ (vfio_irq_handler)', () => {
  it('signals once per pulse and is not maskable', () => {
    const { host, p, h, hw } = setup();
    const efd = p.eventfd(0, EFD_NONBLOCK);
    trigger(p, h.device, 1, efd);
    for (let i = 0; i < 5; i++) {
      hw.pulse(1);
      host.run(100_000);
    }
    host.settle();
    expect(drain(p, efd)).toBe(5n);
    expect(errnoOf(() => mask(p, h.device, 1))).toBe('EINVAL');
  });
});

describe('VFIO_DEVICE_SET_IRQS validation (vfio_set_irqs_validate_and_prepare, vfio_platform_set_irqs_ioctl)', () => {
  const T = VFIO_IRQ_SET_ACTION_TRIGGER;
  const N = VFIO_IRQ_SET_DATA_NONE;
  const E = VFIO_IRQ_SET_DATA_EVENTFD;
  const B = VFIO_IRQ_SET_DATA_BOOL;
  const cases: [string, { argsz?: number; flags: number; index: number; start: number; count: number }, string][] = [
    ['argsz below minsz (validate_and_prepare)', { argsz: 16, flags: N | T, index: 0, start: 0, count: 1 }, 'EINVAL'],
    ['index >= num_irqs (validate_and_prepare)', { flags: N | T, index: 2, start: 0, count: 1 }, 'EINVAL'],
    [
      'count >= U32_MAX - start (validate_and_prepare)',
      { flags: N | T, index: 0, start: 1, count: 0xfffffffe },
      'EINVAL',
    ],
    ['unknown flag bit (validate_and_prepare)', { flags: N | T | 0x40, index: 0, start: 0, count: 1 }, 'EINVAL'],
    ['start + count > num_irqs (validate_and_prepare)', { flags: N | T, index: 0, start: 1, count: 2 }, 'EINVAL'],
    ['no data type (validate_and_prepare)', { flags: T, index: 0, start: 0, count: 1 }, 'EINVAL'],
    ['two data types (validate_and_prepare)', { flags: N | B | T, index: 0, start: 0, count: 1 }, 'EINVAL'],
    [
      'argsz too small for eventfd data (validate_and_prepare)',
      { argsz: 20, flags: E | T, index: 0, start: 0, count: 1 },
      'EINVAL',
    ],
    ['no action (set_irqs_ioctl)', { flags: N, index: 0, start: 0, count: 1 }, 'ENOTTY'],
    [
      'two actions (set_irqs_ioctl)',
      { flags: N | T | VFIO_IRQ_SET_ACTION_MASK, index: 0, start: 0, count: 1 },
      'ENOTTY',
    ],
    [
      'MASK of an edge index (set_irq_mask)',
      { flags: N | VFIO_IRQ_SET_ACTION_MASK, index: 1, start: 0, count: 1 },
      'EINVAL',
    ],
    [
      'UNMASK with count 2 (set_irq_unmask)',
      { flags: N | VFIO_IRQ_SET_ACTION_UNMASK, index: 0, start: 0, count: 2 },
      'EINVAL',
    ],
    ['TRIGGER with start 1 (set_irq_trigger)', { flags: N | T, index: 1, start: 1, count: 1 }, 'EINVAL'],
    ['TRIGGER count 0 DATA_NONE disables (set_irq_trigger)', { flags: N | T, index: 0, start: 0, count: 0 }, 'ok'],
  ];
  for (const [name, hdr, expected] of cases) {
    it(`${name} → ${expected}`, () => {
      const { p, h } = setup();
      const size = hdr.flags & E ? 4 : hdr.flags & B ? 1 : 0;
      const bytes = new Uint8Array(vfioIrqSet.minsz + size * Math.min(hdr.count, 2));
      bytes.set(vfioIrqSet.encode({ argsz: hdr.argsz ?? bytes.length, ...hdr }));
      expect(errnoOf(() => p.ioctl(h.device, VFIO_DEVICE_SET_IRQS, place(p, bytes)))).toBe(expected);
    });
  }

  it('EFAULT when the data promised by argsz is not mapped; EBADF / EINVAL for bad eventfds (eventfd_ctx_fdget)', () => {
    const { p, h } = setup();
    const hdrOnly = place(
      p,
      vfioIrqSet.encode({ argsz: 24, flags: VFIO_IRQ_SET_DATA_EVENTFD | T, index: 0, start: 0, count: 1 }),
    );
    expect(errnoOf(() => p.ioctl(h.device, VFIO_DEVICE_SET_IRQS, hdrOnly))).toBe('EFAULT');
    expect(errnoOf(() => trigger(p, h.device, 0, 99))).toBe('EBADF');
    expect(errnoOf(() => trigger(p, h.device, 0, h.group))).toBe('EINVAL');
    expect(errnoOf(() => unmaskEventfd(p, h.device, 0, 99))).toBe('EBADF');
    const r = p.eventfd(0, 0);
    unmaskEventfd(p, h.device, 0, r);
    expect(errnoOf(() => unmaskEventfd(p, h.device, 0, r))).toBe('EBUSY');
    expect(unmaskEventfd(p, h.device, 0, -1)).toBe(0);
  });
});

describe('vfio-platform teardown', () => {
  function armed() {
    const s = setup();
    const { p, h } = s;
    trigger(s.p, h.device, 0, p.eventfd(0, 0));
    trigger(s.p, h.device, 1, p.eventfd(0, 0));
    unmaskEventfd(p, h.device, 0, p.eventfd(0, 0));
    s.hw.assert(0); // leaves index 0 masked by the handler
    s.host.settle();
    return s;
  }

  const orders: [string, (s: ReturnType<typeof armed>) => number[]][] = [
    ['device, group, container, eventfds', (s) => [s.h.device, s.h.group, s.h.container, 3, 4, 5]],
    ['eventfds first, then container, group, device', (s) => [3, 4, 5, s.h.container, s.h.group, s.h.device]],
    ['group, device, eventfds, container', (s) => [s.h.group, s.h.device, 5, 3, 4, s.h.container]],
  ];
  for (const [name, order] of orders) {
    it(`closing fds (${name}) leaves no reference, requested IRQ or enabled line behind`, () => {
      const s = armed();
      for (const fd of order(s)) s.p.close(fd);
      s.host.settle();
      expect(s.host.checkInvariants({ teardown: true })).toEqual([]);
      expect(s.dev.descs.map((d) => d.depth)).toEqual([1, 1]);
    });
  }

  it('exit() tears everything down too', () => {
    const s = armed();
    s.p.exit();
    s.host.settle();
    expect(s.host.checkInvariants({ teardown: true })).toEqual([]);
  });
});

describe('6.1: UNMASK of an index whose trigger was freed (vfio_platform_unmask → enable_irq on a shut-down line)', () => {
  /** trigger → the handler masks it → trigger released (free_irq: irq_shutdown, depth 1) → UNMASK → close. */
  function unmaskAfterRelease() {
    const s = setup();
    const { p, h, hw, host } = s;
    trigger(p, h.device, 0, p.eventfd(0, EFD_NONBLOCK));
    hw.assert(0); // vfio_automasked_irq_handler: disable_irq_nosync, masked = true
    host.settle();
    hw.deassert(0);
    expect(setIrqNone(p, h.device, 0, VFIO_IRQ_SET_ACTION_TRIGGER, 0)).toBe(0); // vfio_set_trigger(fd -1): free_irq
    const desc = s.dev.descs[0]!;
    expect([desc.action, desc.depth, desc.started]).toEqual([null, 1, false]);
    unmask(p, h.device, 0);
    p.exit();
    host.settle();
    return { ...s, desc, intid: desc.hwirq };
  }

  it('__enable_irq at depth 1 runs irq_startup: the line ends started, depth 0, enabled at the GIC with no action', () => {
    const { host, desc, intid } = unmaskAfterRelease();
    expect([desc.action, desc.depth, desc.started, desc.disabled, desc.masked]).toEqual([null, 0, true, false, false]);
    expect(host.irq.gic.distributor.isEnabled(intid)).toBe(true);
    expect(desc.warnings).toEqual([]);
    // genirq records the line as started and unmasked: the state the kernel leaves, not a leak
    expect(host.checkInvariants({ teardown: true })).toEqual([]);
  });

  it('an enable genirq does not account for is still a leak (GICD_ISENABLER set behind a shut-down descriptor)', () => {
    const s = setup();
    s.p.exit();
    s.host.settle();
    const desc = s.dev.descs[0]!;
    expect(s.host.checkInvariants({ teardown: true })).toEqual([]);
    s.host.irq.gic.distributor.enable(desc.hwirq);
    expect(s.host.checkInvariants({ teardown: true })).toEqual([
      `${DEV} index 0 (${desc}): INTID ${desc.hwirq} still enabled in the GIC`,
    ]);
  });

  it('the stray line fires once more into no action: handle_fasteoi_irq masks it at the GIC', () => {
    const { host, hw, desc, intid } = unmaskAfterRelease();
    hw.assert(0);
    host.run(100_000);
    hw.deassert(0);
    host.settle();
    expect(host.irq.gic.distributor.isEnabled(intid)).toBe(false);
    expect([desc.started, desc.masked]).toEqual([true, true]);
    expect(host.checkInvariants({ teardown: true })).toEqual([]);
  });
});

describe('property: random VFIO syscall sequences only fail with ErrnoError and keep the invariants', () => {
  it('holds over 150 random sequences', () => {
    const op = fc.oneof(
      fc.record({
        k: fc.constant('setirqs' as const),
        flags: fc.integer({ min: 0, max: 0x7f }),
        index: fc.integer({ min: 0, max: 3 }),
        start: fc.integer({ min: 0, max: 2 }),
        count: fc.integer({ min: 0, max: 3 }),
        fd: fc.integer({ min: -1, max: 8 }),
        argszDelta: fc.integer({ min: -8, max: 8 }),
      }),
      fc.record({ k: fc.constant('assert' as const), line: fc.integer({ min: 0, max: 1 }) }),
      fc.record({ k: fc.constant('ack' as const) }),
      fc.record({ k: fc.constant('run' as const), cycles: fc.integer({ min: 0, max: 200_000 }) }),
      fc.record({ k: fc.constant('close' as const), fd: fc.integer({ min: 0, max: 8 }) }),
      fc.record({ k: fc.constant('eventfd' as const) }),
      fc.record({ k: fc.constant('signal' as const), fd: fc.integer({ min: 0, max: 8 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 25 }), (ops) => {
        const { host, p, h, hw } = setup();
        p.eventfd(0, EFD_NONBLOCK);
        p.eventfd(0, EFD_NONBLOCK);
        for (const o of ops) {
          try {
            switch (o.k) {
              case 'setirqs': {
                const size = o.flags & VFIO_IRQ_SET_DATA_EVENTFD ? 4 : o.flags & VFIO_IRQ_SET_DATA_BOOL ? 1 : 0;
                const data = new Uint8Array(size * o.count);
                for (let i = 0; i + 4 <= data.length; i += 4) new DataView(data.buffer).setInt32(i, o.fd, true);
                if (size === 1) data.fill(o.fd & 1);
                const bytes = new Uint8Array(vfioIrqSet.minsz + data.length);
                bytes.set(
                  vfioIrqSet.encode({
                    argsz: Math.max(0, bytes.length + o.argszDelta),
                    flags: o.flags,
                    index: o.index,
                    start: o.start,
                    count: o.count,
                  }),
                );
                bytes.set(data, vfioIrqSet.minsz);
                p.ioctl(h.device, VFIO_DEVICE_SET_IRQS, place(p, bytes));
                break;
              }
              case 'assert':
                hw.assert(o.line);
                break;
              case 'ack':
                hw.writeReg(PDEV_IRQ_ACK, 3);
                break;
              case 'run':
                host.run(o.cycles);
                break;
              case 'close':
                p.close(o.fd);
                break;
              case 'eventfd':
                p.eventfd(0, EFD_NONBLOCK);
                break;
              case 'signal':
                writeEventfd(p, o.fd, 1n);
                break;
            }
          } catch (e) {
            if (!(e instanceof ErrnoError)) throw e;
          }
          host.settle();
          expect(host.checkInvariants()).toEqual([]);
        }
        p.exit();
        host.settle();
        expect(host.checkInvariants({ teardown: true })).toEqual([]);
      }),
      { numRuns: 150, seed: 20261124 },
    );
  });
});
