// The Worker's settings, parsed from Env once per isolate (and again only when a value changes). Every
// problem is a ConfigError naming its variable, which clients see as 503 kbs-misconfigured, never a 500.

import { AsyncLocalStorage } from "node:async_hooks";
import { loadAdminAuth, type AdminAuth } from "./auth/admin";
import { toHex } from "./crypto/bytes";
import { parseMasterKeys, type MasterKeyring } from "./crypto/seal";
import type { Env } from "./env";
import { ConfigError } from "./errors";
import { DEFAULT_KDS_URL } from "./kds/kds";
import { operatorTrust, type OperatorTrust } from "./tee/trust";
import { loadTokenKey, type TokenKey } from "./trustee/token";

export type CrlMode = "strict" | "best-effort";
const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The keys and credentials, each loaded on first use; a problem surfaces (as a ConfigError) only when used. */
export interface Keys {
  /** AMD's pinned roots plus EXTRA_TRUSTED_ARKS. */
  trust(): Promise<OperatorTrust>;
  /** KBS_MASTER_KEY, imported. */
  masterKeys(): Promise<MasterKeyring>;
  /** ADMIN_TOKEN, ADMIN_JWT_* */
  adminAuth(): Promise<AdminAuth>;
  /** TOKEN_SIGNING_KEY, imported: signs the Trustee protocol's attestation tokens. */
  tokenKey(): Promise<TokenKey>;
}

export interface Config extends Keys {
  challengeTtlMs: number;
  sessionTtlMs: number;
  crlMode: CrlMode;
  kdsUrl: string;
  logLevel: LogLevel;
}

function seconds(env: Env, name: "CHALLENGE_TTL_SECONDS" | "SESSION_TTL_SECONDS", fallback: number): number {
  const text = env[name]?.trim();
  if (!text) return fallback * 1000;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new ConfigError(name, "must be a positive number of seconds");
  return n * 1000;
}

function crlMode(env: Env): CrlMode {
  const mode = env.CRL_MODE?.trim() || "best-effort";
  if (mode !== "strict" && mode !== "best-effort") throw new ConfigError("CRL_MODE", 'must be "strict" or "best-effort"');
  return mode;
}

function kdsUrl(env: Env): string {
  const url = env.KDS_URL?.trim() || DEFAULT_KDS_URL;
  let protocol = "";
  try {
    protocol = new URL(url).protocol;
  } catch {
    // not a URL at all
  }
  if (protocol !== "https:" && protocol !== "http:") throw new ConfigError("KDS_URL", "must be an http(s) URL");
  return url.replace(/\/+$/, "");
}

function logLevel(env: Env): LogLevel {
  const level = env.LOG_LEVEL?.trim() || "info";
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new ConfigError("LOG_LEVEL", `must be one of ${LOG_LEVELS.join(", ")}`);
  return level as LogLevel;
}

/** A promise made once; a rejected one is not kept, so each call reports the problem afresh. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let kept: Promise<T> | undefined;
  return () => {
    if (!kept) {
      kept = make();
      kept.catch(() => (kept = undefined));
    }
    return kept;
  };
}

function loaders(env: Env): Keys {
  return {
    trust: once(() => operatorTrust(env.EXTRA_TRUSTED_ARKS ?? "")),
    masterKeys: once(() => parseMasterKeys(env.KBS_MASTER_KEY)),
    adminAuth: once(() => loadAdminAuth(env)),
    tokenKey: once(() => loadTokenKey(env.TOKEN_SIGNING_KEY)),
  };
}

function parse(env: Env): Config {
  return {
    challengeTtlMs: seconds(env, "CHALLENGE_TTL_SECONDS", 300),
    sessionTtlMs: seconds(env, "SESSION_TTL_SECONDS", 10800),
    crlMode: crlMode(env),
    kdsUrl: kdsUrl(env),
    logLevel: logLevel(env),
    ...keys(env),
  };
}

const VARIABLES = [
  "CHALLENGE_TTL_SECONDS",
  "SESSION_TTL_SECONDS",
  "CRL_MODE",
  "KDS_URL",
  "LOG_LEVEL",
  "EXTRA_TRUSTED_ARKS",
  "KBS_MASTER_KEY",
  "ADMIN_TOKEN",
  "ADMIN_JWT_PUBLIC_KEYS",
  "ADMIN_JWT_ISSUER",
  "ADMIN_JWT_AUDIENCE",
  "ADMIN_JWT_MAX_TTL_SECONDS",
  "TOKEN_SIGNING_KEY",
] as const satisfies readonly (keyof Env)[];

const sourceOf = (env: Env) => JSON.stringify(VARIABLES.map((v) => env[v] ?? null));
let cached: { source: string; config: Config } | undefined;
let cachedKeys: { source: string; keys: Keys } | undefined;

/** The settings for this Env; throws ConfigError when a plain variable is unusable. */
export function config(env: Env): Config {
  const source = sourceOf(env);
  if (cached?.source !== source) cached = { source, config: parse(env) };
  return cached.config;
}

/** The key loaders alone, usable while a plain variable is unusable (/readyz reports each problem apart). */
export function keys(env: Env): Keys {
  const source = sourceOf(env);
  if (cachedKeys?.source !== source) cachedKeys = { source, keys: loaders(env) };
  return cachedKeys.keys;
}

// The request a log line belongs to: the Worker sets it per request (src/app.ts) and the session object per
// call (the Worker passes it along), so a guest's lines from both sides carry the same id.
const requestScope = new AsyncLocalStorage<string>();

/** A request id that is not Cloudflare's Ray ID: 16 random hex digits, the length of one. */
export function newRequestId(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(8)));
}

/** Runs `run` with log lines carrying `requestId`. */
export function withRequestId<T>(requestId: string, run: () => T): T {
  return requestScope.run(requestId, run);
}

export function currentRequestId(): string | undefined {
  return requestScope.getStore();
}

/** One JSON line per event at `level`, with its request id; never evidence, keys, tokens or secrets. */
export function log(env: Env, level: LogLevel, fields: Record<string, unknown>): void {
  let threshold: LogLevel;
  try {
    threshold = config(env).logLevel;
  } catch {
    threshold = "info";
  }
  if (LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(threshold)) return;
  const line = JSON.stringify({ request_id: requestScope.getStore() ?? null, ...fields });
  (level === "error" ? console.error : level === "warn" ? console.warn : console.log)(line);
}
