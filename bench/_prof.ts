import { buildFwdMachine } from './fwdMachine.js';
const m = buildFwdMachine({ lines: 1, vcpus: 1, busy: false });
m.run(20000);
const c0 = process.cpuUsage(); const t0 = performance.now();
m.run(200000);
const c = process.cpuUsage(c0);
console.log('IRQs/s wall', (200000 / ((performance.now() - t0) / 1000)).toFixed(0), 'per CPU-s', (200000 / ((c.user + c.system) / 1e6)).toFixed(0));
