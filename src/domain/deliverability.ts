import { explanationLanguage } from './catalog.js';

/**
 * The deliverability check's words, in English and German like the error catalog (and chosen by
 * the catalog's rule: LANG). Each finding says what is wrong in plain words and where the record
 * goes; the record itself travels beside the text, so it can be copied as it is.
 */

export const DELIVERABILITY_CHECKS = ['mx', 'spf', 'dmarc', 'dkim', 'ptr'] as const;
export type DeliverabilityCheck = (typeof DELIVERABILITY_CHECKS)[number];

export interface Finding {
  check: DeliverabilityCheck;
  ok: boolean;
  text: string;
  /** the record to add or change, exactly as it is to be published; null when nothing is to be done */
  record: string | null;
}

/** What the big mailbox providers (Gmail, Yahoo, Microsoft) require of bulk senders since 2024. */
export const REQUIREMENTS = ['spf-or-dkim-aligned', 'dmarc-present', 'one-click-unsubscribe'] as const;
export type Requirement = (typeof REQUIREMENTS)[number];

export interface Words {
  heading(domain: string): string;
  requirementsHeading: string;
  met: string;
  notMet: string;
  requirement: Record<Requirement, string>;
  domainMissing(domain: string): string;
  mxOk(hosts: string): string;
  mxMissing(domain: string): string;
  mxNull(domain: string): string;
  spfOk(record: string, lookups: number): string;
  spfNone(domain: string): string;
  spfMultiple(domain: string, count: number): string;
  spfSyntax(domain: string, errors: string): string;
  spfTooMany(domain: string, lookups: number, costs: string, fixed: boolean): string;
  spfTargetMissing(term: string, domain: string): string;
  spfTargetMultiple(term: string, domain: string): string;
  spfLoop(domain: string): string;
  spfPlusAll(domain: string): string;
  spfNeutralAll(domain: string): string;
  spfNoAll(domain: string): string;
  spfNotAligned(envelope: string, domain: string): string;
  dmarcOk(name: string, policy: string, rua: string): string;
  dmarcMissing(name: string): string;
  dmarcMultiple(name: string): string;
  dmarcInvalid(name: string, errors: string): string;
  dkimOk(name: string, kind: string, testing: boolean): string;
  dkimNone(domain: string, selectors: string, given: boolean, example: string): string;
  dkimBad(name: string, problem: string, example: string): string;
  dkimShort(name: string, bits: number, example: string): string;
  dkimRevoked(name: string, example: string): string;
  ptrOk(host: string, address: string, name: string): string;
  ptrNoSmtp: string;
  ptrNoAddress(host: string): string;
  ptrMissing(host: string, address: string, reverseName: string): string;
  ptrMismatch(host: string, address: string, names: string, reverseName: string): string;
  whyLine(domain: string, failing: string): string;
}

