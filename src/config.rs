//! Typed settings read once from the environment (and `.env`, loaded by `main`).
//!
//! Every variable of behaviour.md "Configuration" lives here with its default. Defaults depend on
//! `APP_ENV` the way the tutorial this product grew from had them: development logs at debug,
//! keeps cache TTLs short and the global rate limit loose; production logs at info, keeps TTLs
//! long and the limit strict. A bad value stops start-up with one line naming the variable.
//! Uses nothing else of the crate.

use std::{collections::HashMap, fmt, net::IpAddr, path::PathBuf, time::Duration};

/// The development JWT secret. Production refuses to start with it.
pub const DEV_JWT_SECRET: &str = "herald-development-secret-do-not-use-in-production";
const MIN_PRODUCTION_SECRET_BYTES: usize = 32;

/// Which environment we run in; it picks the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

/// Log line format on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// A value that must never reach a log: `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// `COUNT/WINDOW`, e.g. `30/1m`: at most `count` events per fixed `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitRule {
    pub count: u64,
    pub window: Duration,
}

impl RateLimitRule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (count, window) = text
            .split_once('/')
            .ok_or_else(|| format!("expected COUNT/WINDOW such as 30/1m, got {text:?}"))?;
        let count: u64 = count
            .trim()
            .parse()
            .map_err(|_| format!("count {count:?} is not a whole number"))?;
        let window = parse_duration(window.trim())?;
        if count == 0 || window.is_zero() {
            return Err("count and window must both be greater than zero".into());
        }
        Ok(Self { count, window })
    }
}

impl fmt::Display for RateLimitRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.count,
            humantime::format_duration(self.window)
        )
    }
}

/// Everything the service is configured by. Cheap to clone; build once.
#[derive(Debug, Clone)]
pub struct Settings {
    pub app_env: AppEnv,
    pub host: IpAddr,
    pub port: u16,
    pub database_url: Secret,
    pub database_pool_size: u32,
    pub database_acquire_timeout: Duration,
    pub redis_url: Option<Secret>,
    pub redis_timeout: Duration,
    /// Key prefix for everything Herald keeps in Redis (lets tests and tenants share a server).
    pub redis_key_prefix: String,
    pub jwt_secret: Secret,
    pub jwt_expiration: Duration,
    pub jwt_refresh_expiration: Duration,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub log_level: String,
    pub log_format: LogFormat,
    pub log_dir: Option<PathBuf>,
    pub cors_origins: Vec<String>,
    pub trust_proxy: bool,
    pub auto_migrate: bool,
    pub rate_limit_enabled: bool,
    pub rate_limit_global: RateLimitRule,
    pub rate_limit_login: RateLimitRule,
    pub rate_limit_writes: RateLimitRule,
    pub cache_enabled: bool,
    pub cache_ttl_post: Duration,
    pub cache_ttl_post_list: Duration,
    pub max_body_bytes: usize,
    pub max_in_flight: usize,
    /// A request's headers must arrive within this (from the connection's start or the first
    /// byte of the request).
    pub http_header_timeout: Duration,
    /// A request's body must arrive within this, once its handler starts reading it.
    pub http_body_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    pub http_idle_timeout: Duration,
    /// Connections served at once (a few more answer health probes and 503).
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
    /// After a shutdown signal, how long to keep answering (503 to new requests, readiness 503)
    /// before the listener closes, so a load balancer notices.
    pub shutdown_drain_delay: Duration,
    pub housekeeping_interval: Duration,
    /// When v1 was (or will be) deprecated: v1 post responses carry `Deprecation`.
    pub v1_deprecated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When v1 may stop answering: v1 post responses carry `Sunset`.
    pub v1_sunset: Option<chrono::DateTime<chrono::Utc>>,
    pub password_hash_concurrency: usize,
    /// Whether this instance runs background jobs (webhook deliveries, exports).
    pub jobs_enabled: bool,
    /// Jobs this instance runs at once.
    pub jobs_concurrency: usize,
    /// How often an idle runner looks for jobs queued by other instances.
    pub jobs_poll_interval: Duration,
    /// How long a claimed job stays its worker's without a heartbeat (a dead worker's jobs are
    /// taken over after this).
    pub jobs_lease: Duration,
    /// Finished jobs are kept this long (for inspection), then purged.
    pub job_retention: Duration,
    /// Events are kept this long.
    pub event_retention: Duration,
    /// Waits between webhook delivery attempts; its length bounds the retries.
    pub webhook_retry_schedule: Vec<Duration>,
    /// Allow webhook URLs on loopback, private, link-local addresses and plain http.
    pub webhook_allow_private: bool,
    /// A delivery that has no answer within this failed.
    pub webhook_timeout: Duration,
    /// Operations (exports) and their files are kept this long.
    pub operation_retention: Duration,
}

