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

/** Errors are red on a terminal, unless NO_COLOR is set. */
const useColor = () => !process.env.NO_COLOR && !!process.stderr.isTTY;

/** Writes an error as ctnet's one stderr line, "ctnet: message" (the prefix red on a terminal). */
export async function printError(err: unknown): Promise<void> {
  const message = String((err as Error)?.message ?? err).split("\n")[0];
  if (process.env.CTNET_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? err}\n`);
  const { default: chalk } = useColor() ? await import("chalk") : { default: null };
  process.stderr.write(`${chalk ? chalk.red("ctnet:") : "ctnet:"} ${message}\n`);
}
