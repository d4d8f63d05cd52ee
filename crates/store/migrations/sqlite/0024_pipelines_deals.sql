-- Pipelines and deals. A pipeline is an ordered list of stages (`position` 0, 1, …); a deal
-- sits in one stage of its pipeline, and its status is that stage's kind (open, won, lost).
-- Every table carries tenant_id and every key between them includes it, so a row can only
-- point at rows of its own tenant. `deals (tenant_id, pipeline_id, stage_id)` references the
-- stage together with its pipeline: a deal's stage always belongs to the deal's pipeline.
--
-- The stage history keeps the stages' ids and names as they were, without a key to the
-- stages: a stage can be removed from a pipeline later (once no deal is in it) and its
-- history stays readable.

CREATE TABLE pipelines (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    -- The pipeline a new tenant gets; at most one a tenant (created once, see the store).
    is_default  INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX pipelines_tenant_id_id_key ON pipelines (tenant_id, id);
CREATE UNIQUE INDEX pipelines_one_default_key ON pipelines (tenant_id) WHERE is_default = 1;

CREATE TABLE pipeline_stages (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    pipeline_id  BLOB NOT NULL,
    name         TEXT NOT NULL,
    position     INTEGER NOT NULL CHECK (position >= 0),
    probability  INTEGER NOT NULL CHECK (probability BETWEEN 0 AND 100),
    kind         TEXT NOT NULL CHECK (kind IN ('open', 'won', 'lost')),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id)
);
CREATE UNIQUE INDEX pipeline_stages_tenant_pipeline_id_key
    ON pipeline_stages (tenant_id, pipeline_id, id);
CREATE UNIQUE INDEX pipeline_stages_tenant_id_id_key ON pipeline_stages (tenant_id, id);
CREATE INDEX pipeline_stages_tenant_pipeline_position
    ON pipeline_stages (tenant_id, pipeline_id, position);

CREATE TABLE deals (
    id                   BLOB PRIMARY KEY NOT NULL,
    tenant_id            BLOB NOT NULL REFERENCES tenants (id),
    title                TEXT NOT NULL,
    -- In the currency's minor unit (cents).
    value_minor          INTEGER NOT NULL CHECK (value_minor >= 0),
    -- ISO 4217, upper case.
    currency             TEXT NOT NULL CHECK (length(currency) = 3),
    contact_id           BLOB NOT NULL,
    pipeline_id          BLOB NOT NULL,
    stage_id             BLOB NOT NULL,
    owner_id             BLOB,
    -- A calendar date, YYYY-MM-DD.
    expected_close_date  TEXT,
    lost_reason          TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id, stage_id)
        REFERENCES pipeline_stages (tenant_id, pipeline_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX deals_tenant_id_id_key ON deals (tenant_id, id);
-- The list's filters, each yielding its rows newest first (by id).
CREATE INDEX deals_tenant_pipeline ON deals (tenant_id, pipeline_id, id);
CREATE INDEX deals_tenant_stage ON deals (tenant_id, stage_id, id);
CREATE INDEX deals_tenant_owner ON deals (tenant_id, owner_id, id);
CREATE INDEX deals_tenant_contact ON deals (tenant_id, contact_id, id);

CREATE TABLE deal_stage_history (
    id               BLOB PRIMARY KEY NOT NULL,
    tenant_id        BLOB NOT NULL REFERENCES tenants (id),
    deal_id          BLOB NOT NULL,
    -- NULL for the deal's creation.
    from_stage_id    BLOB,
    from_stage_name  TEXT,
    to_stage_id      BLOB NOT NULL,
    to_stage_name    TEXT NOT NULL,
    to_stage_kind    TEXT NOT NULL CHECK (to_stage_kind IN ('open', 'won', 'lost')),
    -- The user who moved it (an API key acts for its creator; its id is kept too).
    changed_by       BLOB,
    api_key_id       BLOB,
    changed_at       TEXT NOT NULL,
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id),
    FOREIGN KEY (tenant_id, changed_by) REFERENCES users (tenant_id, id)
);
CREATE INDEX deal_stage_history_tenant_deal ON deal_stage_history (tenant_id, deal_id, id);
