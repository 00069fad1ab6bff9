import { Hono } from "hono";
import type { Env } from "./env";
import { admin } from "./http/admin";
import { bodyLimit } from "./http/body";
import { health } from "./http/health";
import { legacy } from "./http/legacy";
import { log, newRequestId, withRequestId } from "./config";
import { openApiDocument } from "./http/openapi";
import { problemResponse } from "./http/problem";
import { allowedMethods } from "./http/routes";
import { trustee } from "./http/trustee";
import { trusteeSurface } from "./http/trustee-errors";
import { trusteeAdmin } from "./http/trustee-admin";
import { refusalOf } from "./refusal";

// strict: false so /kbs/v0/ and /kbs/v0 are one route, as in reference-kbs.
export const app = new Hono<{ Bindings: Env }>({ strict: false });

// Evidence is a few KB; SEV requests carry six certificates as JSON integer arrays (~70 KB).
const MAX_BODY_BYTES = 256 * 1024;

/** Cloudflare's Ray ID (16 hex digits, then the location), which the edge sets on every request it forwards. */
const RAY_ID = /^[0-9a-f]{16}(?:-[A-Z]{3,4})?$/;

// Every log line of the request (and of the session object calls it makes) carries its id, which the answer
// returns in X-Request-Id. Challenges, sessions, secrets and admin data all pass through here: no cache may keep
// any answer.
app.use(async (c, next) => {
  const ray = c.req.header("cf-ray");
  const requestId = ray && RAY_ID.test(ray) ? ray : newRequestId();
  await withRequestId(requestId, next);
  c.res.headers.set("cache-control", "no-store");
  c.res.headers.set("x-request-id", requestId);
});

// Paths only the Trustee protocol has answer in its error shape from the start (the body limit's 413 and an
// unknown path's 404 included). /auth and /attest are shared: their handlers mark Trustee requests.
app.use("/kbs/v0/resource/*", trusteeSurface("PolicyDeny"));
app.use("/kbs/v0/.well-known/*", trusteeSurface("TokenVerifierError"));

// Decided from Content-Length alone, before any byte is read: 411 without one, 413 above the limit.
app.use(bodyLimit(MAX_BODY_BYTES));

app.route("/", health);
app.route("/kbs/v0/admin", admin);
// Before legacy: its /attest passes a request without a Trustee cookie on to legacy's.
app.route("/kbs/v0", trustee);
app.route("/kbs/v0", legacy);
app.route("/kbs/v0", trusteeAdmin);

// Made from the routes above on first request (none is added later), so it lists exactly what is served.
let openApi: string | undefined;
app.get("/kbs/v0/openapi.json", (c) => c.body((openApi ??= JSON.stringify(openApiDocument(app.routes))), 200, { "content-type": "application/json" }));

// A known path asked with another method (GET /auth, say) is told which methods it takes.
app.notFound((c) => {
  const path = new URL(c.req.url).pathname;
  const allowed = allowedMethods(app.routes, path);
  if (allowed.length === 0) return problemResponse(c, { status: 404, code: "not-found", detail: `no route for ${c.req.method} ${path}` });
  c.header("allow", allowed.join(", "));
  return problemResponse(c, { status: 405, code: "method-not-allowed", detail: `${path} takes ${allowed.join(" or ")}, not ${c.req.method}` });
});

app.onError((err, c) => {
  const refusal = refusalOf(err);
  if (refusal) {
    if (refusal.code === "kbs-misconfigured") log(c.env, "error", { event: "misconfigured", detail: refusal.detail });
    return problemResponse(c, refusal);
  }
  // A bug: log the kind only (messages could echo input), answer a generic 500.
  log(c.env, "error", { event: "error", name: err.name });
  return problemResponse(c, { status: 500, code: "internal", detail: "internal error" });
});
