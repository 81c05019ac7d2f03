/**
 * Class names a model file carries in its metadata (ONNX `metadata_props`): a JSON list of names, an object from
 * class index to name, or the Python dict Ultralytics writes (`{0: 'person', 1: 'bicycle'}`), under one of the keys
 * exporters and users put them under.
 */

/** the keys looked at, in this order */
export const CLASS_NAME_KEYS = ['classes', 'class_names', 'labels', 'names'] as const;

/** The class names in the metadata, and the key they were under; undefined when no key holds a list of names. */
export function classNamesFromMetadata(
  meta: Readonly<Record<string, string>>,
): { names: string[]; key: string } | undefined {
  for (const key of CLASS_NAME_KEYS) {
    const value = meta[key];
    const names = value === undefined ? undefined : (fromJson(value) ?? fromPythonDict(value));
    if (names?.length) return { names, key };
  }
  return undefined;
}

function fromJson(text: string): string[] | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (Array.isArray(json)) return json.every((n) => typeof n === 'string') ? json : undefined;
  if (json && typeof json === 'object')
    return byIndex(Object.entries(json).map(([k, v]) => [k, typeof v === 'string' ? v : undefined]));
  return undefined;
}

/** `{0: 'person', 1: "bicycle"}`: integer keys, quoted names (with backslash escapes) */
function fromPythonDict(text: string): string[] | undefined {
  const body = text.trim();
  if (!body.startsWith('{') || !body.endsWith('}')) return undefined;
  const entry = /\s*(\d+)\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*(,|$)/y;
  const inner = body.slice(1, -1);
  const entries: [string, string][] = [];
  entry.lastIndex = 0;
  while (entry.lastIndex < inner.length) {
    const m = entry.exec(inner);
    if (!m) return undefined;
    entries.push([m[1], (m[2] ?? m[3]).replace(/\\(.)/g, '$1')]);
    if (!m[4]) break;
  }
  return byIndex(entries);
}

/** Names by class index 0…n−1, each index once; anything else is no list of names. */
function byIndex(entries: [string, string | undefined][]): string[] | undefined {
  const names: string[] = [];
  for (const [k, v] of entries) {
    if (!/^\d+$/.test(k) || v === undefined) return undefined;
    names[Number(k)] = v;
  }
  if (names.length !== entries.length) return undefined;
  return names;
}
