import { describe, expect, it } from 'vitest';
import {
  attr,
  buildVm,
  createDevice,
  createVm,
  DIST_BASE,
  errnoOf,
  getAttr,
  hasAttr,
  irqLine,
  setAttr,
  setup,
  spiLine,
  u32Buf,
  u64Buf,
  vcpuInit,
} from '../../test/fixtures/kvmSetup.js';
import { errno } from '../abi/errno.js';
import {
  KVM_ARM_IRQ_TYPE_CPU,
  KVM_ARM_IRQ_TYPE_PPI,
  KVM_ARM_PREFERRED_TARGET,
  KVM_ARM_TARGET_GENERIC_V8,
  KVM_CAP_ARM_PSCI_0_2,
  KVM_CAP_ARM_USER_IRQ,
  KVM_CAP_CHECK_EXTENSION_VM,
  KVM_CAP_DESTROY_MEMORY_REGION_WORKS,
  KVM_CAP_DEVICE_CTRL,
  KVM_CAP_IMMEDIATE_EXIT,
  KVM_CAP_INTERNAL_ERROR_DATA,
  KVM_CAP_IOEVENTFD,
  KVM_CAP_IRQFD,
  KVM_CAP_IRQFD_RESAMPLE,
  KVM_CAP_JOIN_MEMORY_REGIONS_WORKS,
  KVM_CAP_MAX_VCPUS,
  KVM_CAP_MP_STATE,
  KVM_CAP_NR_VCPUS,
  KVM_CAP_ONE_REG,
  KVM_CAP_USER_MEMORY,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_DEVICE,
  KVM_CREATE_DEVICE_TEST,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CPU_REGS,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
  KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_DEV_TYPE_FLIC,
  KVM_DEV_TYPE_XICS,
  KVM_GET_API_VERSION,
  KVM_GET_VCPU_MMAP_SIZE,
  KVM_RUN,
  KVM_SET_DEVICE_ATTR,
  KVM_VGIC_V2_ADDR_TYPE_CPU,
  KVM_VGIC_V2_ADDR_TYPE_DIST,
  kvmArmIrqLineEncode,
  kvmDevArmVgicAttr,
  kvmVcpuInit,
} from '../abi/kvm.js';
import { bootHostIrq } from '../host/irq/boot.js';
import { Kernel } from '../host/kernel.js';
import { op } from '../sim/task.js';
import type { KvmDevice, KvmDeviceOps } from './device.js';
import { Kvm } from './kvm.js';
import { kvmRunAddress } from './vcpu.js';

