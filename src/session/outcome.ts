/**
 * Why a session call was refused. Durable Object RPC does not carry custom error classes across the
 * boundary, so refusals travel as plain data and the HTTP layer turns them into problem+json.
 */
export interface Refusal {
  status: 400 | 401 | 404 | 409 | 429 | 503;
  /** Stable machine-readable reason; the problem `type` is derived from it. */
  code: string;
  /** Human explanation; never contains secrets, keys or tokens. */
  detail: string;
  retryAfter?: number;
}

export type Outcome<T = object> = ({ ok: true } & T) | { ok: false; refusal: Refusal };

export function refuse(status: Refusal["status"], code: string, detail: string, extra: Partial<Refusal> = {}): { ok: false; refusal: Refusal } {
  return { ok: false, refusal: { status, code, detail, ...extra } };
}

/** One message for a missing, malformed, unknown, foreign or expired cookie, so none of them is an oracle. */
export const NO_SESSION = refuse(401, "session-invalid", "no valid session: POST /kbs/v0/auth first and send its session_id cookie");
