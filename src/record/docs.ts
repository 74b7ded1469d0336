/**
 * The record's tables in the docs, rendered from the schema (schema.ts):
 * README.md and docs/record.md hold them between marker comments,
 *   <!-- schema:<table>:begin --> ... <!-- schema:<table>:end -->
 * and `make docs` (write-docs.ts) rewrites what is between them. A unit test
 * fails when a file's tables and the schema disagree. Pure: text in, text out.
 */
import { ATTRIBUTES, EVENT_KINDS, EVENTS, SEED_ARGUMENTS, type AttributeEntry } from './schema';

/** The tables a document can hold, by the name in its markers. */
export const TABLES: Readonly<Record<string, () => string>> = {
  events: renderEvents,
  attributes: renderAttributes,
  seed: renderSeed,
};

const row = (cells: string[]): string => `| ${cells.join(' | ')} |`;

/** `|` inside a cell would end it. */
const cell = (text: string): string => text.replace(/\|/g, '\\|');

function renderEvents(): string {
  return [
    row(['event', 'EventName', 'when']),
    row(['---', '---', '---']),
    ...EVENT_KINDS.map((k) => row([k, `\`${EVENTS[k].name}\``, cell(EVENTS[k].brief)])),
  ].join('\n');
}

function eventsOf(a: AttributeEntry): string {
  return EVENT_KINDS.every((k) => a.events.includes(k)) ? 'all' : a.events.join(', ');
}

function renderAttributes(): string {
  return [
    row(['attribute', 'type', 'events', 'present', 'meaning']),
    row(['---', '---', '---', '---', '---']),
    ...ATTRIBUTES.map((a) => row([`\`${a.key}\``, a.type, eventsOf(a), a.presence === 'always' ? 'always' : 'when known', cell(a.brief)])),
  ].join('\n');
}

function renderSeed(): string {
  return [
    row(['seed argument', 'attributes']),
    row(['---', '---']),
    ...SEED_ARGUMENTS.map((arg) =>
      row([
        `\`${arg}\``,
        ATTRIBUTES.filter((a) => a.seed.includes(arg))
          .map((a) => `\`${a.key}\``)
          .join(', '),
      ]),
    ),
    row([
      "(none: a constant, the socket's cgroup, or the flow's end)",
      ATTRIBUTES.filter((a) => a.seed.length === 0)
        .map((a) => `\`${a.key}\``)
        .join(', '),
    ]),
  ].join('\n');
}

const MARKER = /<!-- schema:([a-z]+):begin -->\n[\s\S]*?<!-- schema:\1:end -->/g;

/** The table names `text` has markers for, in order. */
export function tablesIn(text: string): string[] {
  return [...text.matchAll(MARKER)].map((m) => m[1]);
}

/** `text` with every marked table rendered afresh from the schema. Throws on a marker naming no table. */
export function rewriteTables(text: string): string {
  return text.replace(MARKER, (_all, name: string) => {
    const render = TABLES[name];
    if (render === undefined) throw new Error(`unknown schema table "${name}" (known: ${Object.keys(TABLES).join(', ')})`);
    return `<!-- schema:${name}:begin -->\n${render()}\n<!-- schema:${name}:end -->`;
  });
}
