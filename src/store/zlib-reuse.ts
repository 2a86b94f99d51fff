import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';

/**
 * Raw deflate and inflate with one zlib stream kept for message after message. node's
 * deflateRawSync and inflateRawSync build a stream for every call: a Transform object and
 * zlib's own state (about 256 KB to set up for deflate), and hash the preset dictionary into it
 * again. For a stored message that set-up is most of the work: deflating a 1.7 KB newsletter
 * against its dictionary took 35 µs by the public call and 14 µs on a kept stream; reading it
 * back, 8.9 and 1.8 µs.
 *
 * node keeps what that takes private: the stream's native `_handle`, whose `writeSync(flush,
 * in, inOffset, inLength, out, outOffset, outLength)` runs zlib on buffers of ours and whose
 * `reset()` starts a new stream with the same preset dictionary, and `_writeState`, where
 * writeSync leaves how much of `out` and of `in` is still free. This file alone touches them.
 * Where they are not there as expected, or a first round trip does not read back, every call
 * goes through the public one instead, slower. MAILER_DEBUG=1 says so on stderr.
 *
 * A kept deflate stream does not always give deflateRawSync's bytes: zlib's reset leaves the
 * last input in its window, and where that lies past the end of the next one it can tip the
 * choice between two equally valid matches. Its output is still a deflate stream of exactly
 * the input; a stored message is read back before it is kept (message-codec.ts).
 */

export type ZlibRun = (input: Buffer) => Buffer;

interface NativeHandle {
  writeSync(flush: number, input: Buffer, inOffset: number, inLength: number, out: Buffer, outOffset: number, outLength: number): void;
  reset(): void;
}
interface KeptStream {
  _handle?: NativeHandle | null;
  _writeState?: Uint32Array;
  destroyed: boolean;
  on(event: 'error', listener: () => void): unknown;
  close(): void;
}

const OUT_BYTES = 64 * 1024;
const { Z_FINISH } = zlib.constants;

/** Raw deflate with these options (level, dictionary) on a kept stream. */
export function deflateRaw(options: zlib.ZlibOptions): KeptZlib {
  return new KeptZlib(() => zlib.createDeflateRaw(options) as unknown as KeptStream, (input) => zlib.deflateRawSync(input, options));
}

/** Raw inflate with these options (dictionary) on a kept stream; bad input throws as inflateRawSync does. */
export function inflateRaw(options: zlib.ZlibOptions): KeptZlib {
  return new KeptZlib(() => zlib.createInflateRaw(options) as unknown as KeptStream, (input) => zlib.inflateRawSync(input, options));
}

export class KeptZlib {
  private stream: KeptStream | null = null;

  constructor(private readonly make: () => KeptStream, private readonly publicCall: ZlibRun) {}

  run(input: Buffer): Buffer {
    return (keptStreamsWork() ? this.kept(input) : null) ?? this.publicCall(input);
  }

  /** The result on the kept stream, or null where that did not work (the stream is given up). */
  private kept(input: Buffer): Buffer | null {
    if (!this.stream) {
      this.stream = this.make();
      // node reports a refused input on the stream as well, a turn later: heard here, said by the public call
      this.stream.on('error', () => {});
    }
    const stream = this.stream;
    const handle = stream._handle;
    const state = stream._writeState;
    const parts: Buffer[] = [];
    let inOffset = 0;
    let inLength = input.length;
    try {
      while (handle && state) {
        const out = scratch();
        handle.writeSync(Z_FINISH, input, inOffset, inLength, out, 0, out.length);
        // zlib refused the input: node has closed the stream; the public call says why, in its words.
        if (stream.destroyed) break;
        const outFree = state[0];
        const inFree = state[1];
        parts.push(Buffer.from(out.subarray(0, out.length - outFree)));
        if (outFree !== 0) {
          handle.reset();
          return parts.length === 1 ? parts[0] : Buffer.concat(parts);
        }
        inOffset += inLength - inFree;
        inLength = inFree;
      }
    } catch {
      // the native side changed shape
    }
    this.close();
    return null;
  }

  /**
   * Whether kept streams work: what the kept deflate gives, the public inflate reads back, and
   * the kept inflate reads as the public one does; twice each (the second time on a reset
   * stream), for a sample whose deflated and inflated bytes each fill more than one output buffer.
   */
  static roundTrips(sample: Buffer, dictionary: Buffer): boolean {
    const deflate = deflateRaw({ dictionary });
    const inflate = inflateRaw({ dictionary });
    try {
      for (let i = 0; i < 2; i++) {
        const packed = deflate.kept(sample);
        if (!packed || !zlib.inflateRawSync(packed, { dictionary }).equals(sample) || !inflate.kept(packed)?.equals(sample)) return false;
      }
      return true;
    } finally {
      deflate.close();
      inflate.close();
    }
  }

  /** Frees zlib's state now, not when the collector comes to it. */
  close(): void {
    const stream = this.stream;
    this.stream = null;
    if (stream && !stream.destroyed) stream.close();
  }
}

let out: Buffer | null = null;
/** One output buffer for every kept stream: run() copies out of it before it returns. */
function scratch(): Buffer {
  return (out ??= Buffer.allocUnsafe(OUT_BYTES));
}

let works: boolean | undefined;

/** Looked at once: the private members there, and a round trip that the public inflate reads back. */
export function keptStreamsWork(): boolean {
  if (works !== undefined) return works;
  works = false;
  let why = '';
  try {
    const dictionary = Buffer.from('Subject: a mailing\r\nFrom: a sender <sender@example.org>\r\n\r\nHello Erika,\r\n');
    const sample = Buffer.concat([Buffer.from('Subject: a mailing\r\nFrom: a sender <sender@example.org>\r\n\r\nHello Zoë,\r\n'), Buffer.alloc(3 * OUT_BYTES, 'long lines of a mail '), randomBytes(OUT_BYTES + 4096)]);
    const probe = zlib.createDeflateRaw({ dictionary }) as unknown as KeptStream;
    const shaped = typeof probe._handle?.writeSync === 'function' && typeof probe._handle.reset === 'function' && probe._writeState instanceof Uint32Array && probe._writeState.length >= 2;
    probe.close();
    if (!shaped) {
      why = 'zlib streams have no _handle.writeSync, _handle.reset and _writeState';
    } else {
      works = KeptZlib.roundTrips(sample, dictionary);
      if (!works) why = 'a kept zlib stream did not read back as the public calls do';
    }
  } catch (err) {
    works = false;
    why = `a kept zlib stream failed: ${(err as Error).message}`;
  }
  if (!works && process.env.MAILER_DEBUG) process.stderr.write(`mailer: ${why}; messages are compressed by node's public zlib calls (slower)\n`);
  return works;
}