describe('/dev/kvm (virt/kvm/kvm_main.c kvm_dev_ioctl)', () => {
  it('KVM_GET_API_VERSION is 12; an argument is EINVAL', () => {
    const s = setup();
    expect(s.p.ioctl(s.kvmFd, KVM_GET_API_VERSION, 0)).toBe(12);
    expect(errnoOf(() => s.p.ioctl(s.kvmFd, KVM_GET_API_VERSION, 1))).toBe('EINVAL');
  });

  it('KVM_CHECK_EXTENSION answers as arm64 does, on /dev/kvm and on a VM fd', () => {
    const s = setup();
    const vm = createVm(s);
    for (const fd of [s.kvmFd, vm]) {
      expect(s.p.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD)).toBe(1);
      expect(s.p.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD_RESAMPLE)).toBe(1);
      expect(s.p.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_DEVICE_CTRL)).toBe(1);
      expect(s.p.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_PSCI_0_2)).toBe(0); // guest PSCI calls: NOT_SUPPORTED
      expect(s.p.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS)).toBe(2); // min(online CPUs, 8)
      expect(s.p.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS)).toBe(8); // GICv2 host
      expect(s.p.ioctl(fd, KVM_CHECK_EXTENSION, 9999)).toBe(0);
    }
  });

  it('kvm_vm_ioctl_check_extension_generic: the caps QEMU kvm_init requires are 1; unserved arch caps are 0', () => {
    const s = setup();
    const vm = createVm(s);
    for (const cap of [
      KVM_CAP_USER_MEMORY,
      KVM_CAP_DESTROY_MEMORY_REGION_WORKS,
      KVM_CAP_JOIN_MEMORY_REGIONS_WORKS,
      KVM_CAP_INTERNAL_ERROR_DATA,
      KVM_CAP_CHECK_EXTENSION_VM,
      KVM_CAP_IMMEDIATE_EXIT,
    ]) {
      expect(s.p.ioctl(vm, KVM_CHECK_EXTENSION, cap)).toBe(1);
    }
    // a 1 would promise KVM_GET_MP_STATE / KVM_GET_ONE_REG / KVM_IOEVENTFD, which the vCPU and VM fds refuse
    for (const cap of [KVM_CAP_MP_STATE, KVM_CAP_ONE_REG, KVM_CAP_IOEVENTFD, KVM_CAP_ARM_USER_IRQ]) {
      expect(s.p.ioctl(vm, KVM_CHECK_EXTENSION, cap)).toBe(0);
    }
  });

  it('KVM_GET_VCPU_MMAP_SIZE covers kvm_run; unknown ioctls are EINVAL (kvm_arch_dev_ioctl)', () => {
    const s = setup();
    expect(s.p.ioctl(s.kvmFd, KVM_GET_VCPU_MMAP_SIZE, 0)).toBeGreaterThanOrEqual(2352);
    expect(errnoOf(() => s.p.ioctl(s.kvmFd, KVM_RUN, 0))).toBe('EINVAL');
  });

  it('KVM_CREATE_VM: type 0 or an IPA size 32..40; EINVAL otherwise (arm64 kvm_init_stage2_mmu)', () => {
    const s = setup();
    expect(createVm(s, 0)).toBeGreaterThanOrEqual(0);
    expect(createVm(s, 36)).toBeGreaterThanOrEqual(0);
    expect(errnoOf(() => createVm(s, 0x100))).toBe('EINVAL');
    expect(errnoOf(() => createVm(s, 41))).toBe('EINVAL');
    expect(errnoOf(() => createVm(s, 20))).toBe('EINVAL');
    // type is an unsigned long: a bit above 31 is outside KVM_VM_TYPE_ARM_IPA_SIZE_MASK too, and -1 is all ones
    expect(errnoOf(() => createVm(s, 2 ** 32))).toBe('EINVAL');
    expect(errnoOf(() => createVm(s, 2 ** 40 + 36))).toBe('EINVAL');
    expect(errnoOf(() => createVm(s, -1))).toBe('EINVAL');
    expect(s.kvm.vms.length).toBe(2);
  });

  it('KVM_CREATE_VM takes its fd before it looks at the type: EMFILE first (kvm_dev_ioctl_create_vm)', () => {
    const kernel = new Kernel({ cpus: 1 });
    new Kvm(kernel, bootHostIrq(kernel.engine));
    const p = kernel.process({ maxFds: 2 });
    const kvmFd = p.open('/dev/kvm');
    const vm = p.ioctl(kvmFd, KVM_CREATE_VM, 0);
    expect(errnoOf(() => p.ioctl(kvmFd, KVM_CREATE_VM, 0x100))).toBe('EMFILE');
    p.close(vm);
    expect(errnoOf(() => p.ioctl(kvmFd, KVM_CREATE_VM, 0x100))).toBe('EINVAL');
    expect(p.ioctl(kvmFd, KVM_CREATE_VM, 0)).toBe(vm); // the refused call gave its fd back
  });
});

