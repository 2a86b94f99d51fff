import type { Command } from 'commander';
import { withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to suppress add's action. */
interface SuppressAddFlags {
  reason: string;
  topic?: string;
}

interface TopicFlags {
  topic?: string;
}

const TOPIC_HELP = 'only mails of this topic (the template\'s Topic:, else its Type; "*": every topic); required mails still go out';

export function registerSuppress(program: Command): void {
  const suppress = program.command('suppress').description('addresses no mail goes to (unsubscribed, bounced, asked not to), or no mail of one topic')
    .addHelpText('after', examples([
      "mailer suppress add anna@example.org --reason 'hard bounce, letter sent'",
      "mailer suppress add ben@example.org --topic newsletter --reason 'asked by phone'",
    ]));
  suppress
    .command('add')
    .argument('<address>', 'the e-mail address')
    .option('--reason <text>', 'why', 'added by hand')
    .option('--topic <topic>', TOPIC_HELP)
    .description('suppress an address: every send and retry leaves it out (with --topic: the mails of that topic)')
    .addHelpText('after', examples([
      "mailer suppress add anna@example.org --reason 'asked by phone'",
      "mailer suppress add ben@example.org --topic newsletter --reason 'asked by phone'",
    ]))
    .action((address: string, opts: SuppressAddFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { addressToSuppress, suppressAddress, topicToSuppress } = await import('../members/suppressions.js');
      const email = addressToSuppress(address);
      const topic = opts.topic === undefined ? null : topicToSuppress(opts.topic);
      suppressAddress(ctx.store, email, topic, opts.reason, ctx.now());
      if (ctx.out.json) ctx.out.jsonResult({ email, topic, reason: opts.reason, suppressed: true });
      else ctx.out.line(topic === null ? `suppressed ${email}: ${opts.reason}` : `suppressed ${email} for the topic ${topicLabel(topic)}: ${opts.reason}`);
    }));
  suppress
    .command('remove')
    .argument('<address>', 'the e-mail address')
    .option('--topic <topic>', 'allow the mails of this topic again')
    .description('allow mail to an address again')
    .addHelpText('after', examples(['mailer suppress remove anna@example.org', 'mailer suppress remove ben@example.org --topic newsletter']))
    .action((address: string, opts: TopicFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { unsuppressAddress, topicToSuppress } = await import('../members/suppressions.js');
      const topic = opts.topic === undefined ? null : topicToSuppress(opts.topic);
      const email = unsuppressAddress(ctx.store, address, topic);
      if (ctx.out.json) ctx.out.jsonResult({ email, topic, suppressed: false });
      else ctx.out.line(topic === null ? `${email} is no longer suppressed` : `${email} gets mails of the topic ${topicLabel(topic)} again`);
    }));
  suppress
    .command('list')
    .option('--topic <topic>', 'only the opt-outs of this topic')
    .description('the suppressed addresses and topic opt-outs, newest first')
    .addHelpText('after', examples(['mailer suppress list --topic newsletter', 'mailer suppress list --json']))
    .action((opts: TopicFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { formatTime, isoTime } = await import('../ui/output.js');
      const { topicToSuppress } = await import('../members/suppressions.js');
      const topic = opts.topic === undefined ? null : topicToSuppress(opts.topic);
      const list = ctx.store.triage.optOuts(topic);
      if (ctx.out.json) {
        ctx.out.jsonResult(list.map((s) => ({ email: s.email, topic: s.topic, reason: s.reason, since: isoTime(s.createdAt) })));
        return;
      }
      if (list.length === 0) ctx.out.line(topic === null ? 'no suppressed addresses' : `nobody has opted out of the topic ${topicLabel(topic)}`);
      for (const s of list) ctx.out.line(`${s.email}  ${s.topic === null ? 'all mails' : `topic ${topicLabel(s.topic)}`}  since ${formatTime(s.createdAt)}  ${s.reason}`);
    }));
}

/** How a line names a topic: "*" is every topic members may opt out of. */
function topicLabel(topic: string): string {
  return topic === '*' ? '* (all topics)' : `"${topic}"`;
}
