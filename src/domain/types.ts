/** The data mailer keeps, as the domain sees it. */

export const SEND_STATUSES = [
  'queued', 'sent', 'failed', 'deferred', 'skipped', 'retargeted', 'bounced', 'cancelled',
] as const;
export type SendStatus = (typeof SEND_STATUSES)[number];

export const MAILING_STATUSES = ['scheduled', 'running', 'paused', 'done', 'cancelled'] as const;
export type MailingStatus = (typeof MAILING_STATUSES)[number];

export interface Member {
  id: number;
  key: string;
  email: string | null;
  name: string | null;
  fields: Record<string, string>;
  emailProblem: string | null;
}

export interface Mailing {
  id: number;
  type: string;
  /** what an unsubscribe from it stops */
  topic: string;
  /** members cannot opt out of it: topic opt-outs do not apply, it carries no unsubscribe link */
  required: boolean;
  templatePath: string;
  template: string;
  htmlTemplate: string | null;
  footer: string | null;
  settings: MailingSettings;
  test: boolean;
  status: MailingStatus;
  statusReason: string | null;
  selected: number;
  createdAt: number;
  finishedAt: number | null;
  scheduledAt: number | null;
  /** the mailing of one template's system mails (send --to, serve --api) */
  system?: boolean;
}

/** What a mailing needs to be rendered and sent again later (resume) exactly as first planned. */
export interface MailingSettings {
  from?: string;
  replyTo?: string;
  bounceAddress?: string;
  testTo?: string;
  allowEmpty?: boolean;
  /** open pixel and List-Unsubscribe, when a public URL is configured */
  track?: boolean;
  publicUrl?: string;
  /** envelope sender bounces+<send id>@domain (VERP) */
  verp?: boolean;
}

export interface Send {
  id: number;
  mailingId: number;
  memberId: number;
  memberKey: string;
  memberName: string | null;
  email: string | null;
  type: string;
  test: boolean;
  status: SendStatus;
  /** machine-readable: error category or skip reason */
  category: string | null;
  /** human-readable: server reply or skip explanation */
  reason: string | null;
  attempts: number;
  token: string | null;
  messageId: string | null;
  createdAt: number;
  sentAt: number | null;
  updatedAt: number;
  retargetOf: number | null;
  retargetedTo: number | null;
  /** a try's outcome is unknown (in hand at a kill, or the connection broke after the final dot): it may have arrived, and again if sent again */
  maybeDuplicate: boolean;
  /** a system mail's data, as JSON text; null for a mailing's send */
  data?: string | null;
  /** a system mail's idempotency key */
  key?: string | null;
}

/** A claimed send with its member, or one the claim skipped because the address cannot be mailed. */
export type ClaimResult =
  | { send: Send; member: Member; token: string; skip: null }
  | { send: Send; member: Member; token: null; skip: { category: string; reason: string } };

/** A send the server took: its message is kept with it. */
export interface SentRecord {
  id: number; email: string; server: string; messageId: string; raw: Buffer; response: string; now: number;
  /** the files attached, their bodies left out of `raw` */
  attachments?: AttachmentRecord[];
  /** `raw` as its row keeps it, compressed already (off the main thread); else the store compresses it */
  stored?: Buffer;
}

/** A send the server refused, for now (deferred, with when to try again) or for good (failed). */
export interface UnsentRecord {
  id: number; status: 'failed' | 'deferred'; email: string; server: string | null;
  responseCode: number | null; enhancedCode: string | null; response: string;
  category: string; permanent: boolean; retryAt: number | null; now: number;
  /** the files of a message the server refused after reading it: what a retry compares with */
  attachments?: AttachmentRecord[];
}

/**
 * A send the server could not take (the server, not the mail, was the problem). `maybeSent`: the
 * message as it went out, when the connection broke after all of it was sent (it may have arrived).
 */
export interface InterruptedRecord {
  id: number; email: string; server: string | null; responseCode: number | null;
  enhancedCode: string | null; response: string; category: string; now: number; maybeSent?: Buffer;
  attachments?: AttachmentRecord[];
}

export interface Attempt {
  id: number;
  sendId: number;
  at: number;
  email: string;
  server: string | null;
  outcome: 'sent' | 'failed' | 'deferred' | 'interrupted';
  responseCode: number | null;
  enhancedCode: string | null;
  response: string | null;
  category: string | null;
  permanent: boolean | null;
}

export interface AddressRecord {
  email: string;
  addedAt: number;
  replacedAt: number | null;
  revokedAt: number | null;
  revokeReason: string | null;
}

/** One condition of `--where`: a member field compared with a value. */
export interface FieldCondition {
  field: string;
  op: '=' | '!=' | '~' | '<' | '>';
  value: string;
}

/** Which members a mailing goes to. */
export interface MemberSelection {
  conditions: FieldCondition[];
  /** member keys or addresses; empty means no restriction */
  members: string[];
  /** only members whose send of this mailing was delivered but not opened */
  notOpenedOf?: number;
}

/** The filters shared by log, retry and stats. Times in ms since the epoch. */
export interface SendFilter {
  memberIds?: number[];
  emails?: string[];
  types?: string[];
  mailings?: number[];
  statuses?: SendStatus[];
  categories?: string[];
  since?: number;
  until?: number;
  limit?: number;
}

/** The parts of a message, rendered for one member (or, in a template, still to be rendered). */
export interface RenderedMessage {
  subject: string;
  from: string | null;
  replyTo: string | null;
  /** any other header lines of the template, passed through */
  extraHeaders: [string, string][];
  text: string;
  html: string | null;
  /** the template's Attachment: paths as rendered for this member, relative to its folder */
  attachments?: string[];
}

/**
 * One file attached to a sent mail, as the log keeps it: not the bytes, but what finds and
 * checks them again. `offset` is where its base64 body sits in the stored message, which is the
 * message as sent with every attachment body left out.
 */
export interface AttachmentRecord {
  name: string;
  /** the file it was read from, resolved inside the template's folder */
  path: string;
  size: number;
  sha256: string;
  offset: number;
}

/** Who holds a lock of the database (the send lock): a process on a host, since when, doing what. */
export interface LockHolder {
  name: string;
  pid: number;
  host: string;
  since: number;
  what: string;
}

export interface BounceRecord {
  fingerprint: string;
  sendId: number | null;
  matchedBy: string | null;
  recipient: string | null;
  action: string | null;
  statusCode: string | null;
  diagnostic: string | null;
  category: string | null;
  permanent: boolean;
  source: string;
  at: number;
}

export interface MailingStatsRow {
  mailing: number;
  status: SendStatus;
  category: string | null;
  n: number;
}

export interface LinkedSend {
  id: number;
  email: string | null;
  memberKey: string;
  memberName: string | null;
  memberFields: Record<string, unknown>;
  /** the mailing's topic, whether it is required, its From as written */
  topic: string;
  required: boolean;
  sender: string | null;
  /** its address was re-targeted away: the registration token is dead, unsubscribing still works */
  revoked: boolean;
}

/** Opens or unsubscribes of one send: the first, the latest, and how many. */
export interface SendEvent {
  kind: string;
  at: number;
  lastAt: number;
  times: number;
}

export interface Suppression {
  email: string;
  reason: string;
  createdAt: number;
}

/** A suppression (topic null: every mail) or an opt-out of one topic ('*': every topic one may opt out of). */
export interface OptOut extends Suppression {
  topic: string | null;
}

/** The topic that stands for every topic members may opt out of. */
export const ALL_TOPICS = '*';
