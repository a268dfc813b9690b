// Attach mode's steps: Tally's additions to a database GPUStack's migrations manage, and
// the table that records which of them a database has. Read by `npm run migrate` (to
// apply them) and by every role's start-up check (to find those not yet applied). Pure
// data: must never create, alter or drop a GPUStack table beyond these additions.

/** Tally's bookkeeping in attach mode: one row per step applied (Prisma's is for fresh databases). */
export const ATTACH_TABLE = 'tally_attach_migrations';

export const ATTACH_TABLE_SQL = `
CREATE TABLE IF NOT EXISTS ${ATTACH_TABLE} (
  name TEXT PRIMARY KEY,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  gpustack_alembic_version TEXT
)`;

/** GPUStack's DB lookup key (create_or_update_model_usage): the rollup key, in index order. */
export const ROLLUP_KEY = [
  'date',
  'model_id',
  'model_name',
  'provider_id',
  'provider_name',
  'provider_type',
  'model_route_id',
  'user_id',
  'access_key',
  'operation',
  'consumer_principal_id',
] as const;

export interface AttachStep {
  /** Sorts after every earlier step; recorded in tally_attach_migrations. */
  name: string;
  /** Statements, run in one transaction with the bookkeeping row; each safe to run twice. */
  statements: string[];
}

/**
 * Every step, oldest first. A new Prisma migration that changes a table GPUStack shares
 * needs a step here too (fresh and attached databases must end with the same additions).
 */
export const ATTACH_STEPS: readonly AttachStep[] = [
  {
    name: '20261128000000_exactly_once',
    statements: [
      ...['model_usage_details', 'model_usage_details_archive'].flatMap((table) => [
        `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS report_id VARCHAR(128)`,
        `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS request_count BIGINT NOT NULL DEFAULT 1`,
        `CREATE UNIQUE INDEX IF NOT EXISTS ${table}_report_id_key ON ${table} (report_id)`,
      ]),
      `CREATE UNIQUE INDEX IF NOT EXISTS model_usages_rollup_key ON model_usages
         (${ROLLUP_KEY.join(', ')}) NULLS NOT DISTINCT`,
      `CREATE TABLE IF NOT EXISTS rejected_usage_reports (
         id BIGSERIAL NOT NULL,
         report_id TEXT NOT NULL,
         reason TEXT NOT NULL,
         message TEXT NOT NULL,
         raw_report TEXT NOT NULL,
         partition INTEGER,
         rejected_at TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
         CONSTRAINT rejected_usage_reports_pkey PRIMARY KEY (id))`,
      `CREATE UNIQUE INDEX IF NOT EXISTS rejected_usage_reports_report_id_key
         ON rejected_usage_reports (report_id)`,
      `CREATE INDEX IF NOT EXISTS rejected_usage_reports_reason_rejected_at_idx
         ON rejected_usage_reports (reason, rejected_at)`,
    ],
  },
];

export const ATTACH_STEP_NAMES: readonly string[] = ATTACH_STEPS.map((s) => s.name);
