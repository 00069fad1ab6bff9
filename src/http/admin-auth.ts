import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { AdminAuthError, authenticateAdmin, canAccessWorkload, isUnrestricted, loadAdminAuth, type AdminAuth, type AdminIdentity } from "../auth/admin";
import { loginThrottle } from "../auth/throttle";
import type { Env } from "../env";
import { clientIp } from "./limits";
import { fail, HttpProblem } from "./problem";

export type AdminEnv = { Bindings: Env; Variables: { admin: AdminIdentity } };

let authCache: { source: string; auth: Promise<AdminAuth> } | undefined;
/** The admin credentials config is parsed once per isolate (again only if the variables change). */
function adminAuthFor(env: Env): Promise<AdminAuth> {
  const source = JSON.stringify([env.ADMIN_TOKEN, env.ADMIN_JWT_PUBLIC_KEYS, env.ADMIN_JWT_ISSUER, env.ADMIN_JWT_AUDIENCE, env.ADMIN_JWT_MAX_TTL_SECONDS]);
  if (authCache?.source !== source) authCache = { source, auth: loadAdminAuth(env) };
  return authCache.auth;
}

/**
 * `Authorization: Bearer <ADMIN_TOKEN or admin JWT>`; closed when neither is configured. An address that
 * used up its failed attempts is refused before its credential is looked at, right or wrong.
 */
export const requireAdmin = createMiddleware<AdminEnv>(async (c, next) => {
  const throttle = loginThrottle(c.env, clientIp(c));
  const wait = await throttle.retryAfter();
  if (wait > 0) throw new HttpProblem({ status: 429, code: "rate-limited", detail: "too many failed admin authentications from this address; retry later", retryAfter: wait });
  try {
    c.set("admin", await authenticateAdmin(await adminAuthFor(c.env), c.req.header("authorization")));
  } catch (e) {
    if (!(e instanceof AdminAuthError)) throw e;
    await throttle.failed();
    c.header("www-authenticate", 'Bearer realm="edgekbs-admin"');
    fail(401, "admin-unauthorized", `a valid admin token is required (${e.message})`);
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
