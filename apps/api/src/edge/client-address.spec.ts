import express from 'express';
import type { IncomingMessage } from 'node:http';
import { clientAddress } from './client-address';

const request = (remoteAddress: string, forwardedFor?: string) =>
  ({ headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}, socket: { remoteAddress } }) as unknown as IncomingMessage;

describe('clientAddress (WebSocket upgrades, by the rule Express applies to req.ip)', () => {
  it('ignores X-Forwarded-For when no proxy is trusted', () => {
    const app = express();
    app.set('trust proxy', false);
    expect(clientAddress(request('127.0.0.1', '203.0.113.9'), app)).toBe('127.0.0.1');
  });

  it('follows X-Forwarded-For only through the configured proxies', () => {
    const app = express();
    app.set('trust proxy', ['10.0.0.0/8']);
    expect(clientAddress(request('10.1.2.3', '203.0.113.9'), app)).toBe('203.0.113.9');
    expect(clientAddress(request('192.0.2.1', '203.0.113.9'), app)).toBe('192.0.2.1');
    // A client behind the proxy cannot add hops of its own: the first untrusted address counts.
    expect(clientAddress(request('10.1.2.3', '198.51.100.7, 203.0.113.9'), app)).toBe('203.0.113.9');
  });
});
