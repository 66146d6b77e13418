import { describe, expect, it } from 'vitest';
import { classifyViewFile, parseChromeTrace, ViewInputError } from './chromeTrace.js';

describe('classifyViewFile', () => {
  it('tells Chrome traces, replay files and scenarios apart', () => {
    expect(classifyViewFile('{"traceEvents":[]}')).toBe('chrome');
    expect(classifyViewFile('[{"name":"x","ph":"i","ts":1}]')).toBe('chrome');
    expect(classifyViewFile('{"format":1,"variant":"naive","schedule":[0,2]}')).toBe('replay');
    expect(classifyViewFile('name: default\nduration: 1000\n')).toBe('scenario');
    expect(classifyViewFile('{"name":"json-scenario"}')).toBe('scenario');
  });
});

describe('parseChromeTrace', () => {
  it('reads the object and the bare-array forms', () => {
    expect(parseChromeTrace('{"traceEvents":[{"name":"a","ph":"i","ts":2}],"displayTimeUnit":"ns"}', 'f')).toEqual({
      traceEvents: [{ name: 'a', ph: 'i', ts: 2 }],
      displayTimeUnit: 'ns',
    });
    expect(parseChromeTrace('[{"name":"a","ph":"X","ts":1,"dur":2}]', 'f').traceEvents).toHaveLength(1);
  });

  it('names the file and the bad event', () => {
    expect(() => parseChromeTrace('{', 'x.json')).toThrow(/^x\.json: not JSON/);
    expect(() => parseChromeTrace('{"traceEvents":[{"ph":"i"}]}', 'x.json')).toThrow(
      new ViewInputError('x.json: traceEvents[0] has no name or ph'),
    );
    expect(() => parseChromeTrace('{"traceEvents":[{"name":"a","ph":"i","ts":"1"}]}', 'x.json')).toThrow(
      /traceEvents\[0\]\.ts is not a number/,
    );
    expect(() => parseChromeTrace('{"events":[]}', 'x.json')).toThrow(/no traceEvents array/);
  });
});
