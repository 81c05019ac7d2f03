import { parseArgs as parseNodeArgs } from 'node:util';
import { fail } from '../errors';

/**
 * GNU-style options (`--name value`, `--name=value`, boolean flags) by Node's own `util.parseArgs`, its errors
 * turned into one line naming the option.
 */
export function parseArgs(
  argv: string[],
  flags: readonly string[],
  options: readonly string[],
): { positional: string[]; opts: Map<string, string> } {
  const spec = Object.fromEntries([
    ...flags.map((f) => [f, { type: 'boolean' as const }]),
    ...options.map((o) => [o, { type: 'string' as const }]),
  ]);
  try {
    const args = negativeValuesJoined(argv, options);
    const { values, positionals } = parseNodeArgs({ args, options: spec, allowPositionals: true, strict: true });
    return { positional: positionals, opts: new Map(Object.entries(values).map(([k, v]) => [k, String(v)])) };
  } catch (e) {
    const { code, message } = e as { code?: string; message: string };
    const name = /'(-[^' ]+)/.exec(message)?.[1] ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')
      fail(
        'BAD_ARGUMENT',
        `unknown option ${name} (options: ${[...flags, ...options].map((o) => `--${o}`).join(', ')})`,
      );
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE')
      fail('BAD_ARGUMENT', `${name} needs a value (one that starts with a dash as ${name}=VALUE)`);
    return fail('BAD_ARGUMENT', message);
  }
}

/**
 * `--low -2.1` as `--low=-2.1`: Node's parser takes a value that starts with a dash for a missing one, but no option
 * starts with a digit, and ZBox's lower bound, a mean or a class weight is often negative.
 */
function negativeValuesJoined(argv: string[], options: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const [arg, next] = [argv[i], argv[i + 1]];
    // after `--` everything is positional
    if (arg === '--') return [...out, ...argv.slice(i)];
    const takesValue = arg.startsWith('--') && options.includes(arg.slice(2));
    if (takesValue && next !== undefined && /^-\.?\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** A decimal number as a user writes one (not '', not 0x3, not Infinity). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function decimal(text: string): number | undefined {
  const t = text.trim();
  return DECIMAL.test(t) ? Number(t) : undefined;
}

export function num(opts: Map<string, string>, name: string): number | undefined {
  const v = opts.get(name);
  if (v === undefined) return undefined;
  return decimal(v) ?? fail('BAD_ARGUMENT', `--${name} must be a number, not "${v}"`);
}

export function numList(opts: Map<string, string>, name: string): number[] | undefined {
  const v = opts.get(name);
  if (v === undefined) return undefined;
  const list = v.split(',').map(decimal);
  if (list.some((n) => n === undefined)) fail('BAD_ARGUMENT', `--${name} must be comma-separated numbers, not "${v}"`);
  return list as number[];
}
