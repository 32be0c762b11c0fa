import { expect, it } from 'vitest';
import { main } from '../examples/basic.js';

it('the README example runs in the RFC mode: TI ids, VERSION_1 | EVENT_IDX | INDIRECT_DESC, 1000 echoes', async () => {
  expect(await main('rfc')).toEqual({
    mode: 'rfc',
    function: '104c:b500',
    features: '0x130000000',
    queues: 'rx(256) tx(256)',
    echoed: 1000,
    duplicates: 0,
  });
});

it('the README example runs in the modern mode: 0x1AF4:0x1047, the stock driver', async () => {
  expect(await main('modern')).toMatchObject({ mode: 'modern', function: '1af4:1047', echoed: 1000, duplicates: 0 });
});
