import { describe, expect, it } from 'vitest';
import { errnoOf } from '../abi/errno.js';
import { C_NONE } from '../sim/costs.js';
import { ModelError } from '../sim/errors.js';
import { op, type TaskGen } from '../sim/task.js';
import type { FileOperations } from './file.js';
import { Kernel } from './kernel.js';

describe('Kernel: device paths', () => {
  it('exact paths win over prefix resolvers; unknown paths are ENOENT', () => {
    const k = new Kernel({ cpus: 1 });
    const opened: string[] = [];
    const mk = (tag: string): FileOperations => ({
      *open(file) {
        yield op(C_NONE);
        opened.push(`${tag}:${String(file.inodePrivate)}`);
      },
    });
    k.registerChrdev('/dev/vfio/vfio', mk('container'));
    k.registerPathResolver('/dev/vfio/', {
      resolvePath: (rest) => (rest === '7' ? { fops: mk('group'), inodePrivate: 7 } : undefined),
    });
    const p = k.process();
    p.open('/dev/vfio/vfio');
    p.open('/dev/vfio/7');
    expect(opened).toEqual(['container:undefined', 'group:7']);
    expect(errnoOf(() => p.open('/dev/vfio/8'))).toBe('ENOENT');
    expect(errnoOf(() => p.open('/dev/vfio/'))).toBe('ENOENT');
    expect(errnoOf(() => p.open('/dev/kvm'))).toBe('ENOENT');
    expect(() => k.registerChrdev('/dev/vfio/vfio', {})).toThrow(ModelError);
  });

  it('anon_inode_getfd installs a file named anon_inode:<name> with the requested flags', () => {
    const k = new Kernel({ cpus: 1 });
    const p = k.process();
    const fd = k.anonInodeGetfd('kvm-vm', {}, 'vm', 0o2 | 0o4000 | 0o2000000, p.files);
    const f = p.files.lookup(fd)!;
    expect(f.name).toBe('anon_inode:kvm-vm');
    expect(f.privateData).toBe('vm');
    expect(f.nonblock).toBe(true);
    expect(p.files.getCloexec(fd)).toBe(true);
  });
});

describe('Kernel: current, task_work', () => {
  it('kernel code inside a syscall sees its process as current; kernel threads have none', () => {
    const k = new Kernel({ cpus: 1 });
    const p = k.process();
    const seen: (number | null)[] = [];
    k.registerChrdev('/dev/who', {
      *unlockedIoctl() {
        yield op(C_NONE);
        seen.push(k.currentUser().pid);
        return 0;
      },
    });
    p.ioctl(p.open('/dev/who'), 1, 0);
    k.kthreadRun(
      'kt',
      0,
      (function* (): TaskGen<void> {
        yield op(C_NONE);
        seen.push(k.currentUserOrNull()?.pid ?? null);
      })(),
    );
    k.settle();
    expect(seen).toEqual([p.pid, null]);
  });

  it('task_work runs newest first, after the body and before the syscall returns', () => {
    const k = new Kernel({ cpus: 1 });
    const p = k.process();
    const log: string[] = [];
    k.registerChrdev('/dev/tw', {
      *unlockedIoctl() {
        yield op(C_NONE);
        for (const n of ['a', 'b', 'c']) {
          expect(
            k.taskWorkAdd({
              *taskWork() {
                yield op(C_NONE);
                log.push(n);
              },
            }),
          ).toBe(true);
        }
        log.push('body');
        return 0;
      },
    });
    p.ioctl(p.open('/dev/tw'), 0, 0);
    expect(log).toEqual(['body', 'c', 'b', 'a']);
    expect(k.taskWorkAdd({ *taskWork() {} })).toBe(false); // outside any task
  });
});
