// Compiles a zod object schema of the contract into a fast check that never disagrees with
// it: zod emits the schema's JSON Schema, Ajv compiles that to one function, and what JSON
// Schema cannot express (defaults, transforms, `.trim()`, refinements) is read from the zod
// schema itself and applied after Ajv accepts. The fast check only ever ACCEPTS: whatever it
// cannot vouch for goes to zod, which stays the one source of truth and of error messages.
// Must never hold a rule of its own about a field, nor be used without zod as the fallback.
import { Ajv, type ValidateFunction } from 'ajv';
import { z } from 'zod';

/** What the output of one field is made from, read off its zod schema. */
interface FieldPlan {
  key: string;
  /** Applied when the input lacks the field (zod `.default`). */
  hasDefault: boolean;
  defaultValue: unknown;
  /** String overwrites (`.trim()`), in schema order, applied before the refinements. */
  overwrites: ((value: string) => string)[];
  /** Refinements JSON Schema cannot express; a false one sends the input to zod. */
  refinements: ((value: never) => boolean)[];
  /** The field's `.transform`, applied last (also to an absent field, as zod does). */
  transform: ((value: never) => unknown) | undefined;
}

export interface CompiledObject<T> {
  /** The parsed value when the fast check vouches for `input`; undefined means "ask zod". */
  tryParse(input: unknown): T | undefined;
}

interface ZodInternals {
  _zod: { def: Record<string, unknown> & { type: string } };
}
interface CheckInternals {
  _zod: { def: { check: string; tx?: (v: string) => string; fn?: (v: never) => boolean } };
}

function defOf(schema: unknown): ZodInternals['_zod']['def'] {
  return (schema as ZodInternals)._zod.def;
}

/** Walks one field's wrappers (pipe → transform, default, optional, nullable) down to its leaf. */
function planField(key: string, schema: unknown): FieldPlan {
  const plan: FieldPlan = {
    key,
    hasDefault: false,
    defaultValue: undefined,
    overwrites: [],
    refinements: [],
    transform: undefined,
  };
  let node = schema;
  for (;;) {
    const def = defOf(node);
    switch (def.type) {
      case 'pipe': {
        const out = defOf(def.out);
        if (out.type !== 'transform' || plan.transform !== undefined || plan.hasDefault) {
          throw new TypeError(`${key}: only one trailing .transform() can be compiled`);
        }
        plan.transform = out.transform as FieldPlan['transform'];
        node = def.in;
        continue;
      }
      case 'default':
        if (plan.hasDefault) throw new TypeError(`${key}: nested defaults cannot be compiled`);
        plan.hasDefault = true;
        plan.defaultValue = def.defaultValue;
        node = def.innerType;
        continue;
      case 'optional':
      case 'nullable':
        node = def.innerType;
        continue;
      case 'string':
      case 'number':
      case 'boolean':
      case 'enum':
        for (const check of (def.checks as CheckInternals[] | undefined) ?? []) {
          const c = check._zod.def;
          if (c.check === 'overwrite' && c.tx !== undefined) {
            if (def.type !== 'string') throw new TypeError(`${key}: overwrite on a non-string`);
            plan.overwrites.push(c.tx);
          } else if (c.check === 'custom' && c.fn !== undefined) {
            if (plan.overwrites.length > 0 && def.type !== 'string') {
              throw new TypeError(`${key}: refinement after an overwrite on a non-string`);
            }
            plan.refinements.push(c.fn);
          }
          // Every other check (lengths, bounds, int, regex) is in the JSON Schema.
        }
        return plan;
      default:
        throw new TypeError(`${key}: a zod ${def.type} cannot be compiled; extend compile.ts`);
    }
  }
}

/**
 * Compiles `schema` (a zod object of scalar fields) once. An overwrite (`.trim()`) runs before
 * zod's length checks, so Ajv's check on the untrimmed string is stricter, never looser.
 */
export function compileObject<S extends z.ZodObject>(schema: S): CompiledObject<z.output<S>> {
  const plans = Object.entries(schema.shape).map(([key, field]) => planField(key, field));
  // Ajv's maxLength counts code points, as zod's does (an emoji is one character to both).
  const ajv = new Ajv({ allErrors: false });
  const jsonSchema = z.toJSONSchema(schema, { io: 'input', target: 'draft-07' });
  const validate: ValidateFunction = ajv.compile(jsonSchema);

  return {
    tryParse(input: unknown) {
      if (!validate(input)) return undefined;
      const source = input as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const plan of plans) {
        let value = source[plan.key];
        if (value === undefined && plan.hasDefault) {
          // zod returns a default as is, without running the inner schema or transform.
          out[plan.key] = plan.defaultValue;
          continue;
        }
        if (typeof value === 'string') {
          for (const overwrite of plan.overwrites) value = overwrite(value as string);
          for (const refine of plan.refinements) {
            if (!refine(value as never)) return undefined;
          }
        } else if (value !== undefined && value !== null && plan.refinements.length > 0) {
          for (const refine of plan.refinements) {
            if (!refine(value as never)) return undefined;
          }
        }
        if (plan.transform !== undefined) value = plan.transform(value as never);
        // zod leaves an absent optional key out rather than writing undefined.
        if (value !== undefined || plan.key in source) out[plan.key] = value;
      }
      return out as z.output<S>;
    },
  };
}
