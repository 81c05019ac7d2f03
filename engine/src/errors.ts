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

export function fail(code: EngineErrorCode, message: string): never {
  throw new EngineError(code, message);
}
