-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateTable
CREATE TABLE "model_usages" (
    "id" BIGSERIAL NOT NULL,
    "date" DATE NOT NULL,
    "model_id" INTEGER,
    "model_name" TEXT NOT NULL,
    "provider_id" INTEGER,
    "provider_name" TEXT,
    "provider_type" TEXT,
    "cluster_name" TEXT,
    "user_id" INTEGER,
    "user_name" TEXT,
    "api_key_id" INTEGER,
    "api_key_name" TEXT,
    "access_key" TEXT,
    "api_key_is_custom" BOOLEAN,
    "operation" TEXT,
    "prompt_token_count" BIGINT NOT NULL DEFAULT 0,
    "completion_token_count" BIGINT NOT NULL DEFAULT 0,
    "prompt_cached_token_count" BIGINT NOT NULL DEFAULT 0,
    "request_count" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "model_usages_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "model_usage_details" (
    "id" BIGSERIAL NOT NULL,
    "report_id" TEXT NOT NULL,
    "date" DATE NOT NULL,
    "model_id" INTEGER,
    "model_name" TEXT NOT NULL,
    "model_route_id" INTEGER,
    "model_route_name" TEXT,
    "provider_id" INTEGER,
    "provider_name" TEXT,
    "provider_type" TEXT,
    "cluster_id" INTEGER,
    "cluster_name" TEXT,
    "user_id" INTEGER,
    "user_name" TEXT,
    "api_key_id" INTEGER,
    "api_key_name" TEXT,
    "access_key" TEXT,
    "api_key_is_custom" BOOLEAN,
    "operation" TEXT,
    "prompt_token_count" BIGINT NOT NULL DEFAULT 0,
    "completion_token_count" BIGINT NOT NULL DEFAULT 0,
    "prompt_cached_token_count" BIGINT NOT NULL DEFAULT 0,
    "request_count" BIGINT NOT NULL DEFAULT 1,
    "started_at" TIMESTAMPTZ(3),
    "completed_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "deleted_at" TIMESTAMPTZ(3),

    CONSTRAINT "model_usage_details_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rejected_usage_reports" (
    "id" BIGSERIAL NOT NULL,
    "report_id" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "message" TEXT NOT NULL,
    "raw_report" TEXT NOT NULL,
    "partition" INTEGER,
    "rejected_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "rejected_usage_reports_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "models" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "cluster_id" INTEGER,
    "categories" JSONB NOT NULL DEFAULT '[]',

    CONSTRAINT "models_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "model_providers" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "models" JSONB NOT NULL DEFAULT '[]',
    "config" JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT "model_providers_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "model_routes" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,

    CONSTRAINT "model_routes_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "users" (
    "id" SERIAL NOT NULL,
    "username" TEXT NOT NULL,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_keys" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "access_key" TEXT NOT NULL,
    "is_custom" BOOLEAN NOT NULL DEFAULT false,

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "clusters" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,

    CONSTRAINT "clusters_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "model_usages_date_idx" ON "model_usages"("date");

-- CreateIndex
CREATE INDEX "model_usages_model_id_date_idx" ON "model_usages"("model_id", "date");

-- CreateIndex
CREATE INDEX "model_usages_user_id_date_idx" ON "model_usages"("user_id", "date");

-- CreateIndex
CREATE INDEX "model_usages_api_key_id_date_idx" ON "model_usages"("api_key_id", "date");

-- CreateIndex
CREATE UNIQUE INDEX "model_usage_details_report_id_key" ON "model_usage_details"("report_id");

-- CreateIndex
CREATE INDEX "model_usage_details_date_idx" ON "model_usage_details"("date");

-- CreateIndex
CREATE INDEX "model_usage_details_model_id_date_idx" ON "model_usage_details"("model_id", "date");

-- CreateIndex
CREATE INDEX "model_usage_details_user_id_date_idx" ON "model_usage_details"("user_id", "date");

-- CreateIndex
CREATE INDEX "model_usage_details_api_key_id_date_idx" ON "model_usage_details"("api_key_id", "date");

-- CreateIndex
CREATE INDEX "model_usage_details_model_route_id_date_idx" ON "model_usage_details"("model_route_id", "date");

-- CreateIndex
CREATE UNIQUE INDEX "rejected_usage_reports_report_id_key" ON "rejected_usage_reports"("report_id");

-- CreateIndex
CREATE INDEX "rejected_usage_reports_reason_rejected_at_idx" ON "rejected_usage_reports"("reason", "rejected_at");

-- CreateIndex
CREATE UNIQUE INDEX "api_keys_access_key_key" ON "api_keys"("access_key");

-- Rollup key, NULL-safe: several key columns are nullable, and a plain unique index
-- would let two workers insert the same key twice when one of them is NULL. Prisma's
-- schema language cannot express NULLS NOT DISTINCT, so it is written here by hand.
ALTER TABLE "model_usages" ADD CONSTRAINT "model_usages_rollup_key"
    UNIQUE NULLS NOT DISTINCT ("date", "model_id", "model_name", "provider_id", "provider_name", "provider_type", "user_id", "access_key", "operation");
