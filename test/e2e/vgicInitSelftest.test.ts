// The GICv3 sequences of the arm64 KVM selftest vgic_init (tools/testing/selftests/kvm/aarch64/vgic_init.c, the 6.1
// era), written as a test outside this repository would: the public entry (src/index.ts), a GICv3 machine, a VMM of
// raw ioctls, the selftest's errno expectations. Left out: test_v3_its_region (the model's KVM has no vITS device).
// The one run that enters the guest (test_v3_new_redist_regions, step 3) boots an irq-gic-v3 guest instead of the
// selftest's ucall guest.
import { describe, expect, it } from 'vitest';
import {
  createGuest,
  createHost,
  errnoOf,
  type Host,
  KVM_ARM_PREFERRED_TARGET,
  KVM_ARM_VCPU_INIT,
  KVM_CREATE_DEVICE,
  KVM_CREATE_DEVICE_TEST,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_DEV_TYPE_ARM_VGIC_V3,
  KVM_GET_DEVICE_ATTR,
  KVM_HAS_DEVICE_ATTR,
  KVM_RUN,
  KVM_SET_DEVICE_ATTR,
  KVM_VGIC_V3_ADDR_TYPE_DIST,
  KVM_VGIC_V3_ADDR_TYPE_REDIST,
  KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION,
  kvmCreateDevice,
  kvmDevArmVgicV3Attr,
  kvmDeviceAttr,
  kvmVcpuInit,
  kvmVgicV3RdistRegionAttr,
  type Process,
} from '../../src/index.js';

const NR_VCPUS = 4;
const GICR_TYPER = 0x8;
const ADDR = KVM_DEV_ARM_VGIC_GRP_ADDR;
const REDIST_REGION = KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION;
const REDIST_REGION_ATTR_ADDR = (count: number, base: number | bigint, flags: number, index: number): bigint =>
  kvmVgicV3RdistRegionAttr(count, BigInt(base), flags, index);

/** struct vm_gic: a VM, its vCPUs (by vcpu_id) and its GICv3 device fd. */
class VmGic {
  readonly host: Host;
  readonly p: Process;
  readonly vm: number;
  readonly vcpus = new Map<number, number>();
  gic = -1;
  readonly maxPhysSize: bigint;

  constructor(vcpuIds: readonly number[], withGic = true) {
    const host = createHost({ gic: 'v3', cpus: 2 });
    this.host = host;
    this.p = host.process();
    this.vm = this.p.ioctl(this.p.open('/dev/kvm'), KVM_CREATE_VM, 0);
    this.maxPhysSize = 1n << BigInt(host.kvm.vms[0]!.ipaBits);
    for (const id of vcpuIds) this.addVcpu(id);
    if (withGic) this.gic = this.createDevice(KVM_DEV_TYPE_ARM_VGIC_V3);
  }

  /** vm_vcpu_add_default: KVM_CREATE_VCPU and KVM_ARM_VCPU_INIT. */
  addVcpu(id: number): void {
    const init = this.p.mem.alloc(kvmVcpuInit.size);
    this.p.ioctl(this.vm, KVM_ARM_PREFERRED_TARGET, init);
    const fd = this.p.ioctl(this.vm, KVM_CREATE_VCPU, id);
    this.p.ioctl(fd, KVM_ARM_VCPU_INIT, init);
    this.vcpus.set(id, fd);
  }

  createDevice(type: number, flags = 0): number {
    const a = this.p.mem.alloc(kvmCreateDevice.size);
    kvmCreateDevice.write(this.p.mem.view(a, kvmCreateDevice.size), { type, fd: 0, flags });
    this.p.ioctl(this.vm, KVM_CREATE_DEVICE, a);
    return kvmCreateDevice.read(this.p.mem.view(a, kvmCreateDevice.size)).fd;
  }

  private attrIoctl(req: number, group: number, attr: number | bigint, addr: number): void {
    const a = this.p.mem.alloc(kvmDeviceAttr.size);
    kvmDeviceAttr.write(this.p.mem.view(a, kvmDeviceAttr.size), {
      flags: 0,
      group,
      attr: BigInt(attr),
      addr: BigInt(addr),
    });
    this.p.ioctl(this.gic, req, a);
  }

