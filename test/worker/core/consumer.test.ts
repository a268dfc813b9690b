// GPUStack's consumer and owner rules as pure functions (src/worker/core/consumer.ts):
// organization_id parsing as Python's int() parses it, the consumer order of 57516c72,
// the provider-path owner of a6c3aeb1 and the LoRA route rule of f6996fe8.
import { describe, expect, it } from 'vitest';
import {
  isLoraOfModel,
  organizationPrincipalId,
  resolveConsumer,
  resolveOwner,
} from '../../../src/worker/core/consumer.js';
import {
  collectRefs,
  type ApiKeyEntity,
  type ModelEntity,
  type PrincipalEntity,
  type RouteEntity,
} from '../../../src/worker/core/entities.js';
import { storedReport } from '../../support/fixtures.js';

describe('organizationPrincipalId', () => {
  it.each([
    ['42', 42],
    [' 42\n', 42],
    ['+7', 7],
    ['-3', -3],
    ['007', 7],
    ['1_000', 1000],
    ['0', 0],
    ['2147483647', 2147483647],
  ])('takes %j as %j, as int() does', (text, id) => {
    expect(organizationPrincipalId(text)).toBe(id);
  });

  it.each([null, '', ' ', 'acme', '4.2', '1e3', '0x10', '1__0', '_1', '1_', '2147483648', '--1'])(
    'ignores %j',
    (text) => {
      expect(organizationPrincipalId(text)).toBeNull();
    },
  );
});

const principals = new Map<number, PrincipalEntity>([
  [1, { id: 1, kind: 'USER', name: 'alice' }],
  [2, { id: 2, kind: 'SYSTEM', name: 'system' }],
  [3, { id: 3, kind: 'GROUP', name: 'team' }],
  [10, { id: 10, kind: 'ORG', name: 'acme' }],
]);
const owned: ApiKeyEntity = {
  id: 1,
  name: 'k',
  accessKey: 'ak',
  isCustom: false,
  ownerPrincipalId: 10,
};
const allMode: ApiKeyEntity = { ...owned, ownerPrincipalId: null };
const alice = principals.get(1);
const system = principals.get(2);

describe('resolveConsumer', () => {
  it('prefers the key owner, then the organization (no key row), then a USER caller', () => {
    expect(resolveConsumer(owned, '3', alice, principals)).toEqual({
      principalId: 10,
      name: 'acme',
      kind: 'org',
    });
    expect(resolveConsumer(undefined, '3', alice, principals)).toEqual({
      principalId: 3,
      name: 'team',
      kind: 'group',
    });
    expect(resolveConsumer(allMode, '3', alice, principals)).toEqual({
      principalId: 1,
      name: 'alice',
      kind: 'user',
    });
  });

  it('has no consumer for a SYSTEM caller without key owner or organization', () => {
    expect(resolveConsumer(undefined, null, system, principals).principalId).toBeNull();
    expect(resolveConsumer(allMode, '10', system, principals).principalId).toBeNull();
    expect(resolveConsumer(undefined, null, undefined, principals).principalId).toBeNull();
  });
});

describe('resolveOwner and isLoraOfModel', () => {
  const model: ModelEntity = {
    id: 5,
    name: 'base',
    clusterId: null,
    clusterName: null,
    categories: [],
    ownerPrincipalId: 10,
  };
  const route: RouteEntity = { id: 7, name: 'base:lora', createdModelId: 5, ownerPrincipalId: 1 };
  const provider = { id: 1, name: 'p', type: null, modelNames: [], ownerPrincipalId: null };

  it('takes the model’s owner, else the provider’s, else the route’s', () => {
    expect(resolveOwner(model, provider, route)).toBe(10);
    expect(resolveOwner({ ...model, ownerPrincipalId: null }, provider, route)).toBeNull();
    expect(resolveOwner(undefined, { ...provider, ownerPrincipalId: 3 }, route)).toBe(3);
    expect(resolveOwner(undefined, provider, route)).toBe(1);
    expect(resolveOwner(undefined, undefined, undefined)).toBeNull();
  });

  it('accepts a LoRA name only through its own route on its base model', () => {
    expect(isLoraOfModel('base:lora', model, route)).toBe(true);
    expect(isLoraOfModel('base:other', model, route)).toBe(false);
    expect(isLoraOfModel('base:lora', { ...model, id: 6 }, route)).toBe(false);
    expect(isLoraOfModel('base:lora', model, undefined)).toBe(false);
  });
});

describe('collectRefs', () => {
  it('asks for the callers and the numeric organizations as principals, once each', () => {
    const refs = collectRefs(
      [
        { model: 'm', model_id: 1, user_id: 2, organization_id: '10' },
        { model: 'm', model_id: 1, user_id: 2, organization_id: 'acme', access_key: 'ak' },
        { model: 'm', provider_id: 3, organization_id: ' 2 ', model_route_id: 4 },
      ].map((r) => storedReport(r)),
    );
    expect(refs).toEqual({
      modelIds: [1],
      providerIds: [3],
      principalIds: [2, 10],
      accessKeys: ['ak'],
      routeIds: [4],
    });
  });
});
