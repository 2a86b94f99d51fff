import { badInput } from '../errors.js';

/**
 * A topic is a name people see on the unsubscribe page and type after --topic; by default a
 * template's type, which is its file name, so anything printable on one line goes, except a
 * leading "*" (that stands for every topic).
 */
const TOPIC = /^[^\s*\p{C}][^\p{C}]{0,99}$/u;

/** A template's Topic: (else its type), or suppress's --topic: a plain name, checked in this one place. */
export function topicName(value: string, where: string): string {
  const topic = value.trim();
  if (!TOPIC.test(topic)) {
    throw badInput(`${where}: the topic "${topic}" is not a plain name`,
      'a topic is a name like newsletter or survey, on one line, at most 100 characters, not starting with "*"');
  }
  return topic;
}
