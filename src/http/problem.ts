import type { Context } from "hono";
import { Refused, type Refusal } from "../errors";
import { isTrustee, trusteeProblem } from "./trustee-errors";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** Problem types are short URNs: the C SNP client copies error bodies into a 200-byte buffer. */
export function problemType(code: string): string {
  return `urn:edgekbs:${code}`;
}

/** Refuses the request where it is decided; app.onError renders it. */
export function fail(status: Refusal["status"], code: string, detail: string): never {
  throw new Refused({ status, code, detail });
}

/** libkrun's SNP client copies an error body into a 200-byte buffer: no refusal is longer. */
export const MAX_PROBLEM_BYTES = 200;

/** The problem+json text, its detail shortened (on a character boundary, with "…") to fit MAX_PROBLEM_BYTES. */
export function problemBody(p: Pick<Refusal, "code" | "detail" | "status">): string {
  const render = (detail: string) => JSON.stringify({ type: problemType(p.code), status: p.status, detail });
  const size = (text: string) => new TextEncoder().encode(text).length;
  const chars = [...p.detail];
  let text = render(p.detail);
  for (let keep = chars.length - 1; size(text) > MAX_PROBLEM_BYTES && keep >= 0; keep--) text = render(`${chars.slice(0, keep).join("")}…`);
  return text;
}

/** Every refusal is rendered here: in Trustee's shape on its surface (src/http/trustee-errors.ts), else ours. */
export function problemResponse(c: Context, p: Refusal): Response {
  const { body, status } = isTrustee(c) ? trusteeProblem(c, p) : { body: problemBody(p), status: p.status };
  const headers: Record<string, string> = { "content-type": PROBLEM_CONTENT_TYPE };
  if (p.retryAfter !== undefined) headers["retry-after"] = String(p.retryAfter);
  return c.body(body, status as 400, headers);
}
