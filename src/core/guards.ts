/** Type guards for values whose shape is not known yet: parsed YAML or JSON, an agent's events, a payload. */

/** A plain object with string keys: not null, not an array. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
