import { describe, expect, it } from 'vitest';
import { KVM_GET_API_VERSION, KVM_RUN } from '../abi/kvm.js';
import { createHost } from '../machine.js';
import { HostCycleObserver } from './hostCycles.js';
import { createQemuVm } from './vmm.js';

describe('HostCycleObserver', () => {
  it('counts the syscalls and the vCPU entry on their CPUs; idle steps add nothing', () => {
    const host = createHost({ cpus: 2 });
    const obs = new HostCycleObserver(2);
    host.engine.observer = obs;
    const p = host.process();
    host.settle();
    const before = obs.total;
    const vm = createQemuVm(p, { vcpus: 1 });
    const syscalls = obs.total - before;
    expect(syscalls).toBeGreaterThan(0);
    expect(obs.byCpu[0]).toBe(obs.total); // the VMM's main thread runs on CPU 0
    expect(obs.byCpu[1]).toBe(0);
    host.run(1_000_000); // nothing runs: CPUs idle
    expect(obs.total - before).toBe(syscalls);
    // a vCPU on CPU 1: its entry is host work, then the default guest idles in WFI and the vCPU blocks
    p.thread('vcpu0', 1).ioctlAsync(vm.vcpus[0]!, KVM_RUN, 0);
    host.settle();
    const vcpu = obs.byCpu[1]!;
    expect(vcpu).toBeGreaterThan(0);
    host.run(1_000_000);
    expect(obs.byCpu[1]).toBe(vcpu);
    expect(obs.total).toBe(obs.byCpu[0]! + obs.byCpu[1]!);
  });

  it('reports progress every 65536 engine steps', () => {
    const host = createHost({ cpus: 1 });
    let reports = 0;
    host.engine.observer = new HostCycleObserver(1, { progress: () => reports++ });
    const p = host.process();
    const kvm = p.open('/dev/kvm');
    while (host.engine.steps < 70_000) p.ioctl(kvm, KVM_GET_API_VERSION, 0);
    expect(host.engine.steps).toBeGreaterThanOrEqual(65_536);
    expect(reports).toBe(Math.floor(host.engine.steps / 65_536));
  });
});
