// Register layouts checked against the reference text, byte by byte. Every expected
// value is written out from rfc-protocol.md §2.1 or VIRTIO 1.2 §4.1.4.3 (spec-and-peers
// §1.7), never taken from the code under test.
import { describe, expect, it } from 'vitest';
import {
  EPF_VHOST_CMD_STATUS,
  EPF_VHOST_DEVICE_CFG,
  EPF_VHOST_EXT,
  EPF_VHOST_HOST_CMD,
  EPF_VHOST_MAGIC,
  EPF_VHOST_MAX_VQS,
  EPF_VHOST_QUEUE_CMD,
  EPF_VHOST_QUEUE_REG,
  EPF_VHOST_REG,
  PCI_FABRIC_MAGIC,
  VIRTIO_PCI_CAP,
  VIRTIO_PCI_COMMON,
  VIRTIO_PCI_ISR,
} from '@x/transport-pci-epf';

describe('rfc-protocol §2.1: the BAR register block', () => {
  it('device fields at the offsets of the table (host_features 0x00 … cmd_status 0x1B)', () => {
    // The table: host_features u64 @0x00, guest_features u64 @0x08, msix_config u16 @0x10,
    // num_queues u16 @0x12, device_status u8 @0x14, config_generation u8 @0x15,
    // isr u32 @0x16, cmd u8 @0x1A, cmd_status u8 @0x1B, queues from 0x1C.
    expect(EPF_VHOST_REG).toMatchObject({
      HOST_FEATURES: 0x00,
      GUEST_FEATURES: 0x08,
      MSIX_CONFIG: 0x10,
      NUM_QUEUES: 0x12,
      DEVICE_STATUS: 0x14,
      CONFIG_GENERATION: 0x15,
      ISR: 0x16,
      CMD: 0x1a,
      CMD_STATUS: 0x1b,
      QUEUE: 0x1c,
      QUEUE_STRIDE: 16,
    });
    // __packed: each field starts where the previous one ends.
    // 0x00 + 8 = 0x08; 0x08 + 8 = 0x10; 0x10 + 2 = 0x12; 0x12 + 2 = 0x14; 0x14 + 1 = 0x15;
    // 0x15 + 1 = 0x16; 0x16 + 4 = 0x1A; 0x1A + 1 = 0x1B; 0x1B + 1 = 0x1C.
    const sizes: Array<[number, number]> = [
      [EPF_VHOST_REG.HOST_FEATURES, 8],
      [EPF_VHOST_REG.GUEST_FEATURES, 8],
      [EPF_VHOST_REG.MSIX_CONFIG, 2],
      [EPF_VHOST_REG.NUM_QUEUES, 2],
      [EPF_VHOST_REG.DEVICE_STATUS, 1],
      [EPF_VHOST_REG.CONFIG_GENERATION, 1],
      [EPF_VHOST_REG.ISR, 4],
      [EPF_VHOST_REG.CMD, 1],
      [EPF_VHOST_REG.CMD_STATUS, 1],
    ];
    for (let i = 1; i < sizes.length; i++) expect(sizes[i]![0]).toBe(sizes[i - 1]![0] + sizes[i - 1]![1]);
    expect(sizes.at(-1)![0] + sizes.at(-1)![1]).toBe(EPF_VHOST_REG.QUEUE);
  });

  it('a queue block: cmd +0, cmd_status +1, status +2, num_buffers +4, msix_vector +6, queue_addr +8 (16 bytes)', () => {
    expect(EPF_VHOST_QUEUE_REG).toEqual({ CMD: 0, CMD_STATUS: 1, STATUS: 2, NUM_BUFFERS: 4, MSIX_VECTOR: 6, QUEUE_ADDR: 8 });
    // 8 (queue_addr offset) + 8 (u64) = 16 = the stride.
    expect(EPF_VHOST_QUEUE_REG.QUEUE_ADDR + 8).toBe(EPF_VHOST_REG.QUEUE_STRIDE);
  });

  it('8 queue blocks end the struct at 0x9C (156 bytes): 0x1C + 8 × 16 = 28 + 128 = 156', () => {
    expect(EPF_VHOST_MAX_VQS).toBe(8);
    expect(EPF_VHOST_REG.QUEUE + EPF_VHOST_MAX_VQS * EPF_VHOST_REG.QUEUE_STRIDE).toBe(156);
    expect(EPF_VHOST_REG.END).toBe(0x9c);
  });

  it('the enums: host_cmd NONE 0 SET_STATUS 1 FINALIZE_FEATURES 2 RESET 3; queue_cmd … NOTIFY 3; status NONE 0 OKAY 1 ERROR 2', () => {
    expect(EPF_VHOST_HOST_CMD).toEqual({ NONE: 0, SET_STATUS: 1, FINALIZE_FEATURES: 2, RESET: 3 });
    expect(EPF_VHOST_QUEUE_CMD).toEqual({ NONE: 0, ACTIVATE: 1, DEACTIVATE: 2, NOTIFY: 3 });
    expect(EPF_VHOST_CMD_STATUS).toEqual({ NONE: 0, OKAY: 1, ERROR: 2 });
  });

  it('the extension starts at 0x9C rounded up to 8 (0xA0) and the device-config area at 0x110 (the offset the only RC copy uses)', () => {
    expect(EPF_VHOST_EXT.MAGIC).toBe(0xa0);
    expect(EPF_VHOST_EXT.END).toBeLessThanOrEqual(EPF_VHOST_DEVICE_CFG.OFFSET);
    expect(EPF_VHOST_DEVICE_CFG.OFFSET).toBe(0x110);
    // The 1 KiB reserve of §2.1, then the MSI-X table: 0x110 + 0x400 = 0x510.
    expect(EPF_VHOST_DEVICE_CFG.SIZE).toBe(1024);
    expect(EPF_VHOST_DEVICE_CFG.MSIX_TABLE).toBe(0x510);
  });

  it('signatures: "vhep" and "pcie" as little-endian u32s', () => {
    const le = (s: string): number => new DataView(new TextEncoder().encode(s).buffer).getUint32(0, true);
    expect(EPF_VHOST_MAGIC).toBe(le('vhep'));
    expect(PCI_FABRIC_MAGIC).toBe(le('pcie'));
  });
});

