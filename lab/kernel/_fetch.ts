/**
 * Bounded HTTP downloads: every wait (the response headers, each chunk) has
 * a deadline, failures name the URL, a file is written under a temporary
 * name and renamed only once complete and checked.
 * @module
 */
import { createHash } from "node:crypto";
import { DownloadError } from "./errors.ts";

/** The `fetch` to use; tests inject one. */
export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

/** Progress of one download. */
export interface DownloadProgress {
  /** The URL being downloaded. */
  url: string;
  /** Bytes received so far. */
  bytes: number;
  /** Expected bytes (from the index, else Content-Length), or `undefined`. */
  total: number | undefined;
}

/** Options of the bounded fetches. */
export interface BoundedFetchOptions {
  /** The fetch implementation; default `globalThis.fetch`. */
  fetch?: FetchFn;
  /** Longest wait for the response headers; default 30 s. */
  headersTimeoutMs?: number;
  /** Longest wait for the next chunk of the body; default 60 s. */
  idleTimeoutMs?: number;
  /** Aborts the download. */
  signal?: AbortSignal;
}

/** Options of {@linkcode downloadFile}. */
export interface DownloadOptions extends BoundedFetchOptions {
  /** The SHA256 the file must have (hex); a mismatch is a {@linkcode DownloadError}. */
  sha256?: string;
  /** The size the index gives, for progress and a size check. */
  size?: number;
  /** Called as bytes arrive (at most every 64 KiB and at the end). */
  onProgress?: (p: DownloadProgress) => void;
}

const HEADERS_TIMEOUT_MS = 30_000;
const IDLE_TIMEOUT_MS = 60_000;

/**
 * Starts a GET whose header wait and every body read are bounded; returns
 * the response and a reader that throws a {@linkcode DownloadError} naming
 * the URL on a stall.
 */
async function boundedGet(url: string, options: BoundedFetchOptions) {
  const ac = new AbortController();
  const onAbort = () => ac.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  const done = () => options.signal?.removeEventListener("abort", onAbort);
  let why = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = (ms: number, what: string) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      why = what;
      ac.abort(new Error(what));
    }, ms);
  };
  const fail = (err: unknown): never => {
    clearTimeout(timer);
    done();
    if (err instanceof DownloadError) throw err;
    if (options.signal?.aborted) {
      throw new DownloadError(url, `Cannot download "${url}": aborted`, { cause: err });
    }
    throw new DownloadError(
      url,
      `Cannot download "${url}": ${why || (err instanceof Error ? err.message : String(err))}`,
      { cause: err },
    );
  };
  const headersMs = options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  const idleMs = options.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
  arm(headersMs, `no response within ${headersMs} ms`);
  let res: Response;
  try {
    if (ac.signal.aborted) throw ac.signal.reason;
    res = await (options.fetch ?? fetch)(url, { signal: ac.signal });
  } catch (err) {
    return fail(err);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    fail(
      new DownloadError(
        url,
        `Cannot download "${url}": the server answered ${res.status} ${res.statusText}`,
      ),
    );
  }
  const reader = res.body?.getReader();
  return {
    res,
    /** The next chunk, or `undefined` at the end. */
    async next(): Promise<Uint8Array | undefined> {
      if (!reader) return undefined;
      arm(idleMs, `no data for ${idleMs} ms`);
      try {
        const r = await reader.read();
        if (r.done) {
          clearTimeout(timer);
          done();
          return undefined;
        }
        return r.value;
      } catch (err) {
        return fail(err);
      }
    },
    /** Stops the download early. */
    async cancel(): Promise<void> {
      clearTimeout(timer);
      done();
      await reader?.cancel().catch(() => {});
    },
  };
}

/**
 * Downloads `url` into memory, bounded like {@linkcode downloadFile}.
 *
 * @throws {DownloadError} naming the URL on an HTTP error, a stall or an abort.
 */
export async function fetchBytes(
  url: string,
  options: BoundedFetchOptions = {},
): Promise<Uint8Array> {
  const get = await boundedGet(url, options);
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (let c = await get.next(); c; c = await get.next()) {
    chunks.push(c);
    n += c.length;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/**
 * Downloads `url` to `dest`: written to `dest.partial-<pid>-<random>`,
 * checked against `sha256` (and `size`), then renamed, so a partial or
 * corrupt download never appears under `dest`.
 *
 * @throws {DownloadError} naming the URL: HTTP error, stall, abort, size or
 *   SHA256 mismatch (naming both hashes).
 */
export async function downloadFile(
  url: string,
  dest: string,
  options: DownloadOptions = {},
): Promise<void> {
  const tmp = `${dest}.partial-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  let ok = false;
  try {
    const get = await boundedGet(url, options);
    const length = Number(get.res.headers.get("content-length") ?? NaN);
    const total = options.size ?? (Number.isFinite(length) ? length : undefined);
    const hash = createHash("sha256");
    let bytes = 0;
    let reported = 0;
    try {
      for (let c = await get.next(); c; c = await get.next()) {
        hash.update(c);
        let off = 0;
        while (off < c.length) off += await file.write(c.subarray(off));
        bytes += c.length;
        if (bytes - reported >= 65_536) {
          reported = bytes;
          options.onProgress?.({ url, bytes, total });
        }
      }
    } finally {
      await get.cancel();
    }
    options.onProgress?.({ url, bytes, total });
    if (options.size !== undefined && bytes !== options.size) {
      throw new DownloadError(
        url,
        `Cannot download "${url}": got ${bytes} bytes, the index says ${options.size}: retry; if it persists the mirror is out of step with its index`,
      );
    }
    const got = hash.digest("hex");
    if (options.sha256 !== undefined && got !== options.sha256.toLowerCase()) {
      throw new DownloadError(
        url,
        `Cannot verify "${url}": its SHA256 is "${got}", the index says "${options.sha256}": retry; if it persists the mirror or a proxy serves a different file`,
      );
    }
    file.close();
    await Deno.rename(tmp, dest);
    ok = true;
  } finally {
    if (!ok) {
      try {
        file.close();
      } catch { /* already closed */ }
      await Deno.remove(tmp).catch(() => {});
    }
  }
}
