/** The end of a command's --help: invocations that work as they stand, as git and gh show. */
export function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}`;
}
