/**
 * The GPU path of the virtual fluoroscopy: the same projection as core's CPU kernel (core prepares the
 * attenuation volume and the per-projection ray parameters with prepareDrrVolume and drrParamFields), with
 * the line integrals summed in a WebGL2 fragment shader, one fragment per detector pixel, sampling the
 * attenuation as a 3D texture (trilinear) every half voxel along the ray.
 *
 * Two outputs: the grey image drawn directly (core's window and exposure of the last processed frame, no
 * noise: frames while the pose moves), and the line integrals themselves, read back bit-exactly for core's
 * full fluoroscopy model (automatic exposure, noise, edge enhancement) when the pose settles.
 *
 * Software WebGL (SwiftShader) is not a GPU: create() refuses it so the CPU workers, which are faster
 * there, take over.
 */
import {
  CorridorError,
  carmGeometry,
  carmPreset,
  drrParamFields,
  fluoroscopyWithExposure,
  prepareDrrVolume,
  renderLineIntegrals,
  type CarmGeometry,
  type DrrParamFields,
  type DrrVolume,
  type Volume,
} from '@corridor/core';

/**
 * The shader's vector uniforms: each carries the DrrParamFields field of its name (`u_` + field), and is
 * declared in the shader and set by render() from this one list.
 */
const FIELD_UNIFORMS = [
  'dims',
  'sourceIndex',
  'rayIndex',
  'rayIndexPerColumn',
  'rayIndexPerRow',
  'rayMm',
  'rayMmPerColumn',
  'rayMmPerRow',
] as const satisfies readonly (keyof DrrParamFields)[];

const VS = `#version 300 es
in vec2 aPos;
void main() { gl_Position = vec4(aPos, 0.0, 1.0); }`;

const FS = `#version 300 es
precision highp float;
precision highp sampler3D;
uniform sampler3D uMu;
${FIELD_UNIFORMS.map((name) => `uniform vec3 u_${name};`).join('\n')}
uniform vec2 uSize;
uniform float uLo;
uniform float uHi;
uniform float uScale;
uniform int uPacked;
out vec4 outColor;
void main() {
  // Pixel (c, r): column from the left, row from the top; gl_FragCoord counts rows from the bottom.
  float c = gl_FragCoord.x - 0.5;
  float r = uSize.y - gl_FragCoord.y - 0.5;
  vec3 w = u_rayIndex + c * u_rayIndexPerColumn + r * u_rayIndexPerRow;
  vec3 W = u_rayMm + c * u_rayMmPerColumn + r * u_rayMmPerRow;
  vec3 inv = 1.0 / w;
  vec3 t0 = (vec3(-0.5) - u_sourceIndex) * inv;
  vec3 t1 = (u_dims - vec3(0.5) - u_sourceIndex) * inv;
  vec3 tmin = min(t0, t1);
  vec3 tmax = max(t0, t1);
  float lo = max(max(tmin.x, tmin.y), max(tmin.z, 0.0));
  float hi = min(min(tmax.x, tmax.y), tmax.z);
  float sum = 0.0;
  if (hi > lo) {
    float dl = 0.5 / length(w);
    int n = min(int(ceil((hi - lo) / dl)), 8192);
    for (int i = 0; i < n; i++) {
      vec3 p = u_sourceIndex + (lo + (float(i) + 0.5) * dl) * w;
      sum += texture(uMu, (p + 0.5) / u_dims).r;
    }
    sum *= dl * length(W);
  }
  if (uPacked == 1) {
    // The line integral's float32 bits in the four bytes (R lowest), for readPixels and core's model.
    uint b = floatBitsToUint(sum);
    outColor = vec4(float(b & 255u), float((b >> 8) & 255u), float((b >> 16) & 255u), float(b >> 24)) / 255.0;
    return;
  }
  // Core's display without noise or edge enhancement: attenuation at the exposure's kV, its window, gamma.
  float t = clamp((sum * uScale - uLo) / (uHi - uLo), 0.0, 1.0);
  float g = pow(1.0 - t, 0.9);
  outColor = vec4(g, g, g, 1.0);
}`;

export class GlDrr {
  readonly canvas: HTMLCanvasElement;
  private gl: WebGL2RenderingContext;
  private prog: WebGLProgram;
  private tex: WebGLTexture | null = null;
  private dv: DrrVolume | null = null;
  private window = { lo: 0, hi: 1, scale: 1 };
  private fbo: WebGLFramebuffer | null = null;
  private fboTex: WebGLTexture | null = null;
  private packed: Uint8Array | null = null;
  readonly rendererName: string;

