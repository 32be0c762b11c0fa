import { VhostError, isVhostError } from '../errors.js';
import { Mutex } from '../internal/mutex.js';

/** A value an attribute holds. @public */
export type ConfigValue = number | bigint | string | boolean;

/** The kind of value an attribute holds; `bigint` is written in JSON as a string such as `"0x3"`. @public */
export type ConfigValueType = 'number' | 'bigint' | 'string' | 'boolean';

/**
 * One attribute of an item (configfs `configfs_attribute`), with the rule a value must
 * keep. Unlike the RFC's vhost configfs, which has links only, attributes carry the
 * things the RFC hard-coded (queue size, buffer count and size, features).
 *
 * @public
 */
export interface ConfigAttributeDef {
  /** File name of the attribute. */
  readonly name: string;
  /** What it holds. */
  readonly type: ConfigValueType;
  /** One line for humans. */
  readonly description: string;
  /** Initial value of a writable attribute (required unless `readOnly`). */
  readonly default?: ConfigValue;
  /** Shown but never stored, loaded or dumped; `show` gives its value. */
  readonly readOnly?: boolean;
  /** The value of a read-only attribute. */
  show?(item: ConfigItem): ConfigValue;
  /** Returns the rule `value` breaks, or undefined when it is valid. */
  validate?(value: ConfigValue, item: ConfigItem): string | undefined;
}

/** Where a cross-attribute rule failed. @public */
export interface ConfigRuleViolation {
  /** The attribute to blame. */
  readonly attribute: string;
  /** The rule, in words. */
  readonly rule: string;
}

/**
 * The behaviour of an item or group (configfs `config_item_type`: `ct_attrs`,
 * `ct_item_ops`, `ct_group_ops`). Every hook is optional. Subsystems (vhost here, rpmsg
 * later) plug their rules in through it.
 *
 * @public
 */
export interface ConfigItemType {
  /** The item's attributes. */
  readonly attributes?: readonly ConfigAttributeDef[];
  /**
   * configfs `allow_link`: the item is the link's source; throw to refuse (a
   * {@link VhostError} keeps its code; anything else becomes `CONFIG_LINK`). Without
   * it, the item holds no links.
   */
  allowLink?(source: ConfigItem, target: ConfigItem): void | Promise<void>;
  /** configfs `drop_link`: the link from `source` to `target` is going away. */
  dropLink?(source: ConfigItem, target: ConfigItem): void | Promise<void>;
  /** Refuses attribute stores in the item's current state (e.g. while linked); returns the rule, or undefined. */
  canStore?(item: ConfigItem): string | undefined;
  /** A rule across attributes, checked on the values a store would leave. */
  check?(item: ConfigItem, values: ReadonlyMap<string, ConfigValue>): ConfigRuleViolation | undefined;
  /** configfs `make_item` / `make_group`: present on a group whose children users may create. */
  makeItem?(group: ConfigGroup, name: string): ConfigItem;
  /** configfs `drop_item`: a user-created child is being removed. */
  dropItem?(group: ConfigGroup, item: ConfigItem): void | Promise<void>;
}

/** A link an item holds, seen from its target. @public */
export interface ConfigBacklink {
  /** The item holding the link. */
  readonly source: ConfigItem;
  /** The link's name inside the source. */
  readonly name: string;
}

/** A link in a configuration document: `{ "$link": "/absolute/path/of/target" }`. @public */
export interface ConfigJsonLink {
  /** Absolute path of the link's target. */
  readonly $link: string;
}

/**
 * A configuration document (the JSON form of the tree): each item is an object whose
 * keys are its attributes (JSON scalars; bigints as strings like `"0x3"`), its links
 * (`{ "$link": path }`) and its children (objects). `$comment` keys are ignored.
 *
 * @public
 */
export interface ConfigJson {
  /** An attribute value, a link, or a child item, by name. */
  [key: string]: ConfigJsonValue;
}

/** A value in a {@link ConfigJson} document. @public */
export type ConfigJsonValue = number | string | boolean | ConfigJsonLink | ConfigJson;

const NAME_MAX = 255;

