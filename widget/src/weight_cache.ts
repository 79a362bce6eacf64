// Model weights kept in this browser across kernel restarts and page reloads (the front end's half of
// accelerate_lab/hal/browser_cache.py): an IndexedDB database of Blobs keyed by the SHA-256 of their
// content (a Blob reads back 3-4x faster than an ArrayBuffer value, which IndexedDB deserializes; an
// entry of another kind counts as damaged), with a small record per entry (length, checksum, last use)
// for least-recently-used eviction under a size cap. A read checks length and checksum (computed when
// the entry was stored: as sure to catch a changed or cut entry as re-hashing it with SHA-256, at a
// third of the cost): a corrupt or partial entry is deleted and reported missing, so the kernel sends
// it again. Works in a window and in a worker (IndexedDB exists in both).

const DATABASE = "accelerate_lab-weights";
const DATA = "data";
const META = "meta";

interface Entry {
  hash: string;
  nbytes: number;
  check: string;
  used: number;
}

/** One looked-up entry: its bytes if present and sound; `damaged`: present but not sound. */
interface Checked {
  bytes: Uint8Array<ArrayBuffer> | null;
  entry?: Entry;
  damaged?: boolean;
}

/** What the model state shows of the cache. */
export interface CacheReport {
  available: boolean;
  reason: string;
  entries: number;
  bytes: number;
  limit: number;
  hits: number;
  misses: number;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
  });
}

/** A 128-bit checksum of `bytes` (whose offset is a multiple of 4), as 32 hex digits: four 32-bit
 * multiply-rotate lanes, word i feeding lane i % 4 (independent chains: ~2 GB/s in V8), then the last
 * bytes and the length. Each step is a bijection of its lane, so any one changed word changes the
 * result; other damage goes unseen with probability about 2^-128. */
export function checksum(bytes: Uint8Array<ArrayBuffer>): string {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  let [a, b, c, d] = [0x9e3779b9 | 0, 0x85ebca6b | 0, 0x27d4eb2f | 0, 0x165667b1 | 0];
  const whole = words.length & ~3;
  for (let i = 0; i < whole; i += 4) {
    a = Math.imul(a ^ words[i], 0xcc9e2d51);
    a = (a << 15) | (a >>> 17);
    b = Math.imul(b ^ words[i + 1], 0x1b873593);
    b = (b << 13) | (b >>> 19);
    c = Math.imul(c ^ words[i + 2], 0xcc9e2d51);
    c = (c << 15) | (c >>> 17);
    d = Math.imul(d ^ words[i + 3], 0x1b873593);
    d = (d << 13) | (d >>> 19);
  }
  // the words left over, then each byte past the last whole word, then the length
  const rest = [...words.subarray(whole), ...Array.from(bytes.subarray(words.length * 4), (x) => x | 0x100), bytes.byteLength];
  for (const w of rest) {
    a = Math.imul(a ^ w, 0xcc9e2d51);
    a = (a << 15) | (a >>> 17);
    [a, b, c, d] = [b ^ a, c, d, a];
  }
  return [a, b, c, d].map((x) => (x >>> 0).toString(16).padStart(8, "0")).join("");
}

export class WeightCache {
  hits = 0;
  misses = 0;
  private clock = 0;

  private constructor(
    private readonly db: IDBDatabase | null,
    public limit: number,
    private readonly reason: string,
  ) {}

  /** The cache of this origin; without IndexedDB a cache that holds nothing. */
  static async open(limit: number): Promise<WeightCache> {
    if (typeof indexedDB === "undefined") {
      return new WeightCache(null, limit, "no IndexedDB here: weights are sent every session");
    }
    try {
      const req = indexedDB.open(DATABASE, 1);
      req.onupgradeneeded = () => {
        req.result.createObjectStore(DATA);
        req.result.createObjectStore(META, { keyPath: "hash" });
      };
      return new WeightCache(await request(req), limit, "");
    } catch (error) {
      return new WeightCache(null, limit, `IndexedDB failed to open: ${String(error)}`);
    }
  }

  private tick(): number {
    this.clock = Math.max(Date.now(), this.clock + 1);
    return this.clock;
  }

  /** Each wanted entry (by hash) as a promise of its bytes, settled as soon as that entry is read and
   * checked (so its use can start while the others are still read): the bytes where the entry is
   * present, `nbytes` long and matches its checksum, else null (a damaged entry is deleted; the cache is
   * best effort: a storage error reads as misses). `settled` resolves once every entry has been looked
   * up and the hits have their last use updated. */
  lookup(wanted: ReadonlyMap<string, number>): { entries: Map<string, Promise<Uint8Array<ArrayBuffer> | null>>; settled: Promise<void> } {
    const checked = new Map<string, Promise<Checked>>();
    let tx: IDBTransaction | null = null;
    try {
      tx = this.db && wanted.size ? this.db.transaction([DATA, META], "readonly") : null;
    } catch (error) {
      console.warn(`accelerate_lab: the weight cache could not be read: ${String(error)}`);
    }
    // all reads in one transaction, each checked as it arrives
    for (const [hash, nbytes] of wanted) checked.set(hash, tx ? this.check(tx, hash, nbytes) : Promise.resolve({ bytes: null }));
    const entries = new Map([...checked].map(([hash, p]) => [hash, p.then((c) => c.bytes)]));
    const settled = Promise.all(checked.values()).then((all) => this.touch([...checked.keys()], all));
    return { entries, settled };
  }