describe('VM fd (kvm_vm_ioctl)', () => {
  it('KVM_CREATE_VCPU: EINVAL past KVM_MAX_VCPU_IDS, EEXIST for a duplicate id (kvm_vm_ioctl_create_vcpu)', () => {
    const s = setup();
    const vm = createVm(s);
    expect(s.p.ioctl(vm, KVM_CREATE_VCPU, 0)).toBeGreaterThanOrEqual(0);
    expect(errnoOf(() => s.p.ioctl(vm, KVM_CREATE_VCPU, 0))).toBe('EEXIST');
    expect(errnoOf(() => s.p.ioctl(vm, KVM_CREATE_VCPU, 512))).toBe('EINVAL');
    expect(errnoOf(() => s.p.ioctl(vm, KVM_CREATE_VCPU, 8))).toBe('EINVAL'); // id ≥ kvm->max_vcpus
  });

  it('KVM_CREATE_VCPU after vgic_init is EBUSY (arm64 kvm_arch_vcpu_precreate)', () => {
    const s = setup();
    const { vm } = buildVm(s, 1);
    expect(errnoOf(() => s.p.ioctl(vm, KVM_CREATE_VCPU, 1))).toBe('EBUSY');
  });

  it('a VM fd used by another process is EIO (kvm_vm_ioctl: kvm->mm != current->mm)', () => {
    const s = setup();
    const vm = createVm(s);
    const other = s.kernel.process({ name: 'other' });
    const fd = other.files.install(s.p.files.lookup(vm)!.get());
    expect(errnoOf(() => other.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD))).toBe('EIO');
    expect(errnoOf(() => s.p.ioctl(vm, 0xae99, 0))).toBe('EINVAL'); // unknown VM ioctl
  });

  it('KVM_CREATE_DEVICE: ENODEV for an unregistered type, TEST creates nothing, EEXIST for a second vGIC, EFAULT', () => {
    const s = setup();
    const vm = createVm(s);
    expect(errnoOf(() => createDevice(s.p, vm, 99))).toBe('ENODEV'); // kvm_ioctl_create_device
    expect(errnoOf(() => createDevice(s.p, vm, KVM_DEV_TYPE_XICS))).toBe('ENODEV'); // a POWER device type
    createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_V2, KVM_CREATE_DEVICE_TEST);
    expect(s.kvm.vms[0]!.vgic).toBeNull();
    createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_V2);
    expect(errnoOf(() => createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_V2))).toBe('EEXIST'); // kvm_vgic_create
    expect(errnoOf(() => s.p.ioctl(vm, KVM_CREATE_DEVICE, 0x10))).toBe('EFAULT');
  });

  it('KVM_ARM_PREFERRED_TARGET writes GENERIC_V8', () => {
    const s = setup();
    const vm = createVm(s);
    const a = s.p.mem.alloc(32);
    s.p.ioctl(vm, KVM_ARM_PREFERRED_TARGET, a);
    expect(kvmVcpuInit.read(s.p.mem.view(a, 32)).target).toBe(KVM_ARM_TARGET_GENERIC_V8);
  });
});

describe('device fd (kvm_device_ioctl_attr)', () => {
  it('EPERM for a missing accessor, EFAULT copying the attr, ENOTTY for other ioctls', () => {
    const s = setup();
    const ops: KvmDeviceOps = {
      name: 'test-dev',
      *create(_d: KvmDevice) {
        yield op(0);
      },
      *setAttr() {
        yield op(0);
        throw errno('ENXIO', 'no such attr');
      },
    };
    s.kvm.registerDeviceOps(KVM_DEV_TYPE_FLIC, ops);
    const vm = createVm(s);
    const dev = createDevice(s.p, vm, KVM_DEV_TYPE_FLIC);
    expect(errnoOf(() => getAttr(s.p, dev, 1, 1, 0))).toBe('EPERM');
    expect(errnoOf(() => s.p.ioctl(dev, KVM_SET_DEVICE_ATTR, 0x20))).toBe('EFAULT');
    expect(errnoOf(() => setAttr(s.p, dev, 1, 1, 0))).toBe('ENXIO');
    expect(errnoOf(() => s.p.ioctl(dev, 0xae01, 0))).toBe('ENOTTY');
  });
});

