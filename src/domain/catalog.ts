/**
 * The error catalog: how a server's reply or a connection error becomes a category a person
 * can act on. Data first (the rules, the categories), then one small function that walks it.
 * Later rules (user rules from the database) are put in front of the built-in ones.
 */

export const CATEGORIES = [
  'unknown-mailbox', 'bad-domain', 'mailbox-full', 'too-large', 'needs-smtputf8', 'greylisted', 'rejected-as-spam', 'policy',
  'rate-limited', 'server-unreachable', 'tls', 'auth', 'timeout', 'maybe-sent', 'other',
] as const;
export type Category = (typeof CATEGORIES)[number];

/** Categories that are about the server, not the recipient: they can stop a run. */
export const CONNECTION_CATEGORIES: ReadonlySet<Category> = new Set(['server-unreachable', 'tls', 'auth', 'timeout', 'maybe-sent']);

/** Errors after which trying the next mail is pointless: the server or the outbox is unusable. */
const STOPS_AT_ONCE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EDNS', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOSPC', 'EACCES', 'EROFS', 'EPERM', 'ENOTDIR']);

/** Failures a retry to the same address cannot cure. */
export const HOPELESS_CATEGORIES: ReadonlySet<string> = new Set(['unknown-mailbox', 'bad-domain']);

export interface CategoryInfo {
  en: string;
  de: string;
}

export const CATEGORY_TEXT: Record<Category, CategoryInfo> = {
  'unknown-mailbox': {
    en: 'The receiving server says this mailbox does not exist. Usually a typo or an old address: ask the member for the right one.',
    de: 'Der empfangende Server kennt dieses Postfach nicht. Meist ein Tippfehler oder eine alte Adresse: das Mitglied nach der richtigen fragen.',
  },
  'bad-domain': {
    en: 'The domain after the @ does not exist or takes no mail. Check the spelling of the domain.',
    de: 'Die Domain nach dem @ gibt es nicht oder sie nimmt keine Mail an. Die Schreibweise der Domain prüfen.',
  },
  'mailbox-full': {
    en: "The member's mailbox is full. Retry later, or ask the member to make room.",
    de: 'Das Postfach des Mitglieds ist voll. Später erneut senden oder das Mitglied bitten, Platz zu schaffen.',
  },
  'too-large': {
    en: 'The mail is bigger than the receiving server accepts. Make it smaller, for example the attachment, and send it again.',
    de: 'Die Mail ist größer, als der empfangende Server annimmt. Sie verkleinern, zum Beispiel den Anhang, und erneut senden.',
  },
  'needs-smtputf8': {
    en: 'The address has letters outside plain ASCII before the @ (ü, é, …), and this mail server cannot take such addresses (it does not offer SMTPUTF8). Send through a server that does, or ask the member for an address in plain letters.',
    de: 'Die Adresse hat vor dem @ Buchstaben außerhalb von ASCII (ü, é, …), und dieser Mailserver kann solche Adressen nicht annehmen (er bietet kein SMTPUTF8). Über einen Server senden, der es kann, oder das Mitglied nach einer Adresse in einfachen Buchstaben fragen.',
  },
  greylisted: {
    en: 'The receiving server holds mail from new senders back for a while (greylisting). It is retried later; it often arrives the next morning.',
    de: 'Der empfangende Server hält Mail neuer Absender eine Weile zurück (Greylisting). Sie wird später erneut gesendet und kommt oft am nächsten Morgen an.',
  },
  'rejected-as-spam': {
    en: 'The receiving server refused the mail as spam or because of the sending server\'s reputation. Check the sender domain (SPF, DKIM, DMARC) and the content; ask the member for another address.',
    de: 'Der empfangende Server hat die Mail als Spam oder wegen des Rufs des Absendeservers abgelehnt. Absenderdomain (SPF, DKIM, DMARC) und Inhalt prüfen; das Mitglied nach einer anderen Adresse fragen.',
  },
  policy: {
    en: 'The receiving server refused the mail by its rules (sender not allowed, authentication of the domain failed, content blocked).',
    de: 'Der empfangende Server hat die Mail nach seinen Regeln abgelehnt (Absender nicht erlaubt, Domain-Authentifizierung fehlgeschlagen, Inhalt gesperrt).',
  },
  'rate-limited': {
    en: 'Too many mails in too short a time for the server. Send more slowly (--rate) and retry later.',
    de: 'Zu viele Mails in zu kurzer Zeit für den Server. Langsamer senden (--rate) und später erneut versuchen.',
  },
  'server-unreachable': {
    en: 'The mail server could not be reached (down, wrong host or port, or the network). Nothing is lost: the mails stay queued.',
    de: 'Der Mailserver war nicht erreichbar (ausgefallen, falscher Host oder Port, oder das Netz). Nichts geht verloren: die Mails bleiben in der Warteschlange.',
  },
  tls: {
    en: 'The encrypted connection to the mail server failed: wrong port for the TLS mode (465 is implicit TLS, 587 is STARTTLS) or a certificate not valid for the host name.',
    de: 'Die verschlüsselte Verbindung zum Mailserver ist gescheitert: falscher Port für den TLS-Modus (465 ist TLS, 587 ist STARTTLS) oder ein Zertifikat, das nicht zum Hostnamen passt.',
  },
  auth: {
    en: 'The mail server refused the login. Check the user name in the SMTP URL and MAILER_SMTP_PASSWORD.',
    de: 'Der Mailserver hat die Anmeldung abgelehnt. Benutzername in der SMTP-URL und MAILER_SMTP_PASSWORD prüfen.',
  },
  timeout: {
    en: 'The mail server did not answer in time. It is retried later.',
    de: 'Der Mailserver hat nicht rechtzeitig geantwortet. Es wird später erneut versucht.',
  },
  'maybe-sent': {
    en: 'The connection broke after the whole mail was handed over, before the server confirmed it: it may have arrived. It is sent again and marked as possibly sent twice.',
    de: 'Die Verbindung brach ab, nachdem die ganze Mail übergeben war, bevor der Server sie bestätigte: sie ist vielleicht angekommen. Sie wird erneut gesendet und als möglicherweise doppelt gesendet markiert.',
  },
  other: {
    en: 'The server refused the mail for a reason the catalog does not know; its reply says more. Add a rule with `mailer errors add`.',
    de: 'Der Server hat die Mail aus einem Grund abgelehnt, den der Katalog nicht kennt; seine Antwort sagt mehr. Eine Regel mit `mailer errors add` ergänzen.',
  },
};