const EN: Words = {
  heading: (d) => `deliverability of ${d}`,
  requirementsHeading: 'what Gmail, Yahoo and Microsoft require of bulk senders:',
  met: 'met',
  notMet: 'not met',
  requirement: {
    'spf-or-dkim-aligned': 'SPF or DKIM aligned with the From domain',
    'dmarc-present': 'a DMARC record',
    'one-click-unsubscribe': 'one-click unsubscribe (List-Unsubscribe, RFC 8058: set "publicUrl" and run mailer serve)',
  },
  domainMissing: (d) => `MX: the domain ${d} does not exist in DNS. Check its spelling (in "from" or --domain).`,
  mxOk: (hosts) => `MX: mail to the domain is received by ${hosts}.`,
  mxMissing: (d) => `MX: ${d} has no MX record, so replies and bounces to it cannot be delivered, and some receivers refuse mail from a domain that takes none. Add an MX record at ${d} naming the server that receives its mail (your provider tells you which):`,
  mxNull: (d) => `MX: ${d} says it takes no mail at all (null MX, RFC 7505): replies and bounces are lost, and receivers may refuse its mails. Replace it with an MX record at ${d} naming the server that receives its mail:`,
  spfOk: (r, n) => `SPF: one record, ending in -all or ~all, ${n} of 10 DNS lookups: ${r}`,
  spfNone: (d) => `SPF: ${d} has no SPF record, so receivers cannot tell your server from a forger's. Add this TXT record at ${d}:`,
  spfMultiple: (d, n) => `SPF: ${d} has ${n} SPF records. Receivers treat that as an error (RFC 7208 §4.5) and SPF fails for every mail. Delete them and publish one TXT record at ${d} that holds both:`,
  spfSyntax: (d, e) => `SPF: the record at ${d} has errors (${e}), so SPF fails for every mail (permerror). Correct it:`,
  spfTooMany: (d, n, costs, fixed) => `SPF: the record at ${d} needs ${n} DNS lookups; receivers stop at 10 (RFC 7208 §4.6.4) and SPF fails for every mail. What costs: ${costs}. ${fixed ? 'With the a and mx terms written as the addresses they stand for it needs fewer; change the record at ' + d + ' to:' : 'Remove the includes of services you no longer send through, or ask your provider for a smaller include; the record to change:'}`,
  spfTargetMissing: (t, d) => `SPF: ${t} points to ${d}, which has no SPF record, so SPF fails for every mail (permerror). Remove the term or correct the name in the record:`,
  spfTargetMultiple: (t, d) => `SPF: ${t} points to ${d}, which has more than one SPF record (permerror). Its owner has to merge them; until then remove the term from the record:`,
  spfLoop: (d) => `SPF: the record includes itself through ${d} (a loop), so SPF fails. Remove the include that leads back:`,
  spfPlusAll: (d) => `SPF: the record at ${d} ends in +all: it allows every server on the internet to send as your domain, and providers count it against you. End it in ~all (or -all once every sender is listed):`,
  spfNeutralAll: (d) => `SPF: the record at ${d} ends in ?all, which says nothing about other servers: forged mail is not caught. End it in ~all (or -all once every sender is listed):`,
  spfNoAll: (d) => `SPF: the record at ${d} has no all at its end, so mail from any other server counts as neutral. End it in ~all (or -all once every sender is listed):`,
  spfNotAligned: (e, d) => `SPF: mails leave with the envelope sender @${e} ("bounceAddress"), which is not ${d}: SPF then passes for ${e}, not for the From domain, and does not count for DMARC. Use a bounce address @${d}, or rely on DKIM.`,
  dmarcOk: (n, p, rua) => `DMARC: ${n} has a record with the policy p=${p}${rua ? `; reports go to ${rua}` : '; it asks for no reports (add rua=mailto:… to see who sends as you)'}.${p === 'none' ? ' p=none only watches: once the reports show all your mail passes, change it to p=quarantine.' : ''}`,
  dmarcMissing: (n) => `DMARC: there is no DMARC record at ${n}. Gmail and Yahoo require one of bulk senders and may refuse or junk your mails. Add this TXT record at ${n} (p=none only watches and sends reports to the address; tighten it later):`,
  dmarcMultiple: (n) => `DMARC: ${n} has more than one DMARC record, so receivers ignore them all (RFC 7489 §6.6.3). Keep one TXT record at ${n}:`,
  dmarcInvalid: (n, e) => `DMARC: the record at ${n} has errors (${e}). Replace it with this TXT record at ${n}:`,
  dkimOk: (n, kind, t) => `DKIM: a key is published at ${n} (${kind})${t ? '; it is marked t=y (testing), so receivers treat signed mail as unsigned: remove t=y once signing works' : ''}.`,
  dkimNone: (d, s, given, ex) => given
    ? `DKIM: no DKIM key at ${s}. Turn on DKIM signing at your mail provider and publish the key it gives you as a TXT record at ${ex}:`
    : `DKIM: no DKIM key found for ${d} under the usual selectors (${s}). If your provider signs with another one, name it: --dkim-selector <name>. Otherwise turn on DKIM signing at your mail provider and publish the key it gives you as a TXT record at ${ex}:`,
  dkimBad: (n, p, ex) => `DKIM: the key at ${n} cannot be used (${p}). Publish the key from your mail provider again as a TXT record at ${ex}:`,
  dkimShort: (n, bits, ex) => `DKIM: the key at ${n} has only ${bits} bits; Gmail and Yahoo need at least 1024. Have your provider make a 2048-bit key and publish it at ${ex}:`,
  dkimRevoked: (n, ex) => `DKIM: the key at ${n} is revoked (p= is empty): mails signed with it fail DKIM. Publish the current key from your mail provider as a TXT record at ${ex}:`,
  ptrOk: (h, a, n) => `PTR: the mail server ${h} has the address ${a}, whose reverse name ${n} points back to it.`,
  ptrNoSmtp: 'PTR: no SMTP server is configured (mails go to the outbox folder): no host name to check.',
  ptrNoAddress: (h) => `PTR: the mail server's host name ${h} has no address in DNS. Check the host in the SMTP URL, or add an A record for it.`,
  ptrMissing: (h, a, r) => `PTR: the address ${a} of the mail server ${h} has no reverse name, and many receivers refuse mail from such addresses. Ask whoever runs the server (your provider) to set the PTR record of ${r} to:`,
  ptrMismatch: (h, a, names, r) => `PTR: the address ${a} of the mail server ${h} has the reverse name ${names}, which does not point back to ${a}. Ask whoever runs the server to set the PTR record of ${r} to a name whose address is ${a}, such as:`,
  whyLine: (d, f) => `the From domain ${d} fails the deliverability check (${f}), which makes providers refuse mail as spam or by policy: mailer check --domain ${d}`,
};

