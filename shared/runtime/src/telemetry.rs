//! Tracing set-up: pretty for people, JSON for log pipelines, and OpenTelemetry traces exported
//! over OTLP/HTTP when `log.otlp_endpoint` is set (off by default).
//!
//! Traces cross NATS without any state of their own: an event's trace is its envelope's
//! `correlation_id` (every event of one chain shares it, from the Stripe webhook to the email),
//! and each message carries a W3C `traceparent` header naming that trace and the publishing event
//! (`traceparent`), so any consumer (ours, or another system's) continues the same trace.
use crate::config::LogSettings;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use std::sync::OnceLock;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};
use uuid::Uuid;

static PROVIDER: OnceLock<opentelemetry_sdk::trace::SdkTracerProvider> = OnceLock::new();

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let otel = settings.otlp_endpoint.as_deref().filter(|e| !e.trim().is_empty()).and_then(|endpoint| {
        match exporter(endpoint) {
            Ok(provider) => {
                let tracer = provider.tracer("arflow");
                let _ = PROVIDER.set(provider);
                Some(tracing_opentelemetry::layer().with_tracer(tracer))
            }
            Err(e) => {
                // Logging is not up yet: this is the one place to say it.
                eprintln!(
                    "log.otlp_endpoint {endpoint}: the OTLP exporter cannot start ({e}); traces are not exported"
                );
                None
            }
        }
    });
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let _ = if settings.format == "json" {
        registry.with(fmt::layer().json().with_current_span(true).with_span_list(false)).try_init()
    } else {
        registry.with(fmt::layer().compact()).try_init()
    };
}

/// Sends the spans still buffered (call before the process exits).
pub fn flush() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.force_flush();
    }
}

fn exporter(endpoint: &str) -> Result<opentelemetry_sdk::trace::SdkTracerProvider, String> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig as _};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_secs(5))
        .with_headers(Default::default())
        .build()
        .map_err(|e| e.to_string())?;
    // The service name comes from OTEL_SERVICE_NAME (the SDK reads it), else "arflow".
    let resource = opentelemetry_sdk::Resource::builder().build();
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The W3C `traceparent` of an event: the trace is its chain's `correlation_id`, the parent span
/// the event itself (the low 64 bits of its id).
pub fn traceparent(correlation_id: Uuid, event_id: Uuid) -> Option<String> {
    let context = span_context(correlation_id, event_id)?;
    Some(format!("00-{}-{}-01", context.trace_id(), context.span_id()))
}

fn span_context(correlation_id: Uuid, event_id: Uuid) -> Option<SpanContext> {
    let trace = TraceId::from_bytes(*correlation_id.as_bytes());
    let low: [u8; 8] = event_id.as_bytes()[8..].try_into().ok()?;
    let span = SpanId::from_bytes(low);
    (trace != TraceId::INVALID && span != SpanId::INVALID)
        .then(|| SpanContext::new(trace, span, TraceFlags::SAMPLED, true, TraceState::default()))
}

/// Parses a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`).
pub fn parse_traceparent(header: &str) -> Option<SpanContext> {
    let mut parts = header.trim().split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2 || version == "ff" || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok().filter(|t| *t != TraceId::INVALID)?;
    let span = SpanId::from_hex(span).ok().filter(|s| *s != SpanId::INVALID)?;
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()?);
    Some(SpanContext::new(trace, span, flags, true, TraceState::default()))
}

/// Makes `span` a child of the remote span in `traceparent` (or, without one, of the event
/// itself in its chain's trace). A no-op when no OpenTelemetry layer is installed.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>, correlation_id: Uuid, event_id: Uuid) {
    let remote = traceparent.and_then(parse_traceparent).or_else(|| span_context(correlation_id, event_id));
    if let Some(remote) = remote {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_events_traceparent_is_its_chain_and_itself() {
        let corr = Uuid::parse_str("0192f1c2-0000-7000-8000-00000000abcd").unwrap_or_default();
        let id = Uuid::parse_str("0192f1c2-1111-7000-8123-456789abcdef").unwrap_or_default();
        let tp = traceparent(corr, id).unwrap_or_default();
        assert_eq!(tp, "00-0192f1c200007000800000000000abcd-8123456789abcdef-01");
        let back = parse_traceparent(&tp).map(|c| (c.trace_id().to_string(), c.span_id().to_string()));
        assert_eq!(back, Some(("0192f1c200007000800000000000abcd".into(), "8123456789abcdef".into())));
        assert!(parse_traceparent("00-00000000000000000000000000000000-8123456789abcdef-01").is_none());
        assert!(parse_traceparent("garbage").is_none());
        assert!(traceparent(Uuid::nil(), id).is_none());
    }
}
