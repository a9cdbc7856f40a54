/**
 * Parsing Debian's deb822 control format, the format of an archive's
 * `Packages` index: stanzas separated by blank lines, `Field: value` lines,
 * continuation lines starting with a space or tab.
 * @module
 */

/** One stanza: field names as written (case kept), values with continuation lines joined by `\n`. */
export type Deb822Stanza = Record<string, string>;

/**
 * Parses deb822 text into stanzas.
 *
 * @param text the whole text, e.g. an uncompressed `Packages` index.
 * @param keep when given, only stanzas for which it returns true are kept
 *   (cheap pre-filter on the raw stanza text, before fields are split).
 * @returns the stanzas in order.
 * @throws {SyntaxError} for a line that is neither a field nor a
 *   continuation, naming its line number.
 *
 * @example Two stanzas
 * ```ts
 * import { parseDeb822 } from "./deb822.ts";
 *
 * parseDeb822("Package: a\nVersion: 1\n\nPackage: b\nDescription: x\n more\n");
 * // [{ Package: "a", Version: "1" }, { Package: "b", Description: "x\nmore" }]
 * ```
 */
export function parseDeb822(
  text: string,
  keep?: (raw: string) => boolean,
): Deb822Stanza[] {
  const stanzas: Deb822Stanza[] = [];
  let line = 1;
  for (const raw of text.split(/\n[ \t]*\n/)) {
    const startLine = line;
    line += raw.split("\n").length + 1;
    if (raw.trim() === "" || (keep && !keep(raw))) continue;
    stanzas.push(parseStanza(raw, startLine));
  }
  return stanzas;
}

function parseStanza(raw: string, firstLine: number): Deb822Stanza {
  const stanza: Deb822Stanza = {};
  let last: string | undefined;
  for (const [i, l] of raw.split("\n").entries()) {
    if (l === "" || l.startsWith("#")) continue;
    if (l.startsWith(" ") || l.startsWith("\t")) {
      if (last === undefined) {
        throw new SyntaxError(
          `Cannot parse deb822 text: line ${firstLine + i} continues no field: "${l}"`,
        );
      }
      const cont = l.trim();
      stanza[last] += `\n${cont === "." ? "" : cont}`;
      continue;
    }
    const colon = l.indexOf(":");
    if (colon <= 0) {
      throw new SyntaxError(
        `Cannot parse deb822 text: line ${firstLine + i} is not "Field: value": "${l}"`,
      );
    }
    last = l.slice(0, colon);
    stanza[last] = l.slice(colon + 1).trim();
  }
  return stanza;
}
