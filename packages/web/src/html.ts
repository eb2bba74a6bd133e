/**
 * Text for innerHTML templates. Anything that comes from a file (DICOM Modality, series description,
 * patient name, plan names and ids) goes through escapeHtml before it is interpolated into markup, so a
 * file cannot inject elements or attributes into the workstation's page.
 */

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** `value` as text that is safe in element content and in quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}
