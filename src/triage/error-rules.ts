import { badInput } from '../errors.js';
import { BUILT_IN_RULES, CATEGORIES, explain, ruleKind, type CatalogRule, type Category } from '../domain/catalog.js';
import type { Store } from '../store/store.js';

/** A rule of the catalog as `errors list` shows it: whose it is, and what it means in words. */
export interface ListedRule extends CatalogRule {
  source: 'yours' | 'built-in';
  explanation: string;
}

/** The rules in the order they are tried: the user's first, so that they win over the built-in ones. */
export function listErrorRules(store: Store): ListedRule[] {
  const listed = (r: CatalogRule, source: ListedRule['source']): ListedRule => ({ ...r, source, explanation: r.text ?? explain(r.category) });
  return [...store.triage.errorRules().map((r) => listed(r, 'yours')), ...BUILT_IN_RULES.map((r) => listed(r, 'built-in'))];
}

/** A rule as the user types it for `errors add`. */
export interface ErrorRuleInput {
  match: string;
  category: string;
  permanent?: boolean;
  temporary?: boolean;
  text?: string;
}

/**
 * Checked before anything is stored: the catalog skips a rule it cannot read, so a mistyped one
 * would sit in the database and never match, without a word. Called before the store is opened,
 * so that a bad rule is refused even where there is no database yet.
 */
export function errorRuleFrom(input: ErrorRuleInput): CatalogRule {
  if (!(CATEGORIES as readonly string[]).includes(input.category)) {
    throw badInput(`unknown category "${input.category}"`, `use one of: ${CATEGORIES.join(', ')}`);
  }
  if (input.permanent === input.temporary) throw badInput('say --permanent or --temporary (one of them)');
  const kind = ruleKind(input.match);
  if (!kind) throw badInput(`--match "${input.match}" is neither a reply code (550), an enhanced code (5.1.1), an error code (ECONNRESET) nor /a regex/`);
  if (kind === 'text') {
    const slash = input.match.lastIndexOf('/');
    try {
      new RegExp(input.match.slice(1, slash), input.match.slice(slash + 1));
    } catch (err) {
      throw badInput(`--match ${input.match} is not a valid regular expression: ${(err as Error).message}`);
    }
  }
  return { match: input.match, category: input.category as Category, permanent: !!input.permanent, text: input.text };
}
