//! The tracing subscriber: JSON lines (or pretty, for a terminal) on stdout through a batched
//! background writer (`batched`), levels from `RUST_LOG` or `LOG_LEVEL`, and with `LOG_DIR` the
//! rotating application and error files (`log_files`). Every event logged while a request is
//! served carries its id, from the `REQUEST_ID` task-local the edge sets. Nothing here ever sees
//! a password, token or `Authorization`/`Cookie` value: they are never put into events.

use std::{
    io::IsTerminal,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

mod batched;
mod json;
mod pretty;

use batched::{BatchedGuard, batched};
use tracing_subscriber::{
    EnvFilter, Layer, filter::LevelFilter, fmt::format::JsonFields, layer::SubscriberExt,
    util::SubscriberInitExt,
};

use crate::{
    config::{AppEnv, LogFormat, Settings},
    log_files::{self, Retention},
};

tokio::task_local! {
    /// The id of the request being served: every event logged meanwhile carries it.
    pub static REQUEST_ID: std::sync::Arc<str>;
}

/// Keeps the background log writers flushing; drop it last.
pub struct TelemetryGuard {
    _guards: Vec<BatchedGuard>,
}

/// Libraries that are chatty at debug level; they stay at warn unless `RUST_LOG` says otherwise.
const QUIET: &[&str] = &[
    "hyper",
    "hyper_util",
    "h2",
    "tokio_postgres",
    "poem",
    "redis",
    "bb8",
    "reqwest",
];

fn filter(settings: &Settings) -> EnvFilter {
    if let Ok(spec) = std::env::var("RUST_LOG")
        && let Ok(filter) = EnvFilter::try_new(spec)
    {
        return filter;
    }
    let mut spec = settings.log_level.clone();
    for crate_name in QUIET {
        spec.push_str(&format!(",{crate_name}=warn"));
    }
    EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"))
}

pub fn init(settings: &Settings) -> std::io::Result<TelemetryGuard> {
    let mut guards = Vec::new();
    let (stdout, guard) = batched(stdout_writer());
    guards.push(guard);
    let pretty = match settings.log_format {
        LogFormat::Pretty => true,
        // JSON unless a developer is watching a terminal.
        LogFormat::Json => {
            settings.app_env == AppEnv::Development
                && std::env::var_os("LOG_FORMAT").is_none()
                && std::io::stdout().is_terminal()
        }
    };
    let stdout_layer = if pretty {
        tracing_subscriber::fmt::layer()
            .event_format(pretty::WithRequestId(tracing_subscriber::fmt::format()))
            // Colours only for a terminal, not for a pipe or a file.
            .with_ansi(std::io::stdout().is_terminal())
            .with_writer(stdout)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .event_format(json::JsonLines)
            .fmt_fields(JsonFields::new())
            .with_writer(stdout)
            .boxed()
    };

    let mut file_layers = Vec::new();
    if let Some(dir) = &settings.log_dir {
        let all = log_files::DailyFile::open(dir, "application", Retention::days(14))?;
        let (all, guard) = batched(all);
        guards.push(guard);
        file_layers.push(json_layer(all).boxed());
        let errors = log_files::DailyFile::open(dir, "error", Retention::days(30))?;
        let (errors, guard) = batched(errors);
        guards.push(guard);
        file_layers.push(json_layer(errors).with_filter(LevelFilter::ERROR).boxed());
    }

    if let Err(err) = tracing_subscriber::registry()
        .with(filter(settings))
        .with(stdout_layer)
        // An empty Vec of layers reports a max level of OFF and would silence everything.
        .with((!file_layers.is_empty()).then_some(file_layers))
        .try_init()
    {
        eprintln!("tracing subscriber not installed: {err}");
    }
    Ok(TelemetryGuard { _guards: guards })
}

/// Standard output as a plain file: Rust's `Stdout` would split every batch at its newlines
/// into one `write` per line.
fn stdout_writer() -> Box<dyn std::io::Write + Send> {
    use std::os::fd::AsFd;
    match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(std::io::stdout()),
    }
}

fn json_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .event_format(json::JsonLines)
        .fmt_fields(JsonFields::new())
        .with_ansi(false)
        .with_writer(writer)
}

/// Lets a repeated warning through at most once per interval.
pub struct WarnThrottle {
    interval: Duration,
    origin: Instant,
    last_ms: AtomicU64,
}

impl WarnThrottle {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    pub fn allow(&self) -> bool {
        let now = self.origin.elapsed().as_millis() as u64 + 1;
        let last = self.last_ms.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < self.interval.as_millis() as u64 {
            return false;
        }
        self.last_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

/// A `Write` that keeps what it is given, for the formatter and writer tests.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct CapturedOutput(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl CapturedOutput {
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[cfg(test)]
impl std::io::Write for CapturedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_lets_one_warning_through_per_interval() {
        let throttle = WarnThrottle::new(Duration::from_secs(60));
        assert!(throttle.allow());
        assert!(!throttle.allow());
        assert!(!throttle.allow());
    }
}
