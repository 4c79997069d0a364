// @generated automatically by Diesel CLI.

diesel::table! {
    airports (code) {
        code -> Text,
        runways -> Int4,
        takeoffs_per_hour -> Nullable<Int4>,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    events (id) {
        id -> Uuid,
        #[sql_name = "type"]
        event_type -> Text,
        occurred_at -> Timestamptz,
        post -> Nullable<Jsonb>,
    }
}

diesel::table! {
    export_chunks (operation_id, run, seq) {
        operation_id -> Uuid,
        run -> Int4,
        seq -> Int4,
        data -> Bytea,
    }
}

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> Uuid,
        key -> Text,
        request_hash -> Bytea,
        response_status -> Nullable<Int2>,
        response_headers -> Nullable<Text>,
        response_body -> Nullable<Bytea>,
        locked_until -> Timestamptz,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    jobs (id) {
        id -> Uuid,
        kind -> Text,
        payload -> Jsonb,
        state -> Text,
        attempts -> Int4,
        run_at -> Timestamptz,
        locked_by -> Nullable<Text>,
        locked_until -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        traceparent -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    operations (id) {
        id -> Uuid,
        kind -> Text,
        owner_id -> Uuid,
        api_version -> Text,
        status -> Text,
        percent_complete -> Int4,
        error -> Nullable<Jsonb>,
        result_count -> Nullable<Int8>,
        run -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    posts (id) {
        id -> Uuid,
        author_id -> Uuid,
        title -> Text,
        content -> Text,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        author_username -> Text,
        status -> Text,
        published_at -> Nullable<Timestamptz>,
        tags -> Array<Text>,
    }
}

diesel::table! {
    post_tags (tag, post_id) {
        tag -> Text,
        post_id -> Uuid,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        family_id -> Uuid,
        token_hash -> Bytea,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        replaced_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        username -> Text,
        password_hash -> Text,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        role -> Text,
        is_active -> Bool,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(export_chunks -> operations (operation_id));
diesel::joinable!(idempotency_keys -> users (user_id));
diesel::joinable!(operations -> users (owner_id));
diesel::joinable!(post_tags -> posts (post_id));
diesel::joinable!(posts -> users (author_id));
diesel::joinable!(refresh_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    airports,
    events,
    export_chunks,
    idempotency_keys,
    jobs,
    operations,
    post_tags,
    posts,
    refresh_tokens,
    users,
);

diesel::table! {
    webhook_endpoints (id) {
        id -> Uuid,
        url -> Text,
        description -> Nullable<Text>,
        event_types -> Array<Text>,
        enabled -> Bool,
        api_version -> Text,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamptz>,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        endpoint_id -> Uuid,
        event_id -> Uuid,
        attempt -> Int4,
        status -> Text,
        response_status -> Nullable<Int4>,
        error -> Nullable<Text>,
        duration_ms -> Nullable<Int8>,
        created_at -> Timestamptz,
        next_attempt_at -> Nullable<Timestamptz>,
    }
}