  private constructor(canvas: HTMLCanvasElement, gl: WebGL2RenderingContext, rendererName: string) {
    this.canvas = canvas;
    this.gl = gl;
    this.rendererName = rendererName;
    this.prog = link(gl, VS, FS);
    const buf = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buf);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    const loc = gl.getAttribLocation(this.prog, 'aPos');
    const vao = gl.createVertexArray();
    gl.bindVertexArray(vao);
    gl.enableVertexAttribArray(loc);
    gl.vertexAttribPointer(loc, 2, gl.FLOAT, false, 0, 0);
  }

  /** A GPU renderer, or an Error saying why there is none (no WebGL2, software rendering). */
  static create(size: number, opts: { allowSoftware?: boolean } = {}): GlDrr {
    const canvas = document.createElement('canvas');
    canvas.width = size;
    canvas.height = size;
    const gl = canvas.getContext('webgl2', {
      preserveDrawingBuffer: true,
      antialias: false,
      failIfMajorPerformanceCaveat: !opts.allowSoftware,
    });
    if (!gl) throw new Error('no WebGL2 context (no GPU, or it is disabled)');
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const name = info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : String(gl.getParameter(gl.RENDERER));
    if (!opts.allowSoftware && /swiftshader|llvmpipe|software/i.test(name))
      throw new Error(`WebGL2 is software-rendered (${name})`);
    return new GlDrr(canvas, gl, name);
  }

  setVolume(v: Volume): void {
    const gl = this.gl;
    const max = gl.getParameter(gl.MAX_3D_TEXTURE_SIZE) as number;
    if (v.dims.some((d) => d > max))
      throw new Error(`volume ${v.dims.join(' x ')} exceeds the GPU's 3D texture limit ${max}`);
    const dv = prepareDrrVolume(v);
    this.dv = dv;
    if (this.tex) gl.deleteTexture(this.tex);
    this.tex = gl.createTexture();
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_3D, this.tex);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    // R16F from float data: filterable on every WebGL2 implementation (R32F needs an extension).
    // Core stores attenuation as 16-bit integers times muScale; the texture holds 1/mm.
    const mu = new Float32Array(dv.mu.length);
    for (let i = 0; i < mu.length; i++) mu[i] = dv.mu[i] * dv.muScale;
    gl.texImage3D(gl.TEXTURE_3D, 0, gl.R16F, dv.dims[0], dv.dims[1], dv.dims[2], 0, gl.RED, gl.FLOAT, mu);
    gl.texParameteri(gl.TEXTURE_3D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_3D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
    for (const p of [gl.TEXTURE_WRAP_S, gl.TEXTURE_WRAP_T, gl.TEXTURE_WRAP_R])
      gl.texParameteri(gl.TEXTURE_3D, p, gl.CLAMP_TO_EDGE);
    const err = gl.getError();
    if (err !== gl.NO_ERROR) throw new Error(`uploading the volume to the GPU failed (GL error ${err})`);
    // Display window: core's fluoroscopy display of a small CPU projection (AP) chooses it.
    const g = carmGeometry(
      carmPreset('artis-zee-floor'),
      { primaryDeg: 0, secondaryDeg: 0, isocenter: center(v) },
      { size: 48, fieldMm: 290 },
    );
    const img = fluoroscopyWithExposure(renderLineIntegrals(dv, g), g, { noiseFree: true, edgeEnhance: 0 });
    this.setWindow(img.window, img.exposure.attenuationScale);
  }

  /**
   * The grey window of the direct draw (core's FluoroImage.window, log-intensity units) and the
   * exposure's attenuation scale: the view sets them from core's last processed frame, so frames drawn
   * while the pose moves keep that frame's exposure and window.
   */
  setWindow(window: readonly [number, number], attenuationScale: number): void {
    this.window = { lo: window[0], hi: window[1] > window[0] ? window[1] : window[0] + 1, scale: attenuationScale };
  }

  /**
   * The line integrals for g (columns fastest, row 0 at the top), summed by the shader and read back
   * bit-exactly through an RGBA8 target: what core's fluoroscopy model then turns into the image.
   */
  lineIntegrals(g: CarmGeometry): Float32Array {
    const gl = this.gl;
    const w = this.canvas.width,
      h = this.canvas.height;
    if (!this.dv || !this.tex) throw new CorridorError('no volume on the GPU', 'GPU fluoroscopy');
    if (!this.fbo) {
      this.fboTex = gl.createTexture();
      gl.bindTexture(gl.TEXTURE_2D, this.fboTex);
      gl.texStorage2D(gl.TEXTURE_2D, 1, gl.RGBA8, w, h);
      this.fbo = gl.createFramebuffer();
      gl.bindFramebuffer(gl.FRAMEBUFFER, this.fbo);
      gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, this.fboTex, 0);
      this.packed = new Uint8Array(w * h * 4);
    }
    gl.bindFramebuffer(gl.FRAMEBUFFER, this.fbo);
    try {
      this.draw(g, true);
      const px = this.packed ?? new Uint8Array(w * h * 4);
      gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
      const bits = new Float32Array(px.buffer, px.byteOffset, w * h);
      const out = new Float32Array(w * h);
      // readPixels gives the bottom row first.
      for (let r = 0; r < h; r++) out.set(bits.subarray((h - 1 - r) * w, (h - r) * w), r * w);
      return out;
    } finally {
      gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    }
  }

  /** Draw the DRR for g (its columns and rows must match the canvas). */
  render(g: CarmGeometry): void {
    this.draw(g, false);
  }

  private draw(g: CarmGeometry, packed: boolean): void {
    const gl = this.gl;
    if (!this.dv || !this.tex) return;
    const f = canvasFields(drrParamFields(this.dv, g), g.columns / this.canvas.width, g.rows / this.canvas.height);
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.useProgram(this.prog);
    const u = (n: string) => gl.getUniformLocation(this.prog, n);
    for (const name of FIELD_UNIFORMS) gl.uniform3f(u(`u_${name}`), f[name][0], f[name][1], f[name][2]);
    gl.uniform2f(u('uSize'), this.canvas.width, this.canvas.height);
    gl.uniform1f(u('uLo'), this.window.lo);
    gl.uniform1f(u('uHi'), this.window.hi);
    gl.uniform1f(u('uScale'), this.window.scale);
    gl.uniform1i(u('uPacked'), packed ? 1 : 0);
    gl.uniform1i(u('uMu'), 0);
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_3D, this.tex);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
  }

  /** Wait until the GPU has finished the frames issued so far (for timing). */
  finish(): void {
    const px = new Uint8Array(4);
    this.gl.readPixels(0, 0, 1, 1, this.gl.RGBA, this.gl.UNSIGNED_BYTE, px);
  }
}

