import { createMiddleware } from "hono/factory";
import type { Env } from "../env";
import { clientIp, throttle } from "./limits";
import { fail } from "./problem";

async function digest(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

/** Compares SHA-256 digests so the comparison is constant-time whatever the lengths. */
async function tokenMatches(presented: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(presented), digest(expected)]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/** `Authorization: Bearer <ADMIN_TOKEN>`; closed when no token is configured. */
export const requireAdmin = createMiddleware<{ Bindings: Env }>(async (c, next) => {
  const expected = c.env.ADMIN_TOKEN;
  const header = c.req.header("authorization") ?? "";
  const presented = /^Bearer ([\x21-\x7e]+)$/i.exec(header)?.[1];
  if (!expected || !presented || !(await tokenMatches(presented, expected))) {
    await throttle(c.env.ADMIN_FAILURES_PER_IP, clientIp(c), "failed admin authentications from this address");
    c.header("www-authenticate", 'Bearer realm="edgekbs-admin"');
    fail(401, "admin-unauthorized", "a valid admin bearer token is required");
  }
  await next();
});
