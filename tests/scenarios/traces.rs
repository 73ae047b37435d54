//! One trace from the Stripe webhook to the email: every message carries a W3C `traceparent`
//! whose trace is its chain's correlation id, so the email's `sent` event continues the trace of
//! the webhook's invoice event through eligibility, the scheduler and the email service.
use arflow_tests::{TestApp, start_time};
use chrono::{Duration, NaiveDate};

async fn traceparents(
    app: &TestApp,
    stream: &str,
    prefix: &str,
) -> Vec<(String, String, arflow_contracts::envelope::RawEnvelope)> {
    let s = app.bus.js.get_stream(stream).await.unwrap();
    let state = s.get_info().await.unwrap().state;
    let mut out = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        if let Ok(m) = s.get_raw_message(seq).await
            && m.subject.starts_with(prefix)
        {
            let env = arflow_contracts::envelope::RawEnvelope::parse(&m.payload).unwrap();
            let tp = m.headers.get("traceparent").map(|v| v.as_str().to_string()).unwrap_or_default();
            out.push((m.subject.to_string(), tp, env));
        }
    }
    out
}

fn trace_of(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_continues_the_trace_of_the_stripe_webhook() {
    let app = TestApp::spawn().await;
    let firm = app.create_firm().await;
    app.add_client(&firm, "cus_trace", "Trace Dental", "long_standing", "America/New_York").await;
    let due = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
    let invoice = app.finalize_invoice(&firm, "in_trace", "cus_trace", 120_000, "usd", due).await;
    app.process_until_idle().await;
    let days = (due - start_time().date_naive()).num_days() + 1;
    app.advance(Duration::days(days)).await;
    assert!(!app.emails_for(invoice).is_empty(), "a reminder went out");

    let billing = traceparents(&app, "BILLING", "billing.invoice_upserted").await;
    let from_webhook: Vec<_> = billing.iter().filter(|(_, _, e)| e.subject_id == invoice).collect();
    assert!(!from_webhook.is_empty());
    for (subject, tp, env) in &from_webhook {
        assert_eq!(trace_of(tp), env.correlation_id.simple().to_string(), "{subject}: {tp}");
    }
    let sent = traceparents(&app, "OUTREACH", "outreach.email.sent").await;
    let sent: Vec<_> = sent.iter().filter(|(_, _, e)| e.subject_id == invoice).collect();
    assert!(!sent.is_empty(), "the email's sent event");
    let webhook_traces: Vec<String> = from_webhook.iter().map(|(_, tp, _)| trace_of(tp).to_string()).collect();
    assert!(
        sent.iter().any(|(_, tp, _)| webhook_traces.contains(&trace_of(tp).to_string())),
        "the email's trace {:?} is one of the webhook's {webhook_traces:?}",
        sent.iter().map(|(_, tp, _)| tp.clone()).collect::<Vec<_>>()
    );
    // Every event of the stack carries one.
    for stream in ["ELIGIBILITY", "OUTREACH"] {
        for (subject, tp, _) in traceparents(&app, stream, "").await {
            assert!(tp.starts_with("00-") && tp.ends_with("-01"), "{subject}: {tp:?}");
        }
    }
}
