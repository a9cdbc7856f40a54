/**
 * A run that a test kills with SIGKILL: it makes a run record under the root
 * given, records and creates what it is asked to, prints `ready <run id>`
 * and waits to be killed.
 *
 * Usage: `deno run -A tests/_dead_run.ts <root> [netns=<name>] [process=<token>] [path=<file>]`
 * - `netns=<name>`: a namespace with a `sleep 600` inside it;
 * - `process=<token>`: a `sleep` outside any namespace, recorded with its token;
 * - `path=<file>`: a file outside the run directory, and one in its `tmp/`.
 * @module
 */
import { RunRecord } from "../lab/base/run_record.ts";

const [root, ...asks] = Deno.args;
const record = await RunRecord.create({ root: root! });
for (const ask of asks) {
  const [kind, value = ""] = ask.split("=");
  if (kind === "netns") {
    await record.addNamespace(value);
    await new Deno.Command("ip", { args: ["netns", "add", value] }).output();
    new Deno.Command("ip", {
      args: ["netns", "exec", value, "sleep", "600"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  } else if (kind === "process") {
    const child = new Deno.Command("sleep", {
      args: ["601"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    await record.addProcess(child.pid, value);
    console.log(`process ${child.pid}`);
  } else if (kind === "path") {
    await record.addPath(value);
    await Deno.writeTextFile(value, "temp");
    await Deno.writeTextFile(record.tempPath("capture.pcap"), "temp");
  }
}
console.log(`ready ${record.id}`);
await new Promise(() => {});
