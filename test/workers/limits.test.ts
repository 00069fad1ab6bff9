// Workers Rate Limiting (the real local binding) on /auth per client address, and the exact per-address
// count of failed admin authentications (LoginThrottle). Limits come from wrangler.toml and
// src/auth/throttle.ts; the per-workload budget and invalid cookies are in crash-and-abuse.test.ts.
import { describe, expect, it } from "vitest";
import { call, expectProblem, register } from "./kbs";

const JSON_HEADERS = { "content-type": "application/json" };
const authBody = (workloadId: string) => JSON.stringify({ version: "0.0.0", tee: "snp", "extra-params": JSON.stringify({ workload_id: workloadId }) });

/** The limiter counts in fixed 60 s windows, so a window may roll over mid-test: at least the limit, below twice it. */
function expectLimit(allowed: number, limit: number): void {
  expect(allowed).toBeGreaterThanOrEqual(limit);
  expect(allowed).toBeLessThan(2 * limit);
}

async function untilLimited(send: () => Promise<Response>, max: number): Promise<{ allowed: number; limited: Response }> {
  for (let i = 0; i < max; i++) {
    const res = await send();
    if (res.status === 429) return { allowed: i, limited: res };
    await res.body?.cancel();
  }
  throw new Error(`no 429 after ${max} requests`);
}

describe("abuse limits", () => {
  it("limits /auth per client address (60 a minute), not other addresses", async () => {
    const ip = "203.0.113.7";
    let n = 0;
    // A different workload each time, so only the address limit can bite.
    const { allowed, limited } = await untilLimited(() => call("/auth", { method: "POST", headers: { ...JSON_HEADERS, "cf-connecting-ip": ip }, body: authBody(`nobody-${++n}`) }), 200);
    expectLimit(allowed, 60);
    expect(limited.headers.get("retry-after")).toBe("60");
    await expectProblem(limited, 429, "rate-limited");
    const other = await call("/auth", { method: "POST", headers: { ...JSON_HEADERS, "cf-connecting-ip": "203.0.113.8" }, body: authBody("nobody") });
    expect(other.status).toBe(400);
  });

  it("limits failed admin authentications per address (10 a minute), then answers 429 instead of 401", async () => {
    const ip = "203.0.113.9";
    const body = { workload_id: "w", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" };
    const { allowed, limited } = await untilLimited(() => register(body, { authorization: "Bearer wrong", "cf-connecting-ip": ip }), 30);
    // Exact, unlike the per-location binding: the 11th attempt is refused.
    expect(allowed).toBe(10);
    await expectProblem(limited, 429, "rate-limited");
  });
});
