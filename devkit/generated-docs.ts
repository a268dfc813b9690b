// Generated blocks in the Markdown docs: the text between two markers is replaced by
// what a committed results file says, and the document is formatted as `npm run lint`
// expects. Must never touch text outside the markers.
import { format, resolveConfig } from 'prettier';

export const START = '<!-- generated:figures:start';
export const END = '<!-- generated:figures:end -->';

/** `doc` with the block between the markers replaced by `block`. */
export function replaceBlock(doc: string, block: string, source: string): string {
  const start = doc.indexOf(START);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error(`no ${START} … ${END} block in the document`);
  const marker = `${START}: \`npm run docs\` writes this block from ${source}; do not edit it by hand -->`;
  return `${doc.slice(0, start)}${marker}\n\n${block}\n\n${doc.slice(end)}`;
}

/** Formats Markdown as `prettier --check` expects it for `path`. */
export async function formatMarkdown(text: string, path: string): Promise<string> {
  const options = (await resolveConfig(path)) ?? {};
  return format(text, { ...options, parser: 'markdown' });
}

/** A table cell: pipes escaped. */
export const cell = (text: string): string => text.replaceAll('|', '\\|');
