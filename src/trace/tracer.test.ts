import { describe, expect, it } from 'vitest';
import { EV_GIC_IAR, EV_IRQ_HANDLER_ENTRY, EV_KVM_ENTRY, EV_KVM_EXIT, STANDARD_EVENTS } from './events.js';
import { Tracer } from './tracer.js';

describe('Tracer', () => {
  it('enables every event by default and stamps the time source', () => {
    const clock = { now: 500 };
    const t = new Tracer({ capacity: 16, time: clock });
    expect(t.listEnabled().length).toBe(STANDARD_EVENTS.length);
    t.emit(EV_GIC_IAR, 0, 1, 42, 1);
    clock.now = 900;
    t.emit(EV_GIC_IAR, 0, 1, 43, 2);
    expect(t.ring.size).toBe(2);
    expect(t.ring.ts[t.ring.slot(1)]).toBe(900);
  });

  it('filters like set_event: system, system:event, bare names, globs and !', () => {
    const t = new Tracer({ capacity: 16, events: 'kvm' });
    expect(t.isEnabled(EV_KVM_EXIT)).toBe(true);
    expect(t.isEnabled(EV_IRQ_HANDLER_ENTRY)).toBe(false);
    t.setEvent('irq:irq_handler_entry');
    expect(t.listEnabled()).toEqual(['irq:irq_handler_entry']);
    t.appendEvent('kvm:kvm_e* !kvm:kvm_exit');
    expect(t.listEnabled()).toEqual(['irq:irq_handler_entry', 'kvm:kvm_entry']);
    t.setEvent('irqfwd:');
    expect(t.listEnabled().every((e) => e.startsWith('irqfwd:'))).toBe(true);
    t.setEvent('*:gic_iar kvm_entry');
    expect(t.listEnabled()).toEqual(['kvm:kvm_entry', 'irqfwd:gic_iar']);
    expect(() => t.appendEvent('nosuch:event')).toThrow(/no tracepoint/);
  });

  it('records nothing for disabled events or while tracing is off', () => {
    const t = new Tracer({ capacity: 16, events: 'kvm:kvm_entry' });
    t.emit(EV_GIC_IAR, 0, 1, 42);
    expect(t.ring.size).toBe(0);
    expect(t.ring.written).toBe(0);
    t.emit(EV_KVM_ENTRY, 0, 1, 0x1000);
    expect(t.ring.size).toBe(1);
    t.on = false;
    t.emit(EV_KVM_ENTRY, 0, 1, 0x1000);
    expect(t.ring.size).toBe(1);
    expect(t.isEnabled(EV_KVM_ENTRY)).toBe(false);
    t.on = true;
    expect(t.on).toBe(true);
    t.emit(EV_KVM_ENTRY, 0, 1, 0x1000);
    expect(t.ring.size).toBe(2);
  });
});
