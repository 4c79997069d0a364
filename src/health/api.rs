//! Health endpoints. Never rate-limited, never refused for load, never cached.

use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde::Serialize;

use crate::{
    cache::CacheHealth,
    http::{ApiTags, json::JsonBytes, problem::ApiError, problem::error_statuses},
    state::{AppState, Phase},
};

/// How long a health check waits for the database before calling it down.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum OverallStatus {
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum DependencyStatus {
    /// Answering.
    Ok,
    /// Unreachable or slow; the service works around it (cache bypassed).
    Degraded,
    /// Unreachable; requests that need it fail with 503.
    Down,
}

/// State of each dependency.
#[derive(Debug, Clone, Object, Serialize)]
pub struct Services {
    pub database: DependencyStatus,
    pub cache: DependencyStatus,
}

/// Overall health.
#[derive(Debug, Clone, Object, Serialize)]
pub struct Health {
    pub status: OverallStatus,
    pub timestamp: DateTime<Utc>,
    pub services: Services,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    Alive,
    Ready,
    NotReady,
}

/// A liveness or readiness answer.
#[derive(Debug, Clone, Object, Serialize)]
pub struct Probe {
    pub status: ProbeStatus,
    /// Why the service is not ready (`starting`, `draining`, `database`).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The database answers (the cache may be `degraded`).
    #[oai(status = 200)]
    Healthy(JsonBytes<Health>),
    /// The database is down.
    #[oai(status = 503)]
    Unhealthy(JsonBytes<Health>),
}

#[derive(ApiResponse)]
pub enum LiveResponse {
    /// The process runs.
    #[oai(status = 200)]
    Alive(JsonBytes<Probe>),
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// Ready to serve.
    #[oai(status = 200)]
    Ready(JsonBytes<Probe>),
    /// Starting, draining for shutdown, or without a database.
    #[oai(status = 503)]
    NotReady(JsonBytes<Probe>),
}

error_statuses!(HealthErrors: only 406, 500);

pub struct HealthApi;

async fn database_up(state: &AppState) -> bool {
    matches!(
        tokio::time::timeout(DATABASE_CHECK_TIMEOUT, state.db.ping()).await,
        Ok(Ok(()))
    )
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Dependency health
    #[oai(path = "/health", method = "get", operation_id = "get_health")]
    async fn health(
        &self,
        state: Data<&AppState>,
    ) -> Result<HealthResponse, ApiError<HealthErrors>> {
        let database = database_up(&state).await;
        let cache = match state.cache.health() {
            CacheHealth::Ok => DependencyStatus::Ok,
            CacheHealth::Degraded => DependencyStatus::Degraded,
        };
        let health = Health {
            status: if database {
                OverallStatus::Healthy
            } else {
                OverallStatus::Unhealthy
            },
            timestamp: Utc::now(),
            services: Services {
                database: if database {
                    DependencyStatus::Ok
                } else {
                    DependencyStatus::Down
                },
                cache,
            },
        };
        let body = JsonBytes::new(&health)?;
        Ok(if database {
            HealthResponse::Healthy(body)
        } else {
            HealthResponse::Unhealthy(body)
        })
    }

    /// Liveness
    #[oai(path = "/health/live", method = "get", operation_id = "get_liveness")]
    async fn live(&self) -> Result<LiveResponse, ApiError<HealthErrors>> {
        let probe = Probe {
            status: ProbeStatus::Alive,
            reason: None,
        };
        Ok(LiveResponse::Alive(JsonBytes::new(&probe)?))
    }

    /// Readiness
    ///
    /// 503 while starting, while draining for shutdown, and while the database is unreachable.
    #[oai(path = "/health/ready", method = "get", operation_id = "get_readiness")]
    async fn ready(&self, state: Data<&AppState>) -> Result<ReadyResponse, ApiError<HealthErrors>> {
        let reason = match state.lifecycle.phase() {
            Phase::Starting => Some("starting"),
            Phase::Draining => Some("draining"),
            Phase::Serving if !database_up(&state).await => Some("database"),
            Phase::Serving => None,
        };
        let probe = Probe {
            status: if reason.is_some() {
                ProbeStatus::NotReady
            } else {
                ProbeStatus::Ready
            },
            reason: reason.map(String::from),
        };
        let body = JsonBytes::new(&probe)?;
        Ok(match reason {
            Some(_) => ReadyResponse::NotReady(body),
            None => ReadyResponse::Ready(body),
        })
    }
}
