// Misconfiguration is never a 500: a bad variable or a missing D1 table answers 503 kbs-misconfigured,
// naming what to fix, and never quoting a key. (Variables read only inside the session object, such as
// EXTRA_TRUSTED_ARKS, are covered by test/node/config.test.ts: the object's env cannot be varied here.)
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import type { Env } from "../../src/env";
import { ADMIN, BASE, call, expectProblem } from "./kbs";

async function fetchWith(overrides: Partial<Env>, path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await app.fetch(new Request(`${BASE}${path}`, init), { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

const registration = { method: "POST", headers: { ...ADMIN, "content-type": "application/json" }, body: JSON.stringify({ workload_id: "m", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" }) };

describe("misconfiguration", () => {
  it.each([
    ["ADMIN_JWT_PUBLIC_KEYS", { ADMIN_JWT_PUBLIC_KEYS: "not json" }],
    ["ADMIN_JWT_MAX_TTL_SECONDS", { ADMIN_JWT_MAX_TTL_SECONDS: "an hour" }],
    ["KBS_MASTER_KEY", { KBS_MASTER_KEY: "k1:c2hvcnQ=" }],
    ["SESSION_TTL_SECONDS", { SESSION_TTL_SECONDS: "-1" }],
    ["CRL_MODE", { CRL_MODE: "sometimes" }],
    ["KDS_URL", { KDS_URL: "ftp://kds" }],
    ["LOG_LEVEL", { LOG_LEVEL: "loud" }],
  ] as const)("a bad %s answers 503 kbs-misconfigured naming it", async (name, overrides) => {
    const res = await fetchWith(overrides as Partial<Env>, "/register_workload", registration);
    const problem = await expectProblem(res, 503, "kbs-misconfigured");
    expect(problem.detail).toContain(name);
    expect(problem.detail).not.toContain("c2hvcnQ");
  });

  it("a missing D1 table answers 503 kbs-misconfigured naming it", async () => {
    await env.DB.prepare("ALTER TABLE secrets RENAME TO secrets_elsewhere").run();
    try {
      const problem = await expectProblem(await call("/register_workload", registration), 503, "kbs-misconfigured");
      expect(problem.detail).toContain("secrets");
    } finally {
      await env.DB.prepare("ALTER TABLE secrets_elsewhere RENAME TO secrets").run();
    }
  });
});
