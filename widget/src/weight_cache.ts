// Model weights kept in this browser across kernel restarts and page reloads (the front end's half of
// accelerate_lab/hal/browser_cache.py): an IndexedDB database of byte arrays keyed by the SHA-256 of
// their content, with a small record per entry (length, last use) for least-recently-used eviction
// under a size cap. A read checks length and hash: a corrupt or partial entry is deleted and reported
// missing, so the kernel sends it again. Works in a window and in a worker (IndexedDB and WebCrypto
// exist in both).

const DATABASE = "accelerate_lab-weights";
const DATA = "data";
const META = "meta";

interface Entry {
  hash: string;
  nbytes: number;
  used: number;
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

export async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
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

  /** The cache of this origin; without IndexedDB (or WebCrypto) a cache that holds nothing. */
  static async open(limit: number): Promise<WeightCache> {
    if (typeof indexedDB === "undefined" || !globalThis.crypto?.subtle) {
      return new WeightCache(null, limit, "no IndexedDB or WebCrypto here: weights are sent every session");
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

  /** The bytes of each wanted entry (by hash) that is present, `nbytes` long and hashes to its key; the
   * others are missing from the map (the cache is best effort: a storage error reads as misses). */
  async get(wanted: ReadonlyMap<string, number>): Promise<Map<string, Uint8Array<ArrayBuffer>>> {
    let found = new Map<string, Uint8Array<ArrayBuffer>>();
    try {
      found = await this.read(wanted);
    } catch (error) {
      console.warn(`accelerate_lab: the weight cache could not be read: ${String(error)}`);
    }
    this.hits += found.size;
    this.misses += wanted.size - found.size;
    return found;
  }

  private async read(wanted: ReadonlyMap<string, number>): Promise<Map<string, Uint8Array<ArrayBuffer>>> {
    const found = new Map<string, Uint8Array<ArrayBuffer>>();
    if (!this.db || !wanted.size) return found;
    const tx = this.db.transaction([DATA, META], "readonly");
    const [data, meta] = [DATA, META].map((store) => tx.objectStore(store));
    // all reads in one transaction, all hashes at once (WebCrypto digests off this thread)
    const checked = await Promise.all(
      [...wanted].map(async ([hash, nbytes]): Promise<[string, Uint8Array<ArrayBuffer> | null, boolean]> => {
        const [stored, entry] = await Promise.all([
          request(data.get(hash) as IDBRequest<ArrayBuffer | undefined>),
          request(meta.get(hash) as IDBRequest<Entry | undefined>),
        ]);
        const bytes = stored instanceof ArrayBuffer ? new Uint8Array(stored) : null;
        const whole = bytes !== null && entry?.nbytes === nbytes && bytes.byteLength === nbytes;
        return [hash, whole && (await sha256(bytes)) === hash ? bytes : null, bytes !== null || entry !== undefined];
      }),
    );
    const write = this.db.transaction([DATA, META], "readwrite");
    for (const [hash, bytes, present] of checked) {
      if (bytes) {
        found.set(hash, bytes);
        write.objectStore(META).put({ hash, nbytes: bytes.byteLength, used: this.tick() } satisfies Entry);
      } else if (present) {
        // corrupt or partial: deleted, never used, sent again
        write.objectStore(DATA).delete(hash);
        write.objectStore(META).delete(hash);
      }
    }
    await done(write);
    return found;
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
    const copy = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
    tx.objectStore(DATA).put(copy, hash);
    tx.objectStore(META).put({ hash, nbytes: bytes.byteLength, used: this.tick() } satisfies Entry);
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
