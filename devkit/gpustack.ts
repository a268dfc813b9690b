// A database as GPUStack's own migrations leave it, built from the facts in GPUStack's
// schema (tables, enums, indexes, alembic_version) without running GPUStack: v2.2.3 by
// default, and the older generations attach mode must refuse. Used by the attach-mode
// and retention tests. Must never be imported by src/: Tally never creates these tables
// in a GPUStack database.
import pg from 'pg';

/**
 * Which GPUStack schema to build:
 * - `v2.1`: `users`, model_usages without route or principal columns, no audit tables.
 * - `v2.2.0`: principals, route/owner/consumer columns, model_usages FKs (SET NULL), no
 *   consumer_name/consumer_principal_kind.
 * - `v2.2.3`: the released schema Tally attaches to (alembic c4d7e8f9a0b1).
 * - `main`: v2.2.3 plus api_keys.secret_key_digest (alembic 367a3982fcde).
 */
export type GpustackGeneration = 'v2.1' | 'v2.2.0' | 'v2.2.3' | 'main';

export interface GpustackFixtureOptions {
  generation?: GpustackGeneration;
  /**
   * model_usage_details.completed present (default true). A database first migrated by
   * v2.2.0rc1–rc3 lacks it whatever its alembic_version says.
   */
  completed?: boolean;
  /** Writes principals, a cluster, models, a provider, routes, keys and some usage (default true). */
  seed?: boolean;
}

export const ALEMBIC_VERSIONS: Record<GpustackGeneration, string> = {
  'v2.1': '8ad0f94c92e8',
  'v2.2.0': 'b2c3d4e5f6a7',
  'v2.2.3': 'c4d7e8f9a0b1',
  main: '367a3982fcde',
};

const OPERATIONS = [
  'COMPLETION',
  'CHAT_COMPLETION',
  'EMBEDDING',
  'RERANK',
  'IMAGE_GENERATION',
  'AUDIO_SPEECH',
  'AUDIT_TRANSCRIPTION',
];

const TIMESTAMPS = `created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
  updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
  deleted_at TIMESTAMP`;

function detailsTable(name: string, archive: boolean, completed: boolean): string {
  const id = archive ? 'id INTEGER NOT NULL' : 'id SERIAL NOT NULL';
  const indexes = [
    'date',
    'model_id',
    'user_id',
    'consumer_principal_id',
    'api_key_id',
    'model_route_id',
    'completed_at',
    'created_at',
  ].map((c) => `CREATE INDEX ix_${name}_${c} ON ${name} (${c});`);
  return `
CREATE TABLE ${name} (
  ${id},
  user_id INTEGER, model_id INTEGER, model_route_id INTEGER, owner_principal_id INTEGER,
  consumer_principal_id INTEGER, provider_id INTEGER, cluster_id INTEGER, api_key_id INTEGER,
  user_name VARCHAR(255), model_route_name VARCHAR(255), provider_name VARCHAR(255),
  provider_type VARCHAR(255), cluster_name VARCHAR(255), api_key_name VARCHAR(255),
  access_key VARCHAR(255),
  model_name VARCHAR(255) NOT NULL,
  api_key_is_custom BOOLEAN,
  date DATE NOT NULL,
  prompt_token_count BIGINT NOT NULL,
  completion_token_count BIGINT NOT NULL,
  prompt_cached_token_count BIGINT NOT NULL DEFAULT 0,
  ${completed ? 'completed BOOLEAN NOT NULL DEFAULT false,' : ''}
  operation VARCHAR(32),
  started_at TIMESTAMP, completed_at TIMESTAMP,
  created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL, deleted_at TIMESTAMP,
  CONSTRAINT ${name}_pkey PRIMARY KEY (id)
);
${indexes.join('\n')}`;
}

