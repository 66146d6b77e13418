import { describe, expect, it } from 'vitest';
import { compileFormat, cprintf } from './printf.js';

describe('printf', () => {
  it('pads and prefixes like C', () => {
    expect(cprintf('%016lx', 0xffff800008a1b2c4n)).toBe('ffff800008a1b2c4');
    expect(cprintf('0x%04x', 0x24)).toBe('0x0024');
    expect(cprintf('%08lx', 0x3c5)).toBe('000003c5');
    expect(cprintf('%#x', 255)).toBe('0xff');
    expect(cprintf('%#x', 0)).toBe('0');
    expect(cprintf('%5lu.%06lu', 3, 42)).toBe('    3.000042');
    expect(cprintf('%-5d|', 12)).toBe('12   |');
    expect(cprintf('%05d', -42)).toBe('-0042');
    expect(cprintf('%16s', 'bash')).toBe('            bash');
    expect(cprintf('%.3s', 'abcdef')).toBe('abc');
    expect(cprintf('100%%')).toBe('100%');
  });

  it('wraps integers to the width of the length modifier', () => {
    expect(cprintf('%u', -1)).toBe('4294967295');
    expect(cprintf('%lu', -1)).toBe('18446744073709551615');
    expect(cprintf('%d', 0xffffffff)).toBe('-1');
    expect(cprintf('%x', -1)).toBe('ffffffff');
    expect(cprintf('%lld', 12345678901234n)).toBe('12345678901234');
  });

  it('counts arguments and rejects what it cannot render', () => {
    expect(compileFormat('a %d b %s c').arity).toBe(2);
    expect(() => compileFormat('%p')).toThrow(SyntaxError);
    expect(() => cprintf('%d %d', 1)).toThrow(RangeError);
  });
});
