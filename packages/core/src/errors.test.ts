import { describe, expect, it } from 'vitest';
import * as core from './index.js';
import { JpegError } from './io/dicom/jpeg.js';
import { CorridorError, FormatError } from './errors.js';

type ErrorClass = new (...args: string[]) => Error;

/** Every error class core exports, with the name it is written under, plus the internal JpegError. */
function errorClasses(): [string, ErrorClass][] {
  const found: [string, ErrorClass][] = [];
  for (const [name, value] of Object.entries(core as Record<string, unknown>)) {
    if (typeof value === 'function' && value.prototype instanceof Error) found.push([name, value as ErrorClass]);
  }
  return [...found, ['JpegError', JpegError]];
}

/** Construct cls while its constructor name is what a minifier would leave ("Wt"). */
function constructMinified(cls: ErrorClass): Error {
  const original = Object.getOwnPropertyDescriptor(cls, 'name');
  Object.defineProperty(cls, 'name', { value: 'Wt', configurable: true });
  try {
    return new cls('no segmentation', 'file.dcm', 'input');
  } finally {
    if (original) Object.defineProperty(cls, 'name', original);
  }
}

describe('error class names', () => {
  it('finds the error families core exports', () => {
    const names = errorClasses().map(([n]) => n);
    for (const n of ['CorridorError', 'FormatError', 'GeometryError', 'LimitError', 'UsageError', 'CancelledError'])
      expect(names).toContain(n);
    for (const n of ['WriteError', 'CarmError', 'PlanError', 'DrrError']) expect(names).toContain(n);
  });

  it('keeps each class its written name when a bundler renames the class', () => {
    for (const [written, cls] of errorClasses()) {
      const err = constructMinified(cls);
      expect(cls.name, written).toBe(written);
      expect(err.name, written).toBe(written);
      expect(String(err), written).toMatch(new RegExp(`^${written}: `));
    }
  });

  it('gives a subclass its own name, not its parent family', () => {
    const e = new FormatError('bad tag', 'a.dcm');
    expect(e).toBeInstanceOf(CorridorError);
    expect(e.name).toBe('FormatError');
    expect(e.message).toBe('a.dcm: bad tag');
    expect(e.source).toBe('a.dcm');
  });
});
