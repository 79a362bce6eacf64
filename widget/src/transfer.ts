// The fast transfer path beside the comm (accelerate_lab/widgets/transfer_server.py is its server half):
// large buffers go through the Jupyter server as files of a spool the kernel shares, fetched or PUT by
// token with the page's credentials (its same-origin cookie, and the `_xsrf` cookie's value as
// X-XSRFToken for PUT). A message from the kernel names its spooled buffers as {spooled: {index: token}}
// (those buffers come empty); a batch names the `slots` its large downloads may be PUT to. A WebGPU
// batch's spooled uploads are not read ahead: each arrives as an `Incoming` that the batch's upload
// streams to the GPU piece by piece while the rest is still on its way.
import { BrowserError } from "./gpu";

/** Where the server extension answers and the page's XSRF token (the page hands them to the worker). */
export interface HttpConfig {
  url: string;
  xsrf: string;
}

/** Buffers at least this large take the HTTP path (the kernel uses the same threshold). */
export const HTTP_BYTES = 1 << 20;

/** Bytes of the pieces an `Incoming` is read in (each goes to the GPU as soon as it is full). */
export const PIECE_BYTES = 4 << 20;

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

/** A spooled upload of a WebGPU batch whose bytes are still arriving. To whatever reads it as a DataView
 * it is the empty buffer the comm carried in its place; the batch's upload takes its bytes with `pieces`. */
export class Incoming extends (DataView as new (buffer: ArrayBuffer) => DataView<ArrayBuffer>) {
  constructor(
    readonly size: number,
    private readonly body: ReadableStream<Uint8Array>,
  ) {
    super(new ArrayBuffer(0));
  }

  /** `take(piece, offset)` for each PIECE_BYTES of the body in order (the last piece may be shorter),
   * each in the buffer the next one reuses; a "transfer" BrowserError if the body fails or ends early. */
  pieces(take: (piece: Uint8Array<ArrayBuffer>, offset: number) => void): Promise<void> {
    return readPieces(this.body, this.size, PIECE_BYTES, take);
  }

  /** Drop what is left unread (a batch that stopped before its upload): the server ends the GET. */
  discard(): void {
    if (!this.body.locked) void this.body.cancel().catch(() => {});
  }
}

/** Downloads as the batch made them: large ones as Blobs, to be PUT (see `putLarge`). */
export type Downloaded = ArrayBuffer | Blob;

/** `out` with its Blobs read into ArrayBuffers (for the comm). */
export function arrayBuffers(out: readonly Downloaded[]): Promise<ArrayBuffer[]> {
  return Promise.all(out.map((data) => (data instanceof Blob ? data.arrayBuffer() : data)));
}

export class HttpTransfer {
  constructor(private readonly config: HttpConfig) {}

  /** The response to the GET of `token`, and its size in bytes where the body can be read in pieces
   * (null: encoded, or of no stated length). */
  private async request(token: string): Promise<[Response, number | null]> {
    const response = await fetch(this.config.url + token, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) throw new Error(`GET of a spooled transfer failed: HTTP ${response.status}`);
    const size = Number(response.headers.get("Content-Length") ?? NaN);
    const encoded = response.headers.has("Content-Encoding"); // then Content-Length counts the encoded bytes
    return [response, response.body && !encoded && Number.isSafeInteger(size) ? size : null];
  }

  async get(token: string): Promise<ArrayBuffer> {
    const [response, size] = await this.request(token);
    if (size === null || !response.body) return response.arrayBuffer();
    let whole = new ArrayBuffer(0);
    // one piece of all the bytes, read straight into one buffer (`arrayBuffer()` gathers the chunks and copies them)
    await readPieces(response.body, size, size, (piece) => (whole = piece.buffer));
    return whole;
  }

  /** The spooled upload of `token` as an `Incoming` once its response has begun (or whole, where its
   * body cannot be read in pieces). */
  async open(token: string): Promise<DataView> {
    const [response, size] = await this.request(token);
    if (size === null || !response.body) return new DataView(await response.arrayBuffer());
    return new Incoming(size, response.body);
  }