describe('vGIC-v2 device attributes (vgic-kvm-device.c)', () => {
  function vgicDev() {
    const s = setup();
    const vm = createVm(s);
    s.p.ioctl(vm, KVM_CREATE_VCPU, 0);
    const dev = createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_V2);
    return { s, vm, dev, p: s.p };
  }

  it('GRP_ADDR: set once (EEXIST twice), 4K aligned (EINVAL), inside the IPA space (E2BIG), ENXIO for other types', () => {
    const { p, dev } = vgicDev();
    const G = KVM_DEV_ARM_VGIC_GRP_ADDR;
    expect(errnoOf(() => setAttr(p, dev, G, KVM_VGIC_V2_ADDR_TYPE_DIST, u64Buf(p, 0x800_0100n)))).toBe('EINVAL');
    expect(errnoOf(() => setAttr(p, dev, G, KVM_VGIC_V2_ADDR_TYPE_DIST, u64Buf(p, 1n << 40n)))).toBe('E2BIG');
    expect(errnoOf(() => setAttr(p, dev, G, 7, u64Buf(p, 0x1000n)))).toBe('ENXIO'); // -ENODEV → -ENXIO
    expect(errnoOf(() => setAttr(p, dev, G, KVM_VGIC_V2_ADDR_TYPE_DIST, 0x30))).toBe('EFAULT');
    setAttr(p, dev, G, KVM_VGIC_V2_ADDR_TYPE_DIST, u64Buf(p, BigInt(DIST_BASE)));
    expect(errnoOf(() => setAttr(p, dev, G, KVM_VGIC_V2_ADDR_TYPE_DIST, u64Buf(p, 0x900_0000n)))).toBe('EEXIST');
    const out = p.mem.alloc(8);
    getAttr(p, dev, G, KVM_VGIC_V2_ADDR_TYPE_DIST, out);
    expect(p.mem.readU64(out)).toBe(BigInt(DIST_BASE));
    getAttr(p, dev, G, KVM_VGIC_V2_ADDR_TYPE_CPU, out);
    expect(p.mem.readU64(out)).toBe(0xffff_ffff_ffff_ffffn); // VGIC_ADDR_UNDEF
    expect(hasAttr(p, dev, G, KVM_VGIC_V2_ADDR_TYPE_CPU)).toBe(0);
    expect(errnoOf(() => hasAttr(p, dev, G, 3))).toBe('ENXIO');
  });

  it('GRP_NR_IRQS: EINVAL out of range, EBUSY when set twice or after init; CTRL_INIT freezes it', () => {
    const { p, dev } = vgicDev();
    const G = KVM_DEV_ARM_VGIC_GRP_NR_IRQS;
    expect(errnoOf(() => setAttr(p, dev, G, 0, u32Buf(p, 32)))).toBe('EINVAL');
    expect(errnoOf(() => setAttr(p, dev, G, 0, u32Buf(p, 1056)))).toBe('EINVAL');
    // vgic_set_common_attr: the comment says "at most 1024 interrupts", the condition is val > VGIC_MAX_RESERVED
    expect(errnoOf(() => setAttr(p, dev, G, 0, u32Buf(p, 1024)))).toBe('EINVAL');
    expect(errnoOf(() => setAttr(p, dev, G, 0, u32Buf(p, 100)))).toBe('EINVAL'); // not a multiple of 32
    setAttr(p, dev, G, 0, u32Buf(p, 128));
    expect(errnoOf(() => setAttr(p, dev, G, 0, u32Buf(p, 160)))).toBe('EBUSY');
    const out = p.mem.alloc(4);
    getAttr(p, dev, G, 0, out);
    expect(p.mem.readU32(out)).toBe(128);
    expect(hasAttr(p, dev, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT)).toBe(0);
    expect(errnoOf(() => setAttr(p, dev, KVM_DEV_ARM_VGIC_GRP_CTRL, 5, 0))).toBe('ENXIO');
    setAttr(p, dev, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, 0);
    setAttr(p, dev, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, 0); // idempotent
    expect(errnoOf(() => getAttr(p, dev, KVM_DEV_ARM_VGIC_GRP_CTRL, 0, out))).toBe('ENXIO');
  });

  it('NR_IRQS after a default init is EBUSY and reads 256 (VGIC_NR_IRQS_LEGACY)', () => {
    const { p, dev } = vgicDev();
    setAttr(p, dev, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, 0);
    expect(errnoOf(() => setAttr(p, dev, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, u32Buf(p, 128)))).toBe('EBUSY');
    const out = p.mem.alloc(4);
    getAttr(p, dev, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, out);
    expect(p.mem.readU32(out)).toBe(256);
  });

  it('DIST_REGS / CPU_REGS: has_attr by register map and nr_irqs; DIST_REGS get reads GICD_TYPER; EINVAL for no such vCPU', () => {
    const { p, dev } = vgicDev();
    const D = KVM_DEV_ARM_VGIC_GRP_DIST_REGS;
    // vgic_v2_has_attr_regs → check_region: before vgic_init nr_spis is 0, so only the private INTIDs' words exist
    expect(hasAttr(p, dev, D, kvmDevArmVgicAttr(0, 0x100))).toBe(0);
    expect(errnoOf(() => hasAttr(p, dev, D, kvmDevArmVgicAttr(0, 0x104)))).toBe('ENXIO');
    expect(errnoOf(() => hasAttr(p, dev, D, kvmDevArmVgicAttr(0, 0xe00)))).toBe('ENXIO');
    expect(errnoOf(() => hasAttr(p, dev, D, kvmDevArmVgicAttr(0, 0x102)))).toBe('ENXIO');
    expect(hasAttr(p, dev, KVM_DEV_ARM_VGIC_GRP_CPU_REGS, kvmDevArmVgicAttr(0, 0x04))).toBe(0);
    expect(errnoOf(() => hasAttr(p, dev, KVM_DEV_ARM_VGIC_GRP_CPU_REGS, kvmDevArmVgicAttr(0, 0x0c)))).toBe('ENXIO');
    // vgic_v2_parse_attr (6.1): a cpuid with no online vCPU is EINVAL, for has_attr too
    expect(errnoOf(() => hasAttr(p, dev, D, kvmDevArmVgicAttr(1, 0)))).toBe('EINVAL');
    const out = p.mem.alloc(4);
    getAttr(p, dev, D, kvmDevArmVgicAttr(0, 0x004), out);
    expect(p.mem.readU32(out) & 0x1f).toBe(256 / 32 - 1); // ITLinesNumber after the implied vgic_init
    expect(hasAttr(p, dev, D, kvmDevArmVgicAttr(0, 0x11c))).toBe(0); // INTIDs 224..255 exist now
    expect(errnoOf(() => hasAttr(p, dev, D, kvmDevArmVgicAttr(0, 0x120)))).toBe('ENXIO');
    expect(errnoOf(() => getAttr(p, dev, D, kvmDevArmVgicAttr(0, 0x120), out))).toBe('ENXIO');
    expect(errnoOf(() => getAttr(p, dev, D, kvmDevArmVgicAttr(3, 0x004), out))).toBe('EINVAL');
    // the cpuid is checked before the value of a write is read
    expect(errnoOf(() => setAttr(p, dev, D, kvmDevArmVgicAttr(3, 0x004), 0x30))).toBe('EINVAL');
    expect(errnoOf(() => setAttr(p, dev, D, kvmDevArmVgicAttr(0, 0x004), 0x30))).toBe('EFAULT');
    expect(errnoOf(() => hasAttr(p, dev, 99, 0))).toBe('ENXIO');
  });

  it('GRP_ADDR get: ENXIO for a V3 type, but a REDIST_REGION get reads its address first (kvm_vgic_addr)', () => {
    const { p, dev } = vgicDev();
    const out = p.mem.alloc(8);
    expect(errnoOf(() => getAttr(p, dev, KVM_DEV_ARM_VGIC_GRP_ADDR, 2, out))).toBe('ENXIO');
    expect(errnoOf(() => getAttr(p, dev, KVM_DEV_ARM_VGIC_GRP_ADDR, 5, out))).toBe('ENXIO');
    expect(errnoOf(() => getAttr(p, dev, KVM_DEV_ARM_VGIC_GRP_ADDR, 2, 0x30))).toBe('ENXIO');
    expect(errnoOf(() => getAttr(p, dev, KVM_DEV_ARM_VGIC_GRP_ADDR, 5, 0x30))).toBe('EFAULT');
  });

  it('creating the vGIC after a vCPU has run is EBUSY (kvm_vgic_create)', () => {
    const s = setup();
    const vm = createVm(s);
    const v = s.p.ioctl(vm, KVM_CREATE_VCPU, 0);
    vcpuInit(s.p, v);
    const h = s.p.thread('vcpu0', 1).ioctlAsync(v, KVM_RUN, 0);
    s.kernel.settle();
    expect(h.done).toBe(false); // the default guest idles in WFI without a vGIC
    expect(errnoOf(() => createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_V2))).toBe('EBUSY');
  });
});

