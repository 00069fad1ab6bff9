// Byte helpers shared by the verifiers, the Worker and the CLI (no runtime-specific APIs).

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

export function isHex(text: string): boolean {
  return HEX_RE.test(text);
}

/** The value of each hex digit by character code, -1 for any other ASCII character. */
const HEX_VALUE = Int8Array.from({ length: 128 }, (_, c) => {
  const d = String.fromCharCode(c);
  return /[0-9a-fA-F]/.test(d) ? parseInt(d, 16) : -1;
});

/** Decodes upper- or lower-case hex; throws on odd length or a non-hex character. */
export function fromHex(text: string): Uint8Array {
  if (text.length % 2 !== 0) throw new TypeError("not an even-length hex string");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    // A report is 2,368 digits on every /attest: a table, not parseInt per byte.
    const hi = HEX_VALUE[text.charCodeAt(2 * i)] ?? -1;
    const lo = HEX_VALUE[text.charCodeAt(2 * i + 1)] ?? -1;
    if (hi < 0 || lo < 0) throw new TypeError("not an even-length hex string");
    out[i] = (hi << 4) | lo;
  }
  return out;
}

const HEX_DIGITS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += HEX_DIGITS[b];
  return s;
}

const B64_STD_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict standard base64 (RFC 4648 §4, padded). Throws on anything else. */
export function fromBase64(text: string): Uint8Array {
  if (!B64_STD_RE.test(text)) throw new TypeError("not standard padded base64");
  return decodeBase64(text);
}

/** atob's bytes, for text already known to be padded standard base64. */
function decodeBase64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Lenient base64: standard or URL alphabet, padding optional, whitespace ignored. */
export function fromBase64Loose(text: string): Uint8Array {
  const t = text.replace(/\s+/g, "").replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  if (!/^[A-Za-z0-9+/]*$/.test(t) || t.length % 4 === 1) throw new TypeError("not base64");
  // The alphabet and length are checked: padding it out makes it standard base64.
  return decodeBase64(t + "=".repeat((4 - (t.length % 4)) % 4));
}

export function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function toBase64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Constant-time comparison for equal lengths; different lengths return false at once (length is public). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const b of bytes) acc |= b;
  return acc === 0;
}

/** Little-endian bytes → reversed copy (big-endian), e.g. AMD signature fields for WebCrypto. */
export function reversed(bytes: Uint8Array): Uint8Array {
  return Uint8Array.from(bytes).reverse();
}

export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

export async function sha384(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-384", data));
}

export async function sha512(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-512", data));
}

/** Copies into a fresh ArrayBuffer-backed view (WebCrypto's BufferSource typing wants ArrayBuffer). */
export function buf(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes) as Uint8Array<ArrayBuffer>;
}
