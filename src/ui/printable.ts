/**
 * Control characters of stored data (a member's name, a server's reply) shown escaped, never
 * raw: a NUL or an ESC sequence from a CSV or a hostile server must not clear, recolour or
 * rewrite the user's terminal. C0 and C1 controls, DEL, and the bidirectional overrides that
 * reorder what a line appears to say. `layout` keeps line breaks and tabs, for a message body.
 */
export function printable(text: string, layout = false): string {
  return text.replace(layout ? LAYOUT_UNSAFE : UNSAFE, escape);
}

const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const LAYOUT_UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { '\0': '\\0', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function escape(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`);
}
