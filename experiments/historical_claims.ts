/**
 * Claims about systems the lab cannot boot. Every other catalogue claim is
 * decided by an experiment on the running kernel.
 */
import { defineHistoricalClaims } from "../define.ts";

export default defineHistoricalClaims({
  id: "historical-claims",
  title: "Claims about kernels the lab cannot run",
  claims: {
    "A1.1":
      "Linux before 2.2 (1999) kept one queue for both kinds of connection; the lab runs on the running kernel only and cannot boot a 2.0 kernel, whose network stack also lacks the namespaces the lab needs. Since 2.2 the backlog bounds completed connections, as accept-queue-holds-backlog-plus-one shows here.",
  },
});
