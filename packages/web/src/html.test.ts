import { describe, expect, it } from 'vitest';
import { escapeHtml } from './html.js';

describe('escapeHtml', () => {
  it('turns a hostile DICOM Modality into inert text', () => {
    const modality = '<img src=x onerror="alert(1)">';
    expect(escapeHtml(modality)).toBe('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;');
    expect(`<td>${escapeHtml(modality)}</td>`).not.toMatch(/<img/);
  });

  it('escapes every character that can end text or a quoted attribute', () => {
    expect(escapeHtml(`a&b<c>d"e'f`)).toBe('a&amp;b&lt;c&gt;d&quot;e&#39;f');
    expect(escapeHtml('&amp;')).toBe('&amp;amp;');
    expect(`<tr data-id="${escapeHtml('" onclick="x')}">`).toBe('<tr data-id="&quot; onclick=&quot;x">');
  });

  it('leaves ordinary text, including non-ASCII names, as it is', () => {
    for (const s of ['CT', 'Thorax 1.0 B31f', 'Müller^Jürgen', 'Śląsk', '']) expect(escapeHtml(s)).toBe(s);
    expect(escapeHtml(3)).toBe('3');
  });
});
