import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeDirect } from '../../../src/ipc/directWrite';

/*
 * writeDirect writes to the descriptor while nothing is queued in the stream, and through the stream otherwise: a
 * reader that stops reading fills the socket buffer (EAGAIN, partial writes), and every byte must still arrive once, in
 * the order written.
 */
describe('ipc writeDirect', () => {
  let dir: string;
  let server: net.Server;
  let accepted: Promise<net.Socket>;
  let client: net.Socket;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-dw-'));
    const sock = path.join(dir, 's');
    server = net.createServer({ pauseOnConnect: true });
    accepted = new Promise((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    client = net.createConnection(sock);
    await new Promise<void>((resolve) => client.once('connect', resolve));
  });

  afterEach(async () => {
    client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every byte in order when the reader lags (the kernel buffer fills, the stream takes the rest)', async () => {
    const peer = await accepted; // paused: reads nothing until resumed
    const chunks: Buffer[] = [];
    let expected = 0;
    let fellBack = false;
    // Counts the writes that went to the descriptor (the module object itself: directWrite.ts reads it per call).
    const patched = createRequire(__filename)('node:fs') as Record<string, unknown>;
    const realWriteSync = fs.writeSync;
    let direct = 0;
    patched['writeSync'] = (...a: Parameters<typeof fs.writeSync>) => (direct++, realWriteSync(...a));
    try {
      for (let i = 0; i < 400; i++) {
        // Sizes that do not divide the socket buffer, so that some writes are cut short.
        const b = Buffer.alloc(4096 + ((i * 977) % 5000), i % 251);
        b.writeUInt32BE(i, 0);
        chunks.push(b);
        expected += b.length;
        writeDirect(client, b);
        if (client.writableLength > 0) fellBack = true;
      }
    } finally {
      patched['writeSync'] = realWriteSync;
    }
    assert.ok(direct > 0, 'the first writes went straight to the descriptor');
    assert.ok(fellBack, 'the socket buffer filled and the stream queued the rest');
    const got: Buffer[] = [];
    let received = 0;
    await new Promise<void>((resolve) => {
      peer.on('data', (d: Buffer) => {
        got.push(d);
        received += d.length;
        if (received >= expected) resolve();
      });
      peer.resume();
    });
    assert.ok(Buffer.concat(got).equals(Buffer.concat(chunks)), 'the bytes arrived once each, in the order written');
    peer.destroy();
  });

  it('a write to a socket the peer closed fails through the stream, as socket.write does; one to a destroyed socket does nothing', async () => {
    // A second connection that stays writable after the peer's end (allowHalfOpen), so the writes reach a closed peer.
    client.destroy();
    accepted.then((s) => s.destroy(), () => undefined);
    const next = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const half = net.createConnection({ path: path.join(dir, 's'), allowHalfOpen: true });
    await new Promise<void>((resolve) => half.once('connect', resolve));
    const failed = new Promise<NodeJS.ErrnoException>((resolve) => half.once('error', resolve));
    const ended = new Promise<void>((resolve) => half.once('end', () => resolve()));
    (await next).destroy();
    await ended;
    writeDirect(half, Buffer.alloc(64 * 1024));
    writeDirect(half, Buffer.alloc(64 * 1024));
    const e = await failed;
    assert.match(String(e.code), /EPIPE|ECONNRESET/);
    assert.doesNotThrow(() => writeDirect(half, Buffer.from('after')));
    half.destroy();
  });
});
