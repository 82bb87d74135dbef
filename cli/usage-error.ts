/** Misuse of the CLI: reported as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
