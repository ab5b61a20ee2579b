import * as fs from 'node:fs';
import type * as net from 'node:net';

/**
 * Writes `data` to a connected socket, in order after everything written before. When nothing is queued in the stream,
 * the bytes go straight to the descriptor with one write(2): no stream machinery, no write request object and no
 * after-write callback scheduled on the tick queue, which cost more CPU per call than the system call itself in a
 * process that makes a few thousand calls (bench/ipc.ts). What the kernel does not take at once (a full socket
 * buffer: EAGAIN or a partial write), any error (the stream's own write then reports it as before), and sockets
 * without a descriptor (Windows named pipes) go through socket.write, which keeps the order: once anything is queued
 * there, later writes queue behind it until it is flushed.
 */
export function writeDirect(socket: net.Socket, data: Buffer): void {
  const fd = socket.writableLength === 0 ? (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd : undefined;
  if (typeof fd === 'number' && fd >= 0 && !socket.destroyed) {
    let written: number;
    try {
      written = fs.writeSync(fd, data);
    } catch {
      written = 0; // EAGAIN and the like: the stream below retries, or reports the error
    }
    if (written === data.length) return;
    if (written > 0) data = data.subarray(written);
  }
  socket.write(data);
}
