import { badInput } from '../errors.js';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };

/** `--rate 10/s`, `600/m`, `2000/h` → milliseconds between two sends. */
export function parseRate(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*\/\s*([smh])\s*$/i.exec(text);
  if (!m || Number(m[1]) <= 0) {
    throw badInput(`--rate "${text}" is not a rate`, 'write a number per second, minute or hour: 10/s, 300/m, 2000/h');
  }
  return UNIT_MS[m[2].toLowerCase()] / Number(m[1]);
}
