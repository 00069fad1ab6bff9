// Workers Rate Limiting (the real local binding) on /auth per client address and per workload, and on
// failed admin authentications. Limits come from wrangler.toml.
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

  it("limits /auth per workload (30 a minute) whatever the address", async () => {
    const { allowed, limited } = await untilLimited(() => call("/auth", { method: "POST", headers: JSON_HEADERS, body: authBody("hot-workload") }), 100);
    expectLimit(allowed, 30);
    await expectProblem(limited, 429, "rate-limited");
    // The count is per workload: another one is still served.
    expect((await call("/auth", { method: "POST", headers: JSON_HEADERS, body: authBody("cold-workload") })).status).toBe(400);
  });

  it("limits failed admin authentications per address (10 a minute), then answers 429 instead of 401", async () => {
    const ip = "203.0.113.9";
    const body = { workload_id: "w", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" };
    const { allowed, limited } = await untilLimited(() => register(body, { authorization: "Bearer wrong", "cf-connecting-ip": ip }), 30);
    expectLimit(allowed, 10);
    await expectProblem(limited, 429, "rate-limited");
  });
});
