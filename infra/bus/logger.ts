/** The logging surface the bus and the relay use; a pino logger (or a child of one) satisfies it. */
export type BusLogger = {
  debug?(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
};

export const silentLogger: BusLogger = Object.freeze({
  info() {},
  warn() {},
  error() {},
});
