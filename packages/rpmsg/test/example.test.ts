import { expect, it } from 'vitest';
import { main } from '../examples/basic.js';

it('the README example runs: an announced echo channel, AS binding, and a for-await endpoint', async () => {
  expect(await main()).toBe(['channel rpmsg-echo 0x400 -> 0x400: ping', 'device side bound: true', 'raw endpoint got: one two three'].join('\n'));
});
