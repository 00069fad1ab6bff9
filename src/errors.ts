// The error model. A module that fails throws a TeeError (the evidence, a certificate chain or a TEE
// policy is refused), a ConfigError (an environment variable or the D1 schema is unusable) or a Refused
// (a refusal decided where it happens: validation, limits, scopes). `refusalOf` in src/refusal.ts is the
// one place that decides what a client is told for each of them.

export type Tee = "snp" | "sev";

/** Evidence, a chain or a TEE policy was refused. `code` is stable; clients see it as `<tee>-<code>`. */
export class TeeError extends Error {
  constructor(
    readonly tee: Tee,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** An environment variable (or the D1 schema) is unusable. The problem never quotes key material. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`${variable}: ${problem}`);
  }
}

/**
 * What a client is told when a call is refused (RFC 9457 problem+json). Durable Object RPC does not carry
 * error classes, so refusals travel as plain data and the HTTP layer renders them.
 */
export interface Refusal {
  status: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 429 | 500 | 503;
  /** Stable, machine-readable; the problem `type` is `urn:edgekbs:<code>`. */
  code: string;
  /** For a human; never contains secrets, keys or tokens. */
  detail: string;
  retryAfter?: number;
}

/** A refusal raised where it is decided. */
export class Refused extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.detail);
  }
}
