//! Clients in Pacific/Auckland and America/Los_Angeles each get their reminders inside
//! their own business hours, on their own business days.
use arflow_tests::TestApp;
use chrono::{Datelike, Duration, NaiveDate, Timelike, Weekday};
use chrono_tz::Tz;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_is_emailed_inside_their_own_window() {
    let app = TestApp::spawn().await;
    let firm = app.create_firm().await;
    let zones = [("cus_akl", "Pacific/Auckland"), ("cus_lax", "America/Los_Angeles")];
    let mut invoices = vec![];
    for (customer, tz) in zones {
        app.add_client(&firm, customer, &format!("Client in {tz}"), "standard", tz).await;
        let due = NaiveDate::from_ymd_opt(2026, 3, 6).unwrap(); // a Friday
        invoices.push((tz, app.finalize_invoice(&firm, &format!("in_{customer}"), customer, 50_000, "usd", due).await));
    }
    app.process_until_idle().await;
    app.advance(Duration::days(20)).await;

    for (tz, invoice) in invoices {
        let zone: Tz = tz.parse().unwrap();
        let sent: Vec<_> = app
            .events("OUTREACH", "outreach.email.sent.")
            .await
            .into_iter()
            .filter(|(_, e)| e.data["invoice_id"] == invoice.to_string())
            .collect();
        assert!(sent.len() >= 4, "{tz}: pre-due, due-day, +3, +7 and +14 by now ({} sent)", sent.len());
        for (_, e) in sent {
            let local = e.time.with_timezone(&zone);
            assert!((9..17).contains(&local.hour()), "{tz}: sent at {local}");
            assert!(!matches!(local.weekday(), Weekday::Sat | Weekday::Sun), "{tz}: sent on {local}");
        }
    }
}
