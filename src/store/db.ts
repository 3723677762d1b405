// Opens the index and event store: SQLite (WAL, synchronous=FULL) by default, PostgreSQL for a postgres:// URL.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import type { DB } from './schema.ts';
import { migrate } from './migrate.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface StoreDb {
  db: Kysely<DB>;
  dialect: Dialect;
  close(): Promise<void>;
}

export interface OpenOptions {
  url: string;
  dataDir: string;
  password?: string;
}

export async function openStore(opts: OpenOptions): Promise<StoreDb> {
  const url = opts.url;
  if (/^postgres(ql)?:\/\//.test(url)) {
    const types = {
      getTypeParser(oid: number, format?: 'text' | 'binary') {
        // int8 and numeric come back as strings by default; our numbers fit in a double.
        if (oid === 20 || oid === 1700) return (v: string) => Number(v);
        return pg.types.getTypeParser(oid, format);
      },
    };
    const pool = new pg.Pool({ connectionString: url, password: opts.password, max: 10, types });
    pool.on('error', () => {
      /* idle client errors surface on the next query */
    });
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
    await migrate(db, 'postgres');
    return { db, dialect: 'postgres', close: () => db.destroy() };
  }
  const file = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : path.join(opts.dataDir, 'postern.db');
  const abs = path.resolve(opts.dataDir, file);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const sqlite = new Database(abs);
  sqlite.pragma('journal_mode = WAL');
  // FULL: a commit that precedes a 250 must survive a power loss (reliability.md, durability).
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('busy_timeout = 10000');
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: sqlite }) });
  await migrate(db, 'sqlite');
  return { db, dialect: 'sqlite', close: () => db.destroy() };
}
