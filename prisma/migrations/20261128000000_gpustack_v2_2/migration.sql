-- Upgrades Tally’s tables from GPUStack’s 2026-05-07 usage schema to GPUStack v2.2.x’s
-- (docs/schema.md): users become principals, entities gain owners, routes their base model,
-- the usage tables gain route, owner, consumer and completed columns, and the rollup key
-- gains model_route_id and consumer_principal_id. Existing rows are kept.

-- Enums, as GPUStack creates them (member names stored).
CREATE TYPE "operationenum" AS ENUM ('COMPLETION', 'CHAT_COMPLETION', 'EMBEDDING', 'RERANK', 'IMAGE_GENERATION', 'AUDIO_SPEECH', 'AUDIT_TRANSCRIPTION');
CREATE TYPE "principaltype" AS ENUM ('USER', 'ORG', 'GROUP', 'SYSTEM');

-- users -> principals (GPUStack 7c5e3f9a2d18): username -> name, every existing row a USER.
ALTER TABLE "users" RENAME TO "principals";
ALTER TABLE "principals" RENAME CONSTRAINT "users_pkey" TO "principals_pkey";
ALTER SEQUENCE "users_id_seq" RENAME TO "principals_id_seq";
ALTER TABLE "principals" RENAME COLUMN "username" TO "name";
ALTER TABLE "principals"
    ALTER COLUMN "name" TYPE VARCHAR,
    ALTER COLUMN "name" DROP NOT NULL,
    ADD COLUMN "kind" "principaltype" NOT NULL DEFAULT 'USER',
    ADD COLUMN "display_name" VARCHAR,
    ADD COLUMN "description" VARCHAR,
    ADD COLUMN "source" VARCHAR(64),
    ADD COLUMN "parent_principal_id" INTEGER,
    ADD COLUMN "is_admin" BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN "is_active" BOOLEAN NOT NULL DEFAULT true,
    ADD COLUMN "avatar_url" VARCHAR,
    ADD COLUMN "created_at" TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    ADD COLUMN "updated_at" TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    ADD COLUMN "deleted_at" TIMESTAMP(6);
ALTER TABLE "principals" ALTER COLUMN "kind" DROP DEFAULT;
CREATE UNIQUE INDEX "uix_principals_kind_name" ON "principals"("kind", "name");

-- Routes and API keys now need a principal (routes an owner, keys a user). Rows from before
-- the upgrade have none on record: they get GPUStack’s platform Org (kind ORG, name
-- default), created only when such rows exist. Reassign them with `npm run entities`.
-- Ids written explicitly (e.g. by `npm run entities`) may be ahead of the sequence.
INSERT INTO "principals" ("id", "kind", "name", "display_name")
SELECT (SELECT COALESCE(max("id"), 0) + 1 FROM "principals"), 'ORG', 'default', 'Default'
WHERE (EXISTS (SELECT 1 FROM "model_routes") OR EXISTS (SELECT 1 FROM "api_keys"))
  AND NOT EXISTS (SELECT 1 FROM "principals" WHERE "kind" = 'ORG' AND "name" = 'default');
SELECT setval('principals_id_seq', max("id")) FROM "principals" HAVING max("id") IS NOT NULL;

-- api_keys: user and owner (GPUStack 8bf38a6bb3b5, 7c5e3f9a2d18, owner nullable c4d7e8f9a0b1).
ALTER TABLE "api_keys"
    ALTER COLUMN "name" TYPE VARCHAR,
    ALTER COLUMN "access_key" TYPE VARCHAR,
    ADD COLUMN "user_id" INTEGER,
    ADD COLUMN "owner_principal_id" INTEGER;
UPDATE "api_keys" SET "user_id" = (SELECT "id" FROM "principals" WHERE "kind" = 'ORG' AND "name" = 'default');
ALTER TABLE "api_keys" ALTER COLUMN "user_id" SET NOT NULL;
ALTER INDEX "api_keys_access_key_key" RENAME TO "ix_api_keys_access_key";
CREATE UNIQUE INDEX "uix_user_owner_name" ON "api_keys"("user_id", "owner_principal_id", "name");
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "principals"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_owner_principal_id_fkey" FOREIGN KEY ("owner_principal_id") REFERENCES "principals"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- model_routes: base model and owner.
ALTER TABLE "model_routes"
    ALTER COLUMN "name" TYPE VARCHAR,
    ADD COLUMN "created_model_id" INTEGER,
    ADD COLUMN "owner_principal_id" INTEGER;
