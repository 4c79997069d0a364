//! Wiring: settings → pools, cache, limiter, keys (`AppState`) → routes and docs → a running
//! server with its background tasks, and its graceful shutdown.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use poem::{Endpoint, EndpointExt, Response, middleware::Cors};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    api,
    cache::{PostsCache, ratelimit::RateLimiter, redis::Redis},
    config::Settings,
    db::{self, Db},
    error::AppError,
    housekeeping,
    http::{
        edge::Edge,
        server::{self, ConnectionLimits},
        version::VERSIONS,
    },
    jobs::{
        self,
        runner::{JobsWake, RunnerSettings},
    },
    metrics,
    security::{jwt::JwtKeys, password::PasswordHasher},
    state::{AppState, Lifecycle, Phase, Services},
};

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Starts a graceful shutdown without waiting for it.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Starts a graceful shutdown and waits for it.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.stop.cancel();
        self.wait().await
    }

    /// Waits until the server has stopped (after its shutdown signal).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task
            .await
            .map_err(|e| std::io::Error::other(format!("server task failed: {e}")))?
    }
}

/// Builds the state: pools (not yet connected), Redis (if configured), cache, limiter, keys.
pub fn build_state(settings: Settings) -> Result<AppState, AppError> {
    let redis = match &settings.redis_url {
        Some(url) => Some(
            Redis::new(
                url.expose(),
                settings.redis_timeout,
                &settings.redis_key_prefix,
            )
            .map_err(|e| AppError::internal(format!("REDIS_URL: {e}")))?,
        ),
        None => None,
    };
    let db = Db::new(
        settings.database_url.expose(),
        settings.database_pool_size,
        settings.database_acquire_timeout,
    );
    Ok(AppState::new(Services {
        cache: PostsCache::new(
            settings.cache_enabled,
            settings.cache_ttl_post,
            settings.cache_ttl_post_list,
            redis.clone(),
            VERSIONS,
        ),
        limiter: RateLimiter::new(redis.clone()),
        jwt: Arc::new(JwtKeys::new(&settings)),
        passwords: PasswordHasher::new(settings.password_hash_concurrency),
        lifecycle: Arc::new(Lifecycle::default()),
        jobs_wake: JobsWake::default(),
        renderers: crate::api::renderers(),
        redis,
        db,
        settings: Arc::new(settings),
    }))
}

/// Every route (`api::routes`: the API of every version, the documents, the docs pages and
/// `/metrics`) behind the edge middleware.
pub fn routes(state: AppState) -> impl Endpoint<Output = Response> {
    let api::Routes {
        route,
        table,
        path_headers,
    } = api::routes(&state);
    let origins = &state.settings.cors_origins;
    // The edge puts `AppState` into every request; no further layers (each moves the request).
    route
        .with_if(!origins.is_empty(), cors(origins))
        .with(Edge {
            state,
            allowed: Arc::new(table),
            path_headers: Arc::new(path_headers),
        })
}

/// CORS for the configured origins, with credentials.
fn cors(origins: &[String]) -> Cors {
    Cors::new()
        .allow_origins(origins.iter().map(String::as_str))
        .allow_credentials(true)
        .allow_headers([
            "authorization",
            "content-type",
            "if-match",
            "if-none-match",
            "idempotency-key",
            "x-request-id",
            "x-telemetry",
        ])
        .expose_headers([
            "etag",
            "location",
            "x-request-id",
            "x-error-code",
            "x-cache",
            "retry-after",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "ratelimit-policy",
            "ratelimit",
            "idempotent-replayed",
        ])
        .max_age(600)
}

/// Migrates (with `AUTO_MIGRATE`), binds, and serves until `shutdown` resolves; then drains.
pub async fn start(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Server, AppError> {
    if settings.auto_migrate {
        let applied = db::run_migrations(settings.database_url.expose()).await?;
        tracing::info!(applied, "database migrations applied");
    }
    let state = build_state(settings)?;
    let settings = state.settings.clone();
    // Install the recorder before the first request is counted.
    metrics::handle();
    let stop = CancellationToken::new();

    match &state.redis {
        Some(redis) => {
            if !redis.probe().await {
                tracing::warn!(
                    "redis unreachable at start-up: cache bypassed and rate limits per instance until it answers"
                );
            }
            tokio::spawn(
                redis
                    .clone()
                    .watch(Duration::from_millis(500), stop.clone().cancelled_owned()),
            );
            tokio::spawn(state.cache.clone().maintain(stop.clone().cancelled_owned()));
        }
        None => tracing::info!(
            "REDIS_URL not set: cache and rate limits are in-process, per instance (run one instance, or set REDIS_URL)"
        ),
    }
    tokio::spawn(
        state
            .db
            .clone()
            .watch(Duration::from_millis(500), stop.clone().cancelled_owned()),
    );
    tokio::spawn(housekeeping::run(
        state.clone(),
        stop.clone().cancelled_owned(),
    ));
    tokio::spawn(metrics::upkeep(stop.clone().cancelled_owned()));
    tokio::spawn(jobs::runner::run(
        state.clone(),
        RunnerSettings {
            enabled: settings.jobs_enabled,
            concurrency: settings.jobs_concurrency,
            poll_interval: settings.jobs_poll_interval,
            lease: settings.jobs_lease,
        },
        stop.clone().cancelled_owned(),
    ));

    let listener = tokio::net::TcpListener::bind(SocketAddr::new(settings.host, settings.port))
        .await
        .map_err(|e| {
            AppError::internal(format!(
                "cannot listen on {}:{}: {e}",
                settings.host, settings.port
            ))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| AppError::internal(format!("listener has no address: {e}")))?;
    let app = routes(state.clone());
    let lifecycle = state.lifecycle.clone();
    let drain_delay = settings.shutdown_drain_delay;
    let stop_signal = stop.clone();
    let signal = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = stop_signal.cancelled() => {}
        }
        // Readiness and new requests answer 503 while the load balancer catches up; then the
        // listener closes, idle keep-alive connections close and in-flight requests finish.
        lifecycle.set(Phase::Draining);
        tracing::info!(
            drain_delay_ms = drain_delay.as_millis() as u64,
            "shutting down: draining"
        );
        tokio::time::sleep(drain_delay).await;
        stop_signal.cancel();
    };
    let limits = ConnectionLimits {
        header_timeout: settings.http_header_timeout,
        idle_timeout: settings.http_idle_timeout,
        max_connections: server::connections_that_fit(settings.max_connections),
        shutdown_timeout: settings.shutdown_timeout,
    };
    let task = tokio::spawn(async move {
        let result = server::serve(listener, app.boxed(), limits, signal).await;
        tracing::info!("server stopped");
        result
    });
    state.lifecycle.set(Phase::Serving);
    let docs_host = if addr.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        addr.ip().to_string()
    };
    tracing::info!(%addr, docs = %format!("http://{docs_host}:{}/docs", addr.port()), "herald listening");
    Ok(Server {
        addr,
        state,
        stop,
        task,
    })
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