describe('VIRTIO 1.2 §4.1.4.3: struct virtio_pci_common_cfg', () => {
  it('offsets computed from the struct (le32 ×4, le16 ×2, u8 ×2, le16 ×5, le64 ×3, le16 ×2; 1.3 adds le16 ×2)', () => {
    const fields: Array<[keyof typeof VIRTIO_PCI_COMMON, number]> = [
      ['DFSELECT', 4],
      ['DF', 4],
      ['GFSELECT', 4],
      ['GF', 4],
      ['MSIX', 2],
      ['NUMQ', 2],
      ['STATUS', 1],
      ['CFGGENERATION', 1],
      ['Q_SELECT', 2],
      ['Q_SIZE', 2],
      ['Q_MSIX', 2],
      ['Q_ENABLE', 2],
      ['Q_NOFF', 2],
      ['Q_DESCLO', 8],
      ['Q_AVAILLO', 8],
      ['Q_USEDLO', 8],
      ['Q_NDATA', 2],
      ['Q_RESET', 2],
      ['ADM_Q_IDX', 2],
      ['ADM_Q_NUM', 2],
    ];
    let at = 0;
    for (const [name, size] of fields) {
      expect([name, VIRTIO_PCI_COMMON[name]]).toEqual([name, at]);
      at += size;
    }
    expect(at).toBe(VIRTIO_PCI_COMMON.SIZE);
    // The table of spec-and-peers §1.7, literally.
    expect([VIRTIO_PCI_COMMON.Q_SIZE, VIRTIO_PCI_COMMON.Q_NOFF, VIRTIO_PCI_COMMON.Q_DESCLO, VIRTIO_PCI_COMMON.Q_USEDLO, VIRTIO_PCI_COMMON.Q_RESET]).toEqual([
      0x18, 0x1e, 0x20, 0x30, 0x3a,
    ]);
    expect(VIRTIO_PCI_COMMON.Q_DESCHI).toBe(VIRTIO_PCI_COMMON.Q_DESCLO + 4);
  });

  it('§4.1.4: virtio_pci_cap is 16 bytes, cfg_type COMMON 1 NOTIFY 2 ISR 3 DEVICE 4 PCI 5; ISR bit 0 queue, bit 1 config', () => {
    expect(VIRTIO_PCI_CAP).toMatchObject({ VNDR: 0, NEXT: 1, LEN: 2, CFG_TYPE: 3, BAR: 4, ID: 5, OFFSET: 8, LENGTH: 12, SIZE: 16, NOTIFY_OFF_MULTIPLIER: 16 });
    expect([VIRTIO_PCI_CAP.COMMON_CFG, VIRTIO_PCI_CAP.NOTIFY_CFG, VIRTIO_PCI_CAP.ISR_CFG, VIRTIO_PCI_CAP.DEVICE_CFG, VIRTIO_PCI_CAP.PCI_CFG]).toEqual([1, 2, 3, 4, 5]);
    expect(VIRTIO_PCI_ISR).toEqual({ QUEUE: 1, CONFIG: 2 });
  });
});
