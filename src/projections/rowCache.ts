import { keyText, type RowKey } from '../../domain/projections/readModel.js';
import type { TableSchema } from './tableSchema.js';

type Level<Entry> = Map<unknown, Entry>;

/**
 * What a table writer holds in memory, found by the values of the row's key: a map by the first
 * column, and within it a map by the second. A lookup hashes values the caller already has, where a
 * key's text (`keyText`) is a new string to build and hash on every get and set — 4,000,000 lookups
 * of a statistics key (task, bucket start): 0.7 s by text, 0.14 s nested, and a rebuild makes a dozen
 * per event. Keys of three columns or more are found by their text.
 *
 * Two keys are the same exactly when their texts are (as everywhere else in the read side): a value
 * is compared as its column's kind holds it — text as a string, anything else as a number where its
 * text is a number's, so `5` and `'5'` meet and `'05'` stays apart.
 */
export class RowCache<Entry extends { readonly text: string }> {
  readonly #width: number;
  readonly #first: string;
  readonly #second: string | undefined;
  readonly #normal: ReadonlyArray<(value: unknown) => unknown>;
  /** `keyText` of a row's key, without the array: spelled out for keys of up to three columns. */
  readonly #textOf: (row: object) => string;
  #top = new Map<unknown, Entry | Level<Entry>>();
  #size = 0;
  /**
   * The key or row the last lookup of a wide key made the text of, and that text: a miss asks for it
   * right after (`textOfKey`, `textOfRow`), once.
   */
  #textFor: object | null = null;
  #text = '';

  constructor(schema: TableSchema) {
    const key = schema.key;
    this.#width = key.length;
    this.#first = key[0]!;
    this.#second = key[1];
    const [a, b, c] = key as [string, string?, string?];
    const r = (row: object) => row as Record<string, string | number>;
    this.#textOf =
      key.length === 1
        ? (row) => String(r(row)[a])
        : key.length === 2
          ? (row) => `${r(row)[a]}\u0000${r(row)[b!]}`
          : key.length === 3
            ? (row) => `${r(row)[a]}\u0000${r(row)[b!]}\u0000${r(row)[c!]}`
            : (row) => keyText(key.map((column) => r(row)[column]!));
    this.#normal = schema.key.map((name) =>
      schema.columns.find((c) => c.name === name)?.kind === 'text' ? asText : asNumberOrText,
    );
  }

  get size(): number {
    return this.#size;
  }

  get(key: RowKey): Entry | undefined {
    if (this.#width > 2) return this.#top.get(this.#remember(key, keyText(key))) as Entry | undefined;
    return this.#find(key[0], key[1]);
  }

  /** The entry at the key `row` has. */
  ofRow(row: object): Entry | undefined {
    if (this.#width > 2) return this.#top.get(this.#remember(row, this.#textOf(row))) as Entry | undefined;
    const r = row as Record<string, unknown>;
    return this.#find(r[this.#first], this.#second === undefined ? undefined : r[this.#second]);
  }

  /** `keyText(key)`: for a wide key just looked up (`get`), the text that lookup made. */
  textOfKey(key: RowKey): string {
    return this.#recalled(key) ?? keyText(key);
  }

  /** The text of the key `row` has: for a wide key just looked up (`ofRow`), the text that lookup made. */
  textOfRow(row: object): string {
    return this.#recalled(row) ?? this.#textOf(row);
  }

  /** Puts `entry` (its key's text `entry.text`) at `key`, which holds none yet: a lookup just missed it. */
  add(key: RowKey, entry: Entry): void {
    this.#size++;
    if (this.#width > 2) {
      this.#top.set(entry.text, entry);
      return;
    }
    const first = this.#normal[0]!(key[0]);
    if (this.#width === 1) {
      this.#top.set(first, entry);
      return;
    }
    let level = this.#top.get(first) as Level<Entry> | undefined;
    if (!level) this.#top.set(first, (level = new Map()));
    level.set(this.#normal[1]!(key[1]), entry);
  }

  clear(): void {
    this.#top = new Map();
    this.#size = 0;
    this.#textFor = null;
  }

  #remember(source: object, text: string): string {
    this.#textFor = source;
    this.#text = text;
    return text;
  }

  #recalled(source: object): string | undefined {
    if (this.#textFor !== source) return undefined;
    this.#textFor = null;
    return this.#text;
  }

  /** By the first two columns' values (the second unused for a one-column key). */
  #find(a: unknown, b: unknown): Entry | undefined {
    const found = this.#top.get(this.#normal[0]!(a));
    if (this.#width === 1 || found === undefined) return found as Entry | undefined;
    return (found as Level<Entry>).get(this.#normal[1]!(b));
  }
}

const asText = (value: unknown): unknown => (typeof value === 'string' ? value : String(value));

const asNumberOrText = (value: unknown): unknown => {
  if (typeof value === 'number') return value;
  const text = String(value);
  const number = Number(text);
  return String(number) === text ? number : text;
};
