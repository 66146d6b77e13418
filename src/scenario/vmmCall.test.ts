import { describe, expect, it } from 'vitest';
import { KVM_CREATE_DEVICE, KVM_DEV_TYPE_VFIO, kvmCreateDevice } from '../abi/kvm.js';
import { createHost } from '../machine.js';
import { createQemuVm, place } from './vmm.js';
import { closeCall, forwardCall, runCall, submitTask, type VmmCall, VmmScript } from './vmmCall.js';

describe('VMM calls', () => {
  it('runCall: the call on the main thread, its result or its errno, its memory freed either way', () => {
    const host = createHost({ cpus: 2 });
    const p = host.process();
    const vm = createQemuVm(p, { vcpus: 1 });
    const used = p.mem.allocationCount;
    const call = forwardCall(p, 'assign', 99, 3, 0, 48); // fd 99 is not open
    expect(p.mem.allocationCount).toBeGreaterThan(used);
    expect(() => runCall(p, call)).toThrow(/EBADF/);
    expect(p.mem.allocationCount).toBe(used);
    expect(runCall(p, closeCall(vm.vgic))).toBe(0);
  });

  it('VmmScript: the calls in order on one thread; an errno is an outcome and the script goes on', () => {
    const host = createHost({ cpus: 2 });
    const p = host.process();
    const vm = createQemuVm(p, { vcpus: 1 });
    const create = place(p, kvmCreateDevice.encode({ type: KVM_DEV_TYPE_VFIO, fd: 0, flags: 0 }));
    const calls: VmmCall[] = [
      closeCall(vm.vgic),
      closeCall(vm.vgic), // already closed
      { kind: 'ioctl', fd: vm.vm, request: KVM_CREATE_DEVICE, arg: create, mem: [], failNth: 0 },
      { kind: 'ioctl', fd: vm.vm, request: KVM_CREATE_DEVICE, arg: create, mem: [], failNth: 2 }, // one kvm-vfio a VM
    ];
    const th = p.thread('ctl', 0);
    const script = new VmmScript(p, th, calls, { plan: () => [], bind: () => {} });
    const h = submitTask(th, 'vmm', script);
    expect(h.result()).toBe(0);
    expect(script.outcomes).toEqual([0, 'EBADF', 0, 'EBUSY']);
    expect(th.ut.failNth).toBe(0); // fail-nth is armed per call, not left behind
    expect(p.files.openFds()).toContain(kvmCreateDevice.read(p.mem.view(create, kvmCreateDevice.size)).fd);
  });
});
