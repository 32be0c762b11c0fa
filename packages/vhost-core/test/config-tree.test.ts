import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigGroup, ConfigItem, ConfigTree, isVhostError, type ConfigItemType } from '@x/vhost-core';

/**
 * A toy subsystem in the shape the rpmsg issue needs (`rpmsg/channel/<name>/<cN>` made
 * by mkdir, `rpmsg/virtproc/<dev>` linking to channel items, a second link BUSY):
 * proof that another package can plug its own subtree and link rules in.
 */
function toySubsystem(tree: ConfigTree) {
  const log: string[] = [];
  const channelItem: ConfigItemType = {
    attributes: [
      { name: 'src', type: 'number', description: 'local address', default: 0x400, validate: (v) => ((v as number) >= 0 ? undefined : 'must be ≥ 0') },
      { name: 'state', type: 'string', description: 'FREE or BUSY', readOnly: true, show: (i) => (i.backlinks.length > 0 ? 'BUSY' : 'FREE') },
    ],
  };
  const channelGroup: ConfigItemType = {
    makeItem: (_g, name) => new ConfigItem(name, channelItem),
    dropItem: (_g, item) => void log.push(`drop ${item.path}`),
  };
  const virtproc: ConfigItemType = {
    allowLink: (source, target) => {
      if (target.type !== channelItem) throw new Error('only channel items can be linked here');
      if (target.backlinks.length > 0) throw Object.assign(new Error('channel in use'), { name: 'VhostError', code: 'BUSY' });
      log.push(`create ${target.parent!.name}/${target.name} on ${source.name}`);
    },
    dropLink: (source, target) => void log.push(`delete ${target.parent!.name}/${target.name} on ${source.name}`),
  };
  const rpmsg = tree.root.add(new ConfigGroup('rpmsg'));
  const channel = rpmsg.add(new ConfigGroup('channel'));
  channel.add(new ConfigGroup('rpmsg-client-sample', channelGroup));
  const vp = rpmsg.add(new ConfigGroup('virtproc'));
  vp.add(new ConfigItem('vhost0', virtproc));
  return log;
}

