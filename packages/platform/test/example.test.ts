import { expect, it } from 'vitest';
import { main } from '../examples/basic.js';

const expected = [
  // The consumer sees the region at 0x1_0000_0000; the slot is at +0x100.
  'consumer read "hello #1" at 0x100000100',
  'consumer read "hello #2" at 0x100000100',
  'consumer read "hello #3" at 0x100000100',
  'doorbell rang 3 times, ack 3 times',
];

it('the README example runs: two systems in two workers exchange three messages through one region and two lines', async () => {
  expect(await main()).toEqual(expected);
});

it('the same systems give the same output on one thread (deterministic mode)', async () => {
  expect(await main('deterministic')).toEqual(expected);
});
