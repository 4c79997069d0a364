//! The JSON line format of every log event: `timestamp`, `level`, `target`, `message`, the
//! event's fields flat beside them, `request_id` while a request is served, `trace_id` and
//! `span_id` inside a request or a continued trace, and `span` (the innermost span's fields) when
//! there is one — except the trace's own spans (server, database, Redis), whose attributes go to
//! the trace, not into every log line.
//!
//! Why not tracing-subscriber's own JSON format: it re-parses each enclosing span's stored JSON
//! for every event and formats through `serde_json::Value` maps, about twice the cost of writing
//! the line directly — and the access log writes one line per request, so that cost is paid on
//! every request. The output has the same shape.

use std::{
    fmt::{self, Write as _},
    time::SystemTime,
};

use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, format::Writer},
    registry::LookupSpan,
};

pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = String::with_capacity(512);
        line.push_str("{\"timestamp\":\"");
        let _ = write!(
            line,
            "{}",
            humantime::format_rfc3339_micros(SystemTime::now())
        );
        line.push_str("\",\"level\":\"");
        line.push_str(meta.level().as_str());
        line.push('"');
        let mut fields = FieldWriter { line: &mut line };
        event.record(&mut fields);
        line.push_str(",\"target\":");
        push_json_str(&mut line, meta.target());
        let _ = super::REQUEST_ID.try_with(|id| {
            line.push_str(",\"request_id\":");
            push_json_str(&mut line, id);
        });
        let current = ctx.lookup_current();
        if let Some(ids) = super::trace::ids_for_event(current.as_ref()) {
            // Sliced out of the header form: hex without the formatting machinery.
            let header = ids.traceparent_bytes();
            line.push_str(",\"trace_id\":\"");
            line.push_str(std::str::from_utf8(&header[3..35]).unwrap_or_default());
            line.push_str("\",\"span_id\":\"");
            line.push_str(std::str::from_utf8(&header[36..52]).unwrap_or_default());
            line.push('"');
        }
        // The innermost span's fields (stored as a JSON object by `JsonFields`), spliced in.
        if let Some(span) = current.filter(|span| span.metadata().target() != "herald::trace") {
            line.push_str(",\"span\":{\"name\":");
            push_json_str(&mut line, span.name());
            let extensions = span.extensions();
            if let Some(stored) = extensions.get::<FormattedFields<N>>() {
                let inner = stored.fields.trim();
                let inner = inner
                    .strip_prefix('{')
                    .and_then(|s| s.strip_suffix('}'))
                    .unwrap_or("");
                if !inner.is_empty() {
                    line.push(',');
                    line.push_str(inner);
                }
            }
            line.push('}');
        }
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

/// Writes each field as `,"name":value`.
struct FieldWriter<'a> {
    line: &'a mut String,
}

impl FieldWriter<'_> {
    fn key(&mut self, field: &Field) {
        self.line.push(',');
        push_json_str(self.line, field.name());
        self.line.push(':');
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_str(self.line, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        self.line.push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        self.line.push_str(itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            self.line.push_str(ryu::Buffer::new().format_finite(value));
        } else {
            self.line.push_str("null");
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.line.push_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        self.line.push('"');
        // Escaped as it is formatted: no intermediate string.
        let _ = write!(Escaped(self.line), "{value:?}");
        self.line.push('"');
    }
}

/// `value` as a JSON string literal.
fn push_json_str(line: &mut String, value: &str) {
    line.push('"');
    escape_into(line, value);
    line.push('"');
}

/// Appends `value` with JSON string escapes.
fn escape_into(line: &mut String, value: &str) {
    // Most values need no escape: copy them whole.
    if !value.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        line.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(line, "\\u{:04x}", c as u32);
            }
            c => line.push(c),
        }
    }
}

/// A `fmt::Write` that escapes what is written into it.
struct Escaped<'a>(&'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::CapturedOutput;
    use tracing_subscriber::{fmt::format::JsonFields, layer::SubscriberExt};

    #[test]
    fn lines_are_json_with_fields_span_and_request_id() {
        let capture = CapturedOutput::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines)
                .fmt_fields(JsonFields::new())
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("work", step = "r-1");
            crate::telemetry::REQUEST_ID.sync_scope("req-9".into(), || {
                span.in_scope(|| {
                    tracing::info!(
                        http.status = 200u16,
                        http.duration_ms = 1.5,
                        note = "a \"quoted\"\nline",
                        ok = true,
                        "request completed"
                    );
                })
            });
            tracing::warn!(count = -3i64, "outside");
            let ids = crate::telemetry::trace::TraceIds {
                trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736,
                span_id: 0xf067aa0ba902b7,
                flags: 1,
            };
            crate::telemetry::trace::TRACE.sync_scope(ids, || tracing::info!("traced"));
        });
        let text = capture.text();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        let first = &lines[0];
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["message"], "request completed");
        assert_eq!(first["http.status"], 200);
        assert_eq!(first["http.duration_ms"], 1.5);
        assert_eq!(first["note"], "a \"quoted\"\nline");
        assert_eq!(first["ok"], true);
        assert_eq!(first["request_id"], "req-9");
        assert_eq!(first["span"]["step"], "r-1");
        assert_eq!(first["span"]["name"], "work");
        assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["count"], -3);
        assert!(lines[1].get("span").is_none());
        assert!(lines[1].get("request_id").is_none());
        assert!(lines[1].get("trace_id").is_none());
        assert_eq!(lines[2]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(lines[2]["span_id"], "00f067aa0ba902b7");
    }
}
