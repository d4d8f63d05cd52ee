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
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    name        text NOT NULL,
    -- The pipeline a new tenant gets; at most one a tenant (created once, see the store).
    is_default  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CONSTRAINT pipelines_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX pipelines_one_default_key ON pipelines (tenant_id) WHERE is_default;

CREATE TABLE pipeline_stages (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    pipeline_id  uuid NOT NULL,
    name         text NOT NULL,
    position     bigint NOT NULL CHECK (position >= 0),
    probability  bigint NOT NULL CHECK (probability BETWEEN 0 AND 100),
    kind         text NOT NULL CHECK (kind IN ('open', 'won', 'lost')),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id),
    CONSTRAINT pipeline_stages_tenant_pipeline_id_key UNIQUE (tenant_id, pipeline_id, id),
    CONSTRAINT pipeline_stages_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX pipeline_stages_tenant_pipeline_position
    ON pipeline_stages (tenant_id, pipeline_id, position);

CREATE TABLE deals (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL REFERENCES tenants (id),
    title                text NOT NULL,
    -- In the currency's minor unit (cents).
    value_minor          bigint NOT NULL CHECK (value_minor >= 0),
    -- ISO 4217, upper case.
    currency             text NOT NULL CHECK (length(currency) = 3),
    contact_id           uuid NOT NULL,
    pipeline_id          uuid NOT NULL,
    stage_id             uuid NOT NULL,
    owner_id             uuid,
    -- A calendar date, YYYY-MM-DD (text, as on SQLite).
    expected_close_date  text,
    lost_reason          text,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id, stage_id)
        REFERENCES pipeline_stages (tenant_id, pipeline_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    CONSTRAINT deals_tenant_id_id_key UNIQUE (tenant_id, id)
);
-- The list's filters, each yielding its rows newest first (by id).
CREATE INDEX deals_tenant_pipeline ON deals (tenant_id, pipeline_id, id);
CREATE INDEX deals_tenant_stage ON deals (tenant_id, stage_id, id);
CREATE INDEX deals_tenant_owner ON deals (tenant_id, owner_id, id);
CREATE INDEX deals_tenant_contact ON deals (tenant_id, contact_id, id);

CREATE TABLE deal_stage_history (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    deal_id          uuid NOT NULL,
    -- NULL for the deal's creation.
    from_stage_id    uuid,
    from_stage_name  text,
    to_stage_id      uuid NOT NULL,
    to_stage_name    text NOT NULL,
    to_stage_kind    text NOT NULL CHECK (to_stage_kind IN ('open', 'won', 'lost')),
    -- The user who moved it (an API key acts for its creator; its id is kept too).
    changed_by       uuid,
    api_key_id       uuid,
    changed_at       timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id),
    FOREIGN KEY (tenant_id, changed_by) REFERENCES users (tenant_id, id)
);
CREATE INDEX deal_stage_history_tenant_deal ON deal_stage_history (tenant_id, deal_id, id);

ALTER TABLE pipelines ENABLE ROW LEVEL SECURITY;
ALTER TABLE pipelines FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON pipelines
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON pipelines TO palisade_app;

ALTER TABLE pipeline_stages ENABLE ROW LEVEL SECURITY;
ALTER TABLE pipeline_stages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON pipeline_stages
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON pipeline_stages TO palisade_app;

ALTER TABLE deals ENABLE ROW LEVEL SECURITY;
ALTER TABLE deals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON deals
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON deals TO palisade_app;

ALTER TABLE deal_stage_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE deal_stage_history FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON deal_stage_history
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON deal_stage_history TO palisade_app;
