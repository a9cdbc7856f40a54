/**
 * The lab's time scale: how many times slower this machine runs the lab's
 * own work (starting processes, event loops) than the machine that started
 * it. Outside a VM it is 1. Inside an emulated `--kernel` guest (QEMU's TCG,
 * 20 to 90 times slower) the lab stretches its own deadlines by it: command
 * timeouts, program start-up, observation windows. Kernel timers are never
 * stretched: a SYN-ACK is still resent after 1 s of the guest's clock.
 *
 * The VM runner measures {@linkcode measureSpeedMs} on the host and passes it
 * to the guest as `$BACKLOG_LAB_SPEED_REFERENCE`; the guest's lab measures the
 * same work once ({@linkcode calibrateTimeScale}) and divides.
 * `$BACKLOG_LAB_TIME_SCALE` sets the scale directly.
 * @module
 */

/** The environment variable holding the host's {@linkcode measureSpeedMs}, for a guest. */
export const SPEED_REFERENCE_ENV = "BACKLOG_LAB_SPEED_REFERENCE";
/** The environment variable that sets the time scale directly. */
export const TIME_SCALE_ENV = "BACKLOG_LAB_TIME_SCALE";
/** The largest scale taken: beyond it the machine is too slow for the lab's deadlines to mean much. */
export const MAX_TIME_SCALE = 100;

let scale: number | undefined;

/**
 * The current time scale (≥ 1): `$BACKLOG_LAB_TIME_SCALE` if set, else what
 * {@linkcode calibrateTimeScale} measured, else 1.
 */
export function timeScale(): number {
  if (scale !== undefined) return scale;
  const env = Number(Deno.env.get(TIME_SCALE_ENV));
  return Number.isFinite(env) && env >= 1 ? Math.min(env, MAX_TIME_SCALE) : 1;
}

/** `ms` stretched by the time scale, rounded. */
export function scaled(ms: number): number {
  return Math.round(ms * timeScale());
}

/**
 * Milliseconds this machine takes for a fixed piece of the lab's kind of
 * work: the median of 7 rounds of starting and reaping `sh -c :` three times.
 * (Starting processes is what an emulator slows most, and what the lab does
 * most: `ip`, `nft`, its programs.)
 */
export async function measureSpeedMs(): Promise<number> {
  const rounds: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    for (let j = 0; j < 3; j++) {
      await new Deno.Command("sh", { args: ["-c", ":"], stdout: "null", stderr: "null" })
        .output();
    }
    rounds.push(performance.now() - t0);
  }
  rounds.sort((a, b) => a - b);
  return Math.round(rounds[3]! * 100) / 100;
}

/**
 * Measures the time scale once, when `$BACKLOG_LAB_SPEED_REFERENCE` holds the
 * starting machine's {@linkcode measureSpeedMs} (a VM runner sets it), and
 * keeps it for {@linkcode timeScale}. Without it (or with
 * `$BACKLOG_LAB_TIME_SCALE` set) it measures nothing.
 *
 * @returns the time scale now in force.
 */
export async function calibrateTimeScale(): Promise<number> {
  if (scale !== undefined || Deno.env.get(TIME_SCALE_ENV) !== undefined) return timeScale();
  const reference = Number(Deno.env.get(SPEED_REFERENCE_ENV));
  if (!Number.isFinite(reference) || reference <= 0) return timeScale();
  const here = await measureSpeedMs();
  scale = Math.min(MAX_TIME_SCALE, Math.max(1, Math.round((here / reference) * 10) / 10));
  return scale;
}
