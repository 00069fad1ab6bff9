import type { Refusal } from "../errors";

export type Outcome<T = object> = ({ ok: true } & T) | { ok: false; refusal: Refusal };

export function refuse(status: Refusal["status"], code: string, detail: string, extra: Partial<Refusal> = {}): { ok: false; refusal: Refusal } {
  return { ok: false, refusal: { status, code, detail, ...extra } };
}

/** One message for a missing, malformed, unknown, foreign or expired cookie, so none of them is an oracle. */
export const NO_SESSION = refuse(401, "session-invalid", "no valid session: POST /kbs/v0/auth first and send its session_id cookie");

/** NO_SESSION for the Trustee protocol, whose guests send a kbs-session-id cookie or a token. */
export const NO_TRUSTEE_SESSION = refuse(401, "session-invalid", "no valid session: POST /kbs/v0/auth first and send its kbs-session-id cookie, or a valid attestation token");
