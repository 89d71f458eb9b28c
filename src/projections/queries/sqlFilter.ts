type Value = string | number | null;

/**
 * A WHERE clause built from optional filters: a filter whose value is undefined adds nothing. Column
 * names come from the code, never from a request; values are always bound parameters.
 */
export const sqlFilter = () => {
  const conditions: string[] = [];
  const params: Value[] = [];
  const add = (condition: string, ...values: Value[]): void => {
    conditions.push(condition);
    params.push(...values);
  };
  const builder = {
    eq(column: string, value: Value | undefined) {
      if (value !== undefined) add(`"${column}" = ?`, value);
      return builder;
    },
    /** `unindexed`: SQLite must not pick this column's index (another filter's is far narrower). */
    in(column: string, values: readonly Value[] | undefined, unindexed = false) {
      if (values !== undefined && values.length > 0) {
        conditions.push(`${unindexed ? '+' : ''}"${column}" IN (${values.map(() => '?').join(', ')})`);
        params.push(...values);
      }
      return builder;
    },
    atLeast(column: string, value: number | undefined) {
      if (value !== undefined) add(`"${column}" >= ?`, value);
      return builder;
    },
    below(column: string, value: number | undefined) {
      if (value !== undefined) add(`"${column}" < ?`, value);
      return builder;
    },
    /** Rows strictly before `key` in the descending order of `columns` (keyset pagination). */
    before(columns: readonly string[], key: readonly Value[] | undefined) {
      if (key !== undefined) {
        conditions.push(`(${columns.map((c) => `"${c}"`).join(', ')}) < (${columns.map(() => '?').join(', ')})`);
        params.push(...key);
      }
      return builder;
    },
    /** Rows strictly after `key` in the ascending order of `columns`. */
    after(columns: readonly string[], key: readonly Value[] | undefined) {
      if (key !== undefined) {
        conditions.push(`(${columns.map((c) => `"${c}"`).join(', ')}) > (${columns.map(() => '?').join(', ')})`);
        params.push(...key);
      }
      return builder;
    },
    /** Any condition the builder has no verb for, with its parameters. */
    where(condition: string, ...values: Value[]) {
      conditions.push(condition);
      params.push(...values);
      return builder;
    },
    get sql(): string {
      return conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    },
    get params(): Value[] {
      return params;
    },
  };
  return builder;
};
