/**
 * Line-oriented JSON messages between the runner and the programs it starts
 * inside namespaces (stdout carries events, stdin carries commands).
 * @module
 */

const encoder = new TextEncoder();
/** Lines queued by `emitSoon()`, not yet written. */
let queued: string[] = [];
let flushScheduled = false;

/** Splits a byte stream into text lines (without the newline). */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    // One pass over the chunk's lines, one slice for the rest: a chunk of many
    // lines costs its length, not its length times its lines.
    let start = 0;
    let nl: number;
    while ((nl = buffered.indexOf("\n", start)) >= 0) {
      yield buffered.slice(start, nl);
      start = nl + 1;
    }
    buffered = buffered.slice(start);
  }
  buffered += decoder.decode();
  if (buffered) yield buffered;
}

/** Writes all of `text` on stdout (`writeSync` may write less than it is given). */
function writeAll(text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

/** The background writer of `emitSoon()`'s lines, while it runs. */
let writer: Promise<void> | undefined;

/**
 * Writes one JSON message as a line on stdout now, after the messages
 * `emitSoon()` queued (so the order is the order of the calls). While the
 * background writer runs, the line joins its queue instead (use
 * `drainLines()` before `Deno.exit()`).
 */
export function emit(message: { event: string }): void {
  queued.push(JSON.stringify(message));
  flushLines();
}

/**
 * Queues one JSON message as a line for stdout. Queued lines are written
 * together, once the current task ends (a microtask), by a background writer:
 * a burst of thousands of events costs one write, and a reader that falls
 * behind (a full pipe) never stops the program, which goes on while its lines
 * wait. Call `await drainLines()` before `Deno.exit()`.
 */
export function emitSoon(message: { event: string }): void {
  queued.push(JSON.stringify(message));
  if (flushScheduled || writer) return;
  flushScheduled = true;
  queueMicrotask(startWriter);
}

function startWriter(): void {
  flushScheduled = false;
  if (writer || queued.length === 0) return;
  writer = (async () => {
    while (queued.length > 0) {
      const bytes = encoder.encode(queued.join("\n") + "\n");
      queued = [];
      let written = 0;
      while (written < bytes.length) written += await Deno.stdout.write(bytes.subarray(written));
    }
  })().catch(() => {
    // The reader is gone (EPIPE): nothing can be reported any more.
    queued = [];
  }).finally(() => {
    writer = undefined;
    // Lines queued after the loop's last look (while this promise settled) start a new writer.
    if (queued.length > 0) startWriter();
  });
}

/** Writes every queued line now, in order, unless the background writer runs (it will). */
export function flushLines(): void {
  flushScheduled = false;
  if (writer || queued.length === 0) return;
  const text = queued.join("\n") + "\n";
  queued = [];
  writeAll(text);
}

/** Resolves once every queued line is written (at most `timeoutMs`, default 2 s). */
export async function drainLines(timeoutMs = 2000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while ((writer || queued.length > 0) && performance.now() < deadline) {
    if (!writer) startWriter();
    await Promise.race([writer, new Promise((r) => setTimeout(r, 50))]);
  }
}
