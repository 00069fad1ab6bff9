// The routes the Hono apps registered (app.routes), read back: for the 405 answer to a known path asked with the
// wrong method, and for the OpenAPI document (src/http/openapi.ts), so neither keeps a list of its own.

import type { RouterRoute } from "hono/types";

export interface Operation {
  method: string;
  /** Hono's pattern, e.g. /kbs/v0/admin/workloads/:id/secrets/:key_id{.+} */
  path: string;
}

/** Each handled method and path once. Middleware is registered as method ALL and is not an operation. */
export function operations(routes: readonly RouterRoute[]): Operation[] {
  const seen = new Map<string, Operation>();
  for (const { method, path } of routes) if (method !== "ALL") seen.set(`${method} ${path}`, { method, path });
  return [...seen.values()];
}

const PARAM = /:(\w+)(?:\{([^}]*)\})?/g;

/** The pattern as an OpenAPI path template: /:id and /:key_id{.+} become /{id} and /{key_id}. */
export function templatePath(path: string): string {
  return path.replace(PARAM, "{$1}");
}

/** The path parameters' names, in order. */
export function pathParameters(path: string): string[] {
  return [...path.matchAll(PARAM)].map((m) => m[1]!);
}

const matchers = new Map<string, RegExp>();

/** Whether a request path matches a pattern, as Hono matches it with strict: false (a trailing slash is the same path). */
function matches(path: string, pathname: string): boolean {
  let re = matchers.get(path);
  if (!re) {
    const source = path
      .split(PARAM)
      .map((part, i) => (i % 3 === 0 ? part.replace(/[.+?^$()[\]\\|]/g, "\\$&").replace(/\*/g, ".*") : i % 3 === 1 ? "" : `(?:${part ?? "[^/]+"})`))
      .join("");
    re = new RegExp(`^${source}/?$`);
    matchers.set(path, re);
  }
  return re.test(pathname);
}

/** The methods some operation answers at this request path (none: the path is unknown). */
export function allowedMethods(routes: readonly RouterRoute[], pathname: string): string[] {
  return [...new Set(operations(routes).filter((o) => matches(o.path, pathname)).map((o) => o.method))];
}
