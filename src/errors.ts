/**
 * Loupe's errors: one base class, a stable code on each, and the CLI's exit
 * status each code maps to (undici's errors module is the model). A thrown
 * error that is not a LoupeError is a bug: exit 1, with its stack.
 */

/** Exit statuses of the CLI (the usage text says them). */
export const EXIT_STATUS = {
  /** A bug: an error Loupe did not expect. */
  internal: 1,
  /** Bad input: a file, an argument, a configuration. */
  input: 2,
  /** The live agent cannot run on this machine (privileges, a kernel feature). */
  live: 3,
  /** A scenario's expectations do not hold, or `diff --check` found a change. */
  expectation: 4,
} as const;

/** Each code and the kind of failure it is. */
export const ERROR_KINDS = {
  LOUPE_USAGE: 'input',
  LOUPE_CAPTURE: 'input',
  LOUPE_RECORD: 'input',
  LOUPE_OUTPUT: 'input',
  LOUPE_CONFIG: 'input',
  LOUPE_EXPORT_CONFIG: 'input',
  LOUPE_SAMPLER_CONFIG: 'input',
  LOUPE_PROTO: 'input',
  LOUPE_SCENARIO: 'input',
  LOUPE_ELF: 'input',
  LOUPE_HPACK: 'input',
  LOUPE_LIVE: 'live',
  LOUPE_HOST: 'live',
} as const satisfies Record<string, keyof typeof EXIT_STATUS>;

export type ErrorCode = keyof typeof ERROR_KINDS;

export class LoupeError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }

  get exitStatus(): number {
    return EXIT_STATUS[ERROR_KINDS[this.code]];
  }
}