describe('ConfigTree: the generic item / group / attribute / link model (configfs analogue)', () => {
  it('mkdir, attributes with rules, links with the subsystem hooks, rmdir', async () => {
    const tree = new ConfigTree();
    const log = toySubsystem(tree);
    const c0 = await tree.mkdir('/rpmsg/channel/rpmsg-client-sample/c0');
    expect(c0.path).toBe('/rpmsg/channel/rpmsg-client-sample/c0');
    expect(c0.userCreated).toBe(true);
    expect(tree.read('/rpmsg/channel/rpmsg-client-sample/c0/state')).toBe('FREE');
    await tree.set('/rpmsg/channel/rpmsg-client-sample/c0', { src: 1025 });
    expect(c0.get('src')).toBe(1025);
    await tree.link('/rpmsg/virtproc/vhost0', '/rpmsg/channel/rpmsg-client-sample/c0');
    expect(tree.read('rpmsg/channel/rpmsg-client-sample/c0/state')).toBe('BUSY');
    expect(log).toEqual(['create rpmsg-client-sample/c0 on vhost0']);
    await expect(tree.rmdir('/rpmsg/channel/rpmsg-client-sample/c0')).rejects.toMatchObject({ code: 'BUSY', path: '/rpmsg/channel/rpmsg-client-sample/c0' });
    await tree.unlink('/rpmsg/virtproc/vhost0', 'c0');
    await tree.rmdir('/rpmsg/channel/rpmsg-client-sample/c0');
    expect(log).toEqual([
      'create rpmsg-client-sample/c0 on vhost0',
      'delete rpmsg-client-sample/c0 on vhost0',
      'drop /rpmsg/channel/rpmsg-client-sample/c0',
    ]);
    expect(tree.find('/rpmsg/channel/rpmsg-client-sample/c0')).toBeUndefined();
  });

  it('errors name the path and the rule', async () => {
    const tree = new ConfigTree();
    toySubsystem(tree);
    await tree.mkdir('/rpmsg/channel/rpmsg-client-sample/c0');
    const cases: Array<[Promise<unknown> | (() => unknown), string, string, RegExp]> = [
      [tree.mkdir('/rpmsg/virtproc/x'), 'CONFIG_PATH', '/rpmsg/virtproc/x', /does not allow creating items/],
      [tree.mkdir('/rpmsg/nope/x'), 'CONFIG_PATH', '/rpmsg/nope', /no such item in \/rpmsg/],
      [tree.mkdir('/rpmsg/channel/rpmsg-client-sample/c0'), 'CONFIG_PATH', '/rpmsg/channel/rpmsg-client-sample/c0', /already used/],
      [tree.set('/rpmsg/channel/rpmsg-client-sample/c0', { src: -1 }), 'CONFIG_VALUE', '/rpmsg/channel/rpmsg-client-sample/c0/src', /-1 must be ≥ 0/],
      [tree.set('/rpmsg/channel/rpmsg-client-sample/c0', { src: '1' }), 'CONFIG_VALUE', '/rpmsg/channel/rpmsg-client-sample/c0/src', /must be a finite number/],
      [tree.set('/rpmsg/channel/rpmsg-client-sample/c0', { dst: 1 }), 'CONFIG_PATH', '/rpmsg/channel/rpmsg-client-sample/c0/dst', /no such attribute \(attributes here: src, state\)/],
      [tree.set('/rpmsg/channel/rpmsg-client-sample/c0', { state: 'FREE' }), 'CONFIG_VALUE', '/rpmsg/channel/rpmsg-client-sample/c0/state', /read-only/],
      [tree.link('/rpmsg/virtproc/vhost0', '/rpmsg/channel'), 'CONFIG_LINK', '/rpmsg/virtproc/vhost0/channel', /only channel items/],
      [tree.link('/rpmsg/virtproc/vhost0', '/rpmsg/gone'), 'CONFIG_LINK', '/rpmsg/virtproc/vhost0', /target \/rpmsg\/gone does not exist/],
      [tree.link('/rpmsg/channel', '/rpmsg/virtproc'), 'CONFIG_LINK', '/rpmsg/channel/virtproc', /holds no links/],
      [tree.unlink('/rpmsg/virtproc/vhost0', 'c9'), 'CONFIG_LINK', '/rpmsg/virtproc/vhost0/c9', /no such link/],
      [tree.rmdir('/rpmsg/virtproc/vhost0'), 'CONFIG_PATH', '/rpmsg/virtproc/vhost0', /only items made with mkdir/],
      [tree.mkdir('/rpmsg/channel/rpmsg-client-sample/$x'), 'CONFIG_PATH', '/rpmsg/channel/rpmsg-client-sample/$x', /must not start with "\$"/],
    ];
    for (const [p, code, path, rule] of cases) {
      let err: unknown;
      try {
        await (typeof p === 'function' ? p() : p);
      } catch (e) {
        err = e;
      }
      expect(isVhostError(err, code as never), `${path}: ${String(err)}`).toBe(true);
      expect((err as { path: string }).path).toBe(path);
      expect((err as Error).message).toMatch(rule);
    }
    // "$" inside a name is allowed; only a leading "$" is reserved for the document format.
    await expect(tree.mkdir('/rpmsg/channel/rpmsg-client-sample/a$b')).resolves.toBeInstanceOf(ConfigItem);
  });

  it('a second link to a channel is refused with the subsystem code (BUSY), and the first stays', async () => {
    const tree = new ConfigTree();
    toySubsystem(tree);
    (tree.get('/rpmsg/virtproc') as ConfigGroup).add(new ConfigItem('vhost1', (tree.get('/rpmsg/virtproc/vhost0') as ConfigItem).type));
    await tree.mkdir('/rpmsg/channel/rpmsg-client-sample/c0');
    await tree.link('/rpmsg/virtproc/vhost0', '/rpmsg/channel/rpmsg-client-sample/c0');
    await expect(tree.link('/rpmsg/virtproc/vhost1', '/rpmsg/channel/rpmsg-client-sample/c0')).rejects.toMatchObject({
      code: 'BUSY',
      path: '/rpmsg/virtproc/vhost1/c0',
    });
    expect(tree.get('/rpmsg/channel/rpmsg-client-sample/c0').backlinks.map((b) => b.source.path)).toEqual(['/rpmsg/virtproc/vhost0']);
  });

  it('dump → load → dump gives the same document; load is idempotent', async () => {
    const a = new ConfigTree();
    toySubsystem(a);
    await a.mkdir('/rpmsg/channel/rpmsg-client-sample/c0');
    await a.mkdir('/rpmsg/channel/rpmsg-client-sample/c1');
    await a.set('/rpmsg/channel/rpmsg-client-sample/c1', { src: 2048 });
    await a.link('/rpmsg/virtproc/vhost0', '/rpmsg/channel/rpmsg-client-sample/c1');
    const doc = a.dump();
    expect(doc).toEqual({
      rpmsg: {
        channel: { 'rpmsg-client-sample': { c0: { src: 1024 }, c1: { src: 2048 } } },
        virtproc: { vhost0: { c1: { $link: '/rpmsg/channel/rpmsg-client-sample/c1' } } },
      },
    });
    const b = new ConfigTree();
    const logB = toySubsystem(b);
    await b.load(JSON.parse(JSON.stringify(doc)));
    expect(b.dump()).toEqual(doc);
    expect(logB).toEqual(['create rpmsg-client-sample/c1 on vhost0']);
    await b.load(b.dump());
    expect(b.dump()).toEqual(doc);
    expect(logB.length).toBe(1);
  });

  it('load is all or nothing: an error names the path and undoes what was done', async () => {
    const tree = new ConfigTree();
    const log = toySubsystem(tree);
    const before = tree.dump();
    const bad = {
      rpmsg: {
        channel: { 'rpmsg-client-sample': { c0: { src: 1030 }, c1: {} } },
        virtproc: {
          vhost0: {
            c0: { $link: '/rpmsg/channel/rpmsg-client-sample/c0' },
            c1: { $link: '/rpmsg/channel/rpmsg-client-sample/c9' },
          },
        },
      },
    };
    await expect(tree.load(bad)).rejects.toMatchObject({ code: 'CONFIG_LINK', path: '/rpmsg/virtproc/vhost0' });
    expect(tree.dump()).toEqual(before);
    // The first link was made and then undone; the mkdirs were undone through dropItem.
    expect(log).toEqual([
      'create rpmsg-client-sample/c0 on vhost0',
      'delete rpmsg-client-sample/c0 on vhost0',
      'drop /rpmsg/channel/rpmsg-client-sample/c1',
      'drop /rpmsg/channel/rpmsg-client-sample/c0',
    ]);
  });

  it.each([
    [{ rpmsg: { channel: { 'rpmsg-client-sample': { c0: { src: 'x' } } } } }, 'CONFIG_VALUE', '/rpmsg/channel/rpmsg-client-sample/c0/src'],
    [{ rpmsg: { channel: { nope: { c0: {} } } } }, 'CONFIG_PATH', '/rpmsg/channel/nope'],
    [{ rpmsg: { virtproc: { vhost0: { src: 1 } } } }, 'CONFIG_PATH', '/rpmsg/virtproc/vhost0/src'],
    [{ rpmsg: { virtproc: { vhost0: { c0: { $link: 5 } } } } }, 'CONFIG_VALUE', '/rpmsg/virtproc/vhost0/c0'],
    [{ rpmsg: { virtproc: { vhost0: { c0: { $link: '/x', other: 1 } } } } }, 'CONFIG_VALUE', '/rpmsg/virtproc/vhost0/c0'],
    [{ rpmsg: { $version: 1 } }, 'CONFIG_PATH', '/rpmsg/$version'],
    [{ rpmsg: [] }, 'CONFIG_VALUE', '/rpmsg'],
    [{ rpmsg: { channel: { 'rpmsg-client-sample': { c0: { src: null } } } } }, 'CONFIG_VALUE', '/rpmsg/channel/rpmsg-client-sample/c0/src'],
  ])('load %j → %s at %s', async (doc, code, path) => {
    const tree = new ConfigTree();
    toySubsystem(tree);
    await expect(tree.load(doc as never)).rejects.toMatchObject({ code, path });
  });

  it('ignores $comment keys and reads / writes JSON files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vhost-core-'));
    try {
      const a = new ConfigTree();
      toySubsystem(a);
      const file = join(dir, 'config.json');
      await writeFile(file, JSON.stringify({ $comment: 'two channels', rpmsg: { channel: { 'rpmsg-client-sample': { c0: {}, c1: { src: 7 } } } } }));
      await a.loadFile(file);
      const out = join(dir, 'out.json');
      await a.saveFile(out);
      const b = new ConfigTree();
      toySubsystem(b);
      await b.loadFile(out);
      expect(b.dump()).toEqual(a.dump());
      expect(JSON.parse(await readFile(out, 'utf8')).rpmsg.channel['rpmsg-client-sample'].c1).toEqual({ src: 7 });
      await writeFile(file, '{ not json');
      await expect(a.loadFile(file)).rejects.toMatchObject({ code: 'CONFIG_VALUE', path: '/' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('bigint attributes are written in JSON as hex strings and read from hex, decimal or safe numbers', async () => {
    const tree = new ConfigTree();
    tree.root.add(new ConfigItem('x', { attributes: [{ name: 'f', type: 'bigint', description: 'features', default: 0n }] }));
    for (const [input, value] of [
      ['0x1_0', undefined],
      ['0x10', 16n],
      ['255', 255n],
      [3, 3n],
      [2 ** 53, undefined],
      [-1, undefined],
    ] as const) {
      const p = tree.set('/x', { f: input as never });
      if (value === undefined) await expect(p).rejects.toMatchObject({ code: 'CONFIG_VALUE', path: '/x/f' });
      else {
        await p;
        expect(tree.read('/x/f')).toBe(value);
      }
    }
    expect(tree.dump()).toEqual({ x: { f: '0x3' } });
  });
});
