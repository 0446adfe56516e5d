-- The initial schema, PostgreSQL dialect. Keep it column-for-column equal to ../../sqlite/*_init and
-- to src/schema.rs: one set of diesel queries runs on both. Timestamps are microseconds since the
-- Unix epoch (BIGINT) so that comparisons are exact and engine-independent; JSON bodies are TEXT.
-- Every text column that filters compare or sort on is COLLATE "C": byte order of UTF-8, which is
-- code-point order, as in Rust and in SQLite's BINARY collation, whatever the database's locale.
-- (It also lets LIKE 'prefix%' use the btree indexes.)

CREATE TABLE tenants (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_us  BIGINT  NOT NULL
);

CREATE TABLE api_keys (
    id             TEXT    NOT NULL PRIMARY KEY,
    tenant_id      TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    secret_sha256  BYTEA   NOT NULL,
    label          TEXT,
    created_us     BIGINT  NOT NULL,
    last_used_us   BIGINT,
    revoked_us     BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE users (
    tenant_id        TEXT                NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               TEXT COLLATE "C"    NOT NULL,
    user_name        TEXT COLLATE "C"    NOT NULL,
    user_name_ci     TEXT COLLATE "C"    NOT NULL,
    external_id      TEXT COLLATE "C",
    display_name     TEXT COLLATE "C",
    display_name_ci  TEXT COLLATE "C",
    active           BOOLEAN,
    body             TEXT                NOT NULL,
    version          BIGINT              NOT NULL,
    created_us       BIGINT              NOT NULL,
    modified_us      BIGINT              NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX users_user_name_ci ON users (tenant_id, user_name_ci);
CREATE INDEX users_external_id ON users (tenant_id, external_id);
CREATE INDEX users_display_name_ci ON users (tenant_id, display_name_ci);
CREATE INDEX users_modified ON users (tenant_id, modified_us);
CREATE INDEX users_created ON users (tenant_id, created_us, id);

CREATE TABLE groups (
    tenant_id        TEXT                NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               TEXT COLLATE "C"    NOT NULL,
    display_name     TEXT COLLATE "C"    NOT NULL,
    display_name_ci  TEXT COLLATE "C"    NOT NULL,
    external_id      TEXT COLLATE "C",
    body             TEXT                NOT NULL,
    version          BIGINT              NOT NULL,
    created_us       BIGINT              NOT NULL,
    modified_us      BIGINT              NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX groups_display_name_ci ON groups (tenant_id, display_name_ci);
CREATE INDEX groups_external_id ON groups (tenant_id, external_id);
CREATE INDEX groups_modified ON groups (tenant_id, modified_us);
CREATE INDEX groups_created ON groups (tenant_id, created_us, id);

-- One row per membership, so that adding members to a large group never rewrites a blob.
-- member_id is a user's or a group's id; no foreign key to either, since it may name both.
CREATE TABLE group_members (
    tenant_id    TEXT               NOT NULL,
    group_id     TEXT COLLATE "C"   NOT NULL,
    member_id    TEXT COLLATE "C"   NOT NULL,
    member_type  TEXT,
    PRIMARY KEY (tenant_id, group_id, member_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX group_members_member ON group_members (tenant_id, member_id);
