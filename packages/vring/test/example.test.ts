import { expect, it } from 'vitest';
import { main } from '../examples/basic.js';

it('the README example runs: one request and its reply through the ring', () => {
  expect(main()).toBe('kick=true irq=true token=my request reply="pong to ping"');
});
