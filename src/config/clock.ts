/**
 * The time mailer goes by. `MAILER_NOW` (an ISO time) starts the clock there and lets it run
 * on, so a test or a rehearsal can stand "tomorrow at 09:00" without waiting for it.
 */
export function systemClock(env: NodeJS.ProcessEnv = process.env): () => number {
  const start = env.MAILER_NOW ? Date.parse(env.MAILER_NOW) : NaN;
  if (Number.isNaN(start)) return () => Date.now();
  const offset = start - Date.now();
  return () => Date.now() + offset;
}
