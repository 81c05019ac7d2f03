import { fail } from '../errors';

/** Minimal GNU-style option parsing: `--name value`, `--name=value`, and boolean flags. */
export function parseArgs(argv: string[], flags: readonly string[], options: readonly string[]): { positional: string[]; opts: Map<string, string> } {
  const positional: string[] = [];
  const opts = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq > 0 ? eq : undefined);
    if (flags.includes(name)) {
      opts.set(name, 'true');
    } else if (options.includes(name)) {
      const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) fail('BAD_ARGUMENT', `--${name} needs a value`);
      opts.set(name, value);
    } else {
      fail('BAD_ARGUMENT', `unknown option --${name}`);
    }
  }
  return { positional, opts };
}

export function num(opts: Map<string, string>, name: string): number | undefined {
  const v = opts.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) fail('BAD_ARGUMENT', `--${name} must be a number, not "${v}"`);
  return n;
}

export function numList(opts: Map<string, string>, name: string): number[] | undefined {
  const v = opts.get(name);
  if (v === undefined) return undefined;
  const list = v.split(',').map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isFinite(n))) fail('BAD_ARGUMENT', `--${name} must be comma-separated numbers, not "${v}"`);
  return list;
}
