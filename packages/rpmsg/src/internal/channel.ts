import type { RpmsgChannel, RpmsgDriver } from '../api.js';
import type { RpmsgVirtproc } from '../virtproc.js';
import type { Core } from './core.js';
import type { EndpointImpl } from './endpoint.js';

/** The one implementation of {@link RpmsgChannel} (Linux `struct rpmsg_device`). */
export class ChannelImpl implements RpmsgChannel {
  readonly name: string;
  src: number;
  dst: number;
  readonly origin: 'local' | 'remote';
  readonly announce: boolean;
  driver: RpmsgDriver | undefined = undefined;
  endpoint: EndpointImpl | undefined = undefined;
  removed = false;
  data: unknown = undefined;
  private readonly core: Core;

  constructor(core: Core, name: string, src: number, dst: number, origin: 'local' | 'remote', announce: boolean) {
    this.core = core;
    this.name = name;
    this.src = src;
    this.dst = dst;
    this.origin = origin;
    this.announce = announce;
  }

  get virtproc(): RpmsgVirtproc {
    return this.core.facade;
  }

  toString(): string {
    return `rpmsg channel ${this.name} 0x${this.src.toString(16)} -> 0x${this.dst.toString(16)}`;
  }
}
