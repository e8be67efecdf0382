import { ConfigError, parseConfig } from './config.js';

/** The ConfigError parseConfig throws for `env` (tests); fails when it accepts it. */
export function configErrorOf(env: Record<string, string>): ConfigError {
  try {
    parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`parseConfig accepted ${JSON.stringify(env)}`);
}