function schemaSql(generation: GpustackGeneration, completed: boolean): string {
  const v21 = generation === 'v2.1';
  const v220 = generation === 'v2.2.0';
  const enums = `
CREATE TYPE operationenum AS ENUM (${OPERATIONS.map((o) => `'${o}'`).join(', ')});
CREATE TABLE alembic_version (
  version_num VARCHAR(32) NOT NULL,
  CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version VALUES ('${ALEMBIC_VERSIONS[generation]}');
CREATE TABLE clusters (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL, ${TIMESTAMPS});`;
  if (v21) {
    return `${enums}
CREATE TABLE users (
  id SERIAL PRIMARY KEY, username VARCHAR(255) NOT NULL UNIQUE, full_name VARCHAR(255),
  is_admin BOOLEAN NOT NULL DEFAULT false, ${TIMESTAMPS});
CREATE TABLE models (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL, cluster_id INTEGER,
  categories JSON, ${TIMESTAMPS});
CREATE TABLE api_keys (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL,
  access_key VARCHAR(255) NOT NULL UNIQUE, user_id INTEGER NOT NULL REFERENCES users (id),
  ${TIMESTAMPS});
CREATE TABLE model_usages (
  id SERIAL PRIMARY KEY,
  user_id INTEGER REFERENCES users (id), model_id INTEGER REFERENCES models (id),
  date DATE NOT NULL,
  prompt_token_count BIGINT NOT NULL, completion_token_count BIGINT NOT NULL,
  request_count BIGINT NOT NULL, operation operationenum, access_key VARCHAR,
  model_name VARCHAR NOT NULL, provider_id INTEGER);`;
  }
  const fk = (table: string) =>
    v220 ? `INTEGER REFERENCES ${table} (id) ON DELETE SET NULL` : 'INTEGER';
  const apiKeyDigest = generation === 'main' ? 'secret_key_digest VARCHAR(255),' : '';
  return `${enums}
CREATE TYPE principaltype AS ENUM ('USER', 'ORG', 'GROUP', 'SYSTEM');
CREATE TABLE principals (
  id SERIAL PRIMARY KEY, kind principaltype NOT NULL, name VARCHAR(255),
  display_name VARCHAR(255), description VARCHAR(255), source VARCHAR(64),
  parent_principal_id INTEGER REFERENCES principals (id), is_admin BOOLEAN NOT NULL DEFAULT false,
  is_active BOOLEAN NOT NULL DEFAULT true, avatar_url VARCHAR(255), ${TIMESTAMPS},
  CONSTRAINT uix_principals_kind_name UNIQUE (kind, name));
CREATE TABLE models (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL, cluster_id INTEGER,
  owner_principal_id INTEGER REFERENCES principals (id), categories JSON, ${TIMESTAMPS});
CREATE TABLE model_providers (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL, config JSON,
  models JSON, owner_principal_id INTEGER REFERENCES principals (id), ${TIMESTAMPS});
CREATE TABLE model_routes (
  id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL, description VARCHAR(255), categories JSON,
  meta JSON, generic_proxy BOOLEAN, targets INTEGER, ready_targets INTEGER,
  access_policy VARCHAR(32), created_model_id INTEGER,
  owner_principal_id INTEGER NOT NULL REFERENCES principals (id), ${TIMESTAMPS});
CREATE INDEX ix_model_routes_created_model_id_name ON model_routes (created_model_id, name);
CREATE TABLE api_keys (
  id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL, description VARCHAR(255),
  access_key VARCHAR(255) NOT NULL, hashed_secret_key VARCHAR(255) NOT NULL DEFAULT '',
  ${apiKeyDigest}
  is_custom BOOLEAN NOT NULL DEFAULT false, expires_at TIMESTAMP,
  user_id INTEGER NOT NULL REFERENCES principals (id),
  owner_principal_id INTEGER ${v220 ? 'NOT NULL' : ''} REFERENCES principals (id) ON DELETE CASCADE,
  ${TIMESTAMPS},
  CONSTRAINT uix_user_owner_name UNIQUE (user_id, owner_principal_id, name));
CREATE UNIQUE INDEX ix_api_keys_access_key ON api_keys (access_key);
CREATE TABLE model_usages (
  id SERIAL NOT NULL,
  user_id ${fk('principals')},
  model_id ${fk('models')},
  date DATE NOT NULL,
  prompt_token_count BIGINT NOT NULL, completion_token_count BIGINT NOT NULL,
  request_count BIGINT NOT NULL,
  operation operationenum,
  access_key VARCHAR,
  model_name VARCHAR NOT NULL,
  provider_id INTEGER,
  cluster_name VARCHAR(255), user_name VARCHAR(255), api_key_name VARCHAR(255),
  provider_name VARCHAR(255), provider_type VARCHAR(255),
  api_key_id INTEGER, api_key_is_custom BOOLEAN,
  prompt_cached_token_count BIGINT NOT NULL DEFAULT 0,
  model_route_id ${fk('model_routes')},
  model_route_name VARCHAR(255),
  owner_principal_id INTEGER,
  consumer_principal_id INTEGER,
  ${v220 ? '' : 'consumer_name VARCHAR, consumer_principal_kind VARCHAR,'}
  CONSTRAINT model_usages_pkey PRIMARY KEY (id));
CREATE INDEX ix_model_usages_model_route_id ON model_usages (model_route_id);
CREATE INDEX ix_model_usages_consumer_principal_id ON model_usages (consumer_principal_id);
${detailsTable('model_usage_details', false, completed)}
${detailsTable('model_usage_details_archive', true, completed)}`;
}

