// The fast transfer path beside the comm (accelerate_lab/widgets/transfer_server.py is its server half):
// large buffers go through the Jupyter server as files of a spool the kernel shares, fetched or PUT by
// token with the page's credentials (its same-origin cookie, and the `_xsrf` cookie's value as
// X-XSRFToken for PUT). A message from the kernel names its spooled buffers as {spooled: {index: token}}
// (those buffers come empty); a batch names the `slots` its large downloads may be PUT to.

/** Where the server extension answers and the page's XSRF token (the page hands them to the worker). */
export interface HttpConfig {
  url: string;
  xsrf: string;
}

/** Buffers at least this large take the HTTP path (the kernel uses the same threshold). */
export const HTTP_BYTES = 1 << 20;

/** The page's transfer URL and XSRF token (JupyterLab's and Notebook 7's page config and cookie); null
 * outside a Jupyter page (no HTTP path: the comm carries everything). */
export function pageHttpConfig(): HttpConfig | null {
  let base: string | undefined;
  try {
    const config = document.getElementById("jupyter-config-data")?.textContent;
    base = config ? (JSON.parse(config) as { baseUrl?: string }).baseUrl : undefined;
  } catch {
    return null;
  }
  if (base === undefined) return null;
  const xsrf = document.cookie.match("\\b_xsrf=([^;]*)\\b")?.[1] ?? "";
  return { url: new URL(`${base.replace(/\/?$/, "/")}accelerate-lab/transfer/`, location.origin).href, xsrf };
}

export class HttpTransfer {
  constructor(private readonly config: HttpConfig) {}

  async get(token: string): Promise<ArrayBuffer> {
    const response = await fetch(this.config.url + token, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) throw new Error(`GET of a spooled transfer failed: HTTP ${response.status}`);
    const size = Number(response.headers.get("Content-Length") ?? NaN);
    const encoded = response.headers.has("Content-Encoding"); // then Content-Length counts the encoded bytes
    if (!response.body || encoded || !Number.isSafeInteger(size)) return response.arrayBuffer();
    return readAll(response.body, size);
  }

  async put(token: string, data: ArrayBuffer): Promise<void> {
    const response = await fetch(this.config.url + token, {
      method: "PUT",
      body: new Blob([data]), // Chromium sends a Blob ~8x faster than the same ArrayBuffer (measured here)
      credentials: "same-origin",
      headers: { "X-XSRFToken": this.config.xsrf, "Content-Type": "application/octet-stream" },
    });
    if (!response.ok) throw new Error(`PUT of a transfer failed: HTTP ${response.status}`);
  }

  /** The message with its spooled buffers fetched. */
  async fetchSpooled(content: unknown, buffers: readonly DataView[]): Promise<[unknown, DataView[]]> {
    const spooled = (content as { spooled?: Record<string, string> }).spooled ?? {};
    const out = [...buffers];
    await Promise.all(
      Object.entries(spooled).map(async ([index, token]) => (out[Number(index)] = new DataView(await this.get(token)))),
    );
    return [content, out];
  }

  /** `content` with its large `buffers` PUT to `slots` (as many as there are slots); the rest stay. */
  async putLarge(content: object, buffers: ArrayBuffer[], slots: readonly string[]): Promise<[object, ArrayBuffer[]]> {
    const spooled: Record<string, string> = {};
    const out = [...buffers];
    let next = 0;
    const puts: Promise<void>[] = [];
    buffers.forEach((buffer, index) => {
      if (buffer.byteLength < HTTP_BYTES || next >= slots.length) return;
      const token = slots[next++];
      spooled[index] = token;
      out[index] = new ArrayBuffer(0);
      puts.push(this.put(token, buffer));
    });
    const failed = (await Promise.allSettled(puts)).find((p) => p.status === "rejected");
    if (failed) throw failed.reason; // once every PUT has ended: none writes a file after the kernel cleans up
    return next ? [{ ...content, spooled }, out] : [content, out];
  }

  /** Fetch the kernel's probe file and PUT it back: the kernel compares what arrives. */
  async probe(get: string, put: string): Promise<void> {
    await this.put(put, await this.get(get));
  }
}

/** The `size` bytes of `body` read straight into one buffer (a BYOB reader; `arrayBuffer()` gathers the
 * chunks and copies them, slower here); an error if the body ends early. */
async function readAll(body: ReadableStream<Uint8Array>, size: number): Promise<ArrayBuffer> {
  if (size === 0) {
    await body.cancel();
    return new ArrayBuffer(0);
  }
  const reader = body.getReader({ mode: "byob" });
  let buffer = new ArrayBuffer(size);
  let offset = 0;
  while (offset < size) {
    const { value, done } = await reader.read(new Uint8Array(buffer, offset, size - offset));
    if (done || !value) break;
    buffer = value.buffer as ArrayBuffer; // the read detaches the buffer it filled and hands it back
    offset += value.byteLength;
  }
  reader.releaseLock();
  if (offset !== size) throw new Error(`GET of a spooled transfer ended after ${offset} of ${size} bytes`);
  return buffer;
}
