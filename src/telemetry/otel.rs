//! The OTLP trace pipeline, built only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: an HTTP/protobuf exporter behind the SDK's batch
//! processor (its own thread: exporting never runs on the request workers), and the
//! `tracing-opentelemetry` layer that turns `tracing` spans into OpenTelemetry spans.
//!
//! The standard variables are honoured by the crates themselves: `OTEL_EXPORTER_OTLP_HEADERS`
//! and `..._TIMEOUT` (the exporter), `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG` and
//! `OTEL_BSP_*` (the SDK), `OTEL_SERVICE_NAME`/`OTEL_RESOURCE_ATTRIBUTES` (the resource; Herald
//! names itself `herald` when neither sets a service name). `OTEL_SDK_DISABLED=true` or
//! `OTEL_TRACES_EXPORTER=none` turn it off like an unset endpoint does.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};

/// Whether the environment asks for trace export.
pub fn wanted() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.trim() == "none");
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The tracer provider (kept to flush and shut down) and the layer to install.
pub fn pipeline<S>() -> Result<
    (
        SdkTracerProvider,
        tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>,
    ),
    String,
>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    // reqwest is built with rustls but no default crypto provider (the webhook client hands it
    // ring explicitly); the exporter's client uses the process default, so install ring as that
    // default. An `Err` means a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
        .map_err(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?;
    let mut resource = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    if !named {
        resource = resource.with_service_name("herald");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("herald");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        // Source locations and thread ids would ride on every span: not what a trace is read for.
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false);
    Ok((provider, layer))
}
