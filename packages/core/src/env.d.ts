/**
 * The few platform globals core uses that exist alike in browsers, web workers and Node (>= 18), declared
 * here because core compiles without DOM or Node type libraries so that neither can creep in.
 * Root typechecking (with Node's types) excludes this file.
 */
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: ArrayBufferView | ArrayBuffer): string;
}
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
interface AbortSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  throwIfAborted(): void;
}
