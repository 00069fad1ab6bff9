import { Hono } from "hono";
import type { Env } from "./env";
import { admin } from "./http/admin";
import { bodyLimit } from "./http/body";
import { legacy } from "./http/legacy";
import { log } from "./config";
import { problemResponse } from "./http/problem";
import { trustee } from "./http/trustee";
import { trusteeSurface } from "./http/trustee-errors";
import { trusteeAdmin } from "./http/trustee-admin";
import { refusalOf } from "./refusal";

// strict: false so /kbs/v0/ and /kbs/v0 are one route, as in reference-kbs.
export const app = new Hono<{ Bindings: Env }>({ strict: false });

// Evidence is a few KB; SEV requests carry six certificates as JSON integer arrays (~70 KB).
const MAX_BODY_BYTES = 256 * 1024;

// Challenges, sessions, secrets and admin data all pass through here: no cache may keep any answer.
app.use(async (c, next) => {
  await next();
  c.res.headers.set("cache-control", "no-store");
});

// Paths only the Trustee protocol has answer in its error shape from the start (the body limit's 413 and an
// unknown path's 404 included). /auth and /attest are shared: their handlers mark Trustee requests.
app.use("/kbs/v0/resource/*", trusteeSurface("PolicyDeny"));
app.use("/kbs/v0/.well-known/*", trusteeSurface("TokenVerifierError"));

// Decided from Content-Length alone, before any byte is read: 411 without one, 413 above the limit.
app.use(bodyLimit(MAX_BODY_BYTES));

app.route("/kbs/v0/admin", admin);
// Before legacy: its /attest passes a request without a Trustee cookie on to legacy's.
app.route("/kbs/v0", trustee);
app.route("/kbs/v0", legacy);
app.route("/kbs/v0", trusteeAdmin);

app.notFound((c) => problemResponse(c, { status: 404, code: "not-found", detail: `no route for ${c.req.method} ${new URL(c.req.url).pathname}` }));

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
