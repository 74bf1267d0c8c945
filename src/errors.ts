// Two kinds of failure, two exit codes: bad input (2, nothing was changed) and a failed operation (1).

/** The user asked for something invalid; raised before any step runs. Exit code 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
}

/** Something failed while talking to the kernel or the store. Exit code 1. */
export class OpError extends Error {
  readonly exitCode = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError || err instanceof OpError) return err.exitCode;
  return 1;
}
