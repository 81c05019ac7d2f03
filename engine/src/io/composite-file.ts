import { type CompositeFile, formatProblem, parseCompositeFile } from '../../../protocol/composite-file';
import { fail } from '../errors';
import { FILE_LIMITS, readRegularFile } from './files';

/**
 * Reads a composite file (protocol/composite-file.ts). A malformed one is refused with its first problem as
 * "FILE:LINE:COLUMN: message", the message the editor shows in the Problems panel.
 */
export async function readCompositeFile(file: string): Promise<CompositeFile> {
  const text = (await readRegularFile(file, FILE_LIMITS.composite, `composite file ${file}`)).toString('utf8');
  const parsed = parseCompositeFile(text);
  if (parsed.ok) return parsed.file;
  const [first, ...more] = parsed.problems;
  const others = more.length ? ` (and ${more.length} more problem${more.length > 1 ? 's' : ''})` : '';
  return fail('BAD_ARGUMENT', `${formatProblem(file, first)}${others}`);
}
