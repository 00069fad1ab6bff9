import type { Context } from "hono";
import { Refused } from "../errors";

/** The limiters' period in wrangler.toml; a refused client may retry after it. */
const PERIOD_SECONDS = 60;

/** The client address Cloudflare saw (absent only in local tools, which then share one bucket). */
export function clientIp(c: Context): string {
  return c.req.header("cf-connecting-ip") ?? "unknown";
}

/** Counts one event against `limiter` for `key`; over the limit, answers 429 with Retry-After. */
export async function throttle(limiter: RateLimit | undefined, key: string, what: string): Promise<void> {
  // An unbound limiter (a deployment that removed it from wrangler.toml) does not limit.
  if (!limiter) return;
  const { success } = await limiter.limit({ key });
  if (!success) throw new Refused({ status: 429, code: "rate-limited", detail: `too many ${what}; retry later`, retryAfter: PERIOD_SECONDS });
}
