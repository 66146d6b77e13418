import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

/** Runs `irqfwd <args>` from the sources with a reader that has gone before the output comes (`| head -c 0`). */
function readerGone(args: string[]): Promise<{ code: number | null; signal: string | null; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout.destroy();
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, err }));
  });
}

it('irqfwd schema | head: a reader gone before the output (EPIPE) ends the command quietly with exit 0, not 1', async () => {
  const r = await readerGone(['schema']);
  expect(r).toEqual({ code: 0, signal: null, err: '' });
}, 20_000);
