// SQLite hot paths: rows written through cached prepared statements inside one synchronous transaction.
// Kysely builds and compiles a query object for every call; on the paths that run for every message (taking
// ownership, recording a delivery) that cost more than SQLite's own work, so they bypass it on SQLite. The
// PostgreSQL backend keeps Kysely: its round trips dwarf query building.
import type Database from 'better-sqlite3';

const IDENT = /^[a-z_][a-z0-9_]*$/;

export class FastSqlite {
  private statements = new Map<string, Database.Statement>();

  constructor(readonly sqlite: Database.Database) {}

  /** A prepared statement by its text, kept for reuse. */
  statement(text: string): Database.Statement {
    let st = this.statements.get(text);
    if (!st) {
      st = this.sqlite.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  /** Inserts one row; the statement is prepared once per table and set of columns. */
  insert(table: string, row: object): void {
    const cols = Object.keys(row);
    const key = `${table}|${cols.join(',')}`;
    let st = this.statements.get(key);
    if (!st) {
      // Table and column names come from our own row types, never from input; checked all the same.
      for (const c of [table, ...cols]) if (!IDENT.test(c)) throw new Error(`not an identifier: ${c}`);
      st = this.sqlite.prepare(`insert into ${table} (${cols.join(', ')}) values (${cols.map((c) => '@' + c).join(', ')})`);
      this.statements.set(key, st);
    }
    st.run(row);
  }

  /** Runs `fn` in one transaction (a savepoint when one is open already). */
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
    return this.sqlite.transaction(fn);
  }
}
