//! The tracing subscriber: JSON lines (or pretty, for a terminal) on stdout through a batched
//! background writer (`batched`), levels from `RUST_LOG` or `LOG_LEVEL`, and with `LOG_DIR` the
//! rotating application and error files (`log_files`). Every event logged while a request is
//! served carries its id, from the `REQUEST_ID` task-local the edge sets. Nothing here ever sees
//! a password, token or `Authorization`/`Cookie` value: they are never put into events.
//!
//! Traces (`trace`, `otel`): every event inside a request also carries `trace_id`/`span_id`;
//! with `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are exported over OTLP (and flushed when the
//! guard drops, at shutdown). Background work continues a request's trace through
//! [`current_traceparent`] and [`span_continuing`].

use std::{
    io::IsTerminal,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

mod batched;
mod json;
mod otel;
mod pretty;
pub mod trace;

pub use trace::{current_traceparent, span_continuing};

use batched::{BatchedGuard, batched};
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    filter::{FilterExt, LevelFilter, Targets},
    fmt::format::JsonFields,
    layer::SubscriberExt,
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

/// Keeps the background log writers flushing and, when exporting, the tracer provider; drop it
/// last: it flushes the spans still batched, then the logs.
pub struct TelemetryGuard {
    tracer: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    _guards: Vec<BatchedGuard>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer.take() {
            // Bounded: a receiver that is down must not hold the exit up for long.
            if let Err(err) = provider.shutdown_with_timeout(Duration::from_secs(5)) {
                eprintln!("trace export: spans not flushed at shutdown: {err}");
            }
        }
    }
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

/// Installs the subscriber. Fails (with a line naming the variable) on an unusable `LOG_DIR` or
/// OTLP configuration.
pub fn init(settings: &Settings) -> Result<TelemetryGuard, String> {
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
    let mut files = None;
    if let Some(dir) = &settings.log_dir {
        let open = |name, retention| {
            log_files::DailyFile::open(dir, name, retention).map_err(|e| format!("LOG_DIR: {e}"))
        };
        let (all, guard) = batched(open("application", Retention::days(14))?);
        guards.push(guard);
        let (errors, guard) = batched(open("error", Retention::days(30))?);
        guards.push(guard);
        files = Some((all, errors));
    }

    let mut tracer = None;
    let installed = if otel::wanted() {
        let (provider, otel_layer) = otel::pipeline::<Registry>()?;
        tracer = Some(provider);
        // Per-layer filters: LOG_LEVEL governs the logs only; spans (and herald's events on them)
        // are exported from info up whatever the log level.
        let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![
            otel_layer
                .with_filter(Targets::new().with_target("herald", LevelFilter::INFO))
                .boxed(),
        ];
        for (layer, errors_only) in log_layers(pretty, stdout, files) {
            let logs = filter(settings);
            layers.push(if errors_only {
                layer.with_filter(logs.and(LevelFilter::ERROR)).boxed()
            } else {
                layer.with_filter(logs).boxed()
            });
        }
        tracing_subscriber::registry().with(layers).try_init()
    } else {
        // No exporter: the subscriber as it always was (one global filter), nothing added.
        let layers: Vec<_> = log_layers(pretty, stdout, files)
            .into_iter()
            .map(|(layer, errors_only)| {
                if errors_only {
                    layer.with_filter(LevelFilter::ERROR).boxed()
                } else {
                    layer
                }
            })
            .collect();
        tracing_subscriber::registry()
            .with(filter(settings))
            .with(layers)
            .try_init()
    };
    match installed {
        Ok(()) => trace::set_exporting(tracer.is_some()),
        Err(err) => eprintln!("tracing subscriber not installed: {err}"),
    }
    Ok(TelemetryGuard {
        tracer,
        _guards: guards,
    })
}

type BoxedLayer<S> = Box<dyn Layer<S> + Send + Sync>;

/// The log outputs: stdout (JSON or pretty) and, with `LOG_DIR`, the application file and the
/// error file (`true`: to be filtered to errors).
fn log_layers<S>(
    pretty: bool,
    stdout: batched::BatchedWriter,
    files: Option<(batched::BatchedWriter, batched::BatchedWriter)>,
) -> Vec<(BoxedLayer<S>, bool)>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
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
    let mut layers = vec![(stdout_layer, false)];
    if let Some((all, errors)) = files {
        layers.push((json_layer(all).boxed(), false));
        layers.push((json_layer(errors).boxed(), true));
    }
    layers
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
