import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { EDGE_REDIS, EdgeRedis } from './edge-redis';

/** Told an API key id when one is revoked, or null when revocations may have been missed. */
export type RevocationListener = (keyId: string | null) => void;

/**
 * Tells every API process that an API key was revoked, so that none keeps accepting it from its
 * cache. Injected by its abstract class: Redis pub/sub in the API, in-process in unit specs.
 */
export abstract class KeyRevocations {
  abstract publish(keyId: string): Promise<void>;
  abstract onRevoked(listener: RevocationListener): void;
}

/** Within one process only (unit specs; the single-process embedded run would do with it too). */
export class LocalKeyRevocations extends KeyRevocations {
  private readonly events = new EventEmitter();

  publish(keyId: string): Promise<void> {
    this.events.emit('revoked', keyId);
    return Promise.resolve();
  }

  onRevoked(listener: RevocationListener): void {
    this.events.on('revoked', listener);
  }
}

/**
 * Over a Redis channel. A message missed while disconnected is covered by telling the listeners
 * `null` (forget everything) on every reconnection; the guard's cache expiry bounds the rest.
 */
@Injectable()
export class RedisKeyRevocations extends KeyRevocations implements OnApplicationBootstrap {
  private readonly logger = new Logger('KeyRevocations');
  private readonly listeners: RevocationListener[] = [];
  private readonly channel: string;

  constructor(
    @Inject(EDGE_REDIS) private readonly redis: EdgeRedis,
    @Inject(RCFLOW_CONFIG) config: RcflowConfig,
  ) {
    super();
    this.channel = `${config.redis.prefix}:api-key-revoked`;
  }

  async onApplicationBootstrap(): Promise<void> {
    this.redis.subscriber.on('message', (channel: string, keyId: string) => {
      if (channel === this.channel) this.tell(keyId);
    });
    this.redis.subscriber.on('ready', () => void this.listen());
    await this.listen();
  }

  async publish(keyId: string): Promise<void> {
    try {
      await this.redis.client.publish(this.channel, keyId);
    } catch (err) {
      // The revocation is committed; other processes drop the key when their cache entry expires.
      this.logger.warn(`could not announce the revocation of API key ${keyId}: ${(err as Error).message}`);
    }
  }

  onRevoked(listener: RevocationListener): void {
    this.listeners.push(listener);
  }

  private async listen(): Promise<void> {
    try {
      await this.redis.subscriber.subscribe(this.channel);
    } catch (err) {
      this.logger.warn(`cannot subscribe to API key revocations yet (${(err as Error).message}); retried on reconnect`);
      return;
    }
    // Whatever was published while this process was not subscribed is lost: forget every cached key.
    this.tell(null);
  }

  private tell(keyId: string | null): void {
    for (const l of this.listeners) l(keyId);
  }
}
