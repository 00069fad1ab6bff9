// The guest side of the Trustee KBS protocol 0.4.0 (Confidential Containers' attestation-agent and
// kbs_protocol), beside the reference-kbs protocol on the same paths: /auth is told apart by its body (in
// legacy.ts), /attest by its cookie (kbs-session-id, not session_id); /resource and the token's JWKS are
// Trustee's alone. Refusals are Trustee's RFC 7807 shape (trustee-errors.ts).
//
// A Trustee session lives in the same session object class as a legacy one, named `trustee:<id>` so that
// neither protocol's cookie can reach the other's sessions.

import { Hono, type Context } from "hono";
import * as z from "zod/mini";
import { config, currentRequestId } from "../config";
import { NO_TRUSTEE_SESSION } from "../session/outcome";
import { tokenSession } from "../trustee/token";
import { TeePubKeyJwk } from "../trustee/runtime-data";
import type { Env } from "../env";
import { jsonBody, resourceKeyId } from "./body";
import type { AuthAnswer, AuthRequest } from "./legacy";
import { fail } from "./problem";
import { answerOf, cookieSessionId, newSessionId, refuseHead } from "./sessions";
import { markTrustee } from "./trustee-errors";

type TrusteeEnv = { Bindings: Env };

export const trustee = new Hono<TrusteeEnv>({ strict: false });

const TRUSTEE_PROTOCOL_VERSION = "0.4.0";
const COOKIE = "kbs-session-id";

export const AttestBody = z.object({
  "init-data": z.optional(z.nullable(z.object({ format: z.string().check(z.maxLength(64)), body: z.string().check(z.maxLength(65_536)) }))),
  "runtime-data": z.object({ nonce: z.string().check(z.maxLength(128)), "tee-pubkey": TeePubKeyJwk }),
  "tee-evidence": z.object({
    // The serde report and cert_chain are checked member by member in the session (src/tee/snp/serde.ts).
    primary_evidence: z.object({ attestation_report: z.unknown(), cert_chain: z.optional(z.unknown()) }),
    additional_evidence: z.string().check(z.maxLength(65_536)),
  }),
});

export const TokenAnswer = z.object({ token: z.string() });
export const Jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });

const sessionByCookie = <E extends TrusteeEnv>(c: Context<E>, id: string) => c.env.SESSIONS.get(c.env.SESSIONS.idFromName(`trustee:${id}`));

/** Trustee sets no Path, Secure or HttpOnly; Expires follows the session's deadline, which /attest moves on. */
const setCookie = (c: Context, id: string, deadline: number) => c.header("set-cookie", `${COOKIE}=${id}; Expires=${new Date(deadline).toUTCString()}`);

/** POST /auth with a Trustee body (legacy.ts tells the protocols apart and applies the per-address limit). */
export async function trusteeAuth<E extends TrusteeEnv>(c: Context<E>, body: AuthRequest): Promise<Response> {
  markTrustee(c, "AttestationError");
  // Trustee's own wording: its guest client shows it when the handshake fails.
  if (body.version !== TRUSTEE_PROTOCOL_VERSION) fail(401, "protocol-version-unsupported", `KBS Client Protocol Version Mismatch: expect =${TRUSTEE_PROTOCOL_VERSION} while the request is ${body.version}`);
  if (body.tee !== "snp") fail(400, "tee-unsupported", `tee ${JSON.stringify(body.tee)} is not supported; supported: snp`);
  const id = newSessionId();
  const { nonce, deadline } = await answerOf(c, await sessionByCookie(c, id).beginTrustee(id, currentRequestId()));
  setCookie(c, id, deadline);
  // SHA-384 for the runtime data, which is what a client that is told no algorithm uses.
  return c.json({ nonce, "extra-params": "" } satisfies z.output<typeof AuthAnswer>);
}

trustee.post("/attest", async (c, next) => {
  const id = cookieSessionId(c, COOKIE);
  // No Trustee cookie: the legacy protocol's /attest (legacy.ts) answers.
  if (id === undefined) return next();
  markTrustee(c, "AttestationError");
  if (id === null) await answerOf(c, NO_TRUSTEE_SESSION);
  const body = await jsonBody(c, AttestBody);
  const evidence = body["tee-evidence"];
  const { token, deadline } = await answerOf(
    c,
    await sessionByCookie(c, id!).attestTrustee({
      initData: body["init-data"] ?? null,
      runtimeData: body["runtime-data"],
      primaryEvidence: evidence.primary_evidence,
      additionalEvidence: evidence.additional_evidence,
    }, currentRequestId()),
  );
  setCookie(c, id!, deadline);
  return c.json({ token } satisfies z.output<typeof TokenAnswer>);
});

/**
 * The session a resource request speaks for: the one that issued its Bearer token when there is one (the
 * token is verified here, so a forged one wakes no object, and the session checks it issued it), else the
 * cookie's.
 */
async function resourceSession(c: Context<TrusteeEnv>): Promise<{ stub: ReturnType<typeof sessionByCookie>; token: string | null }> {
  const token = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
  if (token) {
    const object = await tokenSession(await config(c.env).tokenKey(), token);
    return { stub: c.env.SESSIONS.get(c.env.SESSIONS.idFromString(object)), token };
  }
  const id = cookieSessionId(c, COOKIE);
  if (id === undefined) fail(401, "token-missing", `send the ${COOKIE} cookie of an attested session or Authorization: Bearer <attestation token>`);
  if (id === null) return answerOf(c, NO_TRUSTEE_SESSION);
  return { stub: sessionByCookie(c, id), token: null };
}

trustee.get("/resource/:repository/:type/:tag", async (c) => {
  refuseHead(c, "/resource");
  // Refused before any lookup.
  const path = resourceKeyId(c);
  const { stub, token } = await resourceSession(c);
  const { body } = await answerOf(c, await stub.releaseResource(path, token, currentRequestId()));
  return c.body(body, 200, { "content-type": "application/json" });
});

trustee.get("/.well-known/jwks.json", async (c) => c.json({ keys: [(await config(c.env).tokenKey()).publicJwk] } satisfies z.output<typeof Jwks>));
