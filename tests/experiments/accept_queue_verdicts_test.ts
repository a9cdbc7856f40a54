import { match, strictEqual as equal } from "node:assert/strict";
import {
  acceptQueueLengthVerdict,
  refusedOrRetriedVerdict,
} from "../../experiments/_accept_queue_verdicts.ts";

const row = (backlog: number, somaxconn: number, sendQ: number, held: number) => ({
  backlog,
  somaxconn,
  sendQ,
  held,
});

Deno.test("acceptQueueLengthVerdict() follows the numbers, not a fixed answer", () => {
  equal(
    acceptQueueLengthVerdict([row(2, 128, 2, 2), row(200, 128, 128, 128)], "128").verdict,
    "reproduced",
  );
  equal(acceptQueueLengthVerdict([row(2, 4096, 2, 3)], "4096").verdict, "partly");
  equal(acceptQueueLengthVerdict([row(2, 128, 2, 2)], "4096").verdict, "partly");
  equal(
    acceptQueueLengthVerdict([row(2, 8, 8, 9)], "4096").verdict,
    "not reproduced",
    "Send-Q is not the min",
  );
  equal(
    acceptQueueLengthVerdict([row(2, 8, 2, 7)], "4096").verdict,
    "not reproduced",
    "held neither limit nor limit + 1",
  );
  match(
    acceptQueueLengthVerdict([row(100, 8, 8, 9)], "4096").evidence,
    /min\(100, 8\) → Send-Q 8, held 9.*4096/,
  );
});

Deno.test("refusedOrRetriedVerdict(): one alternative seen is partly, both reproduced, neither not", () => {
  equal(refusedOrRetriedVerdict(0, 34), "partly");
  equal(refusedOrRetriedVerdict(3, 0), "partly");
  equal(refusedOrRetriedVerdict(3, 34), "reproduced");
  equal(refusedOrRetriedVerdict(0, 0), "not reproduced");
});
