//! The tables, written by hand for both engines (see the README): keep in step with both migrations.
//!
//! `diesel print-schema` prints one engine's types (`Binary` vs `Bytea`, `Timestamptz`...); these
//! declarations use only types both engines and the `MultiConnection` backend share. The test
//! `every_column_reads_back_on_both_engines` loads every column of every table through these
//! declarations on each engine, so a drift between them and a migration fails a test.

diesel::table! {
    tenants (id) {
        id -> Text,
        name -> Text,
        created_us -> BigInt,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        tenant_id -> Text,
        secret_sha256 -> Binary,
        label -> Nullable<Text>,
        created_us -> BigInt,
        last_used_us -> Nullable<BigInt>,
        revoked_us -> Nullable<BigInt>,
    }
}

diesel::table! {
    users (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        user_name -> Text,
        user_name_ci -> Text,
        external_id -> Nullable<Text>,
        display_name -> Nullable<Text>,
        display_name_ci -> Nullable<Text>,
        active -> Nullable<Bool>,
        body -> Text,
        version -> BigInt,
        created_us -> BigInt,
        modified_us -> BigInt,
    }
}

diesel::table! {
    groups (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        display_name -> Text,
        display_name_ci -> Text,
        external_id -> Nullable<Text>,
        body -> Text,
        version -> BigInt,
        created_us -> BigInt,
        modified_us -> BigInt,
    }
}

diesel::table! {
    group_members (tenant_id, group_id, member_id) {
        tenant_id -> Text,
        group_id -> Text,
        member_id -> Text,
        member_type -> Nullable<Text>,
        member_display -> Nullable<Text>,
    }
}

diesel::table! {
    deliveries (id) {
        id -> Text,
        tenant_id -> Text,
        target -> Text,
        resource_type -> Text,
        resource_id -> Text,
        state -> Text,
        version -> BigInt,
        attempts -> Integer,
        due_us -> BigInt,
        lease_owner -> Nullable<Text>,
        lease_until_us -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_us -> BigInt,
        updated_us -> BigInt,
    }
}

diesel::table! {
    delivery_attempts (delivery_id, attempt) {
        delivery_id -> Text,
        attempt -> Integer,
        at_us -> BigInt,
        outcome -> Text,
        detail -> Nullable<Text>,
        duration_ms -> BigInt,
    }
}

diesel::table! {
    links (tenant_id, target, resource_type, local_id) {
        tenant_id -> Text,
        target -> Text,
        resource_type -> Text,
        local_id -> Text,
        remote_id -> Nullable<Text>,
        delivered_version -> Nullable<BigInt>,
        state -> Text,
        last_error -> Nullable<Text>,
        updated_us -> BigInt,
        delivered_payload -> Nullable<Text>,
        remote_key -> Nullable<Text>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        tenant_id -> Text,
        at_us -> BigInt,
        key_id -> Text,
        request_id -> Nullable<Text>,
        operation -> Text,
        resource_type -> Text,
        resource_id -> Text,
        version -> BigInt,
    }
}

diesel::table! {
    reconcile_runs (tenant_id, target) {
        tenant_id -> Text,
        target -> Text,
        started_us -> BigInt,
        running_owner -> Nullable<Text>,
        finished_us -> Nullable<BigInt>,
        triggered_by -> Text,
        mode -> Text,
        checked -> BigInt,
        in_sync -> BigInt,
        drifted -> BigInt,
        missing -> BigInt,
        orphans -> BigInt,
        unlinked -> BigInt,
        repairs -> BigInt,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    target_problems (tenant_id, target) {
        tenant_id -> Text,
        target -> Text,
        problems -> Text,
        running_previous -> BigInt,
        since_us -> BigInt,
    }
}

diesel::table! {
    target_health (tenant_id, target) {
        tenant_id -> Text,
        target -> Text,
        reason -> Text,
        detail -> Text,
        since_us -> BigInt,
        probes -> BigInt,
        next_probe_us -> BigInt,
    }
}

diesel::table! {
    operator_events (id) {
        id -> BigInt,
        at_us -> BigInt,
        actor -> Text,
        operation -> Text,
        tenant_id -> Nullable<Text>,
        tenant_name -> Nullable<Text>,
        target -> Nullable<Text>,
        detail -> Text,
    }
}

diesel::table! {
    maintenance (job) {
        job -> Text,
        owner -> Text,
        started_us -> BigInt,
    }
}

diesel::table! {
    rate_buckets (tenant_id, target) {
        tenant_id -> Text,
        target -> Text,
        tokens_milli -> BigInt,
        updated_us -> BigInt,
    }
}

diesel::joinable!(api_keys -> tenants (tenant_id));
diesel::joinable!(delivery_attempts -> deliveries (delivery_id));
diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    api_keys,
    users,
    groups,
    group_members,
    deliveries,
    delivery_attempts,
    links,
    audit_events,
    reconcile_runs,
    target_problems,
    target_health,
    operator_events,
    maintenance,
    rate_buckets
);
