import zlib from 'node:zlib';
import { deflateRaw, inflateRaw, type KeptZlib } from './zlib-reuse.js';

/**
 * How a message is kept in `messages.raw`: its first byte says. A message as mailer composes it
 * begins with a header name (printable ASCII), so a row written before compression (plain, as
 * sent) starts at 0x20 or above, and a byte below 0x20 can only be one of these marks. Rows of
 * both kinds are read alike, so a database is usable while its rows are being compressed.
 *
 * Each message is compressed on its own (raw deflate) against its mailing's preset dictionary,
 * never against another message: a row can be deleted by itself (forget, prune) and the others
 * still read. The dictionary is the mailing's template composed for a stand-in member, so it
 * holds no member's data (see send/mailing.ts dictionaryMessage).
 */
export const DEFLATE_WITH_DICTIONARY = 0x01;
/** deflate without a dictionary: a send whose mailing has none (made before there were any) */
export const DEFLATE = 0x02;

/** Above this the first bytes of a message cannot be matched any more (deflate's 32 KB window). */
export const MAX_DICTIONARY_BYTES = 32 * 1024 - 512;

/** Level 6 (zlib's default): level 9 saved under 0.1 % on newsletters and costs more time. */
const LEVEL = 6;

/** True for a row written before compression: the message as it was sent. */
export function isPlain(stored: Buffer): boolean {
  return stored.length === 0 || stored[0] >= 0x20;
}

/**
 * The row's bytes for a message; `dictionary` is its mailing's, or null when it has none. The
 * compressed form is read back before it is returned, as a row holds the only copy of a
 * message: where it does not give the exact bytes, the message is kept as it was sent.
 */
export function packMessage(raw: Buffer, dictionary: Buffer | null): Buffer {
  const codec = codecFor(dictionary);
  const body = codec.deflate.run(raw);
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = dictionary ? DEFLATE_WITH_DICTIONARY : DEFLATE;
  body.copy(out, 1);
  let readBack: Buffer | null = null;
  try {
    readBack = codec.inflate.run(body);
  } catch {
    // kept as sent, below
  }
  if (readBack?.equals(raw)) return out;
  if (isPlain(raw)) return raw;
  // Bytes that cannot be kept as they are (no message mailer composes starts so): node's
  // public calls, on a stream of their own, read back too, or the row is not written.
  const fresh = Buffer.concat([out.subarray(0, 1), zlib.deflateRawSync(raw, dictionary ? { level: LEVEL, dictionary } : { level: LEVEL })]);
  if (!zlib.inflateRawSync(fresh.subarray(1), dictionary ? { dictionary } : {}).equals(raw)) throw new Error('a stored message did not read back after compression');
  return fresh;
}

/**
 * The message as it was sent, from its row. `dictionary` is asked only for a row that needs it;
 * a row marked with a dictionary its mailing no longer has cannot be read and says so.
 */
export function unpackMessage(stored: Buffer, dictionary: () => Buffer | null): Buffer {
  if (isPlain(stored)) return stored;
  const body = stored.subarray(1);
  switch (stored[0]) {
    case DEFLATE: return codecFor(null).inflate.run(body);
    case DEFLATE_WITH_DICTIONARY: {
      const dict = dictionary();
      if (!dict) throw new Error('the stored message was compressed with its mailing\'s dictionary, and the mailing has none');
      return codecFor(dict).inflate.run(body);
    }
    default: throw new Error(`the stored message has an unknown format (first byte ${stored[0]})`);
  }
}

interface Codec { deflate: KeptZlib; inflate: KeptZlib }

/**
 * A kept deflate and inflate stream for each of the last few dictionaries (zlib-reuse.ts): a
 * run sends one mailing or a few at a time, and each pair holds about 300 KB of zlib's state.
 */
const KEPT_CODECS = 4;
const codecs = new Map<Buffer | null, Codec>();

function codecFor(dictionary: Buffer | null): Codec {
  let codec = codecs.get(dictionary);
  if (codec) {
    // the most recently used last: the first is the one to give up
    codecs.delete(dictionary);
  } else {
    const options = dictionary ? { level: LEVEL, dictionary } : { level: LEVEL };
    codec = { deflate: deflateRaw(options), inflate: inflateRaw(dictionary ? { dictionary } : {}) };
    if (codecs.size >= KEPT_CODECS) {
      const [oldest, dropped] = codecs.entries().next().value as [Buffer | null, Codec];
      codecs.delete(oldest);
      dropped.deflate.close();
      dropped.inflate.close();
    }
  }
  codecs.set(dictionary, codec);
  return codec;
}
