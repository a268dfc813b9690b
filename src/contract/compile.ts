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

/** True when the field is written to the output even when the input lacks it. */
function alwaysPresent(plan: FieldPlan, required: ReadonlySet<string>): boolean {
  if (plan.hasDefault || required.has(plan.key)) return true;
  if (plan.transform === undefined) return false;
  try {
    // A transform is pure: what it makes of an absent field it makes every time.
    return plan.transform(undefined as never) !== undefined;
  } catch {
    return false;
  }
}

/** Fields that may be left out of the output: each one doubles the literals generated. */
const MAX_OPTIONAL_FIELDS = 4;

/**
 * The finishing step as code: one function with each field's reads, overwrites, refinements
 * and transforms spelled out, and the output built as one object literal in the schema's key
 * order (so its JSON is zod's, byte for byte), one literal per combination of the optional
 * keys present. V8 then sees fixed property names and few shapes instead of a loop of keyed
 * reads and writes, which made this step cost more than Ajv's check itself. Default values
 * and functions reach the code as an argument, never as source text; the only text spliced
 * in is each key, as a JSON string literal.
 */
function finisher(
  plans: FieldPlan[],
  required: ReadonlySet<string>,
): (source: Record<string, unknown>) => unknown {
  const body: string[] = [];
  const optional: number[] = [];
  plans.forEach((plan, i) => {
    const v = `v${i}`;
    body.push(`let ${v} = s[${JSON.stringify(plan.key)}];`);
    const steps: string[] = [];
    const refine = plan.refinements.map(
      (_, r) => `if (!P[${i}].refinements[${r}](${v})) return undefined;`,
    );
    if (plan.overwrites.length > 0 || refine.length > 0) {
      const overwrite = plan.overwrites.map((_, o) => `${v} = P[${i}].overwrites[${o}](${v});`);
      steps.push(`if (typeof ${v} === 'string') { ${[...overwrite, ...refine].join(' ')} }`);
      if (refine.length > 0) {
        steps.push(`else if (${v} !== undefined && ${v} !== null) { ${refine.join(' ')} }`);
      }
    }
    if (plan.transform !== undefined) steps.push(`${v} = P[${i}].transform(${v});`);
    if (plan.hasDefault) {
      // zod returns a default as is, without running the inner schema or transform.
      body.push(`if (${v} === undefined) ${v} = P[${i}].defaultValue; else { ${steps.join(' ')} }`);
    } else {
      body.push(...steps);
    }
    if (!alwaysPresent(plan, required)) optional.push(i);
  });
  if (optional.length > MAX_OPTIONAL_FIELDS) {
    throw new TypeError(`more than ${MAX_OPTIONAL_FIELDS} optional fields cannot be compiled`);
  }
  // zod leaves an absent optional key out rather than writing undefined.
  optional.forEach((i, bit) => {
    const key = JSON.stringify(plans[i]?.key);
    body.push(`if (v${i} !== undefined || ${key} in s) present |= ${1 << bit};`);
  });
  const literal = (present: number) =>
    `{ ${plans
      .flatMap((plan, i) => {
        const bit = optional.indexOf(i);
        return bit >= 0 && (present & (1 << bit)) === 0
          ? []
          : [`${JSON.stringify(plan.key)}: v${i}`];
      })
      .join(', ')} }`;
  const cases = Array.from(
    { length: 1 << optional.length },
    (_, present) => `case ${present}: return ${literal(present)};`,
  );
  const source = ['let present = 0;', ...body, 'switch (present) {', ...cases, '}'];
  // Code generation, as Ajv itself does; the text is built above from keys and indexes only.
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const make = new Function('P', `return function finish(s) {\n${source.join('\n')}\n};`) as (
    plans: FieldPlan[],
  ) => (source: Record<string, unknown>) => unknown;
  return make(plans);
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
  const finish = finisher(plans, new Set(jsonSchema.required ?? []));

  return {
    tryParse(input: unknown) {
      if (!validate(input)) return undefined;
      return finish(input as Record<string, unknown>) as z.output<S> | undefined;
    },
  };
}