  private async check(tx: IDBTransaction, hash: string, nbytes: number): Promise<Checked> {
    try {
      const [stored, entry] = await Promise.all([
        request(tx.objectStore(DATA).get(hash) as IDBRequest<unknown>),
        request(tx.objectStore(META).get(hash) as IDBRequest<Entry | undefined>),
      ]);
      const bytes = stored instanceof Blob ? new Uint8Array(await stored.arrayBuffer()) : null;
      const whole = bytes !== null && entry?.nbytes === nbytes && bytes.byteLength === nbytes;
      const good = whole && checksum(bytes) === entry.check;
      return { bytes: good ? bytes : null, entry: good ? entry : undefined, damaged: !good && (bytes !== null || entry !== undefined) };
    } catch (error) {
      console.warn(`accelerate_lab: the weight cache could not be read: ${String(error)}`);
      return { bytes: null };
    }
  }

  /** Count hits and misses, update the last use of the hits and delete the damaged entries. */
  private async touch(hashes: readonly string[], checked: readonly Checked[]): Promise<void> {
    const hits = checked.filter((c) => c.bytes).length;
    this.hits += hits;
    this.misses += checked.length - hits;
    if (!this.db || !checked.length) return;
    try {
      const write = this.db.transaction([DATA, META], "readwrite");
      checked.forEach(({ entry, damaged }, i) => {
        if (entry) {
          write.objectStore(META).put({ ...entry, used: this.tick() } satisfies Entry);
        } else if (damaged) {
          // corrupt or partial: deleted, never used, sent again
          write.objectStore(DATA).delete(hashes[i]);
          write.objectStore(META).delete(hashes[i]);
        }
      });
      await done(write);
    } catch (error) {
      console.warn(`accelerate_lab: the weight cache could not be updated: ${String(error)}`);
    }
  }

  /** Store `bytes` under `hash`, then evict least recently used entries past the limit (a storage
   * error, such as a full quota, leaves the entry out: it is sent again next session). */
  async put(hash: string, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
    try {
      await this.write(hash, bytes);
    } catch (error) {
      console.warn(`accelerate_lab: weight ${hash.slice(0, 12)}… not cached: ${String(error)}`);
    }
  }

  private async write(hash: string, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
    if (!this.db || bytes.byteLength > this.limit) return;
    const tx = this.db.transaction([DATA, META], "readwrite");
    tx.objectStore(DATA).put(new Blob([bytes]), hash);
    const check = checksum(bytes.byteOffset % 4 ? bytes.slice() : bytes);
    tx.objectStore(META).put({ hash, nbytes: bytes.byteLength, check, used: this.tick() } satisfies Entry);
    await done(tx);
    await this.evict();
  }

  private async entries(): Promise<Entry[]> {
    if (!this.db) return [];
    return request(this.db.transaction(META, "readonly").objectStore(META).getAll() as IDBRequest<Entry[]>);
  }

  private async remove(hashes: readonly string[]): Promise<void> {
    if (!this.db || !hashes.length) return;
    const tx = this.db.transaction([DATA, META], "readwrite");
    for (const hash of hashes) {
      tx.objectStore(DATA).delete(hash);
      tx.objectStore(META).delete(hash);
    }
    await done(tx);
  }

  /** Delete the least recently used entries until the total fits the limit. */
  async evict(): Promise<void> {
    const entries = (await this.entries()).sort((a, b) => a.used - b.used);
    let total = entries.reduce((n, e) => n + e.nbytes, 0);
    const doomed: string[] = [];
    for (const entry of entries) {
      if (total <= this.limit) break;
      doomed.push(entry.hash);
      total -= entry.nbytes;
    }
    await this.remove(doomed);
  }

  async clear(): Promise<void> {
    if (!this.db) return;
    const tx = this.db.transaction([DATA, META], "readwrite");
    tx.objectStore(DATA).clear();
    tx.objectStore(META).clear();
    await done(tx);
  }

  async report(): Promise<CacheReport> {
    const entries = await this.entries();
    return {
      available: this.db !== null,
      reason: this.reason,
      entries: entries.length,
      bytes: entries.reduce((n, e) => n + e.nbytes, 0),
      limit: this.limit,
      hits: this.hits,
      misses: this.misses,
    };
  }

  close(): void {
    this.db?.close();
  }
}
