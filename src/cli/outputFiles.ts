/**
 * Where and how the CLI writes files. Default outputs (traces, view pages, checker replay files) go under
 * `<base>/irqfwd/`, and `<base>/irqfwd` must be a directory only this user can write: `$TMPDIR/irqfwd` when it is one
 * (or can be made one), else `$TMPDIR/irqfwd-<uid>/irqfwd` — another user who creates `$TMPDIR/irqfwd` first, or
 * plants a symlink there, gets nothing. Every file, default or named with -o/--trace, is opened without following a
 * symlink (O_NOFOLLOW) and truncated only once fstat shows a regular file of ours: a planted link or someone else's
 * file is refused, never overwritten.
 */
import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  type Stats,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

/** An output file or directory that cannot be written safely (exit 2: the environment, not the model). */
export class OutputFileError extends Error {}

/** The caller's uid, or null where the platform has none (Windows: its temp directory is per-user already). */
export type Uid = number | null;

const code = (e: unknown): string | undefined => (e as NodeJS.ErrnoException).code;

function isPrivateDir(st: Stats, uid: Uid): boolean {
  // lstat: a symlink is never a private directory, even one pointing at ours
  return st.isDirectory() && (uid === null || st.uid === uid) && (st.mode & 0o022) === 0;
}

/** Makes `dir` (mode 0700) unless it exists; true when it is then a private directory of `uid`. */
function ensurePrivateDir(dir: string, uid: Uid): boolean {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if (code(e) !== 'EEXIST') throw new OutputFileError(`cannot create ${dir}: ${(e as Error).message}`);
  }
  return isPrivateDir(lstatSync(dir), uid);
}

/**
 * The base of the default output paths (`join(base, 'irqfwd', file)`), given the temporary directory and the caller's
 * uid: `tmp` when `tmp/irqfwd` is private to `uid`, else `tmp/irqfwd-<uid>` (with its own private `irqfwd` inside).
 */
export function privateOutputBase(tmp: string, uid: Uid): string {
  if (ensurePrivateDir(join(tmp, 'irqfwd'), uid)) return tmp;
  const own = join(tmp, `irqfwd-${uid ?? 'user'}`);
  if (ensurePrivateDir(own, uid) && ensurePrivateDir(join(own, 'irqfwd'), uid)) return own;
  throw new OutputFileError(
    `neither ${join(tmp, 'irqfwd')} nor ${own} is a directory private to this user (another user's, a symlink, or ` +
      'group/world-writable): name the output file (-o, --trace) or set TMPDIR',
  );
}

/**
 * Writes `data` to `path` without following a symlink at `path` and without clobbering a file that is not a regular
 * file of `uid` (the parent directory is the caller's: a private one, or one the user named).
 */
export function writeOwnFile(path: string, data: string, uid: Uid): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o666);
  } catch (e) {
    if (code(e) === 'ELOOP') throw new OutputFileError(`${path} is a symbolic link: not written through`);
    throw new OutputFileError(`cannot write ${path}: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new OutputFileError(`${path} is not a regular file: not overwritten`);
    if (uid !== null && st.uid !== uid)
      throw new OutputFileError(`${path} belongs to user ${st.uid}, not to this user (${uid}): not overwritten`);
    ftruncateSync(fd, 0);
    writeFileSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

export function currentUid(): Uid {
  return typeof process.getuid === 'function' ? process.getuid() : null;
}