const DE: Words = {
  heading: (d) => `Zustellbarkeit von ${d}`,
  requirementsHeading: 'was Gmail, Yahoo und Microsoft von Massenversendern verlangen:',
  met: 'erfüllt',
  notMet: 'nicht erfüllt',
  requirement: {
    'spf-or-dkim-aligned': 'SPF oder DKIM passend zur Absenderdomain',
    'dmarc-present': 'ein DMARC-Eintrag',
    'one-click-unsubscribe': 'Abmeldung mit einem Klick (List-Unsubscribe, RFC 8058: "publicUrl" setzen und mailer serve laufen lassen)',
  },
  domainMissing: (d) => `MX: Die Domain ${d} gibt es im DNS nicht. Die Schreibweise prüfen (in "from" oder --domain).`,
  mxOk: (hosts) => `MX: Mail an die Domain nimmt ${hosts} an.`,
  mxMissing: (d) => `MX: ${d} hat keinen MX-Eintrag: Antworten und Rückläufer an die Domain kommen nicht an, und manche Empfänger lehnen Mail von einer Domain ab, die keine annimmt. Einen MX-Eintrag bei ${d} anlegen, der den Server nennt, der ihre Mail annimmt (der Anbieter sagt, welcher):`,
  mxNull: (d) => `MX: ${d} erklärt, gar keine Mail anzunehmen (Null-MX, RFC 7505): Antworten und Rückläufer gehen verloren, und Empfänger lehnen ihre Mails womöglich ab. Durch einen MX-Eintrag bei ${d} ersetzen, der den Server nennt, der ihre Mail annimmt:`,
  spfOk: (r, n) => `SPF: ein Eintrag, mit -all oder ~all am Ende, ${n} von 10 DNS-Abfragen: ${r}`,
  spfNone: (d) => `SPF: ${d} hat keinen SPF-Eintrag, Empfänger können Ihren Server also nicht von einem Fälscher unterscheiden. Diesen TXT-Eintrag bei ${d} anlegen:`,
  spfMultiple: (d, n) => `SPF: ${d} hat ${n} SPF-Einträge. Empfänger werten das als Fehler (RFC 7208 §4.5), SPF schlägt dann für jede Mail fehl. Sie löschen und einen TXT-Eintrag bei ${d} anlegen, der beide enthält:`,
  spfSyntax: (d, e) => `SPF: Der Eintrag bei ${d} hat Fehler (${e}), SPF schlägt für jede Mail fehl (permerror). So korrigieren:`,
  spfTooMany: (d, n, costs, fixed) => `SPF: Der Eintrag bei ${d} braucht ${n} DNS-Abfragen; Empfänger hören bei 10 auf (RFC 7208 §4.6.4), SPF schlägt dann für jede Mail fehl. Was sie kostet: ${costs}. ${fixed ? 'Mit den Adressen statt der a- und mx-Angaben braucht er weniger; den Eintrag bei ' + d + ' ändern in:' : 'Includes von Diensten entfernen, über die nicht mehr gesendet wird, oder beim Anbieter nach einem kleineren Include fragen; der zu ändernde Eintrag:'}`,
  spfTargetMissing: (t, d) => `SPF: ${t} verweist auf ${d}, das keinen SPF-Eintrag hat, SPF schlägt für jede Mail fehl (permerror). Die Angabe entfernen oder den Namen im Eintrag korrigieren:`,
  spfTargetMultiple: (t, d) => `SPF: ${t} verweist auf ${d}, das mehr als einen SPF-Eintrag hat (permerror). Dessen Betreiber muss sie zusammenführen; bis dahin die Angabe aus dem Eintrag entfernen:`,
  spfLoop: (d) => `SPF: Der Eintrag bindet sich über ${d} selbst ein (eine Schleife), SPF schlägt fehl. Das Include entfernen, das zurückführt:`,
  spfPlusAll: (d) => `SPF: Der Eintrag bei ${d} endet auf +all: Er erlaubt jedem Server im Internet, im Namen Ihrer Domain zu senden, und die Anbieter rechnen Ihnen das an. Mit ~all beenden (oder -all, sobald alle Absender aufgeführt sind):`,
  spfNeutralAll: (d) => `SPF: Der Eintrag bei ${d} endet auf ?all und sagt damit nichts über andere Server: gefälschte Mail fällt nicht auf. Mit ~all beenden (oder -all, sobald alle Absender aufgeführt sind):`,
  spfNoAll: (d) => `SPF: Der Eintrag bei ${d} hat kein all am Ende, Mail von jedem anderen Server gilt dann als neutral. Mit ~all beenden (oder -all, sobald alle Absender aufgeführt sind):`,
  spfNotAligned: (e, d) => `SPF: Die Mails gehen mit dem Umschlag-Absender @${e} hinaus ("bounceAddress"), nicht ${d}: SPF gilt dann für ${e}, nicht für die Absenderdomain, und zählt für DMARC nicht. Eine Rückläufer-Adresse @${d} verwenden oder auf DKIM setzen.`,
  dmarcOk: (n, p, rua) => `DMARC: ${n} hat einen Eintrag mit der Richtlinie p=${p}${rua ? `; Berichte gehen an ${rua}` : '; er verlangt keine Berichte (rua=mailto:… ergänzen, um zu sehen, wer in Ihrem Namen sendet)'}.${p === 'none' ? ' p=none beobachtet nur: wenn die Berichte zeigen, dass alle Ihre Mails bestehen, auf p=quarantine umstellen.' : ''}`,
  dmarcMissing: (n) => `DMARC: Bei ${n} gibt es keinen DMARC-Eintrag. Gmail und Yahoo verlangen ihn von Massenversendern und lehnen Ihre Mails sonst womöglich ab oder sortieren sie als Spam aus. Diesen TXT-Eintrag bei ${n} anlegen (p=none beobachtet nur und schickt Berichte an die Adresse; später verschärfen):`,
  dmarcMultiple: (n) => `DMARC: ${n} hat mehr als einen DMARC-Eintrag, Empfänger übergehen dann alle (RFC 7489 §6.6.3). Einen TXT-Eintrag bei ${n} behalten:`,
  dmarcInvalid: (n, e) => `DMARC: Der Eintrag bei ${n} hat Fehler (${e}). Durch diesen TXT-Eintrag bei ${n} ersetzen:`,
  dkimOk: (n, kind, t) => `DKIM: Bei ${n} ist ein Schlüssel veröffentlicht (${kind})${t ? '; er ist mit t=y (Test) markiert, Empfänger behandeln signierte Mail dann wie unsignierte: t=y entfernen, sobald das Signieren funktioniert' : ''}.`,
  dkimNone: (d, s, given, ex) => given
    ? `DKIM: Kein DKIM-Schlüssel bei ${s}. DKIM-Signatur beim Mail-Anbieter einschalten und den Schlüssel, den er nennt, als TXT-Eintrag bei ${ex} veröffentlichen:`
    : `DKIM: Für ${d} wurde unter den üblichen Selektoren (${s}) kein DKIM-Schlüssel gefunden. Signiert Ihr Anbieter mit einem anderen, ihn nennen: --dkim-selector <name>. Sonst DKIM-Signatur beim Mail-Anbieter einschalten und den Schlüssel, den er nennt, als TXT-Eintrag bei ${ex} veröffentlichen:`,
  dkimBad: (n, p, ex) => `DKIM: Der Schlüssel bei ${n} ist nicht brauchbar (${p}). Den Schlüssel des Mail-Anbieters erneut als TXT-Eintrag bei ${ex} veröffentlichen:`,
  dkimShort: (n, bits, ex) => `DKIM: Der Schlüssel bei ${n} hat nur ${bits} Bit; Gmail und Yahoo verlangen mindestens 1024. Beim Anbieter einen 2048-Bit-Schlüssel erzeugen lassen und bei ${ex} veröffentlichen:`,
  dkimRevoked: (n, ex) => `DKIM: Der Schlüssel bei ${n} ist widerrufen (p= ist leer): damit signierte Mails bestehen DKIM nicht. Den aktuellen Schlüssel des Mail-Anbieters als TXT-Eintrag bei ${ex} veröffentlichen:`,
  ptrOk: (h, a, n) => `PTR: Der Mailserver ${h} hat die Adresse ${a}, deren Rückwärtsname ${n} wieder auf sie zeigt.`,
  ptrNoSmtp: 'PTR: Kein SMTP-Server eingerichtet (die Mails gehen in den Outbox-Ordner): kein Hostname zu prüfen.',
  ptrNoAddress: (h) => `PTR: Der Hostname des Mailservers, ${h}, hat keine Adresse im DNS. Den Host in der SMTP-URL prüfen oder einen A-Eintrag für ihn anlegen.`,
  ptrMissing: (h, a, r) => `PTR: Die Adresse ${a} des Mailservers ${h} hat keinen Rückwärtsnamen, und viele Empfänger lehnen Mail von solchen Adressen ab. Den Betreiber des Servers (Ihren Anbieter) bitten, den PTR-Eintrag von ${r} zu setzen auf:`,
  ptrMismatch: (h, a, names, r) => `PTR: Die Adresse ${a} des Mailservers ${h} hat den Rückwärtsnamen ${names}, der nicht auf ${a} zurückzeigt. Den Betreiber des Servers bitten, den PTR-Eintrag von ${r} auf einen Namen mit der Adresse ${a} zu setzen, etwa:`,
  whyLine: (d, f) => `die Absenderdomain ${d} besteht die Zustellbarkeitsprüfung nicht (${f}), darum lehnen Anbieter Mail als Spam oder nach ihren Regeln ab: mailer check --domain ${d}`,
};

