// Messages of any size over Jupyter's websocket, whose messages are capped (tornado's default 10 MiB):
// the front end's half of accelerate_lab/hal/browser_chunks.py, the same format both ways. A message
// whose buffers exceed MESSAGE_BYTES goes as {kind: "chunk", transfer, sizes, parts: [[buffer, offset]]}
// messages (pieces of at most CHUNK_BYTES, as many per message as fit) and then
// {kind: "end", transfer, content}. One transfer is in flight at a time, so a chunk of another
// transfer, an end marker with bytes missing or a long silence means a chunk went missing.

export const CHUNK_BYTES = 4 << 20;
export const MESSAGE_BYTES = 8 << 20;
const TIMEOUT_MS = 60_000;

export type Message = [unknown, ArrayBuffer[]];

interface Chunk {
  kind: "chunk";
  transfer: number;
  sizes: number[];
  parts: [number, number][];
}

interface End {
  kind: "end";
  transfer: number;
  content: unknown;
}

/** `content` with `buffers` as messages within MESSAGE_BYTES each (one message if it fits). */
export function split(content: unknown, buffers: readonly ArrayBuffer[], transfer: number): Message[] {
  const sizes = buffers.map((b) => b.byteLength);
  if (sizes.reduce((a, b) => a + b, 0) <= MESSAGE_BYTES) return [[content, [...buffers]]];
  const messages: Message[] = [];
  let parts: [number, number][] = [];
  let pieces: ArrayBuffer[] = [];
  let used = 0;
  buffers.forEach((buffer, index) => {
    for (let offset = 0; offset < buffer.byteLength; offset += CHUNK_BYTES) {
      // a copy: JupyterLab's serialiser sends a view's whole underlying buffer, not the view
      const piece = buffer.slice(offset, offset + CHUNK_BYTES);
      if (pieces.length && used + piece.byteLength > MESSAGE_BYTES) {
        messages.push([{ kind: "chunk", transfer, sizes, parts } satisfies Chunk, pieces]);
        [parts, pieces, used] = [[], [], 0];
      }
      parts.push([index, offset]);
      pieces.push(piece);
      used += piece.byteLength;
    }
  });
  if (pieces.length) messages.push([{ kind: "chunk", transfer, sizes, parts } satisfies Chunk, pieces]);
  messages.push([{ kind: "end", transfer, content } satisfies End, []]);
  return messages;
}

interface Transfer {
  number: number;
  buffers: Uint8Array<ArrayBuffer>[];
  expected: number;
  received: number;
  last: number;
}

function missing(transfer: Transfer, why: string): string {
  return (
    `transfer ${transfer.number}: ${why} after ${transfer.received} of ${transfer.expected} bytes had arrived ` +
    "(a message was lost, for example when the connection to JupyterLab dropped); re-run the cell"
  );
}

/** Reassembles chunked messages; `feed` returns the complete message (or null) and what was lost. */
export class Assembler {
  private current: Transfer | null = null;

  feed(content: unknown, buffers: readonly DataView[]): [[unknown, DataView[]] | null, string | null] {
    const message = content as Chunk | End | { kind?: unknown };
    const chunked = message.kind === "chunk" || message.kind === "end";
    const number = chunked ? (message as Chunk | End).transfer : null;
    const now = performance.now();
    let current = this.current;
    let lost: string | null = null;
    if (current && current.number !== number) {
      lost = missing(current, number === null ? "another message came" : `transfer ${number} began`);
    } else if (current && now - current.last > TIMEOUT_MS) {
      lost = missing(current, `nothing came for ${Math.round((now - current.last) / 1000)} s`);
    }
    if (lost) this.current = current = null;
    if (!chunked) return [[content, [...buffers]], lost];
    if (message.kind === "end") {
      this.current = null;
      if (!current) return [null, lost ?? `transfer ${number}: the end marker came without its chunks`];
      if (current.received !== current.expected) return [null, missing(current, "the end marker came")];
      const data = current.buffers.map((b) => new DataView(b.buffer));
      return [[(message as End).content, data], lost];
    }
    const chunk = message as Chunk;
    const transfer: Transfer = current ?? {
      number: chunk.transfer,
      buffers: chunk.sizes.map((n) => new Uint8Array(n)),
      expected: chunk.sizes.reduce((a, b) => a + b, 0),
      received: 0,
      last: now,
    };
    this.current = transfer;
    transfer.last = now;
    chunk.parts.forEach(([index, offset], i) => {
      const piece = buffers[i];
      transfer.buffers[index].set(new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength), offset);
      transfer.received += piece.byteLength;
    });
    return [null, lost];
  }
}
