// Admin credentials: the static ADMIN_TOKEN (compared as SHA-256 digests in constant time) and JWTs
// signed with EdDSA (Ed25519) or ES256 by keys in ADMIN_JWT_PUBLIC_KEYS (a JWKS). A JWT's optional
// `scope` claim limits it to some workload ids (multi-tenant operators): an entry that ends in one of the
// separators `. _ ~ : @ + -` is a prefix ("web." covers "web.prod"), any other entry is one exact id
// ("web" covers "web" only, not "webhook-prod"). A JWT without `sub` is Trustee's `kbs-client` shape (iat, exp,
// nbf and nothing else): its signer is named by the key that verified it.

import { calculateJwkThumbprint, createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyOptions } from "jose";
import { buf, utf8 } from "../crypto/bytes";
import { ConfigError } from "../errors";

export interface AdminIdentity {
  kind: "token" | "jwt";
  /**
   * Who did it, for the audit log: "token"; "jwt:<iss>/<sub>"; for a JWT without sub "jwt-key:<RFC 7638
   * thumbprint of the verifying key>". No JWT can pass for the token, nor a sub-less one for one with a sub.
   */
  subject: string;
  /** Workload ids and id prefixes the credential may touch (see above); null means every workload. */
  scope: readonly string[] | null;
}

/** One key of ADMIN_JWT_PUBLIC_KEYS. */
export interface AdminJwtKey {
  /** RFC 7638 SHA-256 thumbprint (base64url): names the signer of a token without sub. */
  thumbprint: string;
  /** A JWKS of this key alone, so jose matches the token's kid, alg and use against it. */
  set: ReturnType<typeof createLocalJWKSet>;
}

export interface AdminAuth {
  tokenDigest: Uint8Array | null;
  jwks: readonly AdminJwtKey[] | null;
  issuer?: string;
  audience?: string;
  /** Longest accepted lifetime, exp − iat (or exp − now without iat). */
  maxTtlSeconds: number;
}

/** A credential was refused; the short reason never echoes the credential. */
export class AdminAuthError extends Error {
  override readonly name = "AdminAuthError";
}

const ALGORITHMS = ["EdDSA", "ES256"];
// Trustee's kbs-client signs every admin token for exactly 2 h (jwt_simple Duration::from_hours(2)) and has no
// option to shorten it: a lower default would refuse the stock client.
const DEFAULT_MAX_TTL_SECONDS = 7200;
const SCOPE_SEPARATORS = "._~:@+-";
const CLOCK_TOLERANCE_SECONDS = 30;

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", buf(utf8(text))));
}