describe('KVM_IRQ_LINE (arm64 kvm_vm_ioctl_irq_line)', () => {
  it('ENXIO without a vGIC for SPI/PPI, ENXIO for TYPE_CPU with one; EINVAL for bad numbers and vCPUs; EFAULT', () => {
    const s = setup();
    const vm = createVm(s);
    s.p.ioctl(vm, KVM_CREATE_VCPU, 0);
    const ppi = (vcpu: number, num: number) => kvmArmIrqLineEncode({ type: KVM_ARM_IRQ_TYPE_PPI, vcpu, num });
    expect(errnoOf(() => spiLine(s.p, vm, 40, 1))).toBe('ENXIO');
    expect(errnoOf(() => irqLine(s.p, vm, ppi(0, 20), 1))).toBe('ENXIO');
    expect(irqLine(s.p, vm, kvmArmIrqLineEncode({ type: KVM_ARM_IRQ_TYPE_CPU, vcpu: 0, num: 0 }), 1)).toBe(0);
    expect(
      errnoOf(() => irqLine(s.p, vm, kvmArmIrqLineEncode({ type: KVM_ARM_IRQ_TYPE_CPU, vcpu: 0, num: 2 }), 1)),
    ).toBe('EINVAL');
    createDevice(s.p, vm, KVM_DEV_TYPE_ARM_VGIC_V2);
    expect(
      errnoOf(() => irqLine(s.p, vm, kvmArmIrqLineEncode({ type: KVM_ARM_IRQ_TYPE_CPU, vcpu: 0, num: 0 }), 1)),
    ).toBe('ENXIO');
    expect(errnoOf(() => spiLine(s.p, vm, 20, 1))).toBe('EINVAL');
    expect(errnoOf(() => irqLine(s.p, vm, ppi(3, 20), 1))).toBe('EINVAL');
    expect(errnoOf(() => irqLine(s.p, vm, ppi(0, 40), 1))).toBe('EINVAL');
    expect(errnoOf(() => irqLine(s.p, vm, kvmArmIrqLineEncode({ type: 3, vcpu: 0, num: 40 }), 1))).toBe('EINVAL');
    expect(spiLine(s.p, vm, 40, 1)).toBe(0); // lazy vgic_init
    expect(errnoOf(() => spiLine(s.p, vm, 300, 1))).toBe('EINVAL'); // beyond nr_spis
    expect(errnoOf(() => s.p.ioctl(vm, 0x4008ae61, 0x40))).toBe('EFAULT');
  });

  it('an SPI raised with KVM_IRQ_LINE reaches the default guest', () => {
    const s = setup({ guest: { spis: [{ intid: 40, edge: true }] } });
    const { vm, vcpus } = buildVm(s, 1);
    s.p.thread('vcpu0', 1).ioctlAsync(vcpus[0]!, KVM_RUN, 0);
    s.kernel.settle();
    expect(s.guest.statsOf(0).booted).toBe(true);
    spiLine(s.p, vm, 40, 1);
    s.kernel.settle();
    expect(s.guest.statsOf(0).byIntid.get(40)).toBe(1);
    expect(attr(s.p, 0, 0, 0)).toBeGreaterThan(0);
  });
});

