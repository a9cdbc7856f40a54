import { equal, ok } from "node:assert/strict";
import { inputQueueDropsTotal } from "../../lab/observe/machine.ts";

Deno.test("inputQueueDropsTotal() sums the dropped column of softnet_stat over the CPUs", () => {
  const text =
    "0031c4af 00001011 00000005 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n" +
    "002f771f 000005d6 00000003 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000\n";
  equal(inputQueueDropsTotal(text), 0x1011 + 0x5d6);
  equal(inputQueueDropsTotal(""), 0);
  if (Deno.build.os === "linux") ok(inputQueueDropsTotal() >= 0);
});