/** Principals, one cluster, two models, a provider, a route, two keys: ids 1.. as written. */
const ENTITIES = `
INSERT INTO principals (kind, name, display_name, is_admin) VALUES
  ('ORG', 'default', 'Default', false),
  ('USER', 'admin', 'Admin', true),
  ('USER', 'alice', 'Alice', false),
  ('SYSTEM', 'system', 'System', false);
INSERT INTO clusters (name) VALUES ('gpu-east');
INSERT INTO models (name, cluster_id, owner_principal_id, categories) VALUES
  ('qwen3-8b', 1, 1, '["llm"]'), ('bge-m3', 1, 1, '["embedding"]');
INSERT INTO model_providers (name, config, models, owner_principal_id) VALUES
  ('openai-proxy', '{"type": "openai"}', '[{"name": "gpt-4o"}]', 1);
INSERT INTO model_routes (name, created_model_id, owner_principal_id) VALUES ('qwen3-8b', 1, 1);
INSERT INTO api_keys (name, access_key, is_custom, user_id, owner_principal_id) VALUES
  ('alice-laptop', 'ak_alice', false, 3, 1), ('admin-all', 'ak_admin', true, 2, NULL);`;

/** Usage GPUStack's own collector wrote before Tally: one rollup and its two audit rows. */
const USAGE = `
INSERT INTO model_usages (user_id, model_id, date, prompt_token_count, completion_token_count,
  request_count, operation, access_key, model_name, cluster_name, user_name, api_key_id,
  api_key_name, api_key_is_custom, prompt_cached_token_count, model_route_id, model_route_name,
  owner_principal_id, consumer_principal_id, consumer_name, consumer_principal_kind)
VALUES (3, 1, '2026-11-20', 30, 12, 2, 'CHAT_COMPLETION', 'ak_alice', 'qwen3-8b', 'gpu-east',
  'alice', 1, 'alice-laptop', false, 0, 1, 'qwen3-8b', 1, 1, 'default', 'org');
INSERT INTO model_usage_details (user_id, model_id, model_route_id, owner_principal_id,
  consumer_principal_id, cluster_id, api_key_id, user_name, model_route_name, cluster_name,
  api_key_name, access_key, model_name, api_key_is_custom, date, prompt_token_count,
  completion_token_count, prompt_cached_token_count, completed, operation, started_at,
  completed_at, created_at, updated_at)
VALUES
  (3, 1, 1, 1, 1, 1, 1, 'alice', 'qwen3-8b', 'gpu-east', 'alice-laptop', 'ak_alice', 'qwen3-8b',
   false, '2026-11-20', 10, 4, 0, true, 'CHAT_COMPLETION', '2026-11-20 10:00:00',
   '2026-11-20 10:00:02', '2026-11-20 10:00:02', '2026-11-20 10:00:02'),
  (3, 1, 1, 1, 1, 1, 1, 'alice', 'qwen3-8b', 'gpu-east', 'alice-laptop', 'ak_alice', 'qwen3-8b',
   false, '2026-11-20', 20, 8, 0, true, 'CHAT_COMPLETION', '2026-11-20 11:00:00',
   '2026-11-20 11:00:03', '2026-11-20 11:00:03', '2026-11-20 11:00:03');`;

/** Builds GPUStack's schema (and, unless `seed: false`, its rows) in the empty database at `url`. */
export async function buildGpustackDatabase(
  url: string,
  options: GpustackFixtureOptions = {},
): Promise<void> {
  const generation = options.generation ?? 'v2.2.3';
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query(schemaSql(generation, options.completed ?? true));
    if (options.seed !== false && generation !== 'v2.1') {
      // Before v2.2.2 every key has an owner; after, NULL marks an admin "All"-mode key.
      const entities = generation === 'v2.2.0' ? ENTITIES.replace('2, NULL)', '2, 1)') : ENTITIES;
      await client.query(entities);
      // GPUStack's usage rows only where their columns exist (attach refuses the rest anyway).
      const current = generation === 'v2.2.3' || generation === 'main';
      if (current && options.completed !== false) await client.query(USAGE);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    await client.end();
  }
}
