import { describe, expect, it } from 'vitest';
import { selfTimes, type CpuProfile } from '../report/prof-top.js';

const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });

describe('prof-top: self time per function from a .cpuprofile', () => {
  it('gives each sample the time until the next one and sums by function and place', () => {
    const p: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame('(root)') },
        { id: 2, callFrame: frame('getBuf', 'file:///x/virtqueue.ts', 41) },
        { id: 3, callFrame: frame('getBuf', 'file:///x/virtqueue.ts', 41) }, // same function, another call path
        { id: 4, callFrame: frame('') },
      ],
      samples: [2, 3, 4, 2],
      timeDeltas: [0, 1000, 3000, 2000],
      startTime: 0,
      endTime: 6000,
    };
    const t = selfTimes(p);
    // getBuf: 1000 (id 2, first) + 3000 (id 3) + 0 (id 2, last); anonymous: 2000
    expect(t).toEqual([
      { name: 'getBuf', where: 'virtqueue.ts:42', selfMs: 4, share: 4 / 6 },
      { name: '(anonymous)', where: '', selfMs: 2, share: 2 / 6 },
    ]);
  });

  it('falls back to hit counts when the profile has no samples', () => {
    const t = selfTimes({
      nodes: [
        { id: 1, callFrame: frame('a'), hitCount: 3 },
        { id: 2, callFrame: frame('b'), hitCount: 1 },
      ],
      startTime: 0,
      endTime: 4000,
    });
    expect(t.map((x) => [x.name, x.selfMs])).toEqual([
      ['a', 3],
      ['b', 1],
    ]);
  });
});