  /** __kvm_device_attr_set with a u64 payload (or the raw `addr` 0: NULL). */
  set(group: number, attr: number | bigint, value: bigint | null) {
    let addr = 0;
    if (value !== null) {
      addr = this.p.mem.alloc(8);
      this.p.mem.writeU64(addr, value);
    }
    return errnoOf(() => this.attrIoctl(KVM_SET_DEVICE_ATTR, group, attr, addr));
  }

  /** __kvm_device_attr_get of a u64; the value, or the errno. */
  get(group: number, attr: number | bigint, value = 0n): bigint | string {
    const addr = this.p.mem.alloc(8);
    this.p.mem.writeU64(addr, value);
    const e = errnoOf(() => this.attrIoctl(KVM_GET_DEVICE_ATTR, group, attr, addr));
    return e === 'ok' ? this.p.mem.readU64(addr) : e;
  }

  has(group: number, attr: number | bigint) {
    return errnoOf(() => this.attrIoctl(KVM_HAS_DEVICE_ATTR, group, attr, 0));
  }

  init() {
    return this.set(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, null);
  }

  /** run_vcpu: KVM_RUN's errno (the runs here all stop at kvm_vgic_map_resources). */
  run(id: number) {
    return errnoOf(() => this.p.ioctl(this.vcpus.get(id)!, KVM_RUN, 0));
  }

