/**
 * Tests of `lab/base/format.ts` and `lab/base/values.ts`: how every report
 * writes times and parameters, and how values are quoted in messages.
 * @module
 */
import { equal } from "node:assert/strict";
import { paramsText, plural, seconds } from "../../lab/base/format.ts";
import { describeValue, isObject } from "../../lab/base/values.ts";

Deno.test("seconds() writes milliseconds as seconds with 2 decimals, or as many as asked", () => {
  equal(seconds(1234), "1.23 s");
  equal(seconds(1234, 1), "1.2 s");
  equal(seconds(0), "0.00 s");
});

Deno.test("paramsText() writes a matrix point as name=value pairs", () => {
  equal(paramsText({ backlog: 4, syncookies: 1 }), "backlog=4 syncookies=1");
  equal(paramsText({ a: true, b: "x" }, ", "), "a=true, b=x");
  equal(paramsText({}), "");
});

Deno.test("plural() picks the singular for one", () => {
  equal(plural(1, "run"), "1 run");
  equal(plural(2, "run"), "2 runs");
  equal(plural(0, "match", "matches"), "0 matches");
});

Deno.test("isObject() and describeValue() for messages about untyped values", () => {
  equal(isObject({}), true);
  equal(isObject([]), false);
  equal(isObject(null), false);
  equal(describeValue(undefined), "nothing");
  equal(describeValue("x"), '"x"');
  equal(describeValue(() => 1), "a function");
  equal(describeValue([1]), "an array");
  equal(describeValue({ a: 1 }), '{"a":1}');
  equal(describeValue(3), "3");
});
