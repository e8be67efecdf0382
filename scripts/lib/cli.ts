import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * Small helpers shared by the operator CLIs (scripts/replay.ts, scripts/projections.ts).
 * Exit codes: 0 done, 1 failed (not found, database, lock), 2 bad arguments. Errors are one clear
 * line on stderr, never a stack trace.
 */

export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Bad arguments: printed with the usage hint, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A failure the user can act on (not found, database locked...): printed as is, exit code 1. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs in strict mode, with its errors turned into UsageErrors. */
export function parseCommandLine<O extends Options>(argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // parseArgs explains over several lines; keep it to one.
    throw new UsageError(message.replace(/\. To specify a positional argument starting with a '-'.*$/s, '').replace(/\s*\n\s*/g, ' ').replace(/\.$/, ''));
  }
}

/** A non-negative (or positive) integer option, or a UsageError naming the option. */
export function integerOption(name: string, raw: string, min = 0): number {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** An ISO 8601 date or date-time option (a date alone is midnight UTC), as epoch milliseconds. */
export function instantOption(name: string, raw: string): number {
  const ms = ISO.test(raw.trim()) ? Date.parse(raw.trim()) : Number.NaN;
  if (Number.isNaN(ms)) throw new UsageError(`--${name} must be an ISO 8601 date or date-time (e.g. 2026-01-31 or 2026-01-31T12:00:00Z), got ${JSON.stringify(raw)}`);
  return ms;
}

/**
 * Runs a CLI's main function: prints UsageError / CliError / ConfigError-like messages as one line
 * and sets the exit code; anything else is unexpected and printed with its message only.
 */
export async function runCli(tool: string, usage: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${tool}: ${error.message}\n${usage}`);
      process.exitCode = EXIT_USAGE;
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${tool}: ${message}\n`);
    process.exitCode = EXIT_FAILED;
  }
}
