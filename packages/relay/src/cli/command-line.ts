/**
 * How every georelay subcommand starts: its flags parsed strictly (no positionals), then `--help`
 * answered. What comes back is the flags, or the exit code to return at once: 2 once `usage` named
 * what was wrong, 0 once the help was printed.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util'

type Options = NonNullable<ParseArgsConfig['options']>
export type Flags<T extends Options> = ReturnType<typeof parseArgs<{ options: T }>>['values']

export const parseCommand = <T extends Options>(
  args: string[],
  options: T,
  help: string,
  usage: (message: string) => number,
): Flags<T> | number => {
  let values: Flags<T>
  try {
    values = parseArgs({ args, strict: true, allowPositionals: false, options }).values
  } catch (err) {
    return usage((err as Error).message)
  }
  if ((values as { help?: unknown }).help === true) {
    process.stdout.write(help)
    return 0
  }
  return values
}
