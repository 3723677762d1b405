// Opens the index and event store: SQLite (WAL, synchronous=FULL) by default, PostgreSQL for a postgres:// URL.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import type { DB } from './schema.ts';
import { migrate } from './migrate.ts';
import { FastSqlite } from './fast.ts';
import { coalesce } from '../core/coalesce.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface StoreDb {
  db: Kysely<DB>;
  dialect: Dialect;
  /**
   * Makes every transaction committed so far survive a crash or power loss. Call it before telling a
   * client its message is ours. PostgreSQL commits are durable already; SQLite's WAL is fsynced here.
   */
  durable(): Promise<void>;
  /** The SQLite handle, for the few hot paths that run prepared statements directly (SQLite only). */
  sqlite?: Database.Database;
  /** Prepared-statement writers for the per-message hot paths (SQLite only). */
  fast?: FastSqlite;
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
    // Loaded only for a PostgreSQL store: tens of MB a process and thread that SQLite installations never use.
    const { default: pg } = await import('pg');
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
    return { db, dialect: 'postgres', durable: () => Promise.resolve(), close: () => db.destroy() };
  }
  const file = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : path.join(opts.dataDir, 'postern.db');
  const abs = path.resolve(opts.dataDir, file);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const sqlite = new Database(abs);
  sqlite.pragma('journal_mode = WAL');
  // NORMAL: commits append to the WAL without an fsync, which better-sqlite3 would run on the event loop.
  // The commits behind a 250 are made durable by durable() below, which fsyncs the WAL on the thread pool
  // and so serves every message committed before it (group commit). With FULL instead, each commit would
  // stall every SMTP session for the length of an fsync.
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 10000');
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: cachedStatements(sqlite) }) });
  await migrate(db, 'sqlite');
  const wal = `${abs}-wal`;
  let fh: fsp.FileHandle | undefined;
  const sync = async () => {
    fh ??= await fsp.open(wal, 'r');
    await fh.sync();
  };
  // Shared by every writer in this process: concurrent batches cost at most two fsyncs.
  const durable = coalesce(sync);
  return {
    db,
    dialect: 'sqlite',
    durable,
    sqlite,
    fast: new FastSqlite(sqlite),
    close: async () => {
      await fh?.close().catch(() => undefined);
      await db.destroy();
    },
  };
}

/**
 * Kysely's SQLite driver prepares every query anew; the hot paths run the same few statements thousands of
 * times a second, so prepared statements are kept by their SQL text (bounded).
 */
function cachedStatements(sqlite: Database.Database): Database.Database {
  const cache = new Map<string, Database.Statement>();
  const prepare = sqlite.prepare.bind(sqlite);
  return new Proxy(sqlite, {
    get(target, prop, receiver) {
      if (prop === 'prepare') {
        return (sql: string) => {
          let st = cache.get(sql);
          if (!st) {
            st = prepare(sql);
            if (cache.size >= 500) cache.delete(cache.keys().next().value as string);
            cache.set(sql, st);
          }
          return st;
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}
