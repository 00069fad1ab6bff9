import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { AdminAuthError, authenticateAdmin, canAccessWorkload, isUnrestricted, type AdminIdentity } from "../auth/admin";
import { loginThrottle } from "../auth/throttle";
import { config, log } from "../config";
import type { Env } from "../env";
import { Refused } from "../errors";
import { clientIp } from "./limits";
import { fail } from "./problem";

export type AdminEnv = { Bindings: Env; Variables: { admin: AdminIdentity } };

/**
 * `Authorization: Bearer <ADMIN_TOKEN or admin JWT>`; closed when neither is configured. An address that
 * used up its failed attempts is refused before its credential is looked at, right or wrong.
 */
export const requireAdmin = createMiddleware<AdminEnv>(async (c, next) => {
  const throttle = loginThrottle(c.env, clientIp(c));
  const wait = await throttle.retryAfter();
  if (wait > 0) throw new Refused({ status: 429, code: "rate-limited", detail: "too many failed admin authentications from this address; retry later", retryAfter: wait });
  try {
    c.set("admin", await authenticateAdmin(await config(c.env).adminAuth(), c.req.header("authorization")));
  } catch (e) {
    if (e instanceof AdminAuthError) {
      // The reason never echoes the credential (src/auth/admin.ts).
      log(c.env, "info", { event: "admin.unauthorized", ok: false, reason: e.message });
      await throttle.failed();
      c.header("www-authenticate", 'Bearer realm="edgekbs-admin"');
    }
    throw e;
  }
  await next();
});

/** A scoped token may touch only the workloads its scope covers. */
export function requireWorkload(c: Context<AdminEnv>, workloadId: string): AdminIdentity {
  const admin = c.get("admin");
  if (!canAccessWorkload(admin, workloadId)) fail(403, "admin-forbidden", `this token's scope does not cover workload "${workloadId}"`);
  return admin;
}

/** Operations over every workload (listing all, audit, re-wrap) need an unscoped credential. */
export function requireUnrestricted(c: Context<AdminEnv>): AdminIdentity {
  const admin = c.get("admin");
  if (!isUnrestricted(admin)) fail(403, "admin-forbidden", "this operation needs an unscoped admin credential");
  return admin;
}
