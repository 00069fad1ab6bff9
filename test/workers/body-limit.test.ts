// The body limit: a declared Content-Length over the limit gets 413 before any byte is read; a body of unknown
// length (chunked, a stream) is counted, and over the limit read to its end before its 413. Answering with a
// chunked body's rest unread made wrangler dev's proxy stall the next request on the connection (or answer 503).
import { describe, expect, it } from "vitest";
import { auth, call, expectProblem, registerSnp } from "./kbs";

const MAX_BODY_BYTES = 256 * 1024;
const JSON_HEADERS = { "content-type": "application/json" };
const authBody = (workloadId: string) => JSON.stringify({ version: "0.0.0", tee: "snp", "extra-params": JSON.stringify({ workload_id: workloadId }) });

/** A body of unknown length (sent chunked), counting how many chunks the runtime pulled from it. */
function chunkedBody(total: number, chunk = 16 * 1024): { body: ReadableStream<Uint8Array>; pulled: () => number } {
  let sent = 0;
  let pulls = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls++;
      const n = Math.min(chunk, total - sent);
      controller.enqueue(new Uint8Array(n).fill(0x20));
      sent += n;
      if (sent >= total) controller.close();
    },
  });
  return { body, pulled: () => pulls };
}

/** A body that declares its length (Content-Length) and counts the bytes the Worker actually took from it. */
function declaredBody(total: number, chunk = 16 * 1024): { body: ReadableStream<Uint8Array>; taken: () => number; stop: () => Promise<void> } {
  const { readable, writable } = new FixedLengthStream(total);
  const writer = writable.getWriter();
  let taken = 0;
  // Each write resolves only once the reader took it: `taken` is what the Worker read (plus one chunk in flight).
  const pump = (async () => {
    for (let sent = 0; sent < total; sent += chunk) {
      await writer.write(new Uint8Array(Math.min(chunk, total - sent)));
      taken += Math.min(chunk, total - sent);
    }
    await writer.close();
  })().catch(() => {});
  return { body: readable, taken: () => taken, stop: async () => { await writer.abort("test done").catch(() => {}); await pump; } };
}

/** Every refusal stays problem+json, short enough for libkrun's 200-byte buffer, and uncached. */
async function expectRefusal(res: Response, status: number, code: string): Promise<void> {
  expect(res.headers.get("cache-control")).toBe("no-store");
  const length = Number(res.headers.get("content-length") ?? NaN);
  const problem = await expectProblem(res, status, code);
  expect(JSON.stringify(problem).length).toBeLessThanOrEqual(200);
  if (!Number.isNaN(length)) expect(length).toBeLessThanOrEqual(200);
}

describe("request body limit", () => {
  it("refuses a declared Content-Length over the limit with 413 without reading the body", async () => {
    const { body, taken, stop } = declaredBody(400 * 1024);
    const res = await call("/auth", { method: "POST", headers: JSON_HEADERS, body });
    await expectRefusal(res, 413, "body-too-large");
    // At most the one chunk the pipe buffers: nothing near the limit was read.
    expect(taken()).toBeLessThanOrEqual(16 * 1024);
    await stop();
  });

  it("judges the declared length exactly: the limit passes to the handler, one byte more is 413", async () => {
    // At the limit the handler parses it (spaces are not JSON): 400, not 413.
    await expectRefusal(await call("/auth", { method: "POST", headers: JSON_HEADERS, body: " ".repeat(MAX_BODY_BYTES) }), 400, "body-malformed");
    await expectRefusal(await call("/auth", { method: "POST", headers: JSON_HEADERS, body: " ".repeat(MAX_BODY_BYTES + 1) }), 413, "body-too-large");
  });

  it("refuses a chunked body over the limit with 413 after reading it to its end", async () => {
    const { body, pulled } = chunkedBody(600 * 1024);
    const res = await call("/auth", { method: "POST", headers: JSON_HEADERS, body });
    await expectRefusal(res, 413, "body-too-large");
    // Every chunk was taken: nothing is left unread for a proxy to trip over.
    expect(pulled()).toBeGreaterThanOrEqual(Math.ceil((600 * 1024) / (16 * 1024)));
  });

  it("accepts a chunked body under the limit, as the same body with Content-Length", async () => {
    const workload = "body-limit-chunked";
    await registerSnp(workload, new Uint8Array(48).fill(7), "passphrase");
    const text = authBody(workload);
    const bytes = new TextEncoder().encode(text);
    const chunked = new ReadableStream<Uint8Array>({ start: (c) => { c.enqueue(bytes.subarray(0, 10)); c.enqueue(bytes.subarray(10)); c.close(); } });
    for (const body of [chunked, text]) {
      const res = await call("/auth", { method: "POST", headers: JSON_HEADERS, body });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(((await res.json()) as { nonce: string }).nonce).toMatch(/^[0-9a-f]{32}$/);
    }
  });

  it("passes a request without a body to its handler", async () => {
    // A bodyless POST reaches the handler, which finds no JSON: 400.
    await expectRefusal(await call("/auth", { method: "POST", headers: JSON_HEADERS }), 400, "body-malformed");
    await expectRefusal(await call("/"), 401, "unauthorized");
  });

  it("serves the next requests normally after each refusal", async () => {
    const workload = "body-limit-next";
    await registerSnp(workload, new Uint8Array(48).fill(9), "passphrase");
    const over = declaredBody(300 * 1024);
    await expectRefusal(await call("/auth", { method: "POST", headers: JSON_HEADERS, body: over.body }), 413, "body-too-large");
    await over.stop();
    expect((await auth(workload)).nonce).toMatch(/^[0-9a-f]{32}$/);
    await expectRefusal(await call("/auth", { method: "POST", headers: JSON_HEADERS, body: chunkedBody(300 * 1024).body }), 413, "body-too-large");
    expect((await auth(workload)).nonce).toMatch(/^[0-9a-f]{32}$/);
    await expectRefusal(await call("/"), 401, "unauthorized");
  });
});