export async function loadAdminAuth(env: { ADMIN_TOKEN?: string; ADMIN_JWT_PUBLIC_KEYS?: string; ADMIN_JWT_ISSUER?: string; ADMIN_JWT_AUDIENCE?: string; ADMIN_JWT_MAX_TTL_SECONDS?: string }): Promise<AdminAuth> {
  const maxTtlSeconds = env.ADMIN_JWT_MAX_TTL_SECONDS?.trim() ? Number(env.ADMIN_JWT_MAX_TTL_SECONDS) : DEFAULT_MAX_TTL_SECONDS;
  if (!Number.isInteger(maxTtlSeconds) || maxTtlSeconds <= 0) throw new ConfigError("ADMIN_JWT_MAX_TTL_SECONDS", "must be a positive whole number of seconds");
  let jwks: AdminAuth["jwks"] = null;
  if (env.ADMIN_JWT_PUBLIC_KEYS?.trim()) {
    let set: JSONWebKeySet;
    try {
      set = JSON.parse(env.ADMIN_JWT_PUBLIC_KEYS) as JSONWebKeySet;
    } catch {
      throw new ConfigError("ADMIN_JWT_PUBLIC_KEYS", "is not JSON (expected a JWKS {\"keys\":[…]})");
    }
    if (!Array.isArray(set?.keys) || set.keys.length === 0) throw new ConfigError("ADMIN_JWT_PUBLIC_KEYS", "must be a JWKS with at least one key");
    for (const [i, k] of set.keys.entries()) {
      if ("d" in k) throw new ConfigError("ADMIN_JWT_PUBLIC_KEYS", `key ${i + 1} contains a private key`);
      if (!((k.kty === "OKP" && k.crv === "Ed25519") || (k.kty === "EC" && k.crv === "P-256"))) throw new ConfigError("ADMIN_JWT_PUBLIC_KEYS", `key ${i + 1}: only Ed25519 (EdDSA) and P-256 (ES256) keys are accepted`);
    }
    jwks = await Promise.all(set.keys.map(async (k) => ({ thumbprint: await calculateJwkThumbprint(k), set: createLocalJWKSet({ keys: [k] }) })));
  }
  return {
    tokenDigest: env.ADMIN_TOKEN ? await sha256(env.ADMIN_TOKEN) : null,
    jwks,
    maxTtlSeconds,
    ...(env.ADMIN_JWT_ISSUER && { issuer: env.ADMIN_JWT_ISSUER }),
    ...(env.ADMIN_JWT_AUDIENCE && { audience: env.ADMIN_JWT_AUDIENCE }),
  };
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.min(a.length, b.length); i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function scopeOf(payload: JWTPayload): readonly string[] | null {
  const claim = payload.scope;
  if (claim === undefined) return null;
  const prefixes = typeof claim === "string" ? claim.split(" ").filter(Boolean) : Array.isArray(claim) && claim.every((p) => typeof p === "string") ? (claim as string[]) : null;
  if (!prefixes || prefixes.length === 0 || prefixes.some((p) => p === "")) throw new AdminAuthError("the scope claim must list workload ids or id prefixes");
  return prefixes;
}

function reason(e: unknown): string {
  if (e instanceof errors.JWTExpired) return "the token has expired";
  if (e instanceof errors.JWTClaimValidationFailed) return `claim ${e.claim} is invalid`;
  if (e instanceof errors.JWKSNoMatchingKey) return "no configured key matches the token";
  if (e instanceof errors.JOSEAlgNotAllowed) return "the token's algorithm is not allowed (EdDSA, ES256)";
  if (e instanceof errors.JWSSignatureVerificationFailed) return "the token's signature does not verify";
  return "the token is malformed";
}

const TOKEN_IDENTITY: AdminIdentity = { kind: "token", subject: "token", scope: null };

async function matchesToken(auth: AdminAuth, presented: string): Promise<boolean> {
  return auth.tokenDigest !== null && constantTimeEqual(await sha256(presented), auth.tokenDigest);
}

/**
 * Tries each configured key the token could name (jose matches kid, alg and use): the first whose signature
 * holds is the signer, so a kid-less token (kbs-client's) is verified even when several keys share its alg.
 * Any other failure (claims, algorithm, shape) is final: claims are checked only after a signature held.
 */
async function verifyJwt(keys: readonly AdminJwtKey[], jwt: string, options: JWTVerifyOptions): Promise<{ payload: JWTPayload; thumbprint: string }> {
  let failure: unknown = new errors.JWKSNoMatchingKey();
  for (const key of keys) {
    try {
      const { payload } = await jwtVerify(jwt, key.set, options);
      return { payload, thumbprint: key.thumbprint };
    } catch (e) {
      if (e instanceof errors.JWSSignatureVerificationFailed) failure = e;
      else if (!(e instanceof errors.JWKSNoMatchingKey)) throw e;
    }
  }
  throw failure;
}

/** The identity behind an `Authorization` header, or AdminAuthError. */
export async function authenticateAdmin(auth: AdminAuth, authorization: string | undefined, now = new Date()): Promise<AdminIdentity> {
  const presented = /^Bearer ([\x21-\x7e]+)$/i.exec(authorization ?? "")?.[1];
  if (!presented) throw new AdminAuthError("send Authorization: Bearer <token>");
  // Three dot-separated base64url parts: a JWT. Anything else can only be the static token.
  if (/^[\w-]+\.[\w-]+\.[\w-]+$/.test(presented) && auth.jwks) {
    let verified: { payload: JWTPayload; thumbprint: string };
    try {
      verified = await verifyJwt(auth.jwks, presented, {
        algorithms: ALGORITHMS,
        requiredClaims: ["exp", "iat"],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: now,
        ...(auth.issuer && { issuer: auth.issuer }),
        ...(auth.audience && { audience: auth.audience }),
      });
    } catch (e) {
      // A static token may itself look like a JWT (three dotted parts); it still counts as the token.
      if (await matchesToken(auth, presented)) return TOKEN_IDENTITY;
      throw new AdminAuthError(reason(e));
    }
    const { payload, thumbprint } = verified;
    // sub and iss become the audit log's actor: text only, no control characters.
    const printable = (v: string) => v.isWellFormed() && !/[\x00-\x1f\x7f]/.test(v);
    if (payload.sub !== undefined && (typeof payload.sub !== "string" || payload.sub.trim() === "" || payload.sub.length > 256 || !payload.sub.isWellFormed())) {
      throw new AdminAuthError("claim sub is invalid");
    }
    if (payload.iss !== undefined && (typeof payload.iss !== "string" || !printable(payload.iss))) throw new AdminAuthError("claim iss is invalid");
    // A future iat must not stretch the lifetime: count from whichever is earlier, iat or now.
    const issuedAt = Math.min(payload.iat!, Math.floor(now.getTime() / 1000));
    if (payload.exp! - issuedAt > auth.maxTtlSeconds) throw new AdminAuthError(`the token lives longer than ${auth.maxTtlSeconds} s (exp - iat)`);
    // sub is escaped so that the last "/" always splits iss from sub: no two tokens share an actor.
    const subject = payload.sub === undefined ? `jwt-key:${thumbprint}` : `jwt:${payload.iss ?? ""}/${encodeURIComponent(payload.sub)}`;
    return { kind: "jwt", subject, scope: scopeOf(payload) };
  }
  if (await matchesToken(auth, presented)) return TOKEN_IDENTITY;
  throw new AdminAuthError(auth.tokenDigest || auth.jwks ? "the token is not valid" : "no admin credential is configured");
}

/** An entry ending in a separator is a prefix; any other entry names one workload exactly. */
export function scopeCovers(entry: string, workloadId: string): boolean {
  return SCOPE_SEPARATORS.includes(entry.at(-1)!) ? workloadId.startsWith(entry) : workloadId === entry;
}

export function canAccessWorkload(identity: AdminIdentity, workloadId: string): boolean {
  return identity.scope === null || identity.scope.some((entry) => scopeCovers(entry, workloadId));
}

export function isUnrestricted(identity: AdminIdentity): boolean {
  return identity.scope === null;
}
