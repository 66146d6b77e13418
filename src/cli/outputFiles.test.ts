import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { currentUid, OutputFileError, privateOutputBase, writeOwnFile } from './outputFiles.js';

let tmp: string;
const uid = currentUid();

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'irqfwd-out-'));
});
afterEach(() => {
  chmodSync(tmp, 0o700);
});

describe('privateOutputBase', () => {
  it('creates $TMPDIR/irqfwd with mode 0700 and uses it', () => {
    expect(privateOutputBase(tmp, uid)).toBe(tmp);
    const st = lstatSync(join(tmp, 'irqfwd'));
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o777).toBe(0o700);
  });

  it('a planted symlink $TMPDIR/irqfwd → elsewhere: picks $TMPDIR/irqfwd-<uid>, the target stays untouched', () => {
    const victim = join(tmp, 'victim');
    mkdirSync(victim);
    writeFileSync(join(victim, 'default.normal.perfetto.json'), 'precious');
    symlinkSync(victim, join(tmp, 'irqfwd'));
    const base = privateOutputBase(tmp, uid);
    expect(base).toBe(join(tmp, `irqfwd-${uid}`));
    writeOwnFile(join(base, 'irqfwd', 'default.normal.perfetto.json'), 'trace', uid);
    expect(readFileSync(join(victim, 'default.normal.perfetto.json'), 'utf8')).toBe('precious');
    expect(readFileSync(join(base, 'irqfwd', 'default.normal.perfetto.json'), 'utf8')).toBe('trace');
  });

  // chown needs root (CI runs as root); elsewhere the uid check is pinned by the writeOwnFile test below
  it.runIf(uid === 0)('$TMPDIR/irqfwd created first by another user (0700, theirs): not used', () => {
    mkdirSync(join(tmp, 'irqfwd'), { mode: 0o700 });
    chownSync(join(tmp, 'irqfwd'), 4242, 4242);
    expect(privateOutputBase(tmp, uid)).toBe(join(tmp, `irqfwd-${uid}`));
  });

  it('a world-writable $TMPDIR/irqfwd is not private', () => {
    mkdirSync(join(tmp, 'irqfwd'));
    chmodSync(join(tmp, 'irqfwd'), 0o777);
    expect(privateOutputBase(tmp, uid)).toBe(join(tmp, `irqfwd-${uid}`));
  });

  it('both names squatted: a clean OutputFileError naming both, nothing written', () => {
    symlinkSync(tmpdir(), join(tmp, 'irqfwd'));
    symlinkSync(tmpdir(), join(tmp, `irqfwd-${uid}`));
    expect(() => privateOutputBase(tmp, uid)).toThrow(OutputFileError);
    expect(() => privateOutputBase(tmp, uid)).toThrow(/neither .*irqfwd nor .*irqfwd-/);
  });
});

describe('writeOwnFile', () => {
  it('refuses to write through a symlink (O_NOFOLLOW): the target is untouched', () => {
    const target = join(tmp, 'target');
    writeFileSync(target, 'precious');
    symlinkSync(target, join(tmp, 'out.json'));
    expect(() => writeOwnFile(join(tmp, 'out.json'), 'trace', uid)).toThrow(/is a symbolic link: not written through/);
    expect(readFileSync(target, 'utf8')).toBe('precious');
  });

  it('does not clobber a file that is not ours (uid check before the truncation)', () => {
    const f = join(tmp, 'theirs.json');
    writeFileSync(f, 'theirs');
    const other = (uid ?? 0) + 4242;
    expect(() => writeOwnFile(f, 'trace', other)).toThrow(/belongs to user .*not overwritten/);
    expect(readFileSync(f, 'utf8')).toBe('theirs');
  });

  it('replaces the content of our own file (a rerun overwrites its previous trace)', () => {
    const f = join(tmp, 'mine.json');
    writeFileSync(f, 'a much longer previous trace');
    writeOwnFile(f, 'new', uid);
    expect(readFileSync(f, 'utf8')).toBe('new');
  });

  it('refuses a directory', () => {
    mkdirSync(join(tmp, 'd'));
    expect(() => writeOwnFile(join(tmp, 'd'), 'x', uid)).toThrow(OutputFileError);
  });
});