  async put(token: string, data: Blob | ArrayBuffer): Promise<void> {
    const body = data instanceof Blob ? data : new Blob([data]); // Chromium sends a Blob ~8x faster than an ArrayBuffer
    const response = await fetch(this.config.url + token, {
      method: "PUT",
      body,
      credentials: "same-origin",
      headers: { "X-XSRFToken": this.config.xsrf, "Content-Type": "application/octet-stream" },
    });
    if (!response.ok) throw new Error(`PUT of a transfer failed: HTTP ${response.status}`);
  }

  /** The message with its spooled buffers fetched: a WebGPU batch's as `Incoming`s, others whole. */
  async fetchSpooled(content: unknown, buffers: readonly DataView[]): Promise<[unknown, DataView[]]> {
    const message = content as { kind?: string; device?: string; spooled?: Record<string, string> };
    const streamed = message.kind === "batch" && message.device === undefined;
    const out = [...buffers];
    await Promise.all(
      Object.entries(message.spooled ?? {}).map(async ([index, token]) => {
        out[Number(index)] = streamed ? await this.open(token) : new DataView(await this.get(token));
      }),
    );
    return [content, out];
  }

  /** `content` with its large `buffers` PUT to `slots` (as many as there are slots); the rest stay, Blobs
   * read into ArrayBuffers. */
  async putLarge(content: object, buffers: Downloaded[], slots: readonly string[]): Promise<[object, ArrayBuffer[]]> {
    const spooled: Record<string, string> = {};
    const out = [...buffers];
    let next = 0;
    const puts: Promise<void>[] = [];
    buffers.forEach((buffer, index) => {
      const nbytes = buffer instanceof Blob ? buffer.size : buffer.byteLength;
      if (nbytes < HTTP_BYTES || next >= slots.length) return;
      const token = slots[next++];
      spooled[index] = token;
      out[index] = new ArrayBuffer(0);
      puts.push(this.put(token, buffer));
    });
    const failed = (await Promise.allSettled(puts)).find((p) => p.status === "rejected");
    if (failed) throw failed.reason; // once every PUT has ended: none writes a file after the kernel cleans up
    return [next ? { ...content, spooled } : content, await arrayBuffers(out)];
  }

  /** Fetch the kernel's probe file and PUT it back: the kernel compares what arrives. */
  async probe(get: string, put: string): Promise<void> {
    await this.put(put, await this.get(get));
  }
}

/** `take(piece, offset)` for each `pieceBytes` of the `size` bytes of `body`, read straight into one
 * reused buffer (a BYOB reader); a "transfer" BrowserError if the body fails or ends early. */
async function readPieces(
  body: ReadableStream<Uint8Array>,
  size: number,
  pieceBytes: number,
  take: (piece: Uint8Array<ArrayBuffer>, offset: number) => void,
): Promise<void> {
  if (size === 0) {
    await body.cancel();
    return;
  }
  const reader = body.getReader({ mode: "byob" });
  let buffer = new ArrayBuffer(Math.min(pieceBytes, size));
  let offset = 0; // bytes of the body taken
  let filled = 0; // bytes of the current piece read
  const failed = (why: string): BrowserError =>
    new BrowserError("transfer", `GET of a spooled transfer ${why} after ${offset + filled} of ${size} bytes`);
  try {
    while (offset < size) {
      const length = Math.min(buffer.byteLength, size - offset);
      const { value, done } = await reader.read(new Uint8Array(buffer, filled, length - filled)).catch((error: unknown) => {
        throw failed(`failed (${String(error)})`);
      });
      if (done || !value) throw failed("ended");
      buffer = value.buffer as ArrayBuffer; // the read detaches the buffer it filled and hands it back
      filled += value.byteLength;
      if (filled === length) {
        take(new Uint8Array(buffer, 0, length), offset);
        offset += length;
        filled = 0;
      }
    }
  } finally {
    reader.releaseLock();
  }
}
