/**
 * WebAssembly codecs (OpenJPEG, OpenJPH for HTJ2K, CharLS, libjpeg-turbo 8-bit), each loaded by dynamic
 * import the first time a frame needs it. In Node the emscripten builds find their .wasm next to their
 * script; a browser bundle that moves the .wasm files passes `locateFile` through configureDicomCodecs.
 */
import { FormatError } from '../../errors.js';
import { errorText } from './parse.js';

/** The codecs a runner may take over, and the decoder class each module exports. */
export type CodecKind = 'openjpeg' | 'openjph' | 'charls' | 'libjpeg';

/**
 * Decodes one frame elsewhere (e.g. a worker thread), exactly as `run` below does: a new decoder per
 * frame, OpenJPH's failure reported through getLastErrorMessage / getIsHeaderValid, the pixels copied out.
 * It rejects with an Error whose message says what failed; the caller turns that into a FormatError.
 */
export type CodecRunner = (kind: CodecKind, decoderClass: string, data: Uint8Array) => Promise<CodecFrame>;

export interface DicomCodecConfig {
  /** Emscripten's locateFile(fileName, scriptDirectory): where to fetch e.g. 'openjpegwasm_decode.wasm'. */
  locateFile?: (fileName: string, scriptDirectory: string) => string;
  /**
   * Where JPEG 2000 and HTJ2K frames are decoded instead of this thread (the node package's worker pool),
   * so that a series' frames decode in parallel; with `concurrency`, how many frames to keep in flight.
   */
  runner?: CodecRunner;
  /** Kinds the runner takes (default JPEG 2000 and HTJ2K). */
  runnerKinds?: readonly CodecKind[];
  /** Frames a series reader keeps decoding at once through the runner (default 1: one after another). */
  concurrency?: number;
}

let config: DicomCodecConfig = {};

/** Set how the WASM codecs find their binaries; call before the first compressed frame is decoded. */
export function configureDicomCodecs(next: DicomCodecConfig): void {
  config = { ...next };
  cache.clear();
}

/** How many encapsulated frames a reader should keep in flight (1 without a runner). */
export function codecConcurrency(): number {
  return config.runner ? Math.max(1, Math.floor(config.concurrency ?? 1)) : 1;
}

/** A decoded frame from a codec: samples row by row (pixel-interleaved for several components). */
export interface CodecFrame {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned?: boolean;
  /** A copy (the codec's buffer lives in WASM memory and is reused). */
  data: Uint8Array;
}

interface EmscriptenDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned?: boolean };
  /** OpenJPH only: decode() does not throw on a bad stream, it reports the failure through these two. */
  getIsHeaderValid?(): boolean;
  getLastErrorMessage?(): string;
  delete(): void;
}

interface CodecModule {
  [decoderClass: string]: new () => EmscriptenDecoder;
}

const cache = new Map<string, Promise<CodecModule>>();
/** The last lines a codec printed to stderr, for error messages. */
let lastCodecMessages: string[] = [];

function emscriptenOptions(): object {
  const remember = (text: string) => {
    lastCodecMessages.push(String(text));
    if (lastCodecMessages.length > 4) lastCodecMessages.shift();
  };
  return { ...(config.locateFile ? { locateFile: config.locateFile } : {}), print: remember, printErr: remember };
}

type Factory = (options?: object) => Promise<unknown>;

function factoryOf(mod: unknown): Factory {
  const m = mod as { default?: unknown };
  const f = typeof m === 'function' ? m : m.default;
  const g = f && typeof f === 'object' && 'default' in f ? f.default : f;
  if (typeof g !== 'function') throw new Error('codec module has no factory');
  return g as Factory;
}

function load(key: string, importer: () => Promise<unknown>, what: string): Promise<CodecModule> {
  let p = cache.get(key);
  if (!p) {
    p = importer()
      .then((m) => factoryOf(m)(emscriptenOptions()))
      .then((m) => m as CodecModule);
    cache.set(key, p);
    // A failed load is not cached, so a later call (after configureDicomCodecs) can retry.
    p.catch(() => cache.delete(key));
  }
  return p.catch((e: unknown) => {
    throw new FormatError(`the ${what} decoder could not be loaded: ${errorText(e)}`);
  });
}

