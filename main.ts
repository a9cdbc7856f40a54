/**
 * The lab's command line: `deno task lab --help`.
 * @module
 */
import { main } from "./lab/cli.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
