/**
 * Cache misses per forwarded IRQ, by function, under callgrind (issue 16): the scale machine of bench/fwdMachine.ts
 * built and warmed up with callgrind's instrumentation off, then `count` IRQs with it on (callgrind_control -i), so
 * the counts are the IRQ path's alone — deterministic per function where timings on a shared machine are not.
 *
 *   valgrind --tool=callgrind --instr-atstart=no --cache-sim=yes --D1=49152,12,64 --LL=1048576,16,64 \
 *     --smc-check=all-non-file --callgrind-out-file=OUT node --perf-basic-prof --import tsx \
 *     bench/scaleMisses.ts DEVICES VCPUS [COUNT] [ACTIVE_LINES]
 *   callgrind_annotate --inclusive=no --show=DLmr,D1mr,Ir --sort=DLmr OUT
 *
 * (LL = a 1 MiB L2; JIT code shows as addresses: /tmp/perf-<pid>.map names them; node also leaves isolate-*.log
 * files in the working directory.) DEVICES × 4 lines, VCPUS in VMs
 * of 16 on 8 pCPUs, GICv3.1, as bench/scale.ts's cases; ACTIVE_LINES: raise only that many of the lines.
 */
import { execFileSync } from 'node:child_process';
import { buildFwdMachine } from './fwdMachine.js';

const [devices, vcpus, count, active] = process.argv.slice(2).map(Number);
const m = buildFwdMachine({
  lines: devices! * 4,
  vcpus: vcpus!,
  gic: 'v3',
  vcpusPerVm: 16,
  cpus: 8,
  linesPerDevice: 4,
  activeLines: active || undefined,
});
m.run(7_000 + devices! * 4); // warm-up: every line at least once, and the JIT settled
execFileSync('callgrind_control', ['-i', 'on', String(process.pid)]);
m.run(count || 20_000);
execFileSync('callgrind_control', ['-i', 'off', String(process.pid)]);
