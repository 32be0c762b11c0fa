import { describe, expect, it } from 'vitest';
import { VirtioEchoClient, createPciEpfTestbed } from '@x/transport-pci-epf/testing';

for (const mode of ['rfc', 'modern'] as const) {
  for (const doorbell of [true, false]) {
    describe(`smoke ${mode} ${doorbell ? 'doorbell' : 'poll'}`, () => {
      it('echo 200 messages', async () => {
        const client = new VirtioEchoClient();
        const tb = await createPciEpfTestbed({ mode, link: { epc: { doorbell } }, virtioDriver: client });
        try {
          expect(tb.host!.device.driver).toBe(client);
          await client.run(200, 64, 10_000);
          expect(client.counts).toMatchObject({ received: 200, duplicates: 0, corrupt: 0, outOfOrder: 0 });
        } finally {
          await tb.dispose();
        }
      });
    });
  }
}
