import { Hono } from "hono";
import type { Env } from "./env";
import { admin } from "./http/admin";
import { bodyLimit } from "./http/body";
import { legacy } from "./http/legacy";
import { log } from "./config";
import { problemResponse } from "./http/problem";
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

// Decided from Content-Length alone, before any byte is read: 411 without one, 413 above the limit.
app.use(bodyLimit(MAX_BODY_BYTES));

app.route("/kbs/v0/admin", admin);
app.route("/kbs/v0", legacy);

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
