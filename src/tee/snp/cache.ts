import { toHex } from "../../crypto/bytes";

/**
 * A Map with a size bound that forgets the least recently used entry first. The verifier keeps its
 * per-isolate caches in these so that a stream of distinct (genuine) certificates cannot grow memory
 * without limit, while the entries in use stay warm.
 */
export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();

  constructor(private readonly max: number) {}

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      // Re-insert so that Map's insertion order doubles as recency order.
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K);
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  /** Forgets the entries whose key matches. */
  deleteWhere(match: (key: K) => boolean): void {
    for (const key of [...this.map.keys()]) if (match(key)) this.map.delete(key);
  }
}

/**
 * Cache key for a signed DER object (VEK, CRL): its length and signature tail, unique per issuance.
 * Entries are confirmed byte for byte on a hit, so the warm path costs neither a digest (a thread-pool
 * round trip in Node) nor a hex encoding of the whole object.
 */
export function derKey(der: Uint8Array): string {
  return `${der.length}:${toHex(der.subarray(-96))}`;
}
