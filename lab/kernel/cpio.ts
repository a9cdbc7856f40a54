/**
 * The "newc" cpio format the kernel unpacks as an initramfs, written and
 * read in TypeScript: it is simple (a fixed ASCII header per entry, 4-byte
 * alignment), needs no root for device nodes, and needs no `cpio` tool.
 * @module
 */

/** One archive entry. */
export interface CpioEntry {
  /** The path inside the archive, without a leading `/`, e.g. `bin/busybox`. */
  name: string;
  /** The type and permission bits, e.g. `0o100755` (file), `0o040755` (dir), `0o020600` (char device). */
  mode: number;
  /** A file's contents, or a symlink's target. */
  data?: Uint8Array;
  /** A device node's major and minor numbers. */
  rdev?: { major: number; minor: number };
}

/** Type bits of {@linkcode CpioEntry.mode}. */
export const S_IFDIR = 0o040000;
/** A regular file. */
export const S_IFREG = 0o100000;
/** A symbolic link. */
export const S_IFLNK = 0o120000;
/** A character device. */
export const S_IFCHR = 0o020000;

const MAGIC = "070701";
const TRAILER = "TRAILER!!!";

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/**
 * Writes entries as a newc archive (uncompressed), in the order given (a
 * directory must come before what it holds), ending with the trailer. All
 * entries are owned by root with mtime 0, so the same input gives the same
 * bytes.
 *
 * @throws {RangeError} for an absolute or empty name.
 */
export function writeNewc(entries: readonly CpioEntry[]): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  let size = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    size += b.length;
    const pad = (4 - (size % 4)) % 4;
    if (pad) {
      parts.push(new Uint8Array(pad));
      size += pad;
    }
  };
  let ino = 1;
  const all: CpioEntry[] = [...entries, { name: TRAILER, mode: 0 }];
  for (const e of all) {
    if (e.name === "" || e.name.startsWith("/")) {
      throw new RangeError(
        `Cannot write cpio entry "${e.name}": names must be relative and not empty`,
      );
    }
    const data = e.data ?? new Uint8Array();
    const name = enc.encode(e.name + "\0");
    const isTrailer = e.name === TRAILER;
    const fields = [
      isTrailer ? 0 : ino++, // ino
      e.mode,
      0, // uid
      0, // gid
      (e.mode & 0o170000) === S_IFDIR ? 2 : 1, // nlink
      0, // mtime
      data.length,
      0, // devmajor
      0, // devminor
      e.rdev?.major ?? 0,
      e.rdev?.minor ?? 0,
      name.length,
      0, // check
    ];
    const header = enc.encode(MAGIC + fields.map(hex8).join(""));
    const head = new Uint8Array(header.length + name.length);
    head.set(header);
    head.set(name, header.length);
    push(head);
    if (data.length) push(data);
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Reads a newc archive (uncompressed) back into entries, without the trailer.
 *
 * @throws {SyntaxError} for a bad magic or a truncated archive, with the offset.
 */
export function readNewc(bytes: Uint8Array): CpioEntry[] {
  const dec = new TextDecoder();
  const entries: CpioEntry[] = [];
  let o = 0;
  const align = () => {
    o = (o + 3) & ~3;
  };
  while (o < bytes.length) {
    if (o + 110 > bytes.length) {
      throw new SyntaxError(`Cannot read cpio archive: truncated header at offset ${o}`);
    }
    const header = dec.decode(bytes.subarray(o, o + 110));
    if (!header.startsWith(MAGIC)) {
      throw new SyntaxError(
        `Cannot read cpio archive: bad magic "${header.slice(0, 6)}" at offset ${o}`,
      );
    }
    const f = (i: number) => parseInt(header.slice(6 + i * 8, 14 + i * 8), 16);
    const mode = f(1);
    const fileSize = f(6);
    const rdev = { major: f(9), minor: f(10) };
    const nameSize = f(11);
    o += 110;
    const name = dec.decode(bytes.subarray(o, o + nameSize - 1));
    o += nameSize;
    align();
    if (name === TRAILER) break;
    if (o + fileSize > bytes.length) {
      throw new SyntaxError(`Cannot read cpio archive: "${name}" is truncated at offset ${o}`);
    }
    const data = bytes.slice(o, o + fileSize);
    o += fileSize;
    align();
    const entry: CpioEntry = { name, mode };
    if (fileSize) entry.data = data;
    if ((mode & 0o170000) === S_IFCHR) entry.rdev = rdev;
    entries.push(entry);
  }
  return entries;
}

/** Gzips bytes (the kernel unpacks a gzip-compressed initramfs). */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Gunzips bytes. */
export async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
