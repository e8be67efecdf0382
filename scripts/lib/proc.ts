import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU and process lookups from Linux's /proc, for the benchmarks that report what each process on
 * the machine used (the servers, PostgreSQL backends, NATS, Redis, the load generator).
 */

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** user + system CPU (ms) a process has used so far; null when it is gone or there is no /proc. */
export function processCpuMs(pid: number): number | null {
  try {
    // The fields after the command name (which may hold spaces and ')'): utime is the 12th, stime the 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** The CPU (ms) of several processes summed; those gone (or not local) count 0. */
export function cpuMsOf(pids: Iterable<number>): number {
  let ms = 0;
  for (const pid of pids) ms += processCpuMs(pid) ?? 0;
  return ms;
}

/** Pids of the processes whose command name is one of `names` (/proc/<pid>/comm). */
export function pidsNamed(...names: string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (names.includes(readFileSync(`/proc/${entry}/comm`, 'utf8').trim())) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}
