import { describe, expect, it } from 'vitest';
import {
  KVM_CHECK_EXTENSION,
  KVM_IRQ_ROUTING_IRQCHIP,
  KVM_IRQ_ROUTING_MSI,
  KVM_MSI_VALID_DEVID,
} from '../abi/index.js';
import { kvmIrqMapGsi } from '../kvm/irqRouting.js';
import { loadScenario } from './loader.js';
import { IOCTL_EXPECTATION, runScenario } from './runner.js';

/** A small passthrough machine; `vmm` is the step list (YAML, indented as list items under `vmm:`). */
function scenario(vmm: string): string {
  return `
name: raw-ioctl
seed: 3
duration: 200us
host: { cpus: 2, costProfile: xgene }
devices:
  - { name: dev0, iommuGroup: 4, irqs: [{ intid: 70 }] }
vms:
  - { vcpus: 1, pinning: [1], guest: { workload: busy } }
workloads:
  - { device: dev0, index: 0, kind: periodic, period: 20us, start: 5us }
vmm:
${vmm}`;
}

const OPEN_AND_WIRE = `
  - { step: open-device, device: dev0 }
  - { step: irqfd, device: dev0 }`;

function run(vmm: string, mode: 'normal' | 'forwarded' = 'normal') {
  const r = runScenario(loadScenario(scenario(vmm), 'raw.yaml'), { modes: [mode] });
  return { run: r.runs[0]!, notes: r.notes ?? [] };
}

