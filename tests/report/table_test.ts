/**
 * Unit tests of `lab/report/table.ts`: the one Markdown cell rule, the one
 * Markdown table shape, and the one terminal width policy.
 * @module
 */
import { deepStrictEqual as deepEqual, ok, strictEqual as equal } from "node:assert/strict";
import { fitWidths, markdownCell, markdownTable, textTable } from "../../lab/report/table.ts";

Deno.test("markdownCell() escapes pipes, leaves backslashes, and breaks lines with <br>", () => {
  const cases: [string | number, string][] = [
    ["plain", "plain"],
    [42, "42"],
    ["a|b", "a\\|b"],
    ["C:\\dir", "C:\\dir"],
    ["a\\|b", "a\\\\|b"],
    ["one\ntwo\r\nthree", "one<br>two<br>three"],
    ["  padded  ", "padded"],
  ];
  for (const [input, expected] of cases) equal(markdownCell(input), expected, String(input));
});

Deno.test("markdownTable() writes a header, a separator and one escaped row per row", () => {
  equal(
    markdownTable(["a", "b|c"], [["1", "x|y"], [2, "two\nlines"]]),
    "| a | b\\|c |\n| --- | --- |\n| 1 | x\\|y |\n| 2 | two<br>lines |",
  );
});

Deno.test("fitWidths() keeps natural widths when they fit and shrinks the widest column first", () => {
  const head = ["id", "text"];
  const rows = [["a", "x".repeat(50)], ["bb", "y"]];
  deepEqual(fitWidths(head, rows, 200), [4, 52]);
  const narrow = fitWidths(head, rows, 40);
  equal(narrow[0], 4, "the narrow column keeps its width");
  equal(
    narrow.reduce((s, w) => s + w, 0) + head.length + 1,
    40,
    `the widest shrank to fit: ${narrow}`,
  );
});

Deno.test("fitWidths() never shrinks a column below 8 or its heading", () => {
  const widths = fitWidths(["a long heading", "b"], [["x".repeat(30), "y".repeat(30)]], 10);
  ok(widths[0]! >= "a long heading".length + 2, String(widths));
  ok(widths[1]! >= 8, String(widths));
});

Deno.test("textTable() wraps to the width given and spans group headings over every column", () => {
  const text = textTable(["claim", "evidence"], [{ group: "experiment-one" }, [
    "A1.1",
    "word ".repeat(30).trim(),
  ]], { width: 60 });
  const lines = text.split("\n");
  ok(lines.every((l) => [...l].length <= 60), text);
  ok(lines.some((l) => l.includes("experiment-one")), text);
  ok(lines.filter((l) => l.includes("word")).length > 1, "the long cell wraps");
});