/**
 * A rule matches one of: a node/nodemailer error code (`ECONNREFUSED`), an enhanced status
 * code (`5.1.1`, RFC 3463), a reply code (`550`), or a text pattern (`/greylist/`). Without
 * `permanent`, the reply's class decides (5xx permanent, 4xx temporary).
 */
export interface CatalogRule {
  match: string;
  category: Category;
  permanent?: boolean;
  text?: string;
}

export const BUILT_IN_RULES: CatalogRule[] = [
  // Words first: the same code means different things, the text tells them apart.
  { match: '/greylist|graylist|try again in \\d+ ?(s|sec|seconds|min)/i', category: 'greylisted', permanent: false },
  { match: '/spam|blacklist|blocklist|black list|block list|spamhaus|reputation|\\bRBL\\b|\\bDNSBL\\b|banned sending IP|not accepted from this IP|\\((BL|NOWL)\\)/i', category: 'rejected-as-spam' },
  { match: '/mailbox (is )?full|over ?quota|quota exceeded|insufficient storage|storage limit|exceeded storage allocation/i', category: 'mailbox-full' },
  // Before the rate limits: "exceeded Google's message size limits" is about the size.
  { match: '/message (file )?too (big|large)|message size|size limit|exceeds? (the )?(fixed |maximum )*(message )?size|message length exceeds/i', category: 'too-large' },
  { match: '/rate limit|too many (messages|mails|connections|recipients)|throttl|sending limit|exceeded.*limit|receiving mail (too quickly|at a rate)/i', category: 'rate-limited', permanent: false },
  // Replies that refuse every mail of this sender, not this recipient: they stop the run.
  { match: '/relay(ing)? (access )?(denied|not permitted)|in my list of allowed rcpthosts|authentication required|must (first )?authenticate|not authenticated/i', category: 'auth' },
  // A failed TLS handshake: nodemailer reports it as a socket error (ESOCKET) with OpenSSL's words.
  { match: '/certificate|wrong version number|self[- ]signed|SSL routines|tlsv1 alert|handshake failure/i', category: 'tls', permanent: false },
  { match: '/domain not found|host not found|no such domain|unrouteable|unroutable|domain does not exist|nxdomain|no mx/i', category: 'bad-domain' },
  // Not "Recipient address rejected" alone: Postfix puts it before every recipient restriction
  // ("…: Access denied" is a policy), and the enhanced code after it tells which.
  { match: '/user unknown|unknown user|no such user|unknown recipient|invalid recipient|recipient not found|mailbox not found|no such mailbox|does not exist/i', category: 'unknown-mailbox' },
  { match: '/SMTPUTF8 is required|non-ASCII addresses/i', category: 'needs-smtputf8' },
  { match: '/administrative prohibition|cannot find your (reverse )?hostname/i', category: 'policy' },
  // Exim's own deferral: every host of the domain failed lately.
  { match: '/retry time not reached/i', category: 'server-unreachable', permanent: false },
  // Enhanced status codes (RFC 3463). A code without a rule of its own is looked up by its
  // subject (5.7.708 as 5.7.0); only then does the three-digit reply code decide.
  { match: '5.1.1', category: 'unknown-mailbox', permanent: true },
  { match: '5.1.0', category: 'unknown-mailbox', permanent: true },
  { match: '5.1.3', category: 'unknown-mailbox', permanent: true },
  { match: '5.1.6', category: 'unknown-mailbox', permanent: true },
  { match: '5.2.1', category: 'unknown-mailbox', permanent: true },
  // Exchange Online's recipient check (directory-based edge blocking) answers 550 5.4.1.
  { match: '5.4.1', category: 'unknown-mailbox', permanent: true },
  { match: '5.1.2', category: 'bad-domain', permanent: true },
  // null MX (RFC 7505); Exchange sends it for an unknown recipient too, which the words above catch
  { match: '5.1.10', category: 'bad-domain', permanent: true },
  { match: '5.4.4', category: 'bad-domain', permanent: true },
  { match: '4.2.2', category: 'mailbox-full', permanent: false },
  { match: '5.2.2', category: 'mailbox-full' },
  { match: '5.3.4', category: 'too-large', permanent: true },
  { match: '5.2.3', category: 'too-large', permanent: true },
  // Non-ASCII addresses not permitted (RFC 6531): the server lacks SMTPUTF8.
  { match: '5.6.7', category: 'needs-smtputf8', permanent: true },
  { match: '4.7.1', category: 'greylisted', permanent: false },
  { match: '4.7.0', category: 'rate-limited', permanent: false },
  { match: '5.7.8', category: 'auth' },
  { match: '5.7.57', category: 'auth' },
  { match: '5.7.0', category: 'policy' },
  { match: '5.7.1', category: 'policy' },
  { match: '5.7.26', category: 'policy' },
  { match: '5.7.708', category: 'rejected-as-spam' },
  { match: '4.4.1', category: 'timeout', permanent: false },
  { match: '4.4.2', category: 'timeout', permanent: false },
  { match: '4.4.7', category: 'timeout', permanent: false },
  // Reply codes, for replies without an enhanced code the catalog knows.
  { match: '421', category: 'server-unreachable', permanent: false },
  { match: '452', category: 'mailbox-full', permanent: false },
  { match: '530', category: 'auth' },
  { match: '534', category: 'auth' },
  { match: '535', category: 'auth' },
  { match: '550', category: 'unknown-mailbox' },
  { match: '551', category: 'unknown-mailbox' },
  // "exceeded storage allocation" (RFC 5321); a size refusal says so with 5.3.4 or in words
  { match: '552', category: 'mailbox-full' },
  { match: '553', category: 'unknown-mailbox' },
  { match: '554', category: 'policy' },
  // Connection errors (node and nodemailer codes).
  { match: 'ECONNREFUSED', category: 'server-unreachable', permanent: false },
  { match: 'ENOTFOUND', category: 'server-unreachable', permanent: false },
  { match: 'EAI_AGAIN', category: 'server-unreachable', permanent: false },
  { match: 'EDNS', category: 'server-unreachable', permanent: false },
  { match: 'EHOSTUNREACH', category: 'server-unreachable', permanent: false },
  { match: 'ENETUNREACH', category: 'server-unreachable', permanent: false },
  { match: 'ECONNRESET', category: 'server-unreachable', permanent: false },
  { match: 'EPIPE', category: 'server-unreachable', permanent: false },
  { match: 'ECONNECTION', category: 'server-unreachable', permanent: false },
  { match: 'ESOCKET', category: 'server-unreachable', permanent: false },
  { match: 'ETIMEDOUT', category: 'timeout', permanent: false },
  { match: 'ETIMEOUT', category: 'timeout', permanent: false },
  { match: 'ETLS', category: 'tls', permanent: false },
  { match: 'EPROTO', category: 'tls', permanent: false },
  { match: 'CERT_HAS_EXPIRED', category: 'tls', permanent: false },
  { match: 'DEPTH_ZERO_SELF_SIGNED_CERT', category: 'tls', permanent: false },
  { match: 'SELF_SIGNED_CERT_IN_CHAIN', category: 'tls', permanent: false },
  { match: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', category: 'tls', permanent: false },
  { match: 'ERR_TLS_CERT_ALTNAME_INVALID', category: 'tls', permanent: false },
  { match: 'EAUTH', category: 'auth', permanent: false },
  // The outbox folder: a disk that is full or read-only stops the run like a dead server.
  { match: 'ENOSPC', category: 'server-unreachable', permanent: false },
  { match: 'EACCES', category: 'server-unreachable', permanent: false },
  { match: 'EROFS', category: 'server-unreachable', permanent: false },
  { match: 'EPERM', category: 'server-unreachable', permanent: false },
  { match: 'ENOTDIR', category: 'server-unreachable', permanent: false },
  { match: 'ENOAUTH', category: 'auth', permanent: false },
  // an address with non-ASCII letters before the @, and a server without SMTPUTF8
  { match: 'ESMTPUTF8', category: 'needs-smtputf8', permanent: true },
];

/** What went wrong, as the transport reports it (nodemailer's error fields). */
export interface DeliveryFailure {
  code?: string;
  /** the SMTP command refused: 'MAIL FROM' means the sender, so every mail, was refused */
  command?: string;
  responseCode?: number;
  response?: string;
  message: string;
  /** the connection broke after the message's final dot, before the reply: it may have arrived */
  afterMessage?: boolean;
}

export interface Classification {
  category: Category;
  permanent: boolean;
  responseCode: number | null;
  enhancedCode: string | null;
  /** the server's reply, or the error message */
  text: string;
  /** the rule that matched, for `why` and `errors list` */
  rule: string | null;
  /** a user rule's own explanation, if it has one */
  explanation?: string;
  /** about the server, not this recipient: the mail goes back to the queue */
  serverLevel: boolean;
  /** the server is unusable now (refused, login, TLS, sender refused): leave it out at once */
  fatal: boolean;
}

const ENHANCED = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/;

export function enhancedCodeOf(text: string): string | null {
  const m = ENHANCED.exec(text);
  return m ? `${m[1]}.${m[2]}.${m[3]}` : null;
}

export type RuleKind = 'error' | 'enhanced' | 'reply' | 'text';

export function ruleKind(match: string): RuleKind | null {
  if (/^\/.+\/[a-z]*$/s.test(match)) return 'text';
  if (/^[245]\.\d{1,3}\.\d{1,3}$/.test(match)) return 'enhanced';
  if (/^[245]\d\d$/.test(match)) return 'reply';
  if (/^E?[A-Z][A-Z0-9_]+$/.test(match)) return 'error';
  return null;
}

function textPattern(match: string): RegExp {
  const last = match.lastIndexOf('/');
  return new RegExp(match.slice(1, last), match.slice(last + 1) || 'i');
}

interface CompiledRule {
  rule: CatalogRule;
  kind: RuleKind;
  pattern?: RegExp;
}

/** Compiled once per rule list; classification runs per failed send. */
export class Catalog {
  private readonly compiled: CompiledRule[];

  constructor(rules: CatalogRule[] = BUILT_IN_RULES) {
    this.compiled = rules.flatMap((rule) => {
      const kind = ruleKind(rule.match);
      if (!kind) return [];
      return [{ rule, kind, pattern: kind === 'text' ? textPattern(rule.match) : undefined }];
    });
  }

  classify(failure: DeliveryFailure): Classification {
    const text = (failure.response || failure.message || '').trim();
    const responseCode = failure.responseCode ?? (/^([245]\d\d)[ -]/.exec(text) ? Number(text.slice(0, 3)) : null);
    const enhancedCode = responseCode !== null ? enhancedCodeOf(text) : null;
    // The enhanced code decides over the reply code (RFC 3463): 552 alone was "storage
    // exceeded", 552 5.3.4 is "message too big". Its subject (X.7.0 for X.7.708) comes next; the
    // reply code only where neither has a rule. Words and error codes stand in list order.
    const subject = enhancedCode?.replace(/\.\d+$/, '.0') ?? null;
    const matches = (pass: 'own' | 'subject' | 'reply') => ({ rule, kind, pattern }: CompiledRule) => {
      switch (kind) {
        case 'text': return pass === 'own' && (pattern!.test(text) || (text !== failure.message && pattern!.test(failure.message)));
        case 'enhanced': return (pass === 'own' && enhancedCode === rule.match) || (pass === 'subject' && subject === rule.match);
        case 'reply': return pass === 'reply' && responseCode === Number(rule.match);
        case 'error': return pass === 'own' && failure.code === rule.match;
      }
    };
    const found = this.compiled.find(matches('own')) ?? this.compiled.find(matches('subject')) ?? this.compiled.find(matches('reply'));
    const byClass = enhancedCode ? enhancedCode.startsWith('5') : responseCode !== null ? responseCode >= 500 : false;
    // A broken connection after the final dot: the server may have the mail (RFC 5321, 4.1.1.4).
    const lost = failure.afterMessage && found !== undefined && CONNECTION_CATEGORIES.has(found.rule.category);
    const category: Category = lost ? 'maybe-sent' : found?.rule.category ?? 'other';
    // A refused sender (MAIL FROM) is the same for every mail: not this member's fault.
    const senderRefused = failure.command === 'MAIL FROM';
    return {
      category,
      // A temporary reply is never made permanent by a word in it, and vice versa only by rule.
      permanent: found?.rule.permanent ?? byClass,
      responseCode, enhancedCode, text,
      rule: found?.rule.match ?? null,
      explanation: found?.rule.text,
      serverLevel: CONNECTION_CATEGORIES.has(category) || senderRefused,
      fatal: category === 'auth' || category === 'tls' || senderRefused || STOPS_AT_ONCE.has(failure.code ?? ''),
    };
  }
}

/** The language of mailer's own explanations: German when LANG says so (de_DE.UTF-8, de), else English. */
export function explanationLanguage(lang: string | undefined = process.env.LANG): 'de' | 'en' {
  return lang?.toLowerCase().startsWith('de') ? 'de' : 'en';
}

export function explain(category: string, lang: string | undefined = process.env.LANG): string {
  const info = CATEGORY_TEXT[category as Category];
  if (!info) return '';
  return info[explanationLanguage(lang)];
}
