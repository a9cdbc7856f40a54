/**
 * The sysctls experiments set, against the kernel they run on: a key a fresh
 * namespace of this kernel lacks is refused (naming the file and field)
 * unless the definition leaves it out there, and every value written at every
 * matrix point is listed, so that preflight can try each in a namespace and
 * a refused one is named with its field and point.
 * @module
 */
import { ExperimentDefinitionError } from "../base/errors.ts";
import { didYouMean } from "../base/suggest.ts";
import { unprobedKernel } from "./kernel.ts";
import { type HistoricalEntry, isHistoricalEntry } from "./load.ts";
import { planExperiment } from "./plan.ts";
import type { PlannedExperiment } from "./run_plan.ts";

/**
 * Checks every sysctl the experiments set against those a fresh namespace has.
 *
 * @throws {ExperimentDefinitionError} naming the file, host and key.
 */
export function checkSysctls(
  experiments: readonly (PlannedExperiment | HistoricalEntry)[],
  available: ReadonlySet<string>,
  options: { onError?: (err: ExperimentDefinitionError) => void; where?: string } = {},
): void {
  const report = options.onError ?? ((err: ExperimentDefinitionError) => {
    throw err;
  });
  const where = options.where ?? "a network namespace of this kernel";
  for (const entry of experiments) {
    if (isHistoricalEntry(entry)) continue;
    const { definition } = entry;
    const file = entry.file === undefined ? {} : { file: entry.file };
    const stepSysctls = (definition.timeline ?? []).flatMap((s, i) =>
      "sysctl" in s.do ? [{ host: s.do.sysctl.host, key: s.do.sysctl.name, i }] : []
    );
    for (const { key, i } of stepSysctls) {
      if (!available.has(key)) {
        report(
          new ExperimentDefinitionError(
            `timeline[${i}].do.sysctl.name`,
            `${where} has no sysctl "${key}"${didYouMean(key, available)}`,
            file,
          ),
        );
      }
    }
    // A sysctl given as a function may leave itself out where the kernel lacks it.
    const optional = (key: string) => !setOn(entry, available, key);
    for (const [host, h] of Object.entries(definition.hosts)) {
      for (const [key, value] of Object.entries(h.sysctls ?? {})) {
        if (!available.has(key) && !(typeof value === "function" && optional(key))) {
          report(
            new ExperimentDefinitionError(
              `hosts.${host}.sysctls.${key}`,
              `${where} has no sysctl "${key}"${
                didYouMean(key, available)
              } (only per-namespace net.* sysctls can be set)`,
              file,
            ),
          );
        }
      }
    }
  }
}

/**
 * Whether any matrix point sets `key` on a kernel whose fresh namespace has
 * only `available`: the experiment planned for such a kernel (a plan that
 * fails for lacking `key` sets it).
 */
function setOn(entry: PlannedExperiment, available: ReadonlySet<string>, key: string): boolean {
  const kernel = {
    ...unprobedKernel(),
    sysctls: Object.fromEntries([...available].map((k) => [k, ""])),
    probed: true,
  };
  try {
    const planned = planExperiment(entry.definition, {
      kernel,
      ...(entry.mode === "faithful" ? { faithful: true } : {}),
      ...(entry.overrides ? { set: entry.overrides } : {}),
    });
    return planned.plans.some((p) => p.hosts.some((h) => key in h.sysctls));
  } catch (err) {
    return err instanceof ExperimentDefinitionError && err.message.includes(`"${key}"`);
  }
}

/** Where a sysctl value is written: its definition field and matrix point. */
interface SysctlUse {
  entry: PlannedExperiment;
  field: string;
  params: Record<string, unknown>;
  key: string;
  value: string;
}

function sysctlUses(experiments: readonly (PlannedExperiment | HistoricalEntry)[]): SysctlUse[] {
  const uses: SysctlUse[] = [];
  for (const entry of experiments) {
    if (isHistoricalEntry(entry)) continue;
    const steps = entry.definition.timeline ?? [];
    for (const plan of entry.plans) {
      for (const h of plan.hosts) {
        for (const [key, value] of Object.entries(h.sysctls)) {
          uses.push({
            entry,
            field: `hosts.${h.name}.sysctls.${key}`,
            params: plan.params,
            key,
            value,
          });
        }
      }
      for (const step of plan.timeline) {
        if (step.action.kind !== "sysctl") continue;
        const i = steps.findIndex((s) => s.name === step.name);
        uses.push({
          entry,
          field: `timeline[${i}].do.sysctl.value`,
          params: plan.params,
          key: step.action.name,
          value: step.action.value,
        });
      }
    }
  }
  return uses;
}

/** Every sysctl value the experiments write, at every matrix point: `[key, value]`, once each. */
export function sysctlValues(
  experiments: readonly (PlannedExperiment | HistoricalEntry)[],
): [string, string][] {
  const pairs = new Map<string, [string, string]>();
  for (const u of sysctlUses(experiments)) pairs.set(`${u.key}=${u.value}`, [u.key, u.value]);
  return [...pairs.values()];
}

/**
 * Checks the values against what a namespace of this kernel refused when
 * they were tried (`problems`, keyed `<key>=<value>`, from preflight).
 *
 * @throws {ExperimentDefinitionError} for the first refused value, naming
 *   the file, the field and the matrix point.
 */
export function checkSysctlValues(
  experiments: readonly (PlannedExperiment | HistoricalEntry)[],
  problems: ReadonlyMap<string, string>,
): void {
  for (const u of sysctlUses(experiments)) {
    const problem = problems.get(`${u.key}=${u.value}`);
    if (problem === undefined) continue;
    const at = Object.keys(u.params).length ? ` (at ${JSON.stringify(u.params)})` : "";
    throw new ExperimentDefinitionError(
      u.field,
      `value "${u.value}" cannot be set in a network namespace of this kernel: ${problem}${at}`,
      u.entry.file === undefined ? {} : { file: u.entry.file },
    );
  }
}