/// Why the configuration was refused: the variable and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Reads the given variables; unknown ones are ignored. Empty values count as unset.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env(vars);
        let app_env = env.parse("APP_ENV", AppEnv::Development, |v| match v {
            "development" | "dev" => Ok(AppEnv::Development),
            "production" | "prod" => Ok(AppEnv::Production),
            _ => Err("expected development or production".into()),
        })?;
        let prod = app_env == AppEnv::Production;

        let jwt_secret = match env.get("JWT_SECRET") {
            Some(secret) => Secret::new(secret),
            None if prod => {
                return Err(ConfigError {
                    variable: "JWT_SECRET",
                    reason: "must be set in production".into(),
                });
            }
            None => Secret::new(DEV_JWT_SECRET),
        };
        if prod && jwt_secret.expose() == DEV_JWT_SECRET {
            return Err(ConfigError {
                variable: "JWT_SECRET",
                reason: "the development default cannot be used in production".into(),
            });
        }
        if prod && jwt_secret.expose().len() < MIN_PRODUCTION_SECRET_BYTES {
            return Err(ConfigError {
                variable: "JWT_SECRET",
                reason: format!(
                    "must be at least {MIN_PRODUCTION_SECRET_BYTES} bytes in production"
                ),
            });
        }

        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let settings = Settings {
            app_env,
            host: env.parse("HOST", IpAddr::from([0, 0, 0, 0]), |v| {
                v.parse().map_err(|_| "expected an IP address".to_string())
            })?,
            port: env.parse("PORT", 3000, |v| {
                v.parse()
                    .map_err(|_| "expected a port number 0-65535".to_string())
            })?,
            database_url: Secret::new(
                env.get("DATABASE_URL")
                    .unwrap_or("postgres://herald:herald@127.0.0.1:5432/herald"),
            ),
            database_pool_size: env.parse("DATABASE_POOL_SIZE", 10, parse_positive)?,
            database_acquire_timeout: env.parse(
                "DATABASE_ACQUIRE_TIMEOUT",
                Duration::from_secs(2),
                parse_nonzero_duration,
            )?,
            redis_url: env.get("REDIS_URL").map(Secret::new),
            redis_timeout: env.parse(
                "REDIS_TIMEOUT",
                Duration::from_millis(50),
                parse_nonzero_duration,
            )?,
            redis_key_prefix: env.get("REDIS_KEY_PREFIX").unwrap_or("herald:").to_string(),
            jwt_secret,
            jwt_expiration: env.parse(
                "JWT_EXPIRATION",
                Duration::from_secs(15 * 60),
                parse_nonzero_duration,
            )?,
            jwt_refresh_expiration: env.parse(
                "JWT_REFRESH_EXPIRATION",
                Duration::from_secs(7 * 24 * 3600),
                parse_nonzero_duration,
            )?,
            jwt_issuer: env.get("JWT_ISSUER").unwrap_or("herald").to_string(),
            jwt_audience: env.get("JWT_AUDIENCE").unwrap_or("herald-api").to_string(),
            log_level: env
                .get("LOG_LEVEL")
                .unwrap_or(if prod { "info" } else { "debug" })
                .to_string(),
            log_format: env.parse("LOG_FORMAT", LogFormat::Json, |v| match v {
                "json" => Ok(LogFormat::Json),
                "pretty" => Ok(LogFormat::Pretty),
                _ => Err("expected json or pretty".into()),
            })?,
            log_dir: env.get("LOG_DIR").map(PathBuf::from),
            cors_origins: env
                .get("CORS_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            trust_proxy: env.parse("TRUST_PROXY", false, parse_bool)?,
            auto_migrate: env.parse("AUTO_MIGRATE", !prod, parse_bool)?,
            rate_limit_enabled: env.parse("RATE_LIMIT_ENABLED", true, parse_bool)?,
            rate_limit_global: env.parse(
                "RATE_LIMIT_GLOBAL",
                RateLimitRule {
                    count: if prod { 100 } else { 1000 },
                    window: Duration::from_secs(15 * 60),
                },
                RateLimitRule::parse,
            )?,
            rate_limit_login: env.parse(
                "RATE_LIMIT_LOGIN",
                RateLimitRule {
                    count: 5,
                    window: Duration::from_secs(15 * 60),
                },
                RateLimitRule::parse,
            )?,
            rate_limit_writes: env.parse(
                "RATE_LIMIT_WRITES",
                RateLimitRule {
                    count: 30,
                    window: Duration::from_secs(60),
                },
                RateLimitRule::parse,
            )?,
            cache_enabled: env.parse("CACHE_ENABLED", true, parse_bool)?,
            cache_ttl_post: env.parse(
                "CACHE_TTL_POST",
                Duration::from_secs(if prod { 3600 } else { 60 }),
                parse_nonzero_duration,
            )?,
            cache_ttl_post_list: env.parse(
                "CACHE_TTL_POST_LIST",
                Duration::from_secs(if prod { 600 } else { 60 }),
                parse_nonzero_duration,
            )?,
            max_body_bytes: env.parse("MAX_BODY_BYTES", 1024 * 1024, parse_byte_size)?,
            max_in_flight: env.parse("MAX_IN_FLIGHT", 1024, parse_positive)?,
            http_header_timeout: env.parse(
                "HTTP_HEADER_TIMEOUT",
                Duration::from_secs(10),
                parse_nonzero_duration,
            )?,
            http_body_timeout: env.parse(
                "HTTP_BODY_TIMEOUT",
                Duration::from_secs(30),
                parse_nonzero_duration,
            )?,
            http_idle_timeout: env.parse(
                "HTTP_IDLE_TIMEOUT",
                Duration::from_secs(60),
                parse_nonzero_duration,
            )?,
            max_connections: env.parse("MAX_CONNECTIONS", 10_000, parse_positive)?,
            shutdown_timeout: env.parse(
                "SHUTDOWN_TIMEOUT",
                Duration::from_secs(30),
                parse_duration,
            )?,
            shutdown_drain_delay: env.parse(
                "SHUTDOWN_DRAIN_DELAY",
                Duration::from_secs(1),
                parse_duration,
            )?,
            housekeeping_interval: env.parse(
                "HOUSEKEEPING_INTERVAL",
                Duration::from_secs(24 * 3600),
                parse_nonzero_duration,
            )?,
            v1_deprecated_at: env.parse("V1_DEPRECATED_AT", None, parse_time)?,
            v1_sunset: env.parse("V1_SUNSET", None, parse_time)?,
            password_hash_concurrency: env.parse(
                "PASSWORD_HASH_CONCURRENCY",
                cores,
                parse_positive,
            )?,
            jobs_enabled: env.parse("JOBS_ENABLED", true, parse_bool)?,
            jobs_concurrency: env.parse("JOBS_CONCURRENCY", 4, parse_positive)?,
            jobs_poll_interval: env.parse(
                "JOBS_POLL_INTERVAL",
                Duration::from_secs(1),
                parse_nonzero_duration,
            )?,
            jobs_lease: env.parse("JOBS_LEASE", Duration::from_secs(30), |v| {
                parse_nonzero_duration(v).and_then(|d| {
                    if d < Duration::from_secs(1) {
                        Err("must be at least 1s".into())
                    } else {
                        Ok(d)
                    }
                })
            })?,
            job_retention: env.parse(
                "JOB_RETENTION",
                Duration::from_secs(7 * 24 * 3600),
                parse_nonzero_duration,
            )?,
            event_retention: env.parse(
                "EVENT_RETENTION",
                Duration::from_secs(30 * 24 * 3600),
                parse_nonzero_duration,
            )?,
            webhook_retry_schedule: env.parse(
                "WEBHOOK_RETRY_SCHEDULE",
                DEFAULT_WEBHOOK_RETRY_SCHEDULE
                    .iter()
                    .map(|s| Duration::from_secs(*s))
                    .collect(),
                parse_duration_list,
            )?,
            webhook_allow_private: env.parse("WEBHOOK_ALLOW_PRIVATE", !prod, parse_bool)?,
            webhook_timeout: env.parse(
                "WEBHOOK_TIMEOUT",
                Duration::from_secs(15),
                parse_nonzero_duration,
            )?,
            operation_retention: env.parse(
                "OPERATION_RETENTION",
                Duration::from_secs(24 * 3600),
                parse_nonzero_duration,
            )?,
        };
        Ok(settings)
    }

    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }
}

