import { strictEqual as equal } from "node:assert/strict";
import { readProcTable } from "../lab/observe/sampler.ts";
import { countStates, parseProcNetTcp } from "../lab/observe/socket_table.ts";

Deno.test("readProcTable() reads a table larger than its first buffer whole", async () => {
  const row = Deno.readTextFileSync(
    new URL("./testdata/proc_net_tcp_server_backlog2.txt", import.meta.url),
  )
    .split("\n")[1]!;
  const header = "  sl  local_address rem_address   st tx_queue rx_queue\n";
  const rows = 20_000; // about 3 MB: three buffer doublings
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, header + `${row}\n`.repeat(rows));
    const text = await readProcTable(path);
    equal(text.length, header.length + (row.length + 1) * rows);
    equal(countStates(parseProcNetTcp(text), 8080).LISTEN, rows);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("readProcTable() reads a real /proc table", async () => {
  const text = await readProcTable("/proc/self/net/tcp");
  equal(text.split("\n")[0]!.trim().startsWith("sl"), true);
});
