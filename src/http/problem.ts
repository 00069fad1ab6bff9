import type { Context } from "hono";
import type { Refusal } from "../session/outcome";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** Problem types are short URNs: the C SNP client copies error bodies into a 200-byte buffer. */
export function problemType(code: string): string {
  return `urn:edgekbs:${code}`;
}

/** A refusal raised inside a handler; app.onError renders it as RFC 9457 problem+json. */
export class HttpProblem extends Error {
  constructor(readonly refusal: Omit<Refusal, "status"> & { status: number }) {
    super(refusal.detail);
  }
}

export function fail(status: number, code: string, detail: string): never {
  throw new HttpProblem({ status, code, detail });
}

export function problemResponse(c: Context, p: HttpProblem["refusal"]): Response {
  const body: Record<string, unknown> = { type: problemType(p.code), status: p.status, detail: p.detail };
  if (p.rules) body.rules = p.rules;
  const headers: Record<string, string> = { "content-type": PROBLEM_CONTENT_TYPE };
  if (p.retryAfter !== undefined) headers["retry-after"] = String(p.retryAfter);
  return c.body(JSON.stringify(body), p.status as 400, headers);
}