/** The words in the language LANG asks for, by the catalog's rule. */
export function deliverabilityWords(lang: string | undefined = process.env.LANG): Words {
  return explanationLanguage(lang) === 'de' ? DE : EN;
}

/** The name a PTR record has for an address (RFC 1035 §3.5, RFC 3596 §2.5). */
export function reverseName(address: string): string {
  if (address.includes(':')) {
    const groups = address.split('::');
    const head = groups[0] ? groups[0].split(':') : [];
    const tail = groups.length > 1 && groups[1] ? groups[1].split(':') : [];
    const full = [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail].map((g) => g.padStart(4, '0'));
    return `${full.join('').split('').reverse().join('.')}.ip6.arpa`;
  }
  return `${address.split('.').reverse().join('.')}.in-addr.arpa`;
}

/** Relaxed alignment (RFC 7489 §3.1): the same domain, or one under the other. */
export function aligned(a: string, b: string): boolean {
  const x = a.toLowerCase().replace(/\.$/, '');
  const y = b.toLowerCase().replace(/\.$/, '');
  return x === y || x.endsWith(`.${y}`) || y.endsWith(`.${x}`);
}

/** What a new SPF record names for the SMTP host: its include when a known provider, else its address or name. */
export function spfTermFor(host: string): string {
  const h = host.toLowerCase();
  if (/(^|\.)(office365\.com|outlook\.com)$/.test(h)) return 'include:spf.protection.outlook.com';
  if (/(^|\.)(gmail\.com|google\.com|googlemail\.com)$/.test(h)) return 'include:_spf.google.com';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(h)) return `ip4:${h}`;
  if (h.includes(':')) return `ip6:${h.replace(/^\[|\]$/g, '')}`;
  return `a:${h}`;
}
