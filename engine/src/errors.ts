import { z } from 'zod';

/** Error kinds a user can act on; the server maps each to a JSON-RPC error code. */
export type EngineErrorCode =
  | 'FILE_NOT_FOUND'
  | 'NOT_A_MODEL'
  | 'UNSUPPORTED_OP'
  | 'SHAPE_MISMATCH'
  | 'BAD_INPUT'
  | 'BAD_ARGUMENT'
  | 'UNKNOWN_LAYER'
  | 'CANCELLED'
  | 'OUT_OF_MEMORY';

export class EngineError extends Error {
  constructor(
    readonly code: EngineErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

/** `value` checked against a protocol schema; a BAD_ARGUMENT error names what is wrong, for `what`. */
export function parseArgument<S extends z.ZodType>(what: string, schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) fail('BAD_ARGUMENT', `${what}: ${z.prettifyError(result.error).replace(/\n\s*/g, ' ')}`);
  return result.data;
}

export function fail(code: EngineErrorCode, message: string): never {
  throw new EngineError(code, message);
}