describe('raw ioctl steps', () => {
  it('KVM_CHECK_EXTENSION(KVM_CAP_IRQFD) on kvm and a group-9 KVM_SET_DEVICE_ATTR on kvm-vfio (ENXIO) meet their expect', () => {
    const { run: r, notes } = run(`${OPEN_AND_WIRE}
  - { step: ioctl, fd: kvm, request: KVM_CHECK_EXTENSION, arg: KVM_CAP_IRQFD }
  - { step: ioctl, fd: vm, request: ${KVM_CHECK_EXTENSION}, arg: KVM_CAP_IRQFD, expect: ok }
  - step: ioctl
    fd: kvm-vfio
    request: KVM_SET_DEVICE_ATTR
    struct: { name: kvm_device_attr, fields: { group: 9 } }
    expect: ENXIO
`);
    expect(r.violations).toEqual([]);
    expect(notes.some((n) => /raw ioctl|skipped/.test(n))).toBe(false);
    expect(r.metrics.irqs.lost).toBe(0);
  });

  it('an outcome other than the expected one is an ioctl-expect violation naming both', () => {
    const { run: r } = run(`${OPEN_AND_WIRE}
  - { step: ioctl, fd: kvm, request: KVM_CHECK_EXTENSION, arg: KVM_CAP_IRQFD, expect: EINVAL }
  - step: ioctl
    fd: kvm-vfio
    request: KVM_SET_DEVICE_ATTR
    struct: { name: kvm_device_attr, fields: { group: 9 } }
`);
    expect(IOCTL_EXPECTATION).toBe('ioctl-expect');
    expect(r.violations.map((v) => v.invariant)).toEqual([IOCTL_EXPECTATION, IOCTL_EXPECTATION]);
    expect(r.violations[0]!.message).toMatch(/^ioctl\(kvm, KVM_CHECK_EXTENSION\): expected EINVAL, got success/);
    expect(r.violations[1]!.message).toMatch(/^ioctl\(kvm-vfio, KVM_SET_DEVICE_ATTR\): expected success, got ENXIO/);
  });

  it('ASSIGN by hand (nested struct, device fd reference in a member) forwards the IRQ; a second one is refused', () => {
    const assign = `
  - step: ioctl
    fd: kvm-vfio
    request: KVM_SET_DEVICE_ATTR
    struct:
      name: kvm_device_attr
      fields:
        group: KVM_DEV_VFIO_DEVICE
        attr: KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ
        addr: { struct: { name: kvm_arch_forwarded_irq, fields: { fd: "device:dev0", irq_index: 0, guest_irq: 38 } } }`;
    const { run: r } = run(`${OPEN_AND_WIRE}${assign}`, 'forwarded');
    expect(r.violations).toEqual([]);
    expect(r.metrics.irqs.delivered).toBeGreaterThan(0);
    expect(r.metrics.irqs.lost).toBe(0);
    // forwarded: the guest EOI deactivates through the HW list register, no resample / unmask round trip
    expect(r.metrics.counters.unmasks).toBe(0);
    // the same ASSIGN again must fail; expecting success reports the errno the kernel model chose
    const twice = run(`${OPEN_AND_WIRE}${assign}${assign}`, 'forwarded').run;
    expect(twice.violations).toHaveLength(1);
    expect(twice.violations[0]!.invariant).toBe(IOCTL_EXPECTATION);
    expect(twice.violations[0]!.message).toMatch(/expected success, got E[A-Z]+/);
  });

  it('an {s32} pointer carries a group fd: KVM_DEV_VFIO_GROUP_DEL then _ADD of the open group succeed', () => {
    const { run: r } = run(`${OPEN_AND_WIRE}
  - step: ioctl
    fd: kvm-vfio
    request: KVM_SET_DEVICE_ATTR
    struct: { name: kvm_device_attr, fields: { group: KVM_DEV_VFIO_GROUP, attr: KVM_DEV_VFIO_GROUP_DEL, addr: { s32: "group:dev0" } } }
  - step: ioctl
    fd: kvm-vfio
    request: KVM_SET_DEVICE_ATTR
    struct: { name: kvm_device_attr, fields: { group: KVM_DEV_VFIO_GROUP, attr: KVM_DEV_VFIO_GROUP_ADD, addr: { s32: "group:dev0" } } }
`);
    expect(r.violations).toEqual([]);
  });

  it('a VFIO struct from the abi codec (vfio_irq_info, argsz given) on device:<name>; argsz left 0 is EINVAL', () => {
    const { run: r } = run(`${OPEN_AND_WIRE}
  - step: ioctl
    fd: device:dev0
    request: VFIO_DEVICE_GET_IRQ_INFO
    struct: { name: vfio_irq_info, fields: { argsz: 16, index: 0 } }
  - step: ioctl
    fd: device:dev0
    request: VFIO_DEVICE_GET_IRQ_INFO
    struct: { name: vfio_irq_info, fields: { index: 0 } }
    expect: EINVAL
`);
    expect(r.violations).toEqual([]);
  });

  it('`data`: the __s32 elements after the struct — SET_IRQS re-arms the trigger with the irqfd’s eventfd; argsz short of them is EINVAL', () => {
    const { run: r } = run(`${OPEN_AND_WIRE}
  - step: ioctl
    at: 50us
    fd: device:dev0
    request: VFIO_DEVICE_SET_IRQS
    struct: { name: vfio_irq_set, fields: { argsz: 24, flags: 36, index: 0, start: 0, count: 1 }, data: ["irqfd:dev0/0"] }
  - step: ioctl
    fd: device:dev0
    request: VFIO_DEVICE_SET_IRQS
    struct: { name: vfio_irq_set, fields: { argsz: 20, flags: 36, index: 0, start: 0, count: 1 }, data: ["irqfd:dev0/0"] }
    expect: EINVAL
`);
    expect(r.violations).toEqual([]);
    expect(r.metrics.irqs.lost).toBe(0);
    expect(() =>
      loadScenario(
        scenario(`${OPEN_AND_WIRE}
  - step: ioctl
    fd: device:dev0
    request: VFIO_DEVICE_SET_IRQS
    struct: { name: vfio_irq_set, fields: { argsz: 24, flags: 36, count: 1 }, data: ["nosuch:dev0"] }
`),
        'raw.yaml',
      ),
    ).toThrow(/struct\.data\[0\]/);
  });

  it('`entries`: KVM_SET_GSI_ROUTING with kvm_irq_routing_entry structs in place — an SPI and an MSI to the vITS (kvm_set_irq_routing)', () => {
    const routing = (nr: number) => `
  - step: ioctl
    at: 30us
    fd: vm
    request: KVM_SET_GSI_ROUTING
    struct:
      name: kvm_irq_routing
      fields: { nr: ${nr} }
      entries:
        - { name: kvm_irq_routing_entry, fields: { gsi: 38, type: KVM_IRQ_ROUTING_IRQCHIP, u0: 0, u1: 38 } }
        - name: kvm_irq_routing_entry
          fields: { gsi: 64, type: KVM_IRQ_ROUTING_MSI, flags: KVM_MSI_VALID_DEVID, u0: 0x08090040, u2: 3, u3: 8 }
    expect: ${nr === 2 ? 'ok' : 'EFAULT'}`;
    const seen: unknown[] = [];
    const r = runScenario(
      loadScenario(scenario(`${OPEN_AND_WIRE}${routing(2)}`), 'raw.yaml'),
      { modes: ['normal'] },
      {
        afterStep: (st, host) => {
          if (st.step !== 'ioctl') return;
          const vm = host.kvm.vms[0]!;
          seen.push(kvmIrqMapGsi(vm, 38), kvmIrqMapGsi(vm, 64), kvmIrqMapGsi(vm, 39));
        },
      },
    ).runs[0]!;
    expect(r.violations).toEqual([]);
    expect(seen).toEqual([
      [{ gsi: 38, type: KVM_IRQ_ROUTING_IRQCHIP, irqchip: 0, pin: 38, msi: null }],
      [
        {
          gsi: 64,
          type: KVM_IRQ_ROUTING_MSI,
          irqchip: 0,
          pin: 0,
          msi: { addressLo: 0x08090040, addressHi: 0, data: 3, flags: KVM_MSI_VALID_DEVID, devid: 8 },
        },
      ],
      [], // the new table replaced the default one: GSI 39 is no longer routed
    ]);
    // the irqfd of GSI 38 still injects SPI 70 (pin 38) through the new table
    expect(r.metrics.irqs.lost).toBe(0);
    // nr 3: the kernel copies three entries (memdup_user of nr × 48 bytes), past the two the step placed: EFAULT
    const bad = run(`${OPEN_AND_WIRE}${routing(3)}`).run;
    expect(bad.violations).toEqual([]);
  });

  it('`as` names the fd a call created: a second VM, its kvm-vfio device (kvm_create_device.fd) and a vCPU', () => {
    const { run: r, notes } = run(`${OPEN_AND_WIRE}
  - { step: ioctl, fd: kvm, request: KVM_CREATE_VM, arg: 0, as: vm-b }
  - step: ioctl
    fd: vm-b
    request: KVM_CREATE_DEVICE
    struct: { name: kvm_create_device, fields: { type: KVM_DEV_TYPE_VFIO } }
    as: vfio-b
  - step: ioctl
    fd: vfio-b
    request: KVM_SET_DEVICE_ATTR
    struct: { name: kvm_device_attr, fields: { group: KVM_DEV_VFIO_GROUP, attr: KVM_DEV_VFIO_GROUP_ADD, addr: { s32: "group:dev0" } } }
  - { step: ioctl, fd: vm-b, request: KVM_CREATE_VCPU, arg: 0, as: vcpu-b }
  - { step: ioctl, fd: vcpu-b, request: KVM_CHECK_EXTENSION, arg: KVM_CAP_IRQFD, expect: EINVAL }
`);
    expect(r.violations).toEqual([]);
    expect(notes.filter((n) => /names no open fd/.test(n))).toEqual([]);
  });

  it('a reference to an fd no longer open passes -1 (EBADF), with a note; vcpu:0 is the vCPU fd (arm64: EINVAL)', () => {
    const { run: r, notes } = run(`${OPEN_AND_WIRE}
  - { step: close, what: device, device: dev0, at: 100us }
  - { step: ioctl, fd: device:dev0, request: VFIO_DEVICE_RESET, expect: EBADF, at: 110us }
  - { step: ioctl, fd: "vcpu:0", request: KVM_CHECK_EXTENSION, arg: KVM_CAP_IRQFD, expect: EINVAL, at: 110us }
`);
    expect(r.violations).toEqual([]);
    expect(notes).toContain("ioctl step: 'device:dev0' names no open fd (now): passing -1");
  });
});
