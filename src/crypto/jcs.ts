// RFC 8785 JSON Canonicalization Scheme. Trustee hashes the attestation runtime data in this form
// (serde_json_canonicalizer), so REPORT_DATA only matches if every byte agrees with it.

/**
 * The JCS form of a JSON value: object members sorted by their UTF-16 code units, no whitespace, numbers
 * and strings as ECMAScript's JSON.stringify writes them (which is what RFC 8785 §3.2.2 specifies).
 * Members whose value is undefined are left out, as JSON.stringify does. Throws a TypeError on what JSON
 * cannot carry or RFC 8785 forbids: non-finite numbers, lone surrogates, bigint, functions, symbols,
 * and objects other than plain objects and arrays (a Date or a Uint8Array would change form silently).
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`JCS: ${value} is not a JSON number`);
      return JSON.stringify(value);
    case "string":
      if (!value.isWellFormed()) throw new TypeError("JCS: string holds a lone surrogate");
      return JSON.stringify(value);
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw new TypeError("JCS: only plain objects and arrays");
      // `<` on strings compares UTF-16 code units, the order RFC 8785 §3.2.3 asks for (not code points).
      const members = Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => `${canonicalJson(k)}:${canonicalJson(v)}`);
      return `{${members.join(",")}}`;
    }
    default:
      throw new TypeError(`JCS: a ${typeof value} is not JSON`);
  }
}
