import { describe, expect, it } from 'vitest';
import { KVM_CREATE_DEVICE, KVM_DEV_TYPE_VFIO, kvmCreateDevice } from '../abi/kvm.js';
import { createHost } from '../machine.js';
import { createdFd, createQemuVm, place } from './vmm.js';
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

  it('VmmScript: a call binds the fd it creates; a late entry is laid out when the thread gets to it, after the bind', () => {
    const host = createHost({ cpus: 2 });
    const p = host.process();
    const vm = createQemuVm(p, { vcpus: 1 });
    const create = place(p, kvmCreateDevice.encode({ type: KVM_DEV_TYPE_VFIO, fd: 0, flags: 0 }));
    const bound = new Map<string, number>();
    const planned: number[] = [];
    const vmm = {
      bind: (c: VmmCall, ret: number) => {
        if (c.kind === 'ioctl' && c.as !== undefined) bound.set(c.as, createdFd(p, c.request, ret, c.arg));
      },
      plan: () => {
        const fd = bound.get('kv') ?? -1;
        planned.push(fd);
        return [closeCall(fd)];
      },
    };
    const th = p.thread('ctl', 0);
    const script = new VmmScript(
      p,
      th,
      [
        { kind: 'ioctl', fd: vm.vm, request: KVM_CREATE_DEVICE, arg: create, mem: [], failNth: 0, as: 'kv' },
        { kind: 'late', step: { step: 'ioctl', fd: 'kv', request: 'KVM_GET_API_VERSION', expect: 'ok', vm: 'vm0' } },
      ],
      vmm,
    );
    submitTask(th, 'vmm', script).result();
    expect(planned).toEqual([bound.get('kv')]);
    expect(planned[0]).toBeGreaterThanOrEqual(0);
    expect(script.outcomes).toEqual([0, 0]);
    expect(p.files.openFds()).not.toContain(planned[0]);
  });
});
