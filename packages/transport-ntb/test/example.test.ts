// The README's runnable example.
import { expect, it } from 'vitest';
import { main } from '../examples/basic.js';

it('examples/basic.ts: three messages over the NTB come back in order', async () => {
  expect(await main()).toEqual(['hello', 'over', 'NTB']);
});
