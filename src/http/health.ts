// Probes for a load balancer or an operator. /healthz: the Worker runs (no dependency is touched). /readyz: it can
// serve, i.e. the D1 schema is migrated and every setting and key loads; a 503 names each failing check. Cheap:
// one D1 query, and keys parsed once per isolate; no KDS call.

import { Hono } from "hono";
import * as z from "zod/mini";
import { config, keys } from "../config";
import type { Env } from "../env";
import { ConfigError } from "../errors";
import { refusalOf } from "../refusal";
import { missingSchema } from "../store/schema";
import { PROBLEM_CONTENT_TYPE, problemType } from "./problem";

export const health = new Hono<{ Bindings: Env }>({ strict: false });

export const Liveness = z.object({ status: z.literal("ok") });

const Check = z.object({ name: z.string(), ok: z.boolean(), problem: z.optional(z.string()) });
export const Readiness = z.object({ status: z.literal("ready"), checks: z.array(Check) });
/** The 503: a problem document whose extension member `checks` says what each check found. */
export const NotReady = z.object({ type: z.string(), status: z.number(), detail: z.string(), checks: z.array(Check) });

/** Each check resolves when that part is usable and throws (a ConfigError naming the variable) when not. */
const CHECKS: Record<string, (env: Env) => Promise<unknown>> = {
  // The plain variables: TTLs, CRL_MODE, KDS_URL, LOG_LEVEL.
  settings: async (env) => config(env),
  "d1-schema": async (env) => {
    const missing = await missingSchema(env.DB);
    if (missing.length > 0) throw new ConfigError("DB", `lacks ${missing.join(", ")}: apply the migrations (wrangler d1 migrations apply)`);
  },
  "master-key": (env) => keys(env).masterKeys(),
  "admin-credentials": async (env) => {
    const auth = await keys(env).adminAuth();
    if (!auth.tokenDigest && !auth.jwks) throw new ConfigError("ADMIN_TOKEN", "neither it nor ADMIN_JWT_PUBLIC_KEYS is set, so the admin API is closed");
  },
  "trust-anchors": (env) => keys(env).trust(),
  "token-signing-key": (env) => keys(env).tokenKey(),
};

/** What a failed check is told: a ConfigError names its variable and never quotes key material; else the kind only. */
function problemOf(e: unknown): string {
  if (e instanceof ConfigError) return e.message;
  return refusalOf(e)?.detail ?? `failed (${(e as Error)?.name ?? "error"})`;
}

health.get("/healthz", (c) => c.json({ status: "ok" } satisfies z.output<typeof Liveness>));

health.get("/readyz", async (c) => {
  const checks = await Promise.all(
    Object.entries(CHECKS).map(async ([name, check]): Promise<z.output<typeof Check>> => {
      try {
        await check(c.env);
        return { name, ok: true };
      } catch (e) {
        return { name, ok: false, problem: problemOf(e) };
      }
    }),
  );
  const failing = checks.filter((check) => !check.ok).map((check) => check.name);
  if (failing.length === 0) return c.json({ status: "ready", checks } satisfies z.output<typeof Readiness>);
  const problem = { type: problemType("not-ready"), status: 503, detail: `not ready: ${failing.join(", ")}`, checks } satisfies z.output<typeof NotReady>;
  return c.body(JSON.stringify(problem), 503, { "content-type": PROBLEM_CONTENT_TYPE });
});
