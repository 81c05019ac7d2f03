/**
 * File names for layer ids: characters a file name cannot safely hold become `_`, and ids that would then collide
 * (`d:1` and `d_1`) get `-2`, `-3`, … in the order given, so no layer's file overwrites another's.
 */
export function layerFileNames(ids: readonly string[]): Map<string, string> {
  const names = new Map<string, string>();
  const taken = new Set<string>();
  for (const id of ids) {
    const base = id.replace(/[^A-Za-z0-9._-]/g, '_') || '_';
    let name = base;
    for (let k = 2; taken.has(name.toLowerCase()); k++) name = `${base}-${k}`;
    // case-insensitive file systems: `A` and `a` are one file
    taken.add(name.toLowerCase());
    names.set(id, name);
  }
  return names;
}
