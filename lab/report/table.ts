/**
 * Tables, written one way: {@linkcode textTable} for the terminal (one width
 * policy: columns as wide as their content, the widest shrunk first, wrapped,
 * until the table fits) and {@linkcode markdownTable} for reports (one
 * escaping rule for cells).
 * @module
 */
import Table from "cli-table3";

/** A row of cells, or a heading that spans every column. */
export type TextRow = readonly string[] | { readonly group: string };

/** Options of {@linkcode textTable}. */
export interface TextTableOptions {
  /** Fit the table in this many columns (shrinking the widest column first); default: no limit. */
  width?: number;
}

const MIN_COLUMN = 8;

const displayWidth = (s: string) => Math.max(0, ...s.split("\n").map((l) => [...l].length));

/**
 * Column widths (one space of padding on each side included) that fit `width`,
 * shrinking the widest column first, never below 8 or a column's heading.
 */
export function fitWidths(
  head: readonly string[],
  rows: readonly TextRow[],
  width: number,
): number[] {
  const widths = head.map((h) => displayWidth(h) + 2);
  let span = 0;
  for (const r of rows) {
    if ("group" in r) span = Math.max(span, displayWidth(r.group) + 2);
    else r.forEach((cell, i) => widths[i] = Math.max(widths[i]!, displayWidth(cell) + 2));
  }
  const borders = head.length + 1;
  const floor = Math.max(width, span + borders);
  const min = head.map((h) => Math.max(MIN_COLUMN, displayWidth(h) + 2));
  while (widths.reduce((s, w) => s + w, 0) + borders > floor) {
    const widest = widths.indexOf(Math.max(...widths));
    if (widths[widest]! <= min[widest]!) break;
    widths[widest]!--;
  }
  // A heading spans every column and the borders between them.
  const spanned = widths.reduce((s, w) => s + w, 0) + head.length - 1;
  if (span > spanned) widths[widths.length - 1]! += span - spanned;
  return widths;
}

/** A terminal table: compact borders, wrapped cells, fitted to `options.width` when given. */
export function textTable(
  head: readonly string[],
  rows: readonly TextRow[],
  options: TextTableOptions = {},
): string {
  const table = new Table({
    head: [...head],
    ...(options.width === undefined
      ? {}
      : { colWidths: fitWidths(head, rows, options.width), wordWrap: true }),
    style: { head: [], border: [], compact: true },
  });
  for (const r of rows) {
    table.push("group" in r ? [{ colSpan: head.length, content: r.group }] : [...r]);
  }
  return table.toString();
}

/**
 * Makes text fit a Markdown table cell: pipes escaped (GitHub requires it
 * even inside code spans), line breaks as `<br>`, outer space trimmed.
 * Backslashes are left alone, so a command in a code span reads as typed.
 */
export function markdownCell(text: string | number): string {
  return String(text).replaceAll("|", "\\|").replace(/\r?\n/g, "<br>").trim();
}

/** A GitHub-flavoured Markdown pipe table. */
export function markdownTable(
  head: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  const line = (cells: readonly (string | number)[]) =>
    `| ${cells.map(markdownCell).join(" | ")} |`;
  return [line(head), `|${head.map(() => " --- ").join("|")}|`, ...rows.map(line)].join("\n");
}