/**
 * The fields for a canvas whose pixels each cover sc detector columns and sr detector rows: the per-pixel
 * ray steps scaled and the first ray moved to the centre of the canvas's first pixel, so that the canvas
 * covers the whole detector.
 */
function canvasFields(f: DrrParamFields, sc: number, sr: number): DrrParamFields {
  type T = DrrParamFields['rayIndex'];
  const first = (o: T, pc: T, pr: T): T =>
    [0, 1, 2].map((a) => o[a] + ((sc - 1) / 2) * pc[a] + ((sr - 1) / 2) * pr[a]) as T;
  const scaled = (v: T, s: number): T => [v[0] * s, v[1] * s, v[2] * s];
  return {
    ...f,
    rayIndex: first(f.rayIndex, f.rayIndexPerColumn, f.rayIndexPerRow),
    rayIndexPerColumn: scaled(f.rayIndexPerColumn, sc),
    rayIndexPerRow: scaled(f.rayIndexPerRow, sr),
    rayMm: first(f.rayMm, f.rayMmPerColumn, f.rayMmPerRow),
    rayMmPerColumn: scaled(f.rayMmPerColumn, sc),
    rayMmPerRow: scaled(f.rayMmPerRow, sr),
  };
}

function center(v: Volume): [number, number, number] {
  const m = v.indexToPatient;
  const c = [(v.dims[0] - 1) / 2, (v.dims[1] - 1) / 2, (v.dims[2] - 1) / 2];
  return [0, 1, 2].map((r) => m[r * 4] * c[0] + m[r * 4 + 1] * c[1] + m[r * 4 + 2] * c[2] + m[r * 4 + 3]) as [
    number,
    number,
    number,
  ];
}

function link(gl: WebGL2RenderingContext, vs: string, fs: string): WebGLProgram {
  const sh = (type: number, src: string) => {
    const s = gl.createShader(type);
    if (!s) throw new CorridorError('WebGL2 could not create a shader (is the context lost?)', 'GPU fluoroscopy');
    gl.shaderSource(s, src);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(`shader: ${gl.getShaderInfoLog(s)}`);
    return s;
  };
  const p = gl.createProgram();
  gl.attachShader(p, sh(gl.VERTEX_SHADER, vs));
  gl.attachShader(p, sh(gl.FRAGMENT_SHADER, fs));
  gl.linkProgram(p);
  if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error(`shader link: ${gl.getProgramInfoLog(p)}`);
  return p;
}