UPDATE "model_routes" SET "owner_principal_id" = (SELECT "id" FROM "principals" WHERE "kind" = 'ORG' AND "name" = 'default');
ALTER TABLE "model_routes" ALTER COLUMN "owner_principal_id" SET NOT NULL;
CREATE UNIQUE INDEX "uix_model_routes_owner_name" ON "model_routes"("owner_principal_id", "name");
CREATE INDEX "ix_model_routes_created_model_id_name" ON "model_routes"("created_model_id", "name");
ALTER TABLE "model_routes" ADD CONSTRAINT "model_routes_owner_principal_id_fkey" FOREIGN KEY ("owner_principal_id") REFERENCES "principals"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- models, model_providers, clusters: owners, GPUStack’s column types.
ALTER TABLE "models"
    ALTER COLUMN "name" TYPE VARCHAR,
    ALTER COLUMN "categories" DROP DEFAULT,
    ALTER COLUMN "categories" TYPE JSON USING "categories"::json,
    ALTER COLUMN "categories" SET DEFAULT '[]',
    ADD COLUMN "owner_principal_id" INTEGER;
ALTER TABLE "model_providers"
    ALTER COLUMN "name" TYPE VARCHAR,
    ALTER COLUMN "models" DROP DEFAULT,
    ALTER COLUMN "models" TYPE JSON USING "models"::json,
    ALTER COLUMN "models" SET DEFAULT '[]',
    ALTER COLUMN "config" DROP DEFAULT,
    ALTER COLUMN "config" TYPE JSON USING "config"::json,
    ALTER COLUMN "config" SET DEFAULT '{}',
    ADD COLUMN "owner_principal_id" INTEGER;
ALTER TABLE "clusters" ALTER COLUMN "name" TYPE VARCHAR;

-- model_usages (GPUStack 8bf38a6bb3b5, 7c5e3f9a2d18, c4d7e8f9a0b1).
ALTER TABLE "model_usages" DROP CONSTRAINT "model_usages_rollup_key";
DROP INDEX "model_usages_date_idx";
DROP INDEX "model_usages_model_id_date_idx";
DROP INDEX "model_usages_user_id_date_idx";
DROP INDEX "model_usages_api_key_id_date_idx";
ALTER TABLE "model_usages"
    ALTER COLUMN "id" TYPE INTEGER,
    ALTER COLUMN "model_name" TYPE VARCHAR,
    ALTER COLUMN "access_key" TYPE VARCHAR,
    ALTER COLUMN "provider_name" TYPE VARCHAR(255),
    ALTER COLUMN "provider_type" TYPE VARCHAR(255),
    ALTER COLUMN "cluster_name" TYPE VARCHAR(255),
    ALTER COLUMN "user_name" TYPE VARCHAR(255),
    ALTER COLUMN "api_key_name" TYPE VARCHAR(255),
    ALTER COLUMN "operation" TYPE "operationenum" USING upper("operation")::"operationenum",
    ALTER COLUMN "prompt_token_count" DROP DEFAULT,
    ALTER COLUMN "completion_token_count" DROP DEFAULT,
    ALTER COLUMN "request_count" DROP DEFAULT,
    ADD COLUMN "model_route_id" INTEGER,
    ADD COLUMN "model_route_name" VARCHAR(255),
    ADD COLUMN "owner_principal_id" INTEGER,
    ADD COLUMN "consumer_principal_id" INTEGER,
    ADD COLUMN "consumer_name" VARCHAR,
    ADD COLUMN "consumer_principal_kind" VARCHAR;
ALTER SEQUENCE "model_usages_id_seq" AS INTEGER;
CREATE INDEX "ix_model_usages_model_route_id" ON "model_usages"("model_route_id");
CREATE INDEX "ix_model_usages_consumer_principal_id" ON "model_usages"("consumer_principal_id");

-- model_usage_details (GPUStack 8bf38a6bb3b5): naive-UTC timestamps, owner, consumer,
-- completed, operation as the enum member’s name. Rows from before the upgrade did not
-- record `completed`: GPUStack’s server default (false) applies to them.
DROP INDEX "model_usage_details_date_idx";
DROP INDEX "model_usage_details_model_id_date_idx";
DROP INDEX "model_usage_details_user_id_date_idx";
DROP INDEX "model_usage_details_api_key_id_date_idx";
DROP INDEX "model_usage_details_model_route_id_date_idx";
ALTER TABLE "model_usage_details"
    ALTER COLUMN "id" TYPE INTEGER,
    ALTER COLUMN "report_id" TYPE VARCHAR(128),
    ALTER COLUMN "report_id" DROP NOT NULL,
    ALTER COLUMN "model_name" TYPE VARCHAR(255),
    ALTER COLUMN "model_route_name" TYPE VARCHAR(255),
    ALTER COLUMN "provider_name" TYPE VARCHAR(255),
    ALTER COLUMN "provider_type" TYPE VARCHAR(255),
    ALTER COLUMN "cluster_name" TYPE VARCHAR(255),
    ALTER COLUMN "user_name" TYPE VARCHAR(255),
    ALTER COLUMN "api_key_name" TYPE VARCHAR(255),
    ALTER COLUMN "access_key" TYPE VARCHAR(255),
    ALTER COLUMN "operation" TYPE VARCHAR(32) USING upper("operation"),
    ALTER COLUMN "prompt_token_count" DROP DEFAULT,
    ALTER COLUMN "completion_token_count" DROP DEFAULT,
    ALTER COLUMN "started_at" TYPE TIMESTAMP(6) USING "started_at" AT TIME ZONE 'UTC',
    ALTER COLUMN "completed_at" TYPE TIMESTAMP(6) USING "completed_at" AT TIME ZONE 'UTC',
    ALTER COLUMN "created_at" TYPE TIMESTAMP(6) USING "created_at" AT TIME ZONE 'UTC',
    ALTER COLUMN "updated_at" TYPE TIMESTAMP(6) USING "updated_at" AT TIME ZONE 'UTC',
    ALTER COLUMN "deleted_at" TYPE TIMESTAMP(6) USING "deleted_at" AT TIME ZONE 'UTC',
    ADD COLUMN "owner_principal_id" INTEGER,
    ADD COLUMN "consumer_principal_id" INTEGER,
    ADD COLUMN "completed" BOOLEAN NOT NULL DEFAULT false;