describe('VM and device lifetime (kvm_get_kvm / kvm_put_kvm, kvm_destroy_devices)', () => {
  function typeWith(log: string[], withRelease: boolean): KvmDeviceOps {
    const ops: KvmDeviceOps = {
      name: withRelease ? 'rel-dev' : 'destroy-dev',
      *create() {
        yield op(0);
        log.push('create');
      },
      *destroy() {
        yield op(0);
        log.push('destroy');
      },
    };
    if (withRelease) {
      return {
        ...ops,
        *release() {
          yield op(0);
          log.push('release');
        },
      };
    }
    return ops;
  }

  it('a destroy-only device lives until the VM dies, which waits for the last device/vCPU fd', () => {
    const s = setup();
    const log: string[] = [];
    s.kvm.registerDeviceOps(KVM_DEV_TYPE_FLIC, typeWith(log, false));
    const vm = createVm(s);
    const vcpu = s.p.ioctl(vm, KVM_CREATE_VCPU, 0);
    const dev = createDevice(s.p, vm, KVM_DEV_TYPE_FLIC);
    s.p.close(vm);
    expect(s.kvm.vms.length).toBe(1);
    s.p.close(dev);
    expect(log).toEqual(['create']);
    s.p.close(vcpu);
    expect(log).toEqual(['create', 'destroy']);
    expect(s.kvm.vms.length).toBe(0);
    s.p.close(s.kvmFd);
    expect(s.kernel.leaks()).toEqual([]);
  });

  it('a device with release is released when its fd closes, while the VM is alive', () => {
    const s = setup();
    const log: string[] = [];
    s.kvm.registerDeviceOps(KVM_DEV_TYPE_FLIC, typeWith(log, true));
    const vm = createVm(s);
    const dev = createDevice(s.p, vm, KVM_DEV_TYPE_FLIC);
    s.p.close(dev);
    expect(log).toEqual(['create', 'release']);
    expect(s.kvm.vms[0]!.devices.length).toBe(0);
    s.p.close(vm);
    s.p.close(s.kvmFd);
    expect(log).toEqual(['create', 'release']);
    expect(s.kernel.leaks()).toEqual([]);
  });

  it('trace hooks see kvm_entry / kvm_exit / kvm_set_irq', () => {
    const s = setup({ guest: { spis: [{ intid: 40, edge: true }] } });
    const events: string[] = [];
    s.kvm.trace = {
      kvmEntry: () => events.push('entry'),
      kvmExit: (_v, ret, ec) => events.push(`exit ${ret} ${ec}`),
      kvmUserspaceExit: (_v, r, e) => events.push(`user ${r} ${e}`),
      kvmSetIrq: (gsi, level, src) => events.push(`set_irq ${gsi} ${level} ${src}`),
    };
    const { vcpus } = buildVm(s);
    s.p.thread('vcpu0', 1).ioctlAsync(vcpus[0]!, KVM_RUN, 0);
    s.kernel.settle();
    expect(events[0]).toBe('entry');
    expect(events).toContain('exit 2 36'); // ARM_EXCEPTION_TRAP, DABT_LOW
    expect(events).toContain('exit 2 1'); // WFx
    expect(events.filter((e) => e === 'entry').length).toBe(s.kvm.vms[0]!.vcpus[0]!.stat.entries);
  });

  it('trace_kvm_userspace_exit fires on every KVM_RUN return, with the errno', () => {
    const s = setup();
    const seen: string[] = [];
    s.kvm.trace = {
      kvmEntry() {},
      kvmExit() {},
      kvmUserspaceExit: (_v, r, e) => seen.push(`${r}/${e}`),
      kvmSetIrq() {},
    };
    const { vcpus } = buildVm(s);
    const run = kvmRunAddress(s.p, vcpus[0]!);
    s.p.mem.view(run, 2).setUint8(1, 1);
    expect(errnoOf(() => s.p.ioctl(vcpus[0]!, KVM_RUN, 0))).toBe('EINTR');
    expect(seen).toEqual(['10/4']); // KVM_EXIT_INTR, EINTR
  });
});