/// Lookup over the variable map that treats empty strings as unset.
struct Env<'a>(&'a HashMap<String, String>);

impl Env<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn parse<T>(
        &self,
        name: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => parse(value).map_err(|reason| ConfigError {
                variable: name,
                reason: format!("{value:?}: {reason}"),
            }),
        }
    }
}

/// The longest duration any setting accepts. Longer ones are refused at start-up: added to a
/// timestamp, a Redis expiry or a timer they would overflow at run time instead.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// `15m`, `7d`, `50ms`, `30s`, `1h 30m`; at most `MAX_DURATION`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("expected a duration like 15m or 50ms ({e})"))?;
    if duration > MAX_DURATION {
        return Err("must be at most 366d".into());
    }
    Ok(duration)
}

/// `5s,5m,30m,2h,5h,10h,10h`: the default webhook retry schedule, in seconds.
const DEFAULT_WEBHOOK_RETRY_SCHEDULE: &[u64] = &[5, 300, 1800, 7200, 18000, 36000, 36000];

/// Comma-separated durations, e.g. `5s,5m,30m` (at least one; none zero).
fn parse_duration_list(text: &str) -> Result<Vec<Duration>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_nonzero_duration)
        .collect::<Result<Vec<_>, _>>()
        .and_then(|list| {
            if list.is_empty() {
                Err("expected comma-separated durations such as 5s,5m,30m".into())
            } else {
                Ok(list)
            }
        })
}