ALTER SEQUENCE "model_usage_details_id_seq" AS INTEGER;
CREATE INDEX "ix_model_usage_details_date" ON "model_usage_details"("date");
CREATE INDEX "ix_model_usage_details_model_id" ON "model_usage_details"("model_id");
CREATE INDEX "ix_model_usage_details_user_id" ON "model_usage_details"("user_id");
CREATE INDEX "ix_model_usage_details_consumer_principal_id" ON "model_usage_details"("consumer_principal_id");
CREATE INDEX "ix_model_usage_details_api_key_id" ON "model_usage_details"("api_key_id");
CREATE INDEX "ix_model_usage_details_model_route_id" ON "model_usage_details"("model_route_id");
CREATE INDEX "ix_model_usage_details_completed_at" ON "model_usage_details"("completed_at");
CREATE INDEX "ix_model_usage_details_created_at" ON "model_usage_details"("created_at");

-- model_usage_details_archive (GPUStack 8bf38a6bb3b5): the same columns, id without default.
CREATE TABLE "model_usage_details_archive" (
    "id" INTEGER NOT NULL,
    "report_id" VARCHAR(128),
    "user_id" INTEGER,
    "user_name" VARCHAR(255),
    "model_id" INTEGER,
    "model_name" VARCHAR(255) NOT NULL,
    "model_route_id" INTEGER,
    "model_route_name" VARCHAR(255),
    "owner_principal_id" INTEGER,
    "consumer_principal_id" INTEGER,
    "provider_id" INTEGER,
    "provider_name" VARCHAR(255),
    "provider_type" VARCHAR(255),
    "cluster_id" INTEGER,
    "cluster_name" VARCHAR(255),
    "api_key_id" INTEGER,
    "api_key_name" VARCHAR(255),
    "api_key_is_custom" BOOLEAN,
    "access_key" VARCHAR(255),
    "date" DATE NOT NULL,
    "prompt_token_count" BIGINT NOT NULL,
    "completion_token_count" BIGINT NOT NULL,
    "prompt_cached_token_count" BIGINT NOT NULL DEFAULT 0,
    "request_count" BIGINT NOT NULL DEFAULT 1,
    "completed" BOOLEAN NOT NULL DEFAULT false,
    "operation" VARCHAR(32),
    "started_at" TIMESTAMP(6),
    "completed_at" TIMESTAMP(6),
    "created_at" TIMESTAMP(6) NOT NULL,
    "updated_at" TIMESTAMP(6) NOT NULL,
    "deleted_at" TIMESTAMP(6),

    CONSTRAINT "model_usage_details_archive_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "model_usage_details_archive_report_id_key" ON "model_usage_details_archive"("report_id");
CREATE INDEX "ix_model_usage_details_archive_date" ON "model_usage_details_archive"("date");
CREATE INDEX "ix_model_usage_details_archive_model_id" ON "model_usage_details_archive"("model_id");
CREATE INDEX "ix_model_usage_details_archive_user_id" ON "model_usage_details_archive"("user_id");
CREATE INDEX "ix_model_usage_details_archive_consumer_principal_id" ON "model_usage_details_archive"("consumer_principal_id");
CREATE INDEX "ix_model_usage_details_archive_api_key_id" ON "model_usage_details_archive"("api_key_id");
CREATE INDEX "ix_model_usage_details_archive_model_route_id" ON "model_usage_details_archive"("model_route_id");
CREATE INDEX "ix_model_usage_details_archive_completed_at" ON "model_usage_details_archive"("completed_at");
CREATE INDEX "ix_model_usage_details_archive_created_at" ON "model_usage_details_archive"("created_at");

-- The rollup key: GPUStack’s DB lookup key (create_or_update_model_usage), NULL-safe. GPUStack
-- has no unique index, Tally’s upsert needs one so concurrent commits cannot insert a key
-- twice. Prisma’s schema language cannot express NULLS NOT DISTINCT, so it is written here.
CREATE UNIQUE INDEX "model_usages_rollup_key" ON "model_usages"
    ("date", "model_id", "model_name", "provider_id", "provider_name", "provider_type",
     "model_route_id", "user_id", "access_key", "operation", "consumer_principal_id")
    NULLS NOT DISTINCT;