const loaders = {
  openjpeg: () => load('openjpeg', () => import('@cornerstonejs/codec-openjpeg/decodewasmjs'), 'JPEG 2000 (OpenJPEG)'),
  openjph: () => load('openjph', () => import('@cornerstonejs/codec-openjph/wasmjs'), 'HTJ2K (OpenJPH)'),
  charls: () => load('charls', () => import('@cornerstonejs/codec-charls/decodewasmjs'), 'JPEG-LS (CharLS)'),
  libjpeg: () =>
    load('libjpeg', () => import('@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs'), 'JPEG (libjpeg-turbo)'),
};

async function run(
  kind: keyof typeof loaders,
  className: string,
  data: Uint8Array,
  source: string,
  what: string,
): Promise<CodecFrame> {
  const runner = config.runner;
  if (runner && (config.runnerKinds ?? ['openjpeg', 'openjph']).includes(kind)) {
    try {
      return await runner(kind, className, data);
    } catch (e) {
      throw new FormatError(`${what} data cannot be decoded: ${errorText(e)}`, source);
    }
  }
  const mod = await loaders[kind]();
  const Decoder = mod[className];
  // A new decoder per frame, on purpose: a kept one reports the previous frame's size and pixels when
  // a stream fails to decode (OpenJPEG does not throw then), which no size check can catch; and a new
  // one costs well under 1 ms beside a ~45 ms 512 x 512 decode (measured; see the DICOM benchmark).
  const decoder = new Decoder();
  lastCodecMessages = [];
  try {
    decoder.getEncodedBuffer(data.length).set(data);
    decoder.decode();
    const failure = decoder.getLastErrorMessage?.();
    if (failure || decoder.getIsHeaderValid?.() === false) throw new Error(failure || 'the header is not valid');
    const info = decoder.getFrameInfo();
    const decoded = decoder.getDecodedBuffer();
    return {
      width: info.width,
      height: info.height,
      bitsPerSample: info.bitsPerSample,
      componentCount: info.componentCount,
      isSigned: info.isSigned,
      data: decoded.slice(),
    };
  } catch (e) {
    const detail = lastCodecMessages.length ? ` (${lastCodecMessages.join('; ')})` : '';
    throw new FormatError(`${what} data cannot be decoded: ${errorText(e)}${detail}`, source);
  } finally {
    decoder.delete();
  }
}

export function decodeJpeg2000(data: Uint8Array, source: string): Promise<CodecFrame> {
  return run('openjpeg', 'J2KDecoder', data, source, 'JPEG 2000');
}

/** HTJ2K (JPEG 2000 part 15) with OpenJPH, as the Cornerstone stack decodes it. */
export function decodeHtj2k(data: Uint8Array, source: string): Promise<CodecFrame> {
  return run('openjph', 'HTJ2KDecoder', data, source, 'HTJ2K');
}

export function decodeJpegLs(data: Uint8Array, source: string): Promise<CodecFrame> {
  return run('charls', 'JpegLSDecoder', data, source, 'JPEG-LS');
}

export function decodeJpeg8(data: Uint8Array, source: string): Promise<CodecFrame> {
  return run('libjpeg', 'JPEGDecoder', data, source, 'JPEG');
}

export interface J2kHeader {
  width: number;
  height: number;
  components: number;
  bitDepth: number;
  signed: boolean;
}

/** Reads the SIZ marker of a JPEG 2000 code stream (or of the code stream inside a JP2 file). */
export function readJ2kHeader(data: Uint8Array): J2kHeader | undefined {
  let p = -1;
  const searchEnd = Math.min(data.length - 1, 8192);
  for (let i = 0; i < searchEnd; i++) {
    if (data[i] === 0xff && data[i + 1] === 0x4f && data[i + 2] === 0xff && data[i + 3] === 0x51) {
      p = i + 4;
      break;
    }
  }
  if (p < 0 || p + 40 > data.length) return undefined;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const xsiz = dv.getUint32(p + 4);
  const ysiz = dv.getUint32(p + 8);
  const xo = dv.getUint32(p + 12);
  const yo = dv.getUint32(p + 16);
  const csiz = dv.getUint16(p + 36);
  if (p + 38 >= data.length) return undefined;
  const ssiz = data[p + 38];
  return {
    width: xsiz - xo,
    height: ysiz - yo,
    components: csiz,
    bitDepth: (ssiz & 0x7f) + 1,
    signed: (ssiz & 0x80) !== 0,
  };
}
