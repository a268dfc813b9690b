// Invariant checks for tests: invariant 2 (src/db/checks.ts) as an assertion, and the
// outcome of a set of reports (committed or rejected).
import type { PrismaClient } from '../../src/db/client.js';
import { rollupMismatches } from '../../src/db/checks.js';

export { rollupMismatches };

/** Throws with the differing keys when invariant 2 does not hold. */
export async function assertRollupsMatchAudit(prisma: PrismaClient): Promise<void> {
  const mismatches = await rollupMismatches(prisma);
  if (mismatches.length > 0) {
    throw new Error(
      `invariant 2 broken for ${mismatches.length} rollup key(s): ${JSON.stringify(mismatches.slice(0, 5))}`,
    );
  }
}

export interface Outcome {
  committed: number;
  rejected: number;
}

/** How many of the given report ids have an audit row, and how many a rejection. */
export async function outcomeOf(prisma: PrismaClient, reportIds: string[]): Promise<Outcome> {
  const [row] = await prisma.$queryRaw<Outcome[]>`
    SELECT (SELECT count(*) FROM model_usage_details WHERE report_id = ANY(${reportIds}::text[]))::int AS committed,
           (SELECT count(*) FROM rejected_usage_reports WHERE report_id = ANY(${reportIds}::text[]))::int AS rejected`;
  return row ?? { committed: 0, rejected: 0 };
}