  /** v3_redist_reg_get: GICR_TYPER of the vCPU with this id, a 32-bit read. */
  typer(id: number): bigint | string {
    const t = this.get(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, kvmDevArmVgicV3Attr(id, GICR_TYPER));
    return typeof t === 'bigint' ? t & 0xffff_ffffn : t;
  }
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** subtest_dist_rdist (GICv3): REDIST at 0 for NR_VCPUS, DIST overlapping it at 0x70000 — caught at the first run. */
function subtestDistRdist(v: VmGic): void {
  expect(v.has(ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST)).toBe('ok');
  expect(v.has(ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST)).toBe('ok');
  expect(v.has(ADDR, -1n & 0xffff_ffff_ffff_ffffn)).toBe('ENXIO');
  expect(v.set(ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, 0x10000n / 0x10n)).toBe('EINVAL'); // misaligned
  expect(v.set(ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, 0x10000n / 0x10n)).toBe('EINVAL');
  expect(v.set(ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, v.maxPhysSize)).toBe('E2BIG'); // beyond the IPA limit
  expect(v.set(ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, v.maxPhysSize)).toBe('E2BIG');
  expect(v.set(ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, v.maxPhysSize - 0x10000n)).toBe('E2BIG'); // half a redist
  expect(v.set(ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, 0n)).toBe('ok');
  expect(v.set(ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, 0xe0000n)).toBe('EEXIST'); // a second legacy region
  expect(v.set(ADDR, REDIST_REGION, REDIST_REGION_ATTR_ADDR(NR_VCPUS, 0x100000, 0, 0))).toBe('EINVAL'); // mixed
  expect(v.set(ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, BigInt(NR_VCPUS * 0x20000 - 0x10000))).toBe('ok');
}

/** subtest_v3_redist_regions: the REDIST_REGION API on a VM with NR_VCPUS vCPUs. */
function subtestV3RedistRegions(v: VmGic): void {
  const set = (count: number, base: number | bigint, flags: number, index: number) =>
    v.set(ADDR, REDIST_REGION, REDIST_REGION_ATTR_ADDR(count, base, flags, index));
  expect(v.has(ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST)).toBe('ok');
  expect(set(NR_VCPUS, 0x100000, 2, 0)).toBe('EINVAL'); // flags != 0
  expect(set(0, 0x100000, 0, 0)).toBe('EINVAL'); // count == 0
  expect(set(2, 0x200000, 0, 1)).toBe('EINVAL'); // first region with index != 0
  expect(set(2, 0x201000, 0, 1)).toBe('EINVAL'); // misaligned address
  expect(set(2, 0x200000, 0, 0)).toBe('ok');
  expect(set(2, 0x200000, 0, 1)).toBe('EINVAL'); // already used
  expect(set(1, 0x210000, 0, 2)).toBe('EINVAL'); // overlaps another region
  expect(set(1, 0x240000, 0, 2)).toBe('EINVAL'); // index not +1
  expect(set(1, 0x240000, 0, 1)).toBe('ok');
  expect(set(1, v.maxPhysSize, 0, 2)).toBe('E2BIG'); // base beyond the IPA range
  expect(set(2, v.maxPhysSize - 0x30000n, 0, 2)).toBe('E2BIG'); // top beyond the IPA range
  expect(v.set(ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, 0x260000n)).toBe('EINVAL'); // mix REDIST and REDIST_REGION
  expect(v.get(ADDR, REDIST_REGION, REDIST_REGION_ATTR_ADDR(0, 0, 0, 0))).toBe(
    REDIST_REGION_ATTR_ADDR(2, 0x200000, 0, 0),
  );
  expect(v.get(ADDR, REDIST_REGION, REDIST_REGION_ATTR_ADDR(0, 0, 0, 1))).toBe(
    REDIST_REGION_ATTR_ADDR(1, 0x240000, 0, 1),
  );
  expect(v.get(ADDR, REDIST_REGION, REDIST_REGION_ATTR_ADDR(0, 0, 0, 2))).toBe('ENOENT');
  expect(v.set(ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, 0x260000n)).toBe('ok');
  expect(set(1, 0x260000, 0, 2)).toBe('EINVAL'); // collides with the distributor
}

describe('vgic_init selftest, GICv3 (vgic_init.c)', () => {
  it('test_kvm_device: ENODEV for type 0; trial mode; EEXIST creating it twice; no GICv2 here', () => {
    const v = new VmGic(range(NR_VCPUS), false);
    expect(errnoOf(() => v.createDevice(0, KVM_CREATE_DEVICE_TEST))).toBe('ENODEV');
    expect(v.createDevice(KVM_DEV_TYPE_ARM_VGIC_V3, KVM_CREATE_DEVICE_TEST)).toBe(0);
    v.gic = v.createDevice(KVM_DEV_TYPE_ARM_VGIC_V3);
    expect(errnoOf(() => v.createDevice(KVM_DEV_TYPE_ARM_VGIC_V3))).toBe('EEXIST');
    // the selftest tries the other version only where its trial creation succeeds: not on this GICv3
    expect(errnoOf(() => v.createDevice(KVM_DEV_TYPE_ARM_VGIC_V2, KVM_CREATE_DEVICE_TEST))).toBe('ENODEV');
  });

  it('test_vcpus_then_vgic: the DIST/REDIST overlap is EINVAL at the first vcpu run', () => {
    const v = new VmGic(range(NR_VCPUS));
    subtestDistRdist(v);
    expect(v.run(3)).toBe('EINVAL');
  });

  it('test_vgic_then_vcpus: vCPUs added after the regions grow the legacy region; the overlap is EINVAL at the first run', () => {
    const v = new VmGic([0]);
    subtestDistRdist(v);
    for (let i = 1; i < NR_VCPUS; i++) v.addVcpu(i);
    expect(v.run(3)).toBe('EINVAL');
  });

  it('test_v3_new_redist_regions: ENXIO without enough redistributors, EBUSY without explicit init, EFAULT a NULL region', () => {
    const a = new VmGic(range(NR_VCPUS));
    subtestV3RedistRegions(a);
    expect(a.init()).toBe('ok');
    expect(a.run(3)).toBe('ENXIO');

    const b = new VmGic(range(NR_VCPUS));
    subtestV3RedistRegions(b);
    expect(b.set(ADDR, REDIST_REGION, REDIST_REGION_ATTR_ADDR(1, 0x280000, 0, 2))).toBe('ok');
    expect(b.run(3)).toBe('EBUSY');

    const c = new VmGic(range(NR_VCPUS));
    subtestV3RedistRegions(c);
    expect(c.set(ADDR, REDIST_REGION, null)).toBe('EFAULT');
    expect(c.set(ADDR, REDIST_REGION, REDIST_REGION_ATTR_ADDR(1, 0x280000, 0, 2))).toBe('ok');
    expect(c.init()).toBe('ok');
    expect(range(NR_VCPUS).map((i) => c.typer(i))).toEqual([0x000n, 0x100n, 0x210n, 0x310n]); // region 0 is followed by region 1: not Last
    // run_vcpu(3) succeeds: its redistributor is region 2's (0x280000 = the guest's gicrBase + 3 × 128 KiB)
    const guest = createGuest(c.host, { vcpus: NR_VCPUS, gicdBase: 0x260000, gicrBase: 0x220000 });
    const run = c.p.thread('vcpu3', 1).ioctlAsync(c.vcpus.get(3)!, KVM_RUN, 0);
    c.host.engine.runUntil(() => guest.vcpus[3]!.booted, 'vCPU 3 boots');
    expect(run.done).toBe(false); // in the guest (idle in WFI), no error
  });

  it('test_v3_typer_accesses: EINVAL for an absent vCPU, EBUSY before init, Processor_Number and Last as regions fill', () => {
    const v = new VmGic([0]);
    v.addVcpu(3);
    expect(v.typer(1)).toBe('EINVAL');
    v.addVcpu(1);
    expect(v.typer(1)).toBe('EBUSY');
    v.addVcpu(2);
    expect(v.init()).toBe('ok');
    for (const i of range(NR_VCPUS)) expect(v.typer(i)).toBe(BigInt(i * 0x100));
    expect(v.set(ADDR, REDIST_REGION, REDIST_REGION_ATTR_ADDR(2, 0x200000, 0, 0))).toBe('ok');
    expect(v.typer(0)).toBe(0x0n);
    expect(v.typer(3)).toBe(0x310n);
    expect(v.set(ADDR, REDIST_REGION, REDIST_REGION_ATTR_ADDR(10, 0x100000, 0, 1))).toBe('EINVAL'); // collision
    expect(v.typer(1)).toBe(0x100n);
    expect(v.typer(2)).toBe(0x200n);
    expect(v.set(ADDR, REDIST_REGION, REDIST_REGION_ATTR_ADDR(10, 0x20000, 0, 1))).toBe('ok');
    expect(v.typer(1)).toBe(0x100n);
    expect(v.typer(2)).toBe(0x210n);
  });

  it('test_v3_last_bit_redist_regions: Last is the region’s last redistributor unless a populated region follows it', () => {
    const v = new VmGic([0, 3, 5, 4, 1, 2]);
    expect(v.init()).toBe('ok');
    expect(v.set(ADDR, REDIST_REGION, REDIST_REGION_ATTR_ADDR(2, 0x100000, 0, 0))).toBe('ok');
    expect(v.set(ADDR, REDIST_REGION, REDIST_REGION_ATTR_ADDR(2, 0x240000, 0, 1))).toBe('ok');
    expect(v.set(ADDR, REDIST_REGION, REDIST_REGION_ATTR_ADDR(2, 0x200000, 0, 2))).toBe('ok');
    expect([0, 1, 2, 3, 5, 4].map((i) => v.typer(i))).toEqual([0x000n, 0x100n, 0x200n, 0x310n, 0x500n, 0x410n]);
  });

  it('test_v3_last_bit_single_rdist: in the legacy region only the last vCPU created is Last', () => {
    const v = new VmGic([0, 3, 5, 4, 1, 2]);
    expect(v.init()).toBe('ok');
    expect(v.set(ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, 0x10000n)).toBe('ok');
    expect([0, 3, 5, 1, 2].map((i) => v.typer(i))).toEqual([0x000n, 0x300n, 0x500n, 0x100n, 0x210n]);
  });

  it('test_v3_redist_ipa_range_check_at_vcpu_run: a legacy region that outgrows the IPA space is EINVAL at the first run', () => {
    const v = new VmGic([0]);
    expect(v.set(ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, v.maxPhysSize - 3n * 2n * 0x10000n)).toBe('ok');
    expect(v.set(ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, 0n)).toBe('ok');
    for (let i = 1; i < NR_VCPUS; i++) v.addVcpu(i);
    expect(v.init()).toBe('ok');
    expect(v.run(2)).toBe('EINVAL');
  });
});
