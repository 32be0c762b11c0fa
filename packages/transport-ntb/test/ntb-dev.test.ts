// NtbDev: ops validated at registration like Linux ntb_dev_ops_is_valid
// (include/linux/ntb.h), the inline wrappers' argument checks and fallbacks, and the
// context (ntb_set_ctx) that link and doorbell events reach.
import { describe, expect, it } from 'vitest';
import { ArrayBufferMemory } from '@x/vring';
import { NtbDev, checkNtbDevOps, isNtbError, type NtbDevOps } from '@x/transport-ntb';

/** The smallest valid ops table: the required ops of ntb_dev_ops_is_valid, with mw_set_trans. */
function minimal(): NtbDevOps {
  return {
    linkIsUp: () => ({ up: false, speed: 0, width: 0 }),
    linkEnable: () => undefined,
    linkDisable: () => undefined,
    mwCount: () => 1,
    mwGetAlign: () => ({ addrAlign: 4096, sizeAlign: 4096, sizeMax: 0x10_0000 }),
    mwSetTrans: () => undefined,
    mwClearTrans: () => undefined,
    peerMwCount: () => 1,
    peerMwGetAddr: () => ({ base: 0x1000_0000, size: 0x10_0000 }),
    dbValidMask: () => 0xffff,
    dbRead: () => 0,
    dbClear: () => undefined,
    dbSetMask: () => undefined,
    dbClearMask: () => undefined,
    peerDbSet: () => undefined,
  };
}

function invalid(ops: NtbDevOps): string {
  try {
    checkNtbDevOps(ops);
  } catch (e) {
    expect(isNtbError(e, 'INVALID_OPS')).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected INVALID_OPS');
}

const memory = new ArrayBufferMemory(new ArrayBuffer(0x10000), { base: 0x8000_0000 });
const dma = { addr: 0x8000_0000, size: 0x10000 };

describe('ntb_dev_ops_is_valid', () => {
  it('accepts the required ops alone', () => {
    expect(() => checkNtbDevOps(minimal())).not.toThrow();
    expect(() => new NtbDev({ ops: minimal(), memory, dma })).not.toThrow();
  });

  it('names each missing required op (link, memory window and doorbell ops)', () => {
    const ops = minimal() as Partial<NtbDevOps>;
    delete ops.linkIsUp;
    delete ops.mwGetAlign;
    delete ops.peerDbSet;
    const m = invalid(ops as NtbDevOps);
    expect(m).toContain('linkIsUp is required');
    expect(m).toContain('mwGetAlign is required');
    expect(m).toContain('peerDbSet is required');
  });

  it('needs one of mw_set_trans or peer_mw_set_trans ("one or both MW interfaces")', () => {
    const ops = minimal() as Partial<NtbDevOps>;
    delete ops.mwSetTrans;
    delete ops.mwClearTrans;
    expect(invalid(ops as NtbDevOps)).toContain('one of mwSetTrans or peerMwSetTrans');
  });

  it('paired ops: mw_set_trans without mw_clear_trans, db_vector_count without db_vector_mask', () => {
    const a = minimal() as Partial<NtbDevOps>;
    delete a.mwClearTrans;
    expect(invalid(a as NtbDevOps)).toContain('mwClearTrans is missing');
    const b = { ...minimal(), dbVectorCount: () => 16 };
    expect(invalid(b)).toContain('dbVectorMask is missing');
  });

  it('groups: scratchpads all or nothing, messages all or nothing, ports all or nothing', () => {
    expect(invalid({ ...minimal(), spadCount: () => 64, spadRead: () => 0 })).toMatch(/spadWrite is missing.*peerSpadWrite is missing/s);
    expect(invalid({ ...minimal(), spadRead: () => 0 })).toContain('spadRead without spadCount');
    expect(invalid({ ...minimal(), msgCount: () => 4 })).toContain('msgRead is missing');
    expect(invalid({ ...minimal(), portNumber: () => 0 })).toContain('peerPortCount is missing');
  });

  it('a member that is not a function', () => {
    expect(invalid({ ...minimal(), dbRead: 3 as unknown as () => number })).toContain('dbRead is not a function');
  });
});

describe('NtbDev wrappers', () => {
  const make = (over: Partial<NtbDevOps> = {}) => new NtbDev({ ops: { ...minimal(), ...over }, memory, dma });

  it('argument checks name the argument: TypeError for a type, RangeError for a range', () => {
    const d = make({ spadCount: () => 64, spadRead: () => 0, spadWrite: () => undefined, peerSpadRead: () => 0, peerSpadWrite: () => undefined });
    expect(() => d.spadRead('1' as unknown as number)).toThrow(TypeError);
    expect(() => d.spadRead(64)).toThrow(/sidx must be an integer in 0\.\.63/);
    expect(() => d.peerSpadWrite(1, 0, 0)).toThrow(/pidx/);
    expect(() => d.spadWrite(0, 2 ** 32)).toThrow(RangeError);
    expect(() => d.mwGetAlign(0, 1)).toThrow(/widx/);
  });

  it('peer_db_set outside db_valid_mask is BAD_DOORBELL (0xffff valid: bit 16 is not)', () => {
    const d = make();
    expect(() => d.peerDbSet(1 << 16)).toThrow(expect.objectContaining({ code: 'BAD_DOORBELL' }));
    expect(() => d.peerDbSet(0)).toThrow(expect.objectContaining({ code: 'BAD_DOORBELL' }));
    expect(() => d.peerDbSet(1 << 15)).not.toThrow();
  });

  it('Linux fallbacks: one vector reporting the valid mask; no scratchpads; one peer', () => {
    const d = make();
    expect(d.dbVectorCount()).toBe(1);
    expect(d.dbVectorMask(0)).toBe(0xffff);
    expect(d.spadCount()).toBe(0);
    expect(d.peerPortCount()).toBe(1);
  });

  it('mw_set_trans is checked against mw_get_align: address 4096-aligned, size in 4096 units, ≤ size_max', async () => {
    const d = make();
    await expect(d.mwSetTrans(0, 0, 0x8000_0800, 0x1000)).rejects.toMatchObject({ code: 'BAD_WINDOW' });
    await expect(d.mwSetTrans(0, 0, 0x8000_0000, 0x1800)).rejects.toMatchObject({ code: 'BAD_WINDOW' });
    await expect(d.mwSetTrans(0, 0, 0x8000_0000, 0x20_0000)).rejects.toMatchObject({ code: 'BAD_WINDOW' });
    await expect(d.mwSetTrans(0, 0, 0x8000_0000, 0x10_0000)).resolves.toBeUndefined();
  });

  it('ntb_set_ctx: one client; events reach it; a throwing callback goes to onError', () => {
    const errors: unknown[] = [];
    const d = new NtbDev({ ops: minimal(), memory, dma, onError: (e) => errors.push(e) });
    const seen: string[] = [];
    d.setCtx({ linkEvent: () => seen.push('link'), dbEvent: (v) => seen.push(`db${v}`) });
    expect(() => d.setCtx({})).toThrow(expect.objectContaining({ code: 'BUSY' }));
    d.linkEvent();
    d.dbEvent(3);
    expect(seen).toEqual(['link', 'db3']);
    d.clearCtx();
    d.setCtx({ dbEvent: () => { throw new Error('boom'); } });
    d.dbEvent(0);
    expect(errors).toHaveLength(1);
  });
});
