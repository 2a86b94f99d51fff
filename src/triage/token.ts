import type { Store } from '../store/store.js';

export type TokenState = 'valid' | 'revoked' | 'unknown' | 'test';

export function verifyToken(store: Store, token: string): { state: TokenState; member?: string; name?: string | null; email?: string | null; send?: number } {
  const owner = store.sends.tokenOwner(token.trim());
  if (!owner) return { state: 'unknown' };
  // A test mail carries a real member's data but went to the operator: its link registers no one.
  return {
    state: owner.test ? 'test' : owner.revokedAt === null ? 'valid' : 'revoked',
    member: owner.memberKey, name: owner.memberName, email: owner.email, send: owner.sendId,
  };
}
