import { log } from "../config";
import type { Env } from "../env";
import type { D1Reader } from "../store/secrets";

/**
 * Where the AMD certificate and CRL caches live for one request: reads from the nearest D1 replica,
 * writes to the primary deferred past the answer. A cache write that fails is logged and forgotten: the
 * verdict never depends on it.
 */
export interface CacheDb {
  read: D1Reader;
  write: D1Database;
  defer(write: Promise<void>, what: string): void;
}

export function cacheDb(env: Env, read: D1Reader, waitUntil: (p: Promise<unknown>) => void): CacheDb {
  return {
    read,
    write: env.DB,
    defer: (p, what) => waitUntil(p.catch((e: unknown) => log(env, "error", { event: "cache.write-failed", what, name: (e as Error)?.name }))),
  };
}
