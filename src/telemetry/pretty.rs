//! The terminal format: tracing-subscriber's own human-readable lines, each prefixed with the
//! request id of the request it belongs to and its trace and span ids (the JSON format carries
//! them as fields).

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    registry::LookupSpan,
};

pub struct WithRequestId<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if let Ok(written) = super::REQUEST_ID.try_with(|id| write!(writer, "[{id}] ")) {
            written?;
        }
        if let Some(ids) = super::trace::ids_for_event(ctx.lookup_current().as_ref()) {
            write!(writer, "[{:032x}/{:016x}] ", ids.trace_id, ids.span_id)?;
        }
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::CapturedOutput;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn events_inside_a_request_start_with_its_id() {
        let capture = CapturedOutput::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(WithRequestId(tracing_subscriber::fmt::format()))
                .with_ansi(false)
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            crate::telemetry::REQUEST_ID.sync_scope("req-7".into(), || {
                tracing::info!(user.id = 3, "inside");
            });
            tracing::info!("outside");
        });
        let text = capture.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("[req-7] "), "{}", lines[0]);
        assert!(lines[0].contains("inside") && lines[0].contains("user.id=3"));
        assert!(!lines[1].contains("req-7") && lines[1].contains("outside"));
    }
}
