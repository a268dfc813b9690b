// Who consumed a report's usage, and who owns what was consumed: GPUStack v2.2.3's
// consumer_principal_id and owner_principal_id rules (notes §3, commit 57516c72 for the
// consumer order, a6c3aeb1 for the provider-path owner). Pure: must never do I/O.
import type {
  ApiKeyEntity,
  ModelEntity,
  PrincipalEntity,
  PrincipalKind,
  ProviderEntity,
  RouteEntity,
} from './entities.js';

/** The largest id a PostgreSQL INTEGER column (GPUStack's ids) holds. */
const MAX_INTEGER = 2_147_483_647;

/**
 * The principal id a reported `organization_id` names, or null when it names none.
 * GPUStack uses the value when Python's `int()` parses it: surrounding whitespace, a sign,
 * and underscores between digits are allowed. Anything else (a slug, a UUID, "") is ignored,
 * as GPUStack ignores it. Python's int() also takes non-ASCII digits and unbounded values;
 * Tally takes ASCII digits only, and ignores a value outside PostgreSQL's INTEGER (GPUStack
 * would fail its whole flush storing it). Existence is not checked, as in GPUStack.
 */
export function organizationPrincipalId(organizationId: string | null): number | null {
  if (organizationId === null) return null;
  const text = organizationId.trim();
  if (!/^[+-]?\d+(?:_\d+)*$/.test(text)) return null;
  const value = Number(text.replaceAll('_', ''));
  if (!Number.isSafeInteger(value) || value < -MAX_INTEGER - 1 || value > MAX_INTEGER) return null;
  return value === 0 ? 0 : value; // no -0
}

export interface Consumer {
  principalId: number | null;
  /** The consumer principal's name, when the principal exists. */
  name: string | null;
  /** The lowercase PrincipalType value (user, org, group, system), as model_usages stores it. */
  kind: Lowercase<PrincipalKind> | null;
}

/**
 * GPUStack's consumer resolution, first match wins:
 * 1. the API key (found by access_key) has an owner → that owner;
 * 2. no API key row was found and organization_id is int()-parsable → that id;
 * 3. the caller (user_id) is a USER principal → the caller;
 * 4. else none (e.g. SYSTEM callers, or a key without an owner called by no USER).
 */
export function resolveConsumer(
  apiKey: ApiKeyEntity | undefined,
  organizationId: string | null,
  caller: PrincipalEntity | undefined,
  principals: ReadonlyMap<number, PrincipalEntity>,
): Consumer {
  let id: number | null = null;
  if (apiKey !== undefined) id = apiKey.ownerPrincipalId;
  else id = organizationPrincipalId(organizationId);
  if (id === null && caller?.kind === 'USER') id = caller.id;
  if (id === null) return { principalId: null, name: null, kind: null };
  const principal = principals.get(id);
  return {
    principalId: id,
    name: principal?.name ?? null,
    kind:
      principal === undefined ? null : (principal.kind.toLowerCase() as Lowercase<PrincipalKind>),
  };
}

/**
 * The owner of the consumed resource: the model's owner when the report names a model;
 * on the provider path, the provider's owner, else the route's.
 */
export function resolveOwner(
  model: ModelEntity | undefined,
  provider: ProviderEntity | undefined,
  route: RouteEntity | undefined,
): number | null {
  if (model !== undefined) return model.ownerPrincipalId;
  return provider?.ownerPrincipalId ?? route?.ownerPrincipalId ?? null;
}

/**
 * GPUStack's LoRA rule (f6996fe8): a report whose `model` differs from the model row's name
 * is accepted only through a route named exactly `model` whose base model is that model.
 */
export function isLoraOfModel(
  reportedModel: string,
  model: ModelEntity,
  route: RouteEntity | undefined,
): boolean {
  return route !== undefined && route.name === reportedModel && route.createdModelId === model.id;
}
