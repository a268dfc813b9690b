// Attach mode: makes a database that GPUStack manages writable by Tally with only Tally's
// additions (src/db/attach-steps.ts), in ONE transaction that also records the steps in
// tally_attach_migrations. Refuses a schema older than the one Tally writes, and a rollup
// table that already holds duplicate keys unless asked to merge them first. Must never
// create a GPUStack table, and never drop or rewrite GPUStack data except that merge.
import type pg from 'pg';
import { ATTACH_STEPS, ATTACH_TABLE, ATTACH_TABLE_SQL, ROLLUP_KEY } from './attach-steps.js';
import {
  GpustackSchemaError,
  attachBlockers,
  describeAlembic,
  type SchemaProbe,
} from './gpustack-schema.js';

export interface AttachOptions {
  /** Merge duplicate rollup keys (counters summed into the lowest id) before adding the unique index. */
  mergeDuplicateRollups?: boolean;
}

export interface DuplicateRollups {
  /** Rollup keys held by more than one row. */
  keys: number;
  /** Rows holding those keys. */
  rows: number;
}

export interface AttachResult {
  /** What alembic_version says (reported; the schema itself was probed). */
  alembic: string;
  /** Steps applied by this run (empty when the database was up to date). */
  applied: string[];
  /** Duplicate rollup keys merged by this run, if any. */
  merged: DuplicateRollups | undefined;
}

/** model_usages holds duplicate rollup keys; the unique index cannot be added until they are merged. */
export class DuplicateRollupsError extends Error {
  override readonly name = 'DuplicateRollupsError';
  constructor(readonly duplicates: DuplicateRollups) {
    super(
      `model_usages holds ${duplicates.keys} rollup key(s) on more than one row (${duplicates.rows} rows in all; GPUStack's own writers can race), so Tally cannot add its unique rollup index.\n` +
        `Nothing was changed. Run \`npm run migrate -- --merge-duplicate-rollups\` to merge them in one transaction: each key's counters are summed into its lowest id and its other rows deleted (docs/operations.md, "Attach mode").`,
    );
  }
}

const KEY = ROLLUP_KEY.join(', ');

async function duplicateRollups(client: pg.ClientBase): Promise<DuplicateRollups> {
  // GROUP BY treats NULLs as equal, as the NULLS NOT DISTINCT index will.
  const { rows } = await client.query<DuplicateRollups>(
    `SELECT count(*)::int AS keys, coalesce(sum(n), 0)::int AS rows
     FROM (SELECT count(*) AS n FROM model_usages GROUP BY ${KEY} HAVING count(*) > 1) d`,
  );
  return rows[0] ?? { keys: 0, rows: 0 };
}

/**
 * Sums each duplicated key's counters into its lowest id and deletes its other rows. The
 * kept row's snapshot columns (names, route name) stay as they are.
 */
async function mergeDuplicateRollups(client: pg.ClientBase): Promise<void> {
  await client.query(
    `WITH ranked AS (
       SELECT id, min(id) OVER (PARTITION BY ${KEY}) AS keep_id FROM model_usages
     ),
     sums AS (
       SELECT r.keep_id,
              sum(u.prompt_token_count) AS p, sum(u.completion_token_count) AS c,
              sum(u.prompt_cached_token_count) AS k, sum(u.request_count) AS r
       FROM model_usages u JOIN ranked r ON r.id = u.id
       GROUP BY r.keep_id HAVING count(*) > 1
     ),
     kept AS (
       UPDATE model_usages u
       SET prompt_token_count = s.p, completion_token_count = s.c,
           prompt_cached_token_count = s.k, request_count = s.r
       FROM sums s WHERE u.id = s.keep_id
       RETURNING u.id
     )
     DELETE FROM model_usages u USING ranked r
     WHERE u.id = r.id AND r.id <> r.keep_id`,
  );
}

async function appliedSteps(client: pg.ClientBase): Promise<Set<string>> {
  const { rows } = await client.query<{ name: string }>(`SELECT name FROM ${ATTACH_TABLE}`);
  return new Set(rows.map((r) => r.name));
}

/**
 * Applies the attach steps a GPUStack database lacks. Everything happens in one
 * transaction, with model_usages locked against writers (so no duplicate key can appear
 * between the check and the index): on any refusal or error nothing has changed.
 */
export async function attach(
  client: pg.Client,
  probe: SchemaProbe,
  options: AttachOptions = {},
): Promise<AttachResult> {
  const alembic = describeAlembic(probe.alembicVersion);
  const blockers = attachBlockers(probe);
  if (blockers.length > 0) throw new GpustackSchemaError(alembic, blockers);

  await client.query('BEGIN');
  try {
    await client.query(ATTACH_TABLE_SQL);
    // Serialises concurrent `npm run migrate` runs too: the second sees the first's rows.
    await client.query('LOCK TABLE model_usages IN SHARE ROW EXCLUSIVE MODE');
    const done = await appliedSteps(client);
    const pending = ATTACH_STEPS.filter((s) => !done.has(s.name));
    let merged: DuplicateRollups | undefined;
    if (pending.length > 0) {
      const duplicates = await duplicateRollups(client);
      if (duplicates.keys > 0) {
        if (options.mergeDuplicateRollups !== true) throw new DuplicateRollupsError(duplicates);
        await mergeDuplicateRollups(client);
        merged = duplicates;
      }
    }
    for (const step of pending) {
      for (const statement of step.statements) await client.query(statement);
      await client.query(
        `INSERT INTO ${ATTACH_TABLE} (name, gpustack_alembic_version) VALUES ($1, $2)`,
        [step.name, probe.alembicVersion ?? null],
      );
    }
    await client.query('COMMIT');
    return { alembic, applied: pending.map((s) => s.name), merged };
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}