function checkName(name: unknown, where: string): asserts name is string {
  if (typeof name !== 'string') throw new TypeError(`item name must be a string, got ${typeof name}`);
  let rule: string | undefined;
  if (name.length === 0) rule = 'a name must not be empty';
  else if (name.length > NAME_MAX) rule = `a name must be at most ${NAME_MAX} characters`;
  else if (name.includes('/')) rule = 'a name must not contain "/"';
  else if (name === '.' || name === '..') rule = 'a name must not be "." or ".."';
  else if (name.startsWith('$')) rule = 'a name must not start with "$" (reserved for the document format)';
  if (rule !== undefined) throw new VhostError('CONFIG_PATH', rule, { path: joinPath(where, name) });
}

function joinPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

function formatValue(v: ConfigValue): string {
  return typeof v === 'bigint' ? `0x${v.toString(16)}` : JSON.stringify(v);
}

/** Turns a value from code or JSON into the attribute's type, or returns the rule it breaks. */
function coerce(def: ConfigAttributeDef, raw: unknown): { ok: true; value: ConfigValue } | { ok: false; rule: string } {
  switch (def.type) {
    case 'number':
      if (typeof raw === 'number' && Number.isFinite(raw)) return { ok: true, value: raw };
      return { ok: false, rule: `must be a finite number, got ${describe(raw)}` };
    case 'bigint':
      if (typeof raw === 'bigint') return { ok: true, value: raw };
      if (typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0) return { ok: true, value: BigInt(raw) };
      if (typeof raw === 'string' && /^(0x[0-9a-f]+|[0-9]+)$/i.test(raw)) return { ok: true, value: BigInt(raw) };
      return { ok: false, rule: `must be a non-negative integer (a bigint, a safe integer, or a string like "0x3"), got ${describe(raw)}` };
    case 'string':
      if (typeof raw === 'string') return { ok: true, value: raw };
      return { ok: false, rule: `must be a string, got ${describe(raw)}` };
    case 'boolean':
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      return { ok: false, rule: `must be a boolean, got ${describe(raw)}` };
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function noAttribute(item: ConfigItem, name: string): VhostError {
  const names = item.attributes.map((d) => d.name);
  return new VhostError('CONFIG_PATH', `no such attribute (attributes here: ${names.length === 0 ? 'none' : names.join(', ')})`, {
    path: joinPath(item.path, name),
  });
}

function toJsonValue(v: ConfigValue): number | string | boolean {
  return typeof v === 'bigint' ? `0x${v.toString(16)}` : v;
}

/** True only while ConfigTree builds its root (the one item named ""). */
let rootConstruction = false;

let setParent: (item: ConfigItem, parent: ConfigGroup | undefined) => void;
let markUserCreated: (item: ConfigItem) => void;
let storeRaw: (item: ConfigItem, values: ReadonlyMap<string, ConfigValue>) => void;
let addLink: (source: ConfigItem, name: string, target: ConfigItem) => void;
let removeLink: (source: ConfigItem, name: string) => void;
let attachChild: (group: ConfigGroup, child: ConfigItem) => void;
let detachChild: (group: ConfigGroup, name: string) => void;

/**
 * An item of the configuration tree (configfs `config_item`): a directory with
 * attributes and, if its type allows, links to other items.
 *
 * @public
 */
export class ConfigItem {
  /** The item's name (its directory name). */
  readonly name: string;
  /** Its behaviour. */
  readonly type: ConfigItemType;
  #parent: ConfigGroup | undefined = undefined;
  #userCreated = false;
  readonly #values = new Map<string, ConfigValue>();
  readonly #defs = new Map<string, ConfigAttributeDef>();
  readonly #links = new Map<string, ConfigItem>();
  readonly #backlinks: ConfigBacklink[] = [];

  static {
    setParent = (item, parent) => {
      item.#parent = parent;
    };
    markUserCreated = (item) => {
      item.#userCreated = true;
    };
    storeRaw = (item, values) => {
      for (const [k, v] of values) item.#values.set(k, v);
    };
    addLink = (source, name, target) => {
      source.#links.set(name, target);
      target.#backlinks.push(Object.freeze({ source, name }));
    };
    removeLink = (source, name) => {
      const target = source.#links.get(name);
      if (target === undefined) return;
      source.#links.delete(name);
      const i = target.#backlinks.findIndex((b) => b.source === source && b.name === name);
      if (i >= 0) target.#backlinks.splice(i, 1);
    };
  }

  constructor(name: string, type: ConfigItemType = {}) {
    if (name !== '' || !(this instanceof ConfigGroup) || !rootConstruction) checkName(name, '/');
    if (typeof type !== 'object' || type === null) throw new TypeError('type must be an object');
    this.name = name;
    this.type = type;
    for (const def of type.attributes ?? []) {
      if (typeof def.name !== 'string' || def.name.length === 0 || def.name.includes('/') || def.name.startsWith('$')) {
        throw new TypeError(`attribute name ${JSON.stringify(def.name)} is not valid`);
      }
      if (this.#defs.has(def.name)) throw new TypeError(`attribute ${def.name} is defined twice`);
      this.#defs.set(def.name, def);
      if (def.readOnly === true) {
        if (typeof def.show !== 'function') throw new TypeError(`read-only attribute ${def.name} needs show()`);
        continue;
      }
      if (def.default === undefined) throw new TypeError(`attribute ${def.name} needs a default`);
      const c = coerce(def, def.default);
      if (!c.ok) throw new TypeError(`default of attribute ${def.name} ${c.rule}`);
      this.#values.set(def.name, c.value);
    }
  }

  /** The group holding this item; undefined for the root and for detached items. */
  get parent(): ConfigGroup | undefined {
    return this.#parent;
  }

  /** Absolute path, e.g. `/vhost/vhost-transport/ntb0`; `/` for the root. */
  get path(): string {
    const p = this.#parent;
    if (p === undefined) return this.name === '' ? '/' : `(detached)/${this.name}`;
    return joinPath(p.path, this.name);
  }

  /** True when a user made it with mkdir (only those can be removed with rmdir). */
  get userCreated(): boolean {
    return this.#userCreated;
  }

  /** The attribute definitions. */
  get attributes(): readonly ConfigAttributeDef[] {
    return [...this.#defs.values()];
  }

  /** The definition of attribute `name`, or undefined. */
  attribute(name: string): ConfigAttributeDef | undefined {
    return this.#defs.get(name);
  }

  /** The value of attribute `name`; `CONFIG_PATH` when there is none. */
  get(name: string): ConfigValue {
    const def = this.#defs.get(name);
    if (def === undefined) throw noAttribute(this, name);
    if (def.readOnly === true) return def.show!(this);
    return this.#values.get(name)!;
  }

  /** The links this item holds, by link name. */
  get links(): ReadonlyMap<string, ConfigItem> {
    return this.#links;
  }

  /** The links that point at this item. */
  get backlinks(): readonly ConfigBacklink[] {
    return this.#backlinks;
  }

  /** True when `name` is taken in this directory by an attribute, link or child. */
  hasEntry(name: string): boolean {
    return this.#defs.has(name) || this.#links.has(name);
  }
}


/**
 * A group (configfs `config_group`): an item that holds other items. Its type's
 * `makeItem` lets users create children with mkdir; code adds children with
 * {@link ConfigGroup.add}.
 *
 * @public
 */
export class ConfigGroup extends ConfigItem {
  readonly #children = new Map<string, ConfigItem>();

  static {
    attachChild = (group, child) => {
      group.#children.set(child.name, child);
      setParent(child, group);
    };
    detachChild = (group, name) => {
      const child = group.#children.get(name);
      if (child === undefined) return;
      group.#children.delete(name);
      setParent(child, undefined);
    };
  }

  /** The children, by name. */
  get children(): ReadonlyMap<string, ConfigItem> {
    return this.#children;
  }

  /** {@inheritDoc ConfigItem.hasEntry} */
  override hasEntry(name: string): boolean {
    return super.hasEntry(name) || this.#children.has(name);
  }

  /**
   * Adds a child made by code (a default group, a driver's item, a transport's item).
   * `CONFIG_PATH` when the name is taken.
   */
  add<T extends ConfigItem>(child: T): T {
    if (!(child instanceof ConfigItem)) throw new TypeError('child must be a ConfigItem');
    if (child.parent !== undefined || child.path === '/') throw new TypeError(`${child.name} already has a parent`);
    if (this.hasEntry(child.name)) throw new VhostError('CONFIG_PATH', 'the name is already used in this directory', { path: joinPath(this.path, child.name) });
    attachChild(this, child);
    return child;
  }

  /**
   * Removes a child made by code, with its subtree. `BUSY` while a link enters or
   * leaves the subtree (drop the links first).
   */
  remove(name: string): void {
    const child = this.#children.get(name);
    if (child === undefined) throw new VhostError('CONFIG_PATH', 'no such item', { path: joinPath(this.path, name) });
    const link = findLinkAcross(child);
    if (link !== undefined) throw new VhostError('BUSY', `a link ${link} crosses the subtree; unlink it first`, { path: child.path });
    detachChild(this, name);
  }
}

/** Every item of a subtree, parents first. */
function walk(item: ConfigItem, out: ConfigItem[] = []): ConfigItem[] {
  out.push(item);
  if (item instanceof ConfigGroup) for (const c of item.children.values()) walk(c, out);
  return out;
}

/** A link entering or leaving the subtree of `root`, described, or undefined. */
function findLinkAcross(root: ConfigItem): string | undefined {
  for (const item of walk(root)) {
    for (const [name, target] of item.links) return `${joinPath(item.path, name)} -> ${target.path}`;
    for (const b of item.backlinks) return `${joinPath(b.source.path, b.name)} -> ${item.path}`;
  }
  return undefined;
}

/**
 * The operations of a configuration tree, run with the tree held
 * ({@link ConfigTree.edit}). Paths are absolute (`/vhost/vhost-client/…`); the leading
 * `/` may be left out.
 *
 * @public
 */
export interface ConfigEditor {
  /** configfs mkdir: creates a child in a group whose type has `makeItem`. */
  mkdir(path: string): ConfigItem;
  /** configfs rmdir: removes a user-created item with no links and no children. */
  rmdir(path: string): Promise<void>;
  /**
   * Stores attributes of one item, all or nothing: each value is checked against its
   * attribute's rule, then the item's cross-attribute rule. Returns the names that changed.
   */
  set(path: string, values: Readonly<Record<string, ConfigValue>>): string[];
  /** configfs symlink: a link named `name` (default: the target's name) in `source` pointing at `target`. */
  link(source: string, target: string, name?: string): Promise<void>;
  /** Removes the link `name` held by `source`. */
  unlink(source: string, name: string): Promise<void>;
}

/**
 * One typed configuration tree (the configfs analogue, RFC patches 6 and 9), usable
 * from code and loadable from / dumpable to a JSON document. Subsystems add their
 * groups under {@link ConfigTree.root}: `@x/vhost-core` adds `vhost` (with
 * `vhost-client` and `vhost-transport`), `@x/rpmsg` adds `rpmsg`.
 *
 * Changes are serialized: each public mutating call, and each {@link ConfigTree.edit}
 * block, runs alone. Errors are {@link VhostError}s whose `path` names the item,
 * attribute or link and whose message names the rule.
 *
 * @public
 */
export class ConfigTree {
  /** The root group (`/`). */
  readonly root: ConfigGroup;
  readonly #lock = new Mutex();
  readonly #editor: ConfigEditor;

  constructor() {
    rootConstruction = true;
    try {
      this.root = new ConfigGroup('', {});
    } finally {
      rootConstruction = false;
    }
    this.#editor = {
      mkdir: (path) => this.#mkdir(path),
      rmdir: (path) => this.#rmdir(path),
      set: (path, values) => this.#set(this.get(path), new Map(Object.entries(values)), false),
      link: (source, target, name) => this.#link(source, target, name),
      unlink: (source, name) => this.#unlink(source, name),
    };
  }

  /** The item at `path`, or undefined. */
  find(path: string): ConfigItem | undefined {
    let item: ConfigItem = this.root;
    for (const part of splitPath(path)) {
      if (!(item instanceof ConfigGroup)) return undefined;
      const next = item.children.get(part);
      if (next === undefined) return undefined;
      item = next;
    }
    return item;
  }

  /** The item at `path`; `CONFIG_PATH` naming the first missing part otherwise. */
  get(path: string): ConfigItem {
    let item: ConfigItem = this.root;
    for (const part of splitPath(path)) {
      const next = item instanceof ConfigGroup ? item.children.get(part) : undefined;
      if (next === undefined) {
        throw new VhostError('CONFIG_PATH', `no such item in ${item.path}`, { path: joinPath(item.path, part) });
      }
      item = next;
    }
    return item;
  }

  /** The value of the attribute at `path` (`/…/item/attribute`). */
  read(path: string): ConfigValue {
    const parts = splitPath(path);
    const name = parts.pop();
    if (name === undefined) throw new VhostError('CONFIG_PATH', 'an attribute path needs an item and an attribute name', { path: '/' });
    return this.get(parts.join('/')).get(name);
  }

  /** Runs `fn` with the tree held; `fn` changes it through the editor. */
  edit<T>(fn: (editor: ConfigEditor) => T | Promise<T>): Promise<T> {
    return this.#lock.run(() => fn(this.#editor));
  }

  /** {@inheritDoc ConfigEditor.mkdir} */
  mkdir(path: string): Promise<ConfigItem> {
    return this.edit((e) => e.mkdir(path));
  }

  /** {@inheritDoc ConfigEditor.rmdir} */
  rmdir(path: string): Promise<void> {
    return this.edit((e) => e.rmdir(path));
  }

  /** {@inheritDoc ConfigEditor.set} */
  set(path: string, values: Readonly<Record<string, ConfigValue>>): Promise<string[]> {
    return this.edit((e) => e.set(path, values));
  }

  /** {@inheritDoc ConfigEditor.link} */
  link(source: string, target: string, name?: string): Promise<void> {
    return this.edit((e) => e.link(source, target, name));
  }

  /** {@inheritDoc ConfigEditor.unlink} */
  unlink(source: string, name: string): Promise<void> {
    return this.edit((e) => e.unlink(source, name));
  }

  #mkdir(path: string): ConfigItem {
    const parts = splitPath(path);
    const name = parts.pop();
    if (name === undefined) throw new VhostError('CONFIG_PATH', 'the root exists', { path: '/' });
    const parent = this.get(parts.join('/'));
    return this.#makeChild(parent, name);
  }

  #makeChild(parent: ConfigItem, name: string): ConfigItem {
    checkName(name, parent.path);
    const path = joinPath(parent.path, name);
    if (!(parent instanceof ConfigGroup)) throw new VhostError('CONFIG_PATH', `${parent.path} is an item, not a group: it holds no children`, { path });
    if (parent.hasEntry(name)) throw new VhostError('CONFIG_PATH', 'the name is already used in this directory', { path });
    const make = parent.type.makeItem;
    if (make === undefined) {
      throw new VhostError('CONFIG_PATH', `no such item, and ${parent.path} does not allow creating items`, { path });
    }
    let child: ConfigItem;
    try {
      child = make.call(parent.type, parent, name);
    } catch (e) {
      throw asConfigError(e, 'CONFIG_PATH', path);
    }
    if (!(child instanceof ConfigItem) || child.name !== name || child.parent !== undefined) {
      throw new VhostError('CONFIG_PATH', `makeItem of ${parent.path} returned a bad item`, { path });
    }
    attachChild(parent, child);
    markUserCreated(child);
    return child;
  }

  async #rmdir(path: string): Promise<void> {
    const item = this.get(path);
    await this.#dropChild(item);
  }

  async #dropChild(item: ConfigItem): Promise<void> {
    const parent = item.parent;
    if (parent === undefined) throw new VhostError('CONFIG_PATH', 'the root cannot be removed', { path: item.path });
    if (!item.userCreated) {
      throw new VhostError('CONFIG_PATH', 'only items made with mkdir can be removed (this one belongs to code)', { path: item.path });
    }
    if (item instanceof ConfigGroup && item.children.size > 0) throw new VhostError('BUSY', 'the group is not empty', { path: item.path });
    const link = findLinkAcross(item);
    if (link !== undefined) throw new VhostError('BUSY', `the item is linked (${link}); unlink it first`, { path: item.path });
    try {
      await parent.type.dropItem?.(parent, item);
    } catch (e) {
      throw asConfigError(e, 'CONFIG_PATH', item.path);
    }
    detachChild(parent, item.name);
  }

  /** Checks and stores attributes; `onlyChanged` skips values equal to the current ones. */
  #set(item: ConfigItem, raw: ReadonlyMap<string, unknown>, onlyChanged: boolean): string[] {
    const values = new Map<string, ConfigValue>();
    for (const [name, v] of raw) {
      const def = item.attribute(name);
      const path = joinPath(item.path, name);
      if (def === undefined) throw noAttribute(item, name);
      if (def.readOnly === true) throw new VhostError('CONFIG_VALUE', 'the attribute is read-only', { path });
      const c = coerce(def, v);
      if (!c.ok) throw new VhostError('CONFIG_VALUE', c.rule, { path });
      const rule = def.validate?.(c.value, item);
      if (rule !== undefined) throw new VhostError('CONFIG_VALUE', `${formatValue(c.value)} ${rule}`, { path });
      if (onlyChanged && item.get(name) === c.value) continue;
      values.set(name, c.value);
    }
    if (values.size === 0) return [];
    const busy = item.type.canStore?.(item);
    if (busy !== undefined) throw new VhostError('BUSY', busy, { path: item.path });
    const merged = new Map<string, ConfigValue>();
    for (const def of item.attributes) if (def.readOnly !== true) merged.set(def.name, item.get(def.name));
    for (const [k, v] of values) merged.set(k, v);
    const bad = item.type.check?.(item, merged);
    if (bad !== undefined) throw new VhostError('CONFIG_VALUE', bad.rule, { path: joinPath(item.path, bad.attribute) });
    storeRaw(item, values);
    return [...values.keys()];
  }

  async #link(sourcePath: string, targetPath: string, name?: string): Promise<void> {
    const source = this.get(sourcePath);
    let target: ConfigItem;
    try {
      target = this.get(targetPath);
    } catch (e) {
      throw new VhostError('CONFIG_LINK', `the link target ${targetPath} does not exist`, { path: source.path, cause: e });
    }
    const linkName = name ?? target.name;
    checkName(linkName, source.path);
    const path = joinPath(source.path, linkName);
    if (source.links.has(linkName)) throw new VhostError('BUSY', `a link of that name exists (to ${source.links.get(linkName)!.path})`, { path });
    if (source.hasEntry(linkName)) throw new VhostError('CONFIG_PATH', 'the name is already used in this directory', { path });
    if (target === this.root) throw new VhostError('CONFIG_LINK', 'the root cannot be linked to', { path });
    const allow = source.type.allowLink;
    if (allow === undefined) throw new VhostError('CONFIG_LINK', `${source.path} holds no links`, { path });
    try {
      await allow.call(source.type, source, target);
    } catch (e) {
      throw asConfigError(e, 'CONFIG_LINK', path);
    }
    addLink(source, linkName, target);
  }

  async #unlink(sourcePath: string, name: string): Promise<void> {
    const source = this.get(sourcePath);
    const target = source.links.get(name);
    const path = joinPath(source.path, name);
    if (target === undefined) throw new VhostError('CONFIG_LINK', 'no such link', { path });
    try {
      await source.type.dropLink?.call(source.type, source, target);
    } finally {
      // configfs drops the link even when drop_link complains; so do we.
      removeLink(source, name);
    }
  }

  // ---- JSON ---------------------------------------------------------------------------

  /**
   * The tree as a document: every item's writable attributes, links and children, in a
   * stable order. `load(dump())` on a tree with the same code-made items reproduces it.
   */
  dump(): ConfigJson {
    return dumpItem(this.root);
  }

  /**
   * Applies a document to the tree: creates the items it names that are missing (mkdir),
   * stores the attributes it gives that differ, then adds the links it names that are
   * missing. Nothing is removed. All or nothing: on the first error everything done so
   * far is undone and the error — naming the path and the rule — is thrown.
   */
  load(doc: ConfigJson): Promise<void> {
    return this.edit(async () => {
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
        throw new VhostError('CONFIG_VALUE', `a configuration document must be an object, got ${describe(doc)}`, { path: '/' });
      }
      const undo: Array<() => void | Promise<void>> = [];
      const links: Array<{ source: ConfigItem; name: string; target: string }> = [];
      try {
        this.#loadItem(this.root, doc, undo, links);
        for (const l of links) {
          const existing = l.source.links.get(l.name);
          if (existing !== undefined && existing.path === normalize(l.target)) continue;
          await this.#link(l.source.path, l.target, l.name);
          undo.push(() => this.#unlink(l.source.path, l.name));
        }
      } catch (err) {
        for (const u of undo.reverse()) {
          try {
            await u();
          } catch {
            // Best effort: the first error is the one to report.
          }
        }
        throw err;
      }
    });
  }

  #loadItem(
    item: ConfigItem,
    node: ConfigJson,
    undo: Array<() => void | Promise<void>>,
    links: Array<{ source: ConfigItem; name: string; target: string }>,
  ): void {
    const values = new Map<string, unknown>();
    for (const [key, value] of Object.entries(node)) {
      const path = joinPath(item.path, key);
      if (key === '$comment') continue;
      if (key.startsWith('$')) throw new VhostError('CONFIG_PATH', 'keys starting with "$" are reserved ($link, $comment)', { path });
      if (value === null || Array.isArray(value)) {
        throw new VhostError('CONFIG_VALUE', `must be a value, an item object or a {"$link": path} object, got ${describe(value)}`, { path });
      }
      if (typeof value !== 'object') {
        values.set(key, value);
        continue;
      }
      if (Object.hasOwn(value, '$link')) {
        const target = (value as ConfigJsonLink).$link;
        const keys = Object.keys(value);
        if (typeof target !== 'string' || keys.length !== 1) {
          throw new VhostError('CONFIG_VALUE', 'a link is written {"$link": "/absolute/path"} with no other key', { path });
        }
        checkName(key, item.path);
        links.push({ source: item, name: key, target });
        continue;
      }
      let child = item instanceof ConfigGroup ? item.children.get(key) : undefined;
      if (child === undefined) {
        if (item.attribute(key) !== undefined) throw new VhostError('CONFIG_VALUE', 'an attribute takes a value, not an object', { path });
        const made = this.#makeChild(item, key);
        child = made;
        undo.push(async () => {
          try {
            await this.#dropChild(made);
          } catch {
            if (made.parent !== undefined) detachChild(made.parent, made.name);
          }
        });
      }
      this.#loadItem(child, value as ConfigJson, undo, links);
    }
    if (values.size > 0) {
      const before = new Map<string, ConfigValue>();
      for (const k of values.keys()) if (item.attribute(k) !== undefined && item.attribute(k)!.readOnly !== true) before.set(k, item.get(k));
      const changed = this.#set(item, values, true);
      if (changed.length > 0) undo.push(() => storeRaw(item, before));
    }
  }

  /** Loads a document from a JSON file (Node only). */
  async loadFile(file: string): Promise<void> {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(file, 'utf8');
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new VhostError('CONFIG_VALUE', `${file} is not JSON: ${(e as Error).message}`, { path: '/', cause: e });
    }
    await this.load(doc as ConfigJson);
  }

  /** Writes {@link ConfigTree.dump} to a JSON file (Node only). */
  async saveFile(file: string): Promise<void> {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(file, `${JSON.stringify(this.dump(), null, 2)}\n`, 'utf8');
  }
}

function dumpItem(item: ConfigItem): ConfigJson {
  const out: ConfigJson = {};
  for (const def of item.attributes) if (def.readOnly !== true) out[def.name] = toJsonValue(item.get(def.name));
  for (const [name, target] of [...item.links].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out[name] = { $link: target.path };
  if (item instanceof ConfigGroup) {
    for (const [name, child] of [...item.children].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out[name] = dumpItem(child);
  }
  return out;
}

function splitPath(path: string): string[] {
  if (typeof path !== 'string') throw new TypeError(`path must be a string, got ${typeof path}`);
  return path.split('/').filter((p) => p.length > 0);
}

function normalize(path: string): string {
  return `/${splitPath(path).join('/')}`;
}

function asConfigError(e: unknown, code: 'CONFIG_PATH' | 'CONFIG_LINK', path: string): VhostError {
  if (isVhostError(e)) {
    if (e.path !== undefined) return e;
    return new VhostError(e.code, e.message.replace(/^[A-Z_]+: /, ''), { path, cause: e });
  }
  return new VhostError(code, (e as Error)?.message ?? String(e), { path, cause: e });
}
