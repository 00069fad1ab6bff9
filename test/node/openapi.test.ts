// GET /kbs/v0/openapi.json: the document is valid OpenAPI 3.1 (the OAS 3.1 schema, via
// @seriousme/openapi-schema-validator), every JSON Schema in it compiles under Ajv's strict 2020-12 mode, it lists
// exactly the routes the app registered, and its request schemas are the validators' own (they accept what the
// clients send and refuse what the server refuses).
//
// The app is imported in Node: only the Durable Object base class comes from the Workers runtime, and no object
// is used here.
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import { beforeAll, describe, expect, it, vi } from "vitest";

vi.mock("cloudflare:workers", () => ({ DurableObject: class {} }));

type Json = Record<string, unknown>;
type Operation = { operationId: string; responses: Record<string, Json>; parameters?: Json[]; requestBody?: { content: Record<string, { schema?: Json }> } };

let routes: { method: string; path: string }[];
let doc: { openapi: string; info: Json; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, Json> } };

beforeAll(async () => {
  const { app } = await import("../../src/app");
  routes = app.routes;
  const res = await app.request("/kbs/v0/openapi.json");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/json");
  doc = (await res.json()) as typeof doc;
});

/** Every operation of the document, as "METHOD /path/{param}". */
const documented = () => Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));

/** A strict JSON Schema 2020-12 compiler that resolves the document's component references (each distinct schema compiled once). */
function compiler(): (schema: Json) => (value: unknown) => boolean {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  ajv.addSchema({ $id: "https://edgekbs.test/components", $defs: doc.components.schemas });
  const compiled = new Map<string, (value: unknown) => boolean>();
  return (schema) => {
    const text = JSON.stringify(schema).replaceAll('"#/components/schemas/', '"https://edgekbs.test/components#/$defs/');
    if (!compiled.has(text)) compiled.set(text, ajv.compile(JSON.parse(text) as Json));
    return compiled.get(text)!;
  };
}

describe("OpenAPI document", () => {
  it("is valid OpenAPI 3.1", async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toMatchObject({ title: "edgekbs" });
  });

  it("lists every registered route, and only those, each with its responses and refusals", () => {
    const registered = new Set(routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}")}`));
    expect(new Set(documented())).toEqual(registered);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(Object.keys(op.responses).length, `${method} ${path}`).toBeGreaterThan(1);
        expect(op.responses["500"], `${method} ${path}`).toBeDefined();
        // Every {param} of the template is declared as a required path parameter.
        const declared = (op.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name);
        expect(declared, `${method} ${path}`).toEqual([...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]));
      }
    }
    expect(new Set(documented().map((k) => doc.paths[k.split(" ")[1]!]![k.split(" ")[0]!.toLowerCase()]!.operationId)).size).toBe(documented().length);
    // The error shapes: edgekbs's problem on its paths, Trustee's on Trustee's, either on the shared ones.
    const problem = (path: string, method: string, status: string) => (doc.paths[path]![method]!.responses[status] as { content: Record<string, { schema: Json }> }).content["application/problem+json"]!.schema;
    expect(problem("/kbs/v0/admin/workloads", "get", "401")).toEqual({ $ref: "#/components/schemas/Problem" });
    expect(problem("/kbs/v0/resource/{repository}/{type}/{tag}", "get", "401")).toEqual({ $ref: "#/components/schemas/TrusteeProblem" });
    expect(JSON.stringify(problem("/kbs/v0/auth", "post", "400"))).toContain("TrusteeProblem");
    expect(problem("/readyz", "get", "503")).toMatchObject({ properties: { checks: { type: "array" } } });
  });

  it("holds only JSON Schemas that compile in strict mode, and the request schemas judge bodies as the server does", () => {
    const compile = compiler();
    for (const [name, schema] of Object.entries(doc.components.schemas)) expect(() => compile(schema), name).not.toThrow();
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const schemas = [
          ...(op.parameters ?? []).map((p) => p.schema as Json),
          ...Object.values(op.requestBody?.content ?? {}).flatMap((c) => (c.schema ? [c.schema] : [])),
          ...Object.values(op.responses).flatMap((r) => Object.values((r.content ?? {}) as Record<string, { schema?: Json }>).flatMap((c) => (c.schema ? [c.schema] : []))),
        ];
        for (const schema of schemas) expect(() => compile(schema), `${method} ${path}`).not.toThrow();
      }
    }
    const body = (path: string) => compile(doc.paths[path]!.post!.requestBody!.content["application/json"]!.schema!);
    const auth = body("/kbs/v0/auth");
    expect(auth({ version: "0.0.0", tee: "snp", "extra-params": '{"workload_id":"w"}' })).toBe(true);
    expect(auth({ version: "0.4.0", tee: "snp", "extra-params": { "supported-hash-algorithms": ["sha384"] } })).toBe(true);
    expect(auth({ version: "0.0.0", tee: "snp" })).toBe(false);
    const register = body("/kbs/v0/register_workload");
    expect(register({ workload_id: "web-1", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" })).toBe(true);
    expect(register({ workload_id: "web 1", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" })).toBe(false);
    expect(register({ workload_id: "web-1", launch_measurement: "ab".repeat(47), tee_config: "", passphrase: "p" })).toBe(false);
    const amd = body("/kbs/v0/admin/amd/certificates");
    expect(amd({ certificates: ["MIIB"], crls: [] })).toBe(true);
    expect(amd({ certificates: ["MIIB"], extra: 1 })).toBe(false);
    expect(amd({ certificates: Array(101).fill("MIIB") })).toBe(false);
  });
});
