/**
 * Checked DOM look-ups: the page's own markup is expected to hold these elements, so a missing one is a
 * bug, reported as a CorridorError naming what is missing rather than a TypeError on null later.
 */
import { CorridorError, type NamedBytes } from '@corridor/core';

/** The element with this id. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new CorridorError('element missing from the page', `#${id}`);
  return el as T;
}

/** The first element under `root` that matches `selector`. */
export function find<T extends Element = HTMLElement>(root: ParentNode, selector: string): T {
  const el = root.querySelector<T>(selector);
  if (!el) throw new CorridorError('element missing from the page', selector);
  return el;
}

/** The 2D context of a canvas (null only when the canvas already has another kind of context). */
export function context2d(
  canvas: HTMLCanvasElement,
  settings?: CanvasRenderingContext2DSettings,
): CanvasRenderingContext2D {
  const ctx = canvas.getContext('2d', settings);
  if (!ctx) throw new CorridorError('no 2D context for the canvas (it holds another kind of context)');
  return ctx;
}

/** The bytes of chosen or dropped files, each named by its path in a chosen folder when it has one. */
export async function readAll(files: File[]): Promise<NamedBytes[]> {
  return Promise.all(
    files.map(async (f) => ({
      name: (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name,
      bytes: new Uint8Array(await f.arrayBuffer()),
    })),
  );
}