fn parse_nonzero_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(duration)
}

/// An RFC 3339 time, e.g. `2026-12-01T00:00:00Z`.
fn parse_time(text: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| Some(t.with_timezone(&chrono::Utc)))
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-12-01T00:00:00Z ({e})"))
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn parse_positive<T: std::str::FromStr + PartialOrd + Default>(text: &str) -> Result<T, String> {
    match text.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err("expected a whole number greater than zero".into()),
    }
}

/// `1048576`, `512KiB`, `1MiB`, `1mb` (binary multiples either way).
fn parse_byte_size(text: &str) -> Result<usize, String> {
    let lower = text.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let number: usize = number
        .parse()
        .map_err(|_| "expected a size such as 1048576 or 1MiB".to_string())?;
    let multiplier = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return Err("unit must be B, KiB or MiB".into()),
    };
    match number.checked_mul(multiplier) {
        Some(n) if n > 0 => Ok(n),
        _ => Err("must be greater than zero".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn development_defaults_match_the_contract() {
        let s = Settings::from_vars(&vars(&[])).unwrap();
        assert_eq!(s.app_env, AppEnv::Development);
        assert_eq!(s.port, 3000);
        assert_eq!(s.jwt_expiration, Duration::from_secs(900));
        assert_eq!(s.jwt_refresh_expiration, Duration::from_secs(7 * 86400));
        assert_eq!(s.rate_limit_global.count, 1000);
        assert_eq!(s.rate_limit_login, RateLimitRule::parse("5/15m").unwrap());
        assert_eq!(s.rate_limit_writes, RateLimitRule::parse("30/1m").unwrap());
        assert_eq!(s.log_level, "debug");
        assert_eq!(s.cache_ttl_post, Duration::from_secs(60));
        assert_eq!(s.max_body_bytes, 1_048_576);
        assert_eq!(s.max_in_flight, 1024);
        assert_eq!(s.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(s.database_acquire_timeout, Duration::from_secs(2));
        assert_eq!(s.redis_timeout, Duration::from_millis(50));
        assert!(s.auto_migrate);
        assert!(s.redis_url.is_none());
    }

    #[test]
    fn production_defaults_are_strict() {
        let secret = "x".repeat(40);
        let s = Settings::from_vars(&vars(&[("APP_ENV", "production"), ("JWT_SECRET", &secret)]))
            .unwrap();
        assert_eq!(s.rate_limit_global.count, 100);
        assert_eq!(s.log_level, "info");
        assert!(!s.auto_migrate);
        assert!(s.cache_ttl_post > Duration::from_secs(60));
    }

    #[test]
    fn production_refuses_missing_default_or_short_secrets() {
        for secret in [None, Some(DEV_JWT_SECRET), Some("too-short")] {
            let mut v = vars(&[("APP_ENV", "production")]);
            if let Some(secret) = secret {
                v.insert("JWT_SECRET".into(), secret.into());
            }
            let err = Settings::from_vars(&v).unwrap_err();
            assert_eq!(err.variable, "JWT_SECRET");
        }
    }

    #[test]
    fn an_invalid_value_names_its_variable() {
        let cases = [
            ("PORT", "abc"),
            ("APP_ENV", "staging"),
            ("RATE_LIMIT_LOGIN", "5"),
            ("RATE_LIMIT_WRITES", "0/1m"),
            ("JWT_EXPIRATION", "soon"),
            ("MAX_BODY_BYTES", "1GB"),
            ("TRUST_PROXY", "maybe"),
            ("DATABASE_POOL_SIZE", "0"),
            ("JWT_REFRESH_EXPIRATION", "1000000d"),
            ("CACHE_TTL_POST", "100000y"),
            ("RATE_LIMIT_GLOBAL", "10/999999d"),
            ("HTTP_HEADER_TIMEOUT", "0s"),
            ("MAX_CONNECTIONS", "none"),
            ("V1_SUNSET", "next year"),
        ];
        for (name, value) in cases {
            let err = Settings::from_vars(&vars(&[(name, value)])).unwrap_err();
            assert_eq!(err.variable, name, "{err}");
            assert!(err.to_string().contains(name));
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn durations_sizes_and_rules_parse() {
        assert_eq!(parse_duration("50ms").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604800));
        assert_eq!(parse_byte_size("1MiB").unwrap(), 1_048_576);
        assert_eq!(parse_byte_size("512kib").unwrap(), 524_288);
        assert_eq!(parse_byte_size("2048").unwrap(), 2048);
        let rule = RateLimitRule::parse("1000/15m").unwrap();
        assert_eq!(rule.count, 1000);
        assert_eq!(rule.window, Duration::from_secs(900));
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
