//! The one access-log event per request (target `herald::access`), at a level by status.

use std::{net::IpAddr, time::Duration};

use uuid::Uuid;

/// The fields of the one access-log event per request.
pub(super) struct AccessLog<'a> {
    pub(super) method: &'a str,
    pub(super) route: &'a str,
    pub(super) path: &'a str,
    pub(super) status: u16,
    pub(super) duration: Duration,
    pub(super) client_ip: IpAddr,
    pub(super) user_agent: Option<&'a str>,
    pub(super) telemetry: Option<&'a str>,
    pub(super) user_id: Option<Uuid>,
}

pub(super) fn access_log(entry: AccessLog<'_>) {
    let duration_ms = entry.duration.as_secs_f64() * 1000.0;
    let user_id = entry.user_id.map(|id| id.to_string());
    macro_rules! emit {
        ($level:expr) => {
            tracing::event!(
                target: "herald::access",
                $level,
                // OpenTelemetry semantic-convention names (the README's log schema).
                http.request.method = entry.method,
                http.route = entry.route,
                url.path = entry.path,
                http.response.status_code = entry.status,
                duration_ms = duration_ms,
                client.address = %entry.client_ip,
                user_agent.original = entry.user_agent,
                telemetry = entry.telemetry,
                user_id = user_id.as_deref(),
                "request completed"
            )
        };
    }
    match entry.status {
        500.. => emit!(tracing::Level::ERROR),
        400..=499 => emit!(tracing::Level::WARN),
        _ => emit!(tracing::Level::INFO),
    }
}
