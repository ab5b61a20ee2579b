import { type CliIo, wantsColour } from './io';

export type Style = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'cyan' | 'magenta';

const SGR: Record<Style, [number, number]> = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  cyan: [36, 39],
  magenta: [35, 39],
};

/** A table cell: text, optionally styled (the style is applied after padding, so escape codes never skew widths). */
export type Cell = string | { text: string; style?: Style | undefined };

/** Writes a command's result: JSON for `--json`, else aligned text, coloured only when `wantsColour`. */
export class Output {
  readonly colour: boolean;

  constructor(
    private readonly io: CliIo,
    readonly json: boolean,
  ) {
    this.colour = wantsColour(io);
  }

  style(text: string, style: Style | undefined): string {
    if (!this.colour || style === undefined || text === '') return text;
    const [on, off] = SGR[style];
    return `\u001b[${on}m${text}\u001b[${off}m`;
  }

  /** The whole result of a `--json` command: one value, pretty-printed, newline-terminated. */
  printJson(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /**
   * A `--json` array written an item at a time, byte for byte what printJson writes for the whole array, so that a
   * long result is never held whole. Call end() once, after the last item.
   */
  jsonArray(): { push(values: readonly unknown[]): void; end(): void } {
    let count = 0;
    return {
      push: (values) => {
        if (values.length === 0) return;
        const items = values.map((v) => `  ${JSON.stringify(v, null, 2).replace(/\n/g, '\n  ')}`);
        this.io.stdout.write(`${count === 0 ? '[\n' : ',\n'}${items.join(',\n')}`);
        count += values.length;
      },
      end: () => {
        this.io.stdout.write(count === 0 ? '[]\n' : '\n]\n');
      },
    };
  }

  /** JSON Lines: each value as compact JSON on a line of its own. */
  jsonLines(values: readonly unknown[]): void {
    if (values.length > 0) this.io.stdout.write(values.map((v) => `${JSON.stringify(v)}\n`).join(''));
  }

  /** Resolves once the output written so far has gone to the reader; false when the reader has gone. */
  async drained(): Promise<boolean> {
    return (await this.io.stdout.drain?.()) ?? true;
  }

  line(text = ''): void {
    this.io.stdout.write(`${text}\n`);
  }

  /** `label  value` pairs with the labels aligned; rows whose value is undefined are left out. */
  fields(rows: [string, Cell | undefined][]): void {
    const present = rows.filter((r): r is [string, Cell] => r[1] !== undefined);
    const width = Math.max(0, ...present.map(([label]) => label.length));
    for (const [label, value] of present) {
      const cell = typeof value === 'string' ? { text: value } : value;
      this.line(`${this.style(label.padEnd(width), 'dim')}  ${this.style(cell.text, cell.style)}`);
    }
  }

  /** A heading and an indented block of free text (instructions, prompts, JSON, output tails). */
  block(title: string, text: string): void {
    this.line(this.style(`${title}:`, 'bold'));
    for (const l of text.replace(/\s+$/, '').split('\n')) this.line(`  ${l}`);
  }

  /** Columns padded to their widest cell, two spaces apart, header in bold; the last column is not padded. */
  table(header: string[], rows: Cell[][]): void {
    this.tableInParts(header).rows(rows);
  }

  /**
   * A table written a batch of rows at a time (a page of a long listing), the header once, before the first batch.
   * The first batch sets the column widths; a wider cell in a later batch widens its column from that batch on.
   */
  tableInParts(header: string[]): { rows(rows: Cell[][]): void } {
    const text = (c: Cell) => (typeof c === 'string' ? c : c.text);
    const widths = header.map((h) => h.length);
    let started = false;
    const render = (cells: Cell[], headerRow: boolean) =>
      cells
        .map((c, i) => {
          const cell = typeof c === 'string' ? { text: c, style: undefined } : c;
          const padded = i === cells.length - 1 ? cell.text : cell.text.padEnd(widths[i] ?? 0);
          return this.style(padded, headerRow ? 'bold' : cell.style);
        })
        .join('  ')
        .trimEnd();
    return {
      rows: (rows) => {
        for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, text(c).length)));
        const lines = started ? [] : [render(header, true)];
        started = true;
        for (const r of rows) lines.push(render(r, false));
        if (lines.length > 0) this.io.stdout.write(lines.map((l) => `${l}\n`).join(''));
      },
    };
  }
}

/** One line of at most `max` characters: control characters and line breaks become spaces. */
export function clip(text: string | null | undefined, max = 60): string {
  if (text === null || text === undefined) return '';
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** ISO time without milliseconds, as tables show it: 2025-11-21T03:24:05Z. */
export function shortTime(iso: string | null): string {
  if (iso === null) return '';
  return iso.replace(/\.\d+Z$/, 'Z');
}

export function duration(ms: number | null): string | undefined {
  if (ms === null) return undefined;
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 2 * 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
