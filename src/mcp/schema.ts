import { z } from 'zod';
import { type ApiMethod, paramsOf } from '../api/contract';
import { SparkqError } from '../core/errors';
import { JsonValueSchema } from '../core/model';

/*
 * A tool's arguments are the contract method's arguments laid flat: the fields of each options-object argument, and a
 * property named after each plain argument (`getTask(task)` takes `{ task }`; `requeue(task, { idempotencyKey })`
 * takes `{ task, idempotencyKey }`). Its JSON Schema is generated from the same zod schemas the contract checks with,
 * so a field the contract adds shows up here without being typed twice.
 */

type JsonSchema = Record<string, unknown>;

/** One argument of a contract method as a tool lays it out. */
interface ParamLayout {
  name: string;
  optional: boolean;
  /** The fields an agent gives for an options-object argument; null for a plain argument (one property, `name`). */
  fields: string[] | null;
  json: JsonSchema;
}

export interface ToolArgs {
  /** The contract method's arguments for a tool call's arguments; invalid-input for a name the tool does not take. */
  toParams(args: Record<string, unknown>): unknown[];
  /** The tool's input schema: an object of every field, strict. */
  inputSchema: JsonSchema;
}

/** z.toJSONSchema, compacted for an agent's context: no dialect per schema, any JSON for JSON values. */
export function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
    // A payload or result data is any JSON value: its recursive union would cost context on every turn and say nothing
    // an agent needs (the queue checks depth and size itself).
    override: (ctx) => {
      if ((ctx.zodSchema as unknown) !== JsonValueSchema) return;
      for (const k of Object.keys(ctx.jsonSchema)) delete (ctx.jsonSchema as JsonSchema)[k];
      (ctx.jsonSchema as JsonSchema)['description'] = 'any JSON value';
    },
  }) as JsonSchema;
  const { $defs, ...root } = json;
  return compact(inlineRefs(root, ($defs ?? {}) as Record<string, JsonSchema>, [])) as JsonSchema;
}

/**
 * Each local `$ref` replaced by its definition: a tool's schema is its arguments laid flat, and a definition left at the
 * root of one argument's schema would not be found from the tool's. A definition that refers to itself (none does
 * once JSON values are "any") becomes "any".
 */
function inlineRefs(value: unknown, defs: Record<string, JsonSchema>, seen: readonly string[]): unknown {
  if (Array.isArray(value)) return value.map((v) => inlineRefs(v, defs, seen));
  if (typeof value !== 'object' || value === null) return value;
  const ref = (value as JsonSchema)['$ref'];
  if (typeof ref === 'string' && ref.startsWith('#/$defs/')) {
    const name = ref.slice('#/$defs/'.length);
    const def = defs[name];
    return def === undefined || seen.includes(name) ? {} : inlineRefs(def, defs, [...seen, name]);
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, inlineRefs(v, defs, seen)]));
}

/** Drops what carries no meaning for an agent: the dialect, and integer bounds that only restate "safe integer". */
function compact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(compact);
  if (typeof value !== 'object' || value === null) return value;
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === '$schema') continue;
    if ((k === 'maximum' && v === Number.MAX_SAFE_INTEGER) || (k === 'minimum' && v === -Number.MAX_SAFE_INTEGER)) continue;
    out[k] = compact(v);
  }
  return out;
}

function layoutOf(method: ApiMethod, hide: ReadonlySet<string>): ParamLayout[] {
  return paramsOf(method).map((p) => {
    const json = jsonSchemaOf(p.schema);
    const props = json['type'] === 'object' ? (json['properties'] as Record<string, JsonSchema> | undefined) : undefined;
    return { name: p.name, optional: p.optional, fields: props ? Object.keys(props).filter((f) => !hide.has(f)) : null, json };
  });
}

/**
 * How `tool` takes the arguments of contract method `method`, without the fields in `hide` (those a worker process
 * reports, not an agent), plus `extra` fields of the tool's own (checked by the tool). Throws at start-up when two
 * arguments would share a name.
 */
export function toolArgs(tool: string, method: ApiMethod, hide: readonly string[] = [], extra: Record<string, { schema: JsonSchema; required?: boolean }> = {}): ToolArgs {
  const layout = layoutOf(method, new Set(hide));
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  const claim = (name: string, schema: JsonSchema, isRequired: boolean) => {
    if (name in properties) throw new Error(`tool ${tool}: two arguments named ${name}`);
    properties[name] = schema;
    if (isRequired) required.push(name);
  };
  for (const p of layout) {
    if (p.fields === null) {
      claim(p.name, p.json, !p.optional);
      continue;
    }
    const props = p.json['properties'] as Record<string, JsonSchema>;
    const req = new Set((p.json['required'] as string[] | undefined) ?? []);
    for (const f of p.fields) claim(f, props[f]!, !p.optional && req.has(f));
  }
  for (const [name, e] of Object.entries(extra)) claim(name, e.schema, e.required === true);
  const known = Object.keys(properties);
  return {
    inputSchema: { type: 'object', properties, ...(required.length > 0 ? { required } : {}), additionalProperties: false },
    toParams(args) {
      const unknown = Object.keys(args).filter((k) => !(k in properties));
      if (unknown.length > 0) {
        throw new SparkqError(
          'invalid-input',
          `invalid arguments for ${tool}: it takes no ${unknown.map((k) => JSON.stringify(k)).join(', ')}; its arguments are ${known.join(', ') || 'none'}`,
        );
      }
      const params: unknown[] = layout.map((p) => {
        if (p.fields === null) return args[p.name];
        const given = p.fields.filter((f) => args[f] !== undefined);
        if (given.length === 0 && p.optional) return undefined;
        return Object.fromEntries(given.map((f) => [f, args[f]]));
      });
      // An optional argument left out is absent, as the contract counts arguments; a required one is checked (and named).
      while (params.length > 0 && params[params.length - 1] === undefined && layout[params.length - 1]!.optional) params.pop();
      return params;
    },
  };
}
