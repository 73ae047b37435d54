//! The scheduler on the real stack: nats-server + PostgreSQL + the Application in-process,
//! with a simulated clock moved the way Stripe test clocks move: forward, stopping at every
//! pending timer on the way (`advance`), or in one jump where a test is about a jump (`jump`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use arflow_bus::Bus;
use arflow_contracts::envelope::RawEnvelope;
use arflow_contracts::events::{
    AutomationStatus, CadenceExhausted, CallEnded, CallOutcome, Check, ConsentChanged, ContactSnapshot,
    EligibilityChanged, HaltReason, InvoiceHalted, PlanUpdated, PromiseBroken, StepDue, StepSkipped, Tier, Tone,
};
use arflow_contracts::{Envelope, msg_id, subjects};
use arflow_core::{Channel, SendWindow, window::parse_tz};
use arflow_runtime::ServiceConfig;
use arflow_runtime::{ClockMode, Metrics, NatsSettings};
use arflow_scheduler::{Application, Config};
use arflow_service::StartupError;
use arflow_testkit::{TestDb, TestNats};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use rust_decimal::Decimal;
use sqlx::PgPool;
use std::time::Instant;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

struct Running {
    port: u16,
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), StartupError>>,
}

struct TestApp {
    _nats: TestNats,
    db: TestDb,
    bus: Bus,
    pool: PgPool,
    app: Option<Running>,
    firm: Uuid,
    /// Last OUTREACH stream sequence read.
    seen: u64,
}

async fn start_app(nats_url: &str, db_url: &str) -> Running {
    let mut config = Config::defaults().unwrap();
    config.nats.url = nats_url.to_string();
    config.database.url = Some(db_url.to_string().into());
    config.database.max_connections = 4;
    config.http.port = 0;
    config.clock.mode = ClockMode::Simulated;
    config.clock.start = Some(start_time());
    config.scheduler.tick_ms = 200;
    let shutdown = CancellationToken::new();
    let app = Application::build(config, shutdown.clone()).await.unwrap();
    let port = app.port();
    assert!(port > 0);
    Running { port, shutdown, handle: tokio::spawn(app.run()) }
}

impl TestApp {
    async fn spawn() -> Self {
        let nats = TestNats::start();
        let db = TestDb::create().await;
        let app = start_app(&nats.url(), &db.url()).await;
        let bus = Bus::connect(&NatsSettings::at(nats.url()), "test", Metrics::new("test")).await.unwrap();
        let pool = PgPool::connect(&db.url()).await.unwrap();
        TestApp { _nats: nats, db, bus, pool, app: Some(app), firm: Uuid::now_v7(), seen: 0 }
    }

    /// Stops the service the way SIGTERM does and waits until it has drained.
    async fn stop(&mut self) {
        let running = self.app.take().expect("running");
        running.shutdown.cancel();
        running.handle.await.unwrap().unwrap();
    }

    async fn restart(&mut self) {
        self.app = Some(start_app(&self.bus_url(), &self.db.url()).await);
    }

    async fn get_plan(&self, invoice_id: Uuid) -> (u16, serde_json::Value) {
        let port = self.app.as_ref().expect("running").port;
        let url = format!("http://127.0.0.1:{port}/v1/firms/{}/invoices/{invoice_id}/plan", self.firm);
        let resp = reqwest::get(url).await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    fn bus_url(&self) -> String {
        self._nats.url()
    }

    async fn now(&self) -> DateTime<Utc> {
        arflow_bus::clock::read(&self.bus).await.unwrap().map(|(t, _)| t).unwrap_or_else(start_time)
    }

    async fn publish_decision(&self, d: &EligibilityChanged) {
        let env = Envelope::new(
            subjects::eligibility::CHANGED,
            "eligibility",
            self.now().await,
            self.firm,
            d.invoice_id,
            None,
            d.clone(),
        );
        self.bus
            .publish_event(
                &subjects::subject(subjects::eligibility::CHANGED, self.firm),
                &msg_id::eligibility(d.invoice_id, d.version),
                &env,
            )
            .await
            .unwrap();
        self.settle().await;
    }

    async fn pay(&self, invoice_id: Uuid) {
        let data = InvoiceHalted {
            invoice_id,
            client_id: Uuid::now_v7(),
            stripe_invoice_id: "in_test".into(),
            reason: HaltReason::Paid,
            stripe_event_id: "evt_paid".into(),
            hold_revision: 1,
            version: 1,
        };
        let env = Envelope::new(
            subjects::billing::INVOICE_PAID,
            "gateway",
            self.now().await,
            self.firm,
            invoice_id,
            None,
            data,
        );
        let subject = subjects::subject(subjects::billing::INVOICE_PAID, self.firm);
        self.bus.publish_event(&subject, &msg_id::stripe_event("evt_paid"), &env).await.unwrap();
        self.settle().await;
    }

    async fn opt_out(&self, contact_id: Uuid) {
        let data = ConsentChanged {
            contact_id,
            client_id: Uuid::now_v7(),
            channel: Some(Channel::Email),
            source: "reply".into(),
            evidence: "please stop".into(),
        };
        let env =
            Envelope::new(subjects::consent::OPTED_OUT, "opt-out", self.now().await, self.firm, contact_id, None, data);
        let subject = subjects::subject(subjects::consent::OPTED_OUT, self.firm);
        self.bus.publish_event(&subject, &format!("optout:{contact_id}"), &env).await.unwrap();
        self.settle().await;
    }

    /// Moves the clock forward by `by`, stopping at every pending timer on the way and letting
    /// the scheduler go idle at each stop (as Stripe test clocks do): each step is decided at
    /// its own time, as in production.
    ///
    /// The same walk as `arflow_testkit::idle::advance_stepwise`, but idle is measured on the
    /// scheduler's own consumers (`settle`): the testkit counts every consumer of every stream,
    /// and after `restart` the stopped instance's clock watch (an ephemeral `KV_clock` consumer)
    /// lingers for its 30 s inactivity threshold with the clock update it never received.
    async fn advance(&self, by: Duration) -> DateTime<Utc> {
        let target = self.now().await + by;
        loop {
            let at = self.now().await;
            let (next,): (Option<DateTime<Utc>>,) = sqlx::query_as(
                "SELECT min(scheduled_for) FROM scheduler.steps \
                 WHERE state = 'pending' AND scheduled_for > $1 AND scheduled_for <= $2",
            )
            .bind(at)
            .bind(target)
            .fetch_one(&self.pool)
            .await
            .unwrap();
            let at = arflow_bus::clock::set(&self.bus, next.unwrap_or(target)).await.unwrap();
            // Let the service see the new time before measuring quiet.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            self.settle().await;
            if at >= target {
                return at;
            }
        }
    }

    /// Moves the clock forward by `by` in one jump, with no stop on the way (`arflow clock advance`).
    async fn jump(&self, by: Duration) -> DateTime<Utc> {
        let now = arflow_bus::clock::advance(&self.bus, by).await.unwrap();
        self.settle().await;
        now
    }

    /// Waits until the scheduler's consumers, outbox and due timers are all quiet.
    async fn settle(&self) {
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        let mut quiet = 0;
        loop {
            let busy = self.busy().await;
            quiet = if busy == 0 { quiet + 1 } else { 0 };
            if quiet >= 3 {
                return;
            }
            assert!(Instant::now() < deadline, "scheduler still busy: {busy}");
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
    }

    async fn busy(&self) -> u64 {
        let mut busy = 0;
        for (stream, durable) in [
            ("ELIGIBILITY", "scheduler-eligibility"),
            ("BILLING", "scheduler-billing"),
            ("CONSENT", "scheduler-consent"),
            ("OUTREACH", "scheduler-voice-outcomes"),
        ] {
            let stream = self.bus.js.get_stream(stream).await.unwrap();
            match stream.consumer_info(durable).await {
                Ok(info) => busy += info.num_pending + info.num_ack_pending as u64,
                Err(_) => busy += 1,
            }
        }
        let now = self.now().await;
        let (outbox,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM scheduler.outbox").fetch_one(&self.pool).await.unwrap();
        let (due,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM scheduler.steps WHERE state = 'pending' AND scheduled_for <= $1")
                .bind(now)
                .fetch_one(&self.pool)
                .await
                .unwrap();
        busy + outbox as u64 + due as u64
    }

    /// The OUTREACH messages published since the last call.
    async fn outreach(&mut self) -> Vec<(String, RawEnvelope)> {
        let stream = self.bus.js.get_stream("OUTREACH").await.unwrap();
        let last = stream.get_info().await.unwrap().state.last_sequence;
        let mut out = Vec::new();
        for seq in self.seen + 1..=last {
            if let Ok(m) = stream.get_raw_message(seq).await {
                out.push((m.subject.to_string(), RawEnvelope::parse(&m.payload).unwrap()));
            }
        }
        self.seen = last;
        out
    }

    /// Each step's name, state and time, in cadence order.
    async fn schedule(&self, invoice_id: Uuid) -> Vec<(String, String, DateTime<Utc>)> {
        sqlx::query_as(
            "SELECT name, state, scheduled_for FROM scheduler.steps WHERE invoice_id = $1 ORDER BY offset_days",
        )
        .bind(invoice_id)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    async fn steps(&self, invoice_id: Uuid) -> Vec<(String, String, Option<String>, Option<String>)> {
        sqlx::query_as(
            "SELECT name, state, reason, detail FROM scheduler.steps WHERE invoice_id = $1 ORDER BY offset_days",
        )
        .bind(invoice_id)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// The voice service reports how the call of `due` ended (`outreach.voice.<outcome>.<firm>`);
    /// returns the envelope so a test can deliver it again.
    async fn call_ended(&self, due: &StepDue, outcome: CallOutcome) -> Envelope<CallEnded> {
        let now = self.now().await;
        let data = CallEnded {
            call_id: Uuid::now_v7(),
            step_id: due.step_id,
            invoice_id: due.invoice_id,
            contact_id: due.contact.contact_id,
            client_id: due.client.client_id,
            step: due.step.clone(),
            attempt: due.attempt,
            outcome,
            provider_status: match outcome {
                CallOutcome::NoAnswer => "no-answer".into(),
                CallOutcome::Failed => "failed".into(),
                _ => "completed".into(),
            },
            answered_by: None,
            provider_call_sid: Some("CA0123456789abcdef0123456789abcdef".into()),
            to: due.contact.phone.clone().unwrap_or_default(),
            duration_secs: None,
            placed_at: now,
            ended_at: now,
            transcript: vec![],
            intents: vec![],
            promised_date: None,
            recording_url: None,
            script: "call-firm@1".into(),
            detail: outcome.as_str().into(),
            explanation: due.explanation.clone(),
        };
        let env = Envelope::new(outcome.subject(), "voice", now, self.firm, due.invoice_id, None, data);
        self.deliver(&env, &msg_id::call(env.data.call_id, outcome.as_str())).await;
        env
    }

    /// Publishes an outcome envelope on its subject with `id` as its `Nats-Msg-Id`.
    async fn deliver<T: serde::Serialize>(&self, env: &Envelope<T>, id: &str) {
        self.bus.publish_event(&subjects::subject(&env.kind, self.firm), id, env).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        self.settle().await;
    }

    /// Moves the clock from timer to timer (at most `stops`) until a step named `name` fires, and
    /// stops there (so an outcome is reported at the time of the call); returns the step, when
    /// it went out, and every OUTREACH message on the way.
    async fn until_fired(&mut self, name: &str, stops: u32) -> (StepDue, DateTime<Utc>, Vec<(String, RawEnvelope)>) {
        let mut seen = Vec::new();
        for _ in 0..stops {
            let now = self.now().await;
            let (next,): (Option<DateTime<Utc>>,) = sqlx::query_as(
                "SELECT min(scheduled_for) FROM scheduler.steps WHERE state = 'pending' AND scheduled_for > $1",
            )
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .unwrap();
            let next = next.unwrap_or_else(|| panic!("nothing pending before {name} fired"));
            self.advance(next - now).await;
            seen.extend(self.outreach().await);
            if let Some((due, at)) = fired_at(&seen).into_iter().find(|(s, _)| s.step == name) {
                return (due, at, seen);
            }
        }
        panic!("{name} did not fire within {stops} timers");
    }

    /// The invoice's step named `name`: state, channel, attempt, time.
    async fn step_named(&self, invoice_id: Uuid, name: &str) -> Option<(String, String, i32, DateTime<Utc>)> {
        sqlx::query_as(
            "SELECT state, channel, attempt, scheduled_for FROM scheduler.steps WHERE invoice_id = $1 AND name = $2",
        )
        .bind(invoice_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .unwrap()
    }
}

/// The steps fired in `msgs` on every channel, each with the time it went out (the envelope's
/// time, from the scheduler's clock); each on the subject of its channel.
fn fired_at(msgs: &[(String, RawEnvelope)]) -> Vec<(StepDue, DateTime<Utc>)> {
    msgs.iter()
        .filter(|(s, _)| s.starts_with("outreach.step_due."))
        .map(|(subject, e)| {
            let due = e.data_as::<StepDue>().unwrap();
            let kind = match due.channel {
                Channel::Email => subjects::outreach::STEP_DUE_EMAIL,
                Channel::Voice => subjects::outreach::STEP_DUE_VOICE,
                Channel::Sms => subjects::outreach::STEP_DUE_SMS,
            };
            assert_eq!(subject, &subjects::subject(kind, e.firm_id), "{} on the wrong subject", due.step);
            (due, e.time)
        })
        .collect()
}

fn of_kind<T: serde::de::DeserializeOwned>(msgs: &[(String, RawEnvelope)], prefix: &str) -> Vec<T> {
    msgs.iter().filter(|(s, _)| s.starts_with(&format!("{prefix}."))).map(|(_, e)| e.data_as::<T>().unwrap()).collect()
}

fn decision(due: NaiveDate, zone: &str, tier: Tier) -> EligibilityChanged {
    let mut d = arflow_contracts::fixtures::decision(Some(due), zone, tier);
    d.checks = vec![Check { rule: "amount_above_minimum".into(), passed: true, detail: "3200.00 USD > 50 USD".into() }];
    d
}

/// The default cadence's email steps (a client whose contacts take no calls or texts gets these).
const EMAIL_CADENCE: [&str; 6] = ["pre_due", "due_today", "overdue_3", "overdue_7", "overdue_14", "overdue_30"];
/// The whole default cadence, in order.
const CADENCE: [&str; 8] = [
    "pre_due",
    "due_today",
    "overdue_3",
    "overdue_7",
    "text_overdue_10",
    "overdue_14",
    "call_overdue_21",
    "overdue_30",
];

/// Asserts a fired step went out (`sent_at`) inside its window and exactly at its timer (the
/// clock stops at every timer, so nothing goes out late): an email inside 09:00-17:00 on a
/// business day in `zone`; a call or text inside 08:00-21:00, Monday to Saturday, in the
/// contact's call zone.
fn assert_in_window(step: &StepDue, zone: &str, sent_at: DateTime<Utc>) {
    if step.channel != Channel::Email {
        let call_zone = step.contact.call_timezone.as_deref().unwrap();
        let tz = parse_tz(call_zone).unwrap();
        let local = sent_at.with_timezone(&tz);
        assert!((8..21).contains(&local.hour()), "{} placed at {local} ({call_zone})", step.step);
        assert!(arflow_core::calls::default_window().contains(sent_at, tz), "{} placed at {local}", step.step);
        assert_eq!(sent_at, step.scheduled_for, "{} went out at {local}, not at its timer", step.step);
        return;
    }
    let tz = parse_tz(zone).unwrap();
    let local = sent_at.with_timezone(&tz);
    assert!(SendWindow::business_hours().contains(sent_at, tz), "{} sent at {local} ({zone})", step.step);
    assert!(!matches!(local.weekday(), Weekday::Sat | Weekday::Sun), "{} on a weekend: {local}", step.step);
    assert_eq!(sent_at, step.scheduled_for, "{} went out at {local}, not at its timer", step.step);
}

/// Gives the decision's primary contact a phone, call and text consent and `call_zone`.
fn reachable_by_phone(mut d: EligibilityChanged, call_zone: &str) -> EligibilityChanged {
    let c = &mut d.contacts[0];
    c.phone = Some("+12125550100".into());
    c.channels = vec![Channel::Email, Channel::Voice, Channel::Sms];
    c.call_timezone = Some(call_zone.into());
    d
}

/// Adds a second contact, reachable only by phone (calls and texts) in `call_zone`.
fn with_phone_contact(mut d: EligibilityChanged, call_zone: Option<&str>) -> (EligibilityChanged, ContactSnapshot) {
    let phone = ContactSnapshot {
        contact_id: Uuid::now_v7(),
        name: "Sam Payables".into(),
        email: None,
        phone: Some("+13105550100".into()),
        timezone: d.contacts[0].timezone.clone(),
        channels: vec![Channel::Voice, Channel::Sms],
        call_timezone: call_zone.map(Into::into),
    };
    d.contacts.push(phone.clone());
    (d, phone)
}

#[tokio::test]
async fn default_cadence_fires_each_step_once_on_its_day_inside_the_local_window() {
    let mut t = TestApp::spawn().await;
    let zone = "America/New_York";
    // Due Friday 13 March; US daylight saving starts on the 8th, in the middle of the cadence.
    // The contact takes emails, calls and texts, and lives in New York.
    let d = reachable_by_phone(decision(date(2026, 3, 13), zone, Tier::Standard), zone);
    t.publish_decision(&d).await;
    let first = t.outreach().await;
    let plan: Vec<PlanUpdated> = of_kind(&first, subjects::outreach::PLAN_UPDATED);
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].automation_status, AutomationStatus::Enabled);
    assert_eq!(plan[0].next.as_ref().unwrap().step, "pre_due");

    let mut fired: Vec<StepDue> = Vec::new();
    let mut exhausted: Vec<(CadenceExhausted, usize)> = Vec::new();
    for _ in 0..45 {
        t.advance(Duration::days(1)).await;
        let msgs = t.outreach().await;
        assert!(of_kind::<StepSkipped>(&msgs, subjects::outreach::STEP_SKIPPED).is_empty());
        for (s, sent_at) in fired_at(&msgs) {
            assert_in_window(&s, zone, sent_at);
            fired.push(s);
        }
        for e in of_kind::<CadenceExhausted>(&msgs, subjects::outreach::CADENCE_EXHAUSTED) {
            exhausted.push((e, fired.len()));
        }
    }
    // The cadence is exhausted once, when its last step fires, not before.
    assert_eq!(exhausted.len(), 1, "{exhausted:?}");
    let (e, after) = &exhausted[0];
    assert_eq!((e.invoice_id, e.last_step.as_str(), e.steps_fired, *after), (d.invoice_id, "overdue_30", 8, 8));
    assert_eq!(e.policy_version, 1);
    let names: Vec<&str> = fired.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(names, CADENCE);
    use Channel::{Email, Sms, Voice};
    let channels: Vec<Channel> = fired.iter().map(|s| s.channel).collect();
    assert_eq!(channels, vec![Email, Email, Email, Email, Sms, Email, Voice, Email]);
    assert!(fired.iter().all(|s| s.attempt == 1 && s.contact.contact_id == d.contacts[0].contact_id));
    let tones: Vec<Tone> = fired.iter().map(|s| s.tone).collect();
    use Tone::*;
    assert_eq!(tones, vec![Friendly, Friendly, Friendly, Friendly, Friendly, Firm, Firm, Final]);
    assert_eq!(
        fired.iter().map(|s| s.pay_link).collect::<Vec<_>>(),
        vec![false, false, true, true, true, true, true, true]
    );
    // The text (+10) goes on Monday 23 March at 08:00, the call (+21) on Friday 3 April at 08:00.
    assert_eq!(fired[4].scheduled_for, Utc.with_ymd_and_hms(2026, 3, 23, 12, 0, 0).unwrap());
    assert_eq!(fired[6].scheduled_for, Utc.with_ymd_and_hms(2026, 4, 3, 12, 0, 0).unwrap());
    // +30 falls on Sunday 12 April: it goes out on Monday, 31 days overdue.
    assert_eq!(fired.iter().map(|s| s.days_overdue).collect::<Vec<_>>(), vec![-7, 0, 3, 7, 10, 14, 21, 31]);
    let last = &fired[7];
    assert_eq!(last.explanation.rule, "default-email/overdue_30");
    assert_eq!(last.explanation.policy_version, 1);
    assert_eq!(last.explanation.eligibility_version, 1);
    assert_eq!(last.contact.email.as_deref(), Some("jane@example.com"));
    assert!(t.steps(d.invoice_id).await.iter().all(|s| s.1 == "fired"));
}

#[tokio::test]
async fn contacts_in_auckland_and_los_angeles_get_steps_inside_their_own_windows() {
    let mut t = TestApp::spawn().await;
    let zones = ["Pacific/Auckland", "America/Los_Angeles"];
    let decisions: Vec<EligibilityChanged> = zones.iter().map(|z| decision(date(2026, 3, 10), z, Tier::New)).collect();
    for d in &decisions {
        t.publish_decision(d).await;
    }
    t.outreach().await;
    let mut fired: Vec<Vec<StepDue>> = vec![vec![], vec![]];
    for _ in 0..40 {
        t.advance(Duration::days(1)).await;
        for (s, sent_at) in fired_at(&t.outreach().await) {
            let i = decisions.iter().position(|d| d.invoice_id == s.invoice_id).unwrap();
            assert_in_window(&s, zones[i], sent_at);
            fired[i].push(s);
        }
    }
    for (i, steps) in fired.iter().enumerate() {
        assert_eq!(steps.iter().map(|s| s.step.as_str()).collect::<Vec<_>>(), EMAIL_CADENCE, "{}", zones[i]);
        // A new client gets the firm tone already at +7.
        assert_eq!(steps[3].tone, Tone::Firm);
    }
    // Same due date, different zones: Auckland's 09:00 comes long before Los Angeles' 09:00.
    assert!(fired[0][1].scheduled_for < fired[1][1].scheduled_for);
}

#[tokio::test]
async fn payment_cancels_pending_steps_and_nothing_fires_after_it() {
    let mut t = TestApp::spawn().await;
    let d = decision(date(2026, 3, 5), "Europe/London", Tier::Standard);
    t.publish_decision(&d).await;
    // pre_due (26 Feb) was already due when the plan was made, at midnight in London: it waits
    // for the window to open (Monday 2 March, 09:00 GMT) instead of going out at once.
    let first = t.outreach().await;
    assert!(of_kind::<StepDue>(&first, subjects::outreach::STEP_DUE_EMAIL).is_empty(), "{first:?}");
    let opening = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    assert_eq!(t.schedule(d.invoice_id).await[0], ("pre_due".into(), "pending".into(), opening));
    for _ in 0..4 {
        t.advance(Duration::days(1)).await;
    }
    let before = fired_at(&t.outreach().await);
    assert_eq!(before.iter().map(|(s, _)| s.step.as_str()).collect::<Vec<_>>(), ["pre_due", "due_today"]);
    assert_eq!(before[0].1, opening);
    for (s, sent_at) in &before {
        assert_in_window(s, "Europe/London", *sent_at);
    }

    t.pay(d.invoice_id).await;
    let msgs = t.outreach().await;
    let skipped: Vec<StepSkipped> = of_kind(&msgs, subjects::outreach::STEP_SKIPPED);
    assert_eq!(skipped.len(), 6, "{skipped:?}");
    assert!(skipped.iter().all(|s| s.reason == "invoice_halted: paid"));
    let plan: Vec<PlanUpdated> = of_kind(&msgs, subjects::outreach::PLAN_UPDATED);
    assert_eq!(plan.last().unwrap().automation_status, AutomationStatus::HaltedPaid);
    assert!(plan.last().unwrap().next.is_none());

    // A later decision does not bring the plan back.
    let mut newer = d.clone();
    newer.version = 2;
    t.publish_decision(&newer).await;
    t.advance(Duration::days(40)).await;
    let after = t.outreach().await;
    assert!(of_kind::<StepDue>(&after, subjects::outreach::STEP_DUE_EMAIL).is_empty(), "{after:?}");
    let states: Vec<String> = t.steps(d.invoice_id).await.into_iter().map(|s| s.1).collect();
    assert_eq!(
        states,
        ["fired", "fired", "cancelled", "cancelled", "cancelled", "cancelled", "cancelled", "cancelled"]
    );
}

#[tokio::test]
async fn a_big_jump_fires_only_the_latest_due_step() {
    let mut t = TestApp::spawn().await;
    let d = decision(date(2026, 3, 9), "America/Chicago", Tier::Standard);
    t.publish_decision(&d).await;
    t.outreach().await;
    // One jump to 22 March 00:00 UTC: pre_due, due_today, overdue_3, overdue_7 and the text
    // (+10) are all due, overdue_14 (Monday 23 March) is not. It is Saturday 19:00 in Chicago:
    // no email goes out, the due ones wait for the window to open on Monday 23 March, 09:00
    // CDT. The text has no one to go to (the only contact takes no texts): skipped at once.
    let landed = t.jump(Duration::days(20)).await;
    let msgs = t.outreach().await;
    assert!(fired_at(&msgs).is_empty(), "{msgs:?}");
    let skipped: Vec<StepSkipped> = of_kind(&msgs, subjects::outreach::STEP_SKIPPED);
    assert_eq!(
        skipped.iter().map(|s| (s.step.as_str(), s.reason.as_str())).collect::<Vec<_>>(),
        [("text_overdue_10", "no_consented_contact")],
        "{msgs:?}"
    );
    let opening = Utc.with_ymd_and_hms(2026, 3, 23, 14, 0, 0).unwrap();
    let schedule = t.schedule(d.invoice_id).await;
    for (name, state, at) in &schedule[..4] {
        assert_eq!((state.as_str(), *at), ("pending", opening), "{name}");
    }
    assert_eq!((schedule[4].0.as_str(), schedule[4].1.as_str()), ("text_overdue_10", "skipped"));
    // overdue_14 was planned for that very opening, so when the clock gets there it is the
    // latest due step: it alone goes out, and everything the jump skipped over is superseded.
    assert_eq!(schedule[5], ("overdue_14".into(), "pending".into(), opening));
    t.advance(opening - landed).await;
    let msgs = t.outreach().await;
    let fired = fired_at(&msgs);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].0.step, "overdue_14");
    assert_eq!(fired[0].0.days_overdue, 14);
    assert_in_window(&fired[0].0, "America/Chicago", fired[0].1);
    let skipped: Vec<StepSkipped> = of_kind(&msgs, subjects::outreach::STEP_SKIPPED);
    assert_eq!(
        skipped.iter().map(|s| s.step.as_str()).collect::<Vec<_>>(),
        ["pre_due", "due_today", "overdue_3", "overdue_7"]
    );
    for s in &skipped {
        assert_eq!(s.reason, "superseded");
        assert!(s.detail.contains("overdue_14"), "{}", s.detail);
    }
    let plan: Vec<PlanUpdated> = of_kind(&msgs, subjects::outreach::PLAN_UPDATED);
    let next = plan.last().unwrap().next.clone().unwrap();
    // The call (+21, Monday 30 March) is next, at 08:00 CDT: the call window's opening.
    assert_eq!((next.step.as_str(), next.channel), ("call_overdue_21", Channel::Voice));
    assert_eq!(next.at, Utc.with_ymd_and_hms(2026, 3, 30, 13, 0, 0).unwrap());
    // The plan as the API shows it.
    let (status, body) = t.get_plan(d.invoice_id).await;
    assert_eq!(status, 200);
    let states: Vec<&str> = body["steps"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["skipped", "skipped", "skipped", "skipped", "skipped", "fired", "pending", "pending"]);
    let channels: Vec<&str> =
        body["steps"].as_array().unwrap().iter().map(|s| s["channel"].as_str().unwrap()).collect();
    assert_eq!(channels, ["email", "email", "email", "email", "sms", "email", "voice", "email"]);
    let (status, body) = t.get_plan(Uuid::now_v7()).await;
    assert_eq!(status, 404);
    assert_eq!(body["type"], "https://arflow.dev/problems/plan-not-found");
}

#[tokio::test]
async fn ineligible_steps_are_skipped_with_the_failed_rules() {
    let mut t = TestApp::spawn().await;
    let mut d = decision(date(2026, 3, 12), "America/New_York", Tier::Standard);
    d.eligible = false;
    d.checks.push(Check { rule: "invoice_not_disputed".into(), passed: false, detail: "disputed by client".into() });
    t.publish_decision(&d).await;
    t.outreach().await;
    for _ in 0..4 {
        t.advance(Duration::days(1)).await;
    }
    let msgs = t.outreach().await;
    assert!(of_kind::<StepDue>(&msgs, subjects::outreach::STEP_DUE_EMAIL).is_empty());
    let skipped: Vec<StepSkipped> = of_kind(&msgs, subjects::outreach::STEP_SKIPPED);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].step, "pre_due");
    assert_eq!(skipped[0].reason, "ineligible");
    assert_eq!(skipped[0].detail, "invoice_not_disputed");
}

#[tokio::test]
async fn an_opted_out_contact_is_dropped_and_the_step_skipped() {
    let mut t = TestApp::spawn().await;
    let d = decision(date(2026, 3, 12), "America/New_York", Tier::Standard);
    t.publish_decision(&d).await;
    t.opt_out(d.contacts[0].contact_id).await;
    t.outreach().await;
    for _ in 0..4 {
        t.advance(Duration::days(1)).await;
    }
    let msgs = t.outreach().await;
    assert!(of_kind::<StepDue>(&msgs, subjects::outreach::STEP_DUE_EMAIL).is_empty());
    let skipped: Vec<StepSkipped> = of_kind(&msgs, subjects::outreach::STEP_SKIPPED);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].reason, "contact_opted_out");
}

/// The opt-out service lets a firm user opt one channel back in after an opt-out of every
/// channel: email steps fire again for that contact.
#[tokio::test]
async fn email_opted_back_in_after_an_opt_out_of_every_channel_fires_again() {
    let mut t = TestApp::spawn().await;
    let d = decision(date(2026, 3, 12), "America/New_York", Tier::Standard);
    t.publish_decision(&d).await;
    let contact_id = d.contacts[0].contact_id;
    for (kind, channel) in [(subjects::consent::OPTED_OUT, None), (subjects::consent::OPTED_IN, Some(Channel::Email))] {
        let data = ConsentChanged {
            contact_id,
            client_id: Uuid::now_v7(),
            channel,
            source: "firm_user".into(),
            evidence: "client called".into(),
        };
        let env = Envelope::new(kind, "optout", t.now().await, t.firm, contact_id, None, data);
        let id = env.id;
        t.bus.publish_event(&subjects::subject(kind, t.firm), &format!("consent:{id}"), &env).await.unwrap();
        t.settle().await;
    }
    t.outreach().await;
    for _ in 0..4 {
        t.advance(Duration::days(1)).await;
    }
    let msgs = t.outreach().await;
    assert_eq!(of_kind::<StepDue>(&msgs, subjects::outreach::STEP_DUE_EMAIL).len(), 1, "email fires again");
    let skipped: Vec<StepSkipped> = of_kind(&msgs, subjects::outreach::STEP_SKIPPED);
    assert!(skipped.iter().all(|s| s.reason != "contact_opted_out"), "{skipped:?}");
}

#[tokio::test]
async fn the_same_decision_delivered_twice_creates_the_steps_once() {
    let mut t = TestApp::spawn().await;
    let d = decision(date(2026, 3, 12), "America/New_York", Tier::Standard);
    let env = Envelope::new(
        subjects::eligibility::CHANGED,
        "eligibility",
        start_time(),
        t.firm,
        d.invoice_id,
        None,
        d.clone(),
    );
    let subject = subjects::subject(subjects::eligibility::CHANGED, t.firm);
    // Two stream messages (different Nats-Msg-Ids) carrying the same event: the inbox catches it.
    t.bus.publish_event(&subject, "first", &env).await.unwrap();
    t.bus.publish_event(&subject, "second", &env).await.unwrap();
    // A different event with the same decision version is ignored as not newer.
    t.publish_decision(&d).await;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM scheduler.steps WHERE invoice_id = $1")
        .bind(d.invoice_id)
        .fetch_one(&t.pool)
        .await
        .unwrap();
    assert_eq!(n, 8);
    let msgs = t.outreach().await;
    assert_eq!(of_kind::<PlanUpdated>(&msgs, subjects::outreach::PLAN_UPDATED).len(), 1);
}

#[tokio::test]
async fn a_restart_loses_no_timers() {
    let mut t = TestApp::spawn().await;
    let d = decision(date(2026, 3, 13), "America/New_York", Tier::Standard);
    t.publish_decision(&d).await;
    t.outreach().await;
    t.stop().await;
    // The clock moves while the scheduler is down (no one to stop at its timers): pre_due
    // (Friday 6 March, 09:00 EST) becomes due; it is 10:00 in New York when the scheduler is back.
    let back = Utc.with_ymd_and_hms(2026, 3, 6, 15, 0, 0).unwrap();
    arflow_bus::clock::set(&t.bus, back).await.unwrap();
    t.restart().await;
    t.settle().await;
    let fired = fired_at(&t.outreach().await);
    assert_eq!(fired.iter().map(|(s, _)| s.step.as_str()).collect::<Vec<_>>(), ["pre_due"]);
    // It went out as soon as the scheduler was back, inside the window.
    assert_eq!(fired[0].1, back);
    // And the rest of the plan is still there.
    t.advance(Duration::days(8)).await;
    let fired = fired_at(&t.outreach().await);
    assert_eq!(fired.iter().map(|(s, _)| s.step.as_str()).collect::<Vec<_>>(), ["due_today"]);
    assert_in_window(&fired[0].0, "America/New_York", fired[0].1);
    t.stop().await;
}

#[tokio::test]
async fn a_new_due_date_replans_the_pending_steps() {
    let mut t = TestApp::spawn().await;
    let d = decision(date(2026, 3, 12), "America/New_York", Tier::Standard);
    t.publish_decision(&d).await;
    let mut moved = d.clone();
    moved.version = 2;
    moved.invoice.due_date = Some(date(2026, 3, 19));
    t.publish_decision(&moved).await;
    let plans: Vec<PlanUpdated> = of_kind(&t.outreach().await, subjects::outreach::PLAN_UPDATED);
    let next = plans.last().unwrap().next.clone().unwrap();
    assert_eq!(next.step, "pre_due");
    // 12 March 09:00 in New York (EDT, UTC-4) instead of 5 March.
    assert_eq!(next.at, Utc.with_ymd_and_hms(2026, 3, 12, 13, 0, 0).unwrap());
    // An older decision arriving late (a new event, so neither JetStream nor the inbox drops it) changes nothing.
    let late = Envelope::new(
        subjects::eligibility::CHANGED,
        "eligibility",
        start_time(),
        t.firm,
        d.invoice_id,
        None,
        d.clone(),
    );
    t.bus.publish_event(&subjects::subject(subjects::eligibility::CHANGED, t.firm), "late-v1", &late).await.unwrap();
    t.settle().await;
    assert!(t.outreach().await.is_empty());
    t.advance(Duration::days(4)).await;
    assert!(of_kind::<StepDue>(&t.outreach().await, subjects::outreach::STEP_DUE_EMAIL).is_empty());
}

/// Throughput check (`cargo test -p arflow-scheduler -- --ignored load`): N invoices planned, then
/// one clock jump (into the window: Thursday 12 March, 10:00 in New York) fires one step for each.
#[tokio::test]
#[ignore]
async fn load_plans_and_fires_many_invoices() {
    let n: usize = std::env::var("SCHEDULER_LOAD_N").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let t = TestApp::spawn().await;
    let subject = subjects::subject(subjects::eligibility::CHANGED, t.firm);
    let started = Instant::now();
    let ds: Vec<EligibilityChanged> =
        (0..n).map(|_| decision(date(2026, 3, 12), "America/New_York", Tier::Standard)).collect();
    for chunk in ds.chunks(500) {
        let publishes = chunk.iter().map(|d| {
            let env = Envelope::new(
                subjects::eligibility::CHANGED,
                "eligibility",
                start_time(),
                t.firm,
                d.invoice_id,
                None,
                d.clone(),
            );
            let bus = t.bus.clone();
            let subject = subject.clone();
            async move { bus.publish_event(&subject, &msg_id::eligibility(d.invoice_id, 1), &env).await.unwrap() }
        });
        futures::future::join_all(publishes).await;
    }
    let published = started.elapsed();
    let t = &t;
    let wait = |what: &'static str| async move {
        let deadline = Instant::now() + std::time::Duration::from_secs(600);
        while t.busy().await > 0 {
            assert!(Instant::now() < deadline, "{what} did not finish");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    wait("planning").await;
    let planned = started.elapsed();
    let jump = Instant::now();
    arflow_bus::clock::advance(&t.bus, Duration::days(10) + Duration::hours(14)).await.unwrap();
    wait("firing").await;
    let fired = jump.elapsed();
    let (count,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM scheduler.steps WHERE state = 'fired'").fetch_one(&t.pool).await.unwrap();
    assert_eq!(count as usize, n);
    eprintln!("{n} invoices: published in {published:?}, planned by {planned:?}, fired in {fired:?}");
}

#[tokio::test]
async fn a_payment_before_the_plan_keeps_it_halted_and_bad_payloads_are_dead_lettered() {
    let mut t = TestApp::spawn().await;
    let d = decision(date(2026, 3, 4), "America/New_York", Tier::Key);
    t.pay(d.invoice_id).await;
    t.publish_decision(&d).await;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM scheduler.steps WHERE invoice_id = $1")
        .bind(d.invoice_id)
        .fetch_one(&t.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let plans: Vec<PlanUpdated> = of_kind(&t.outreach().await, subjects::outreach::PLAN_UPDATED);
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].automation_status, AutomationStatus::HaltedPaid);

    // Data that does not match the contract is never processed: it goes to dlq.scheduler.
    let env = Envelope::new(subjects::eligibility::CHANGED, "eligibility", start_time(), t.firm, t.firm, None, 42u32);
    let subject = subjects::subject(subjects::eligibility::CHANGED, t.firm);
    t.bus.publish_event(&subject, "junk", &env).await.unwrap();
    t.settle().await;
    let dlq = t.bus.js.get_stream("DLQ").await.unwrap();
    let info = dlq.get_info().await.unwrap();
    assert_eq!(info.state.messages, 1);
    let letter = dlq.get_raw_message(info.state.last_sequence).await.unwrap();
    assert_eq!(letter.subject.as_str(), "dlq.scheduler");
}

#[tokio::test]
async fn a_pause_holds_the_steps_until_it_ends() {
    let mut t = TestApp::spawn().await;
    let mut d = decision(date(2026, 3, 10), "America/New_York", Tier::Standard);
    // A payment promise until Friday 20 March, 08:00 in New York.
    d.paused_until = Some(Utc.with_ymd_and_hms(2026, 3, 20, 12, 0, 0).unwrap());
    d.automation_status = AutomationStatus::Paused;
    t.publish_decision(&d).await;
    let plans: Vec<PlanUpdated> = of_kind(&t.outreach().await, subjects::outreach::PLAN_UPDATED);
    let resume = Utc.with_ymd_and_hms(2026, 3, 20, 13, 0, 0).unwrap();
    assert_eq!(plans[0].automation_status, AutomationStatus::Paused);
    assert_eq!(plans[0].next.as_ref().unwrap().at, resume);
    let mut fired = Vec::new();
    for _ in 0..19 {
        t.advance(Duration::days(1)).await;
        let msgs = t.outreach().await;
        for (s, sent_at) in fired_at(&msgs) {
            assert!(sent_at >= resume, "{} fired during the pause at {sent_at}", s.step);
            assert_in_window(&s, "America/New_York", sent_at);
            fired.push(s.step);
        }
        for s in of_kind::<StepSkipped>(&msgs, subjects::outreach::STEP_SKIPPED) {
            // The text has no one to go to (the contact takes no texts); the rest is superseded.
            let expected = if s.step == "text_overdue_10" { "no_consented_contact" } else { "superseded" };
            assert_eq!(s.reason, expected, "{s:?}");
        }
    }
    // Everything held by the pause came due at once when it ended: only the latest went out.
    assert_eq!(fired, ["overdue_7"]);
    let states: Vec<String> = t.steps(d.invoice_id).await.into_iter().map(|s| s.1).collect();
    assert_eq!(states, ["skipped", "skipped", "skipped", "fired", "skipped", "pending", "pending", "pending"]);
}

#[tokio::test]
async fn a_plan_made_after_its_steps_were_due_waits_for_the_next_opening_in_the_contacts_zone() {
    let mut t = TestApp::spawn().await;
    let zone = "America/Los_Angeles";
    // First seen on Monday 2 March 00:00 UTC, 10 days overdue (due Friday 20 February): pre_due,
    // due_today, overdue_3 and overdue_7 are already past. In Los Angeles it is Sunday 16:00.
    let d = decision(date(2026, 2, 20), zone, Tier::Standard);
    t.publish_decision(&d).await;
    let msgs = t.outreach().await;
    assert!(of_kind::<StepDue>(&msgs, subjects::outreach::STEP_DUE_EMAIL).is_empty(), "fired at once: {msgs:?}");
    assert!(of_kind::<StepSkipped>(&msgs, subjects::outreach::STEP_SKIPPED).is_empty(), "{msgs:?}");
    // They wait for Monday 2 March, 09:00 PST. The text (+10) comes before them, at the call
    // window's opening, 08:00 PST.
    let opening = Utc.with_ymd_and_hms(2026, 3, 2, 17, 0, 0).unwrap();
    let plan: Vec<PlanUpdated> = of_kind(&msgs, subjects::outreach::PLAN_UPDATED);
    let next = plan.last().unwrap().next.clone().unwrap();
    assert_eq!((next.step.as_str(), next.channel), ("text_overdue_10", Channel::Sms));
    assert_eq!(next.at, opening - Duration::hours(1));
    let schedule = t.schedule(d.invoice_id).await;
    for (name, state, at) in &schedule[..4] {
        assert_eq!((state.as_str(), *at), ("pending", opening), "{name}");
    }

    t.advance(Duration::days(1)).await;
    let msgs = t.outreach().await;
    let fired = fired_at(&msgs);
    assert_eq!(fired.len(), 1, "{fired:?}");
    let (step, sent_at) = &fired[0];
    assert_eq!(step.step, "overdue_7");
    assert_eq!(*sent_at, opening);
    assert_in_window(step, zone, *sent_at);
    assert_eq!(step.days_overdue, 10);
    let skipped: Vec<StepSkipped> = of_kind(&msgs, subjects::outreach::STEP_SKIPPED);
    // The text (+10, Monday 2 March 08:00 PST) came due first and had no one to go to.
    assert_eq!(
        skipped.iter().map(|s| (s.step.as_str(), s.reason.as_str())).collect::<Vec<_>>(),
        [
            ("text_overdue_10", "no_consented_contact"),
            ("pre_due", "superseded"),
            ("due_today", "superseded"),
            ("overdue_3", "superseded")
        ]
    );
    let states: Vec<String> = t.steps(d.invoice_id).await.into_iter().map(|s| s.1).collect();
    assert_eq!(states, ["skipped", "skipped", "skipped", "fired", "skipped", "pending", "pending", "pending"]);
}

#[tokio::test]
async fn a_broken_promise_resumes_outreach_with_a_firm_step_that_supersedes_the_friendly_ones() {
    let mut t = TestApp::spawn().await;
    let zone = "America/New_York";
    // Due Monday 2 March. The client promised to pay by Friday 13 March; eligibility paused
    // outreach until the end of that day plus 3 days of grace: Tuesday 17 March 00:00 EDT.
    let until = Utc.with_ymd_and_hms(2026, 3, 17, 4, 0, 0).unwrap();
    let mut d = decision(date(2026, 3, 2), zone, Tier::Standard);
    d.eligible = false;
    d.past_due = true;
    d.automation_status = AutomationStatus::Paused;
    d.paused_until = Some(until);
    d.pause_reason = Some("promise_to_pay".into());
    d.checks.push(Check {
        rule: "no_active_promise_or_plan".into(),
        passed: false,
        detail: "outreach paused until 2026-03-17 00:00 EDT: client promised to pay by 2026-03-13".into(),
    });
    t.publish_decision(&d).await;
    let resume = Utc.with_ymd_and_hms(2026, 3, 17, 13, 0, 0).unwrap();
    let plans: Vec<PlanUpdated> = of_kind(&t.outreach().await, subjects::outreach::PLAN_UPDATED);
    assert_eq!(plans.last().unwrap().next.as_ref().unwrap().at, resume);

    // The clock reaches the resume time before the decision that follows the pause arrives
    // (eligibility re-decides at the pause's end; here it is late): nothing fires on the stale
    // decision, nothing is skipped, the steps wait for it.
    let now = t.advance(resume - start_time()).await;
    assert_eq!(now, resume);
    let msgs = t.outreach().await;
    assert!(of_kind::<StepDue>(&msgs, subjects::outreach::STEP_DUE_EMAIL).is_empty(), "{msgs:?}");
    assert!(of_kind::<StepSkipped>(&msgs, subjects::outreach::STEP_SKIPPED).is_empty(), "{msgs:?}");

    // The promise was not kept: the next decision carries it.
    let broken = PromiseBroken {
        invoice_id: d.invoice_id,
        client_id: d.client.client_id,
        promised_date: Some(date(2026, 3, 13)),
        paused_until: until,
        evidence: "we will pay it on Friday".into(),
        reply_id: Some(Uuid::now_v7()),
    };
    let mut after = d.clone();
    after.version = 2;
    after.eligible = true;
    after.automation_status = AutomationStatus::Enabled;
    after.paused_until = None;
    after.pause_reason = None;
    after.checks.pop();
    after.broken_promise = Some(broken.clone());
    t.publish_decision(&after).await;
    let msgs = t.outreach().await;
    let fired = fired_at(&msgs);
    assert_eq!(fired.len(), 1, "{msgs:?}");
    let (step, sent_at) = &fired[0];
    assert_eq!(step.step, "broken_promise_2026-03-13");
    assert_eq!(step.tone, Tone::Firm);
    assert!(step.pay_link);
    assert_eq!(step.days_overdue, 15);
    assert_eq!(step.explanation.eligibility_version, 2);
    assert_in_window(step, zone, *sent_at);
    // Everything the pause held back is superseded by it, overdue_14 (firm, +14) included; the
    // text has no one to go to (the contact takes no texts).
    let skipped: Vec<StepSkipped> = of_kind(&msgs, subjects::outreach::STEP_SKIPPED);
    assert_eq!(
        skipped.iter().map(|s| s.step.as_str()).collect::<Vec<_>>(),
        ["pre_due", "due_today", "overdue_3", "overdue_7", "text_overdue_10", "overdue_14"]
    );
    for s in &skipped {
        if s.step == "text_overdue_10" {
            assert_eq!(s.reason, "no_consented_contact", "{s:?}");
        } else {
            assert!(s.reason == "superseded" && s.detail.contains("broken_promise"), "{s:?}");
        }
    }

    // Later decisions still carry the broken promise: the step is not planned again.
    let mut later = after.clone();
    later.version = 3;
    later.invoice.amount_remaining = Decimal::new(300000, 2);
    t.publish_decision(&later).await;
    t.advance(Duration::days(16)).await;
    let fired: Vec<String> = fired_at(&t.outreach().await).into_iter().map(|(s, _)| s.step).collect();
    assert_eq!(fired, ["overdue_30"]);
    let states: Vec<(String, String)> = t.steps(d.invoice_id).await.into_iter().map(|s| (s.0, s.1)).collect();
    assert_eq!(states.iter().filter(|(name, _)| name.starts_with("broken_promise_")).count(), 1);
    assert!(states.contains(&("broken_promise_2026-03-13".into(), "fired".into())), "{states:?}");
}

#[tokio::test]
async fn a_payment_cancels_a_pending_broken_promise_step() {
    let mut t = TestApp::spawn().await;
    // The promise broke on a Saturday: the firmer step waits for Monday's opening.
    let until = Utc.with_ymd_and_hms(2026, 3, 7, 5, 0, 0).unwrap();
    let mut d = decision(date(2026, 3, 2), "America/New_York", Tier::Standard);
    d.past_due = true;
    d.broken_promise = Some(PromiseBroken {
        invoice_id: d.invoice_id,
        client_id: d.client.client_id,
        promised_date: None,
        paused_until: until,
        evidence: "we'll pay soon".into(),
        reply_id: None,
    });
    arflow_bus::clock::set(&t.bus, until).await.unwrap();
    t.publish_decision(&d).await;
    let monday = Utc.with_ymd_and_hms(2026, 3, 9, 13, 0, 0).unwrap();
    let schedule = t.schedule(d.invoice_id).await;
    let step = schedule.iter().find(|s| s.0.starts_with("broken_promise_")).unwrap();
    assert_eq!((step.0.as_str(), step.1.as_str(), step.2), ("broken_promise_2026-03-07", "pending", monday));
    t.outreach().await;
    t.pay(d.invoice_id).await;
    let skipped: Vec<StepSkipped> = of_kind(&t.outreach().await, subjects::outreach::STEP_SKIPPED);
    assert!(
        skipped.iter().any(|s| s.step == "broken_promise_2026-03-07" && s.reason == "invoice_halted: paid"),
        "{skipped:?}"
    );
    t.advance(Duration::days(3)).await;
    assert!(fired_at(&t.outreach().await).is_empty());
}

const NEW_YORK: &str = "America/New_York";
const LOS_ANGELES: &str = "America/Los_Angeles";

fn utc(m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, m, d, h, 0, 0).unwrap()
}

/// The primary contact (Jane, New York) takes email only; Sam takes calls and texts in Los
/// Angeles, where the call window (08:00-21:00) opens three hours after New York's.
#[tokio::test]
async fn calls_and_texts_go_out_on_their_own_subjects_to_the_contact_who_takes_them() {
    let mut t = TestApp::spawn().await;
    // Due Friday 13 March: the text (+10) is on Monday 23 March, the call (+21) on Friday 3 April.
    let (d, sam) = with_phone_contact(decision(date(2026, 3, 13), NEW_YORK, Tier::Standard), Some(LOS_ANGELES));
    t.publish_decision(&d).await;
    t.outreach().await;
    let mut fired = Vec::new();
    for _ in 0..33 {
        t.advance(Duration::days(1)).await;
        let msgs = t.outreach().await;
        assert!(of_kind::<StepSkipped>(&msgs, subjects::outreach::STEP_SKIPPED).is_empty(), "{msgs:?}");
        for (s, sent_at) in fired_at(&msgs) {
            // Emails in New York's 09:00-17:00, calls and texts in Los Angeles' 08:00-21:00.
            assert_in_window(&s, NEW_YORK, sent_at);
            fired.push(s);
        }
    }
    let names: Vec<&str> = fired.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(names, CADENCE[..7]);
    for s in &fired {
        let expected = if s.channel == Channel::Email { d.contacts[0].contact_id } else { sam.contact_id };
        assert_eq!(s.contact.contact_id, expected, "{}", s.step);
        assert_eq!(s.attempt, 1);
    }
    let text = &fired[4];
    assert_eq!((text.channel, text.pay_link, text.tone), (Channel::Sms, true, Tone::Friendly));
    // 08:00 PDT, not 08:00 in New York and not in Sam's resolved `timezone` (New York).
    assert_eq!(text.scheduled_for, utc(3, 23, 15));
    assert_eq!(text.contact.phone.as_deref(), Some("+13105550100"));
    let call = &fired[6];
    assert_eq!((call.channel, call.tone, call.days_overdue), (Channel::Voice, Tone::Firm, 21));
    assert_eq!(call.scheduled_for, utc(4, 3, 15));
    assert_eq!(call.explanation.rule, "default-email/call_overdue_21");
}

#[tokio::test]
async fn an_unknown_call_zone_skips_the_call_and_the_text_and_emails_instead() {
    let mut t = TestApp::spawn().await;
    let (d, _) = with_phone_contact(decision(date(2026, 3, 13), NEW_YORK, Tier::Standard), None);
    t.publish_decision(&d).await;
    t.outreach().await;
    let mut all = Vec::new();
    for _ in 0..33 {
        t.advance(Duration::days(1)).await;
        all.extend(t.outreach().await);
    }
    let fired = fired_at(&all);
    assert!(fired.iter().all(|(s, _)| s.channel == Channel::Email), "a call or text was placed: {fired:?}");
    let skipped: Vec<StepSkipped> = of_kind(&all, subjects::outreach::STEP_SKIPPED);
    assert_eq!(
        skipped.iter().map(|s| (s.step.as_str(), s.reason.as_str())).collect::<Vec<_>>(),
        [("text_overdue_10", "timezone_unknown"), ("call_overdue_21", "timezone_unknown")]
    );
    // Each is replaced by one email at the email window's next opening in Jane's zone (09:00 EDT).
    let text_email = fired.iter().find(|(s, _)| s.step == "text_overdue_10_email").unwrap();
    assert_eq!((text_email.0.tone, text_email.0.pay_link), (Tone::Friendly, true));
    assert_eq!(text_email.1, utc(3, 23, 13));
    let call_email = fired.iter().find(|(s, _)| s.step == "call_overdue_21_email").unwrap();
    assert_eq!((call_email.0.tone, call_email.0.pay_link), (Tone::Firm, true));
    assert_eq!(call_email.0.contact.email.as_deref(), Some("jane@example.com"));
    assert_eq!(call_email.1, utc(4, 3, 13));
    for (s, at) in &fired {
        assert_in_window(s, NEW_YORK, *at);
    }
    let names: Vec<&str> = fired.iter().map(|(s, _)| s.step.as_str()).collect();
    assert_eq!(
        names,
        [
            "pre_due",
            "due_today",
            "overdue_3",
            "overdue_7",
            "text_overdue_10_email",
            "overdue_14",
            "call_overdue_21_email"
        ]
    );
}

#[tokio::test]
async fn an_unanswered_call_is_retried_on_the_next_business_days_then_falls_back_to_email() {
    let mut t = TestApp::spawn().await;
    let (d, sam) = with_phone_contact(decision(date(2026, 3, 13), NEW_YORK, Tier::Standard), Some(LOS_ANGELES));
    t.publish_decision(&d).await;
    // The call goes out on Friday 3 April, 08:00 PDT.
    let (call, at, seen) = t.until_fired("call_overdue_21", 35).await;
    assert_eq!((at, call.attempt), (utc(4, 3, 15), 1));
    assert!(of_kind::<CadenceExhausted>(&seen, subjects::outreach::CADENCE_EXHAUSTED).is_empty());

    // Nobody picks up: the retry is on Monday 6 April (the next business day, not Saturday), 08:00 PDT.
    t.call_ended(&call, CallOutcome::NoAnswer).await;
    let retry = t.step_named(d.invoice_id, "call_overdue_21_retry1").await.unwrap();
    assert_eq!(retry, ("pending".into(), "voice".into(), 2, utc(4, 6, 15)));
    let plans: Vec<PlanUpdated> = of_kind(&t.outreach().await, subjects::outreach::PLAN_UPDATED);
    let next = plans.last().unwrap().next.clone().unwrap();
    assert_eq!((next.step.as_str(), next.channel, next.at), ("call_overdue_21_retry1", Channel::Voice, utc(4, 6, 15)));
    assert_eq!(plans.last().unwrap().reason, "voice_no_answer: call_overdue_21_retry1 planned");

    let (retry1, at, _) = t.until_fired("call_overdue_21_retry1", 4).await;
    assert_eq!((retry1.channel, retry1.attempt, retry1.contact.contact_id), (Channel::Voice, 2, sam.contact_id));
    assert_eq!((retry1.tone, retry1.pay_link), (Tone::Firm, true));
    assert_in_window(&retry1, NEW_YORK, at);
    t.call_ended(&retry1, CallOutcome::NoAnswer).await;
    let retry2 = t.step_named(d.invoice_id, "call_overdue_21_retry2").await.unwrap();
    assert_eq!(retry2, ("pending".into(), "voice".into(), 3, utc(4, 7, 15)));
    let (retry2, at, _) = t.until_fired("call_overdue_21_retry2", 2).await;
    assert_eq!(retry2.attempt, 3);
    assert_in_window(&retry2, NEW_YORK, at);

    // The third attempt goes unanswered too: no fourth call; one email instead, at once (it is
    // 11:00 in New York, inside Jane's email window).
    t.call_ended(&retry2, CallOutcome::NoAnswer).await;
    assert!(t.step_named(d.invoice_id, "call_overdue_21_retry3").await.is_none());
    let fired = fired_at(&t.outreach().await);
    assert_eq!(fired.len(), 1, "{fired:?}");
    let (email, at) = &fired[0];
    assert_eq!(email.step, "call_overdue_21_email");
    assert_eq!((email.channel, email.tone, email.pay_link), (Channel::Email, Tone::Firm, true));
    assert_eq!(email.contact.contact_id, d.contacts[0].contact_id);
    assert_eq!(*at, utc(4, 7, 15));
    assert_in_window(email, NEW_YORK, *at);

    // The cadence runs on and is exhausted once, by its last step.
    let (last, _, seen) = t.until_fired("overdue_30", 7).await;
    assert_eq!(last.channel, Channel::Email);
    let exhausted: Vec<CadenceExhausted> = of_kind(&seen, subjects::outreach::CADENCE_EXHAUSTED);
    assert_eq!(exhausted.len(), 1);
    assert_eq!((exhausted[0].last_step.as_str(), exhausted[0].steps_fired), ("overdue_30", 11));
}

#[tokio::test]
async fn a_voicemail_falls_back_to_email_without_calling_again() {
    let mut t = TestApp::spawn().await;
    let (d, _) = with_phone_contact(decision(date(2026, 3, 13), NEW_YORK, Tier::New), Some(LOS_ANGELES));
    t.publish_decision(&d).await;
    let (call, _, _) = t.until_fired("call_overdue_21", 35).await;
    // Friday 3 April, 08:00 in Los Angeles: 11:00 in New York, so the email goes at once.
    t.call_ended(&call, CallOutcome::Voicemail).await;
    assert!(t.step_named(d.invoice_id, "call_overdue_21_retry1").await.is_none());
    let msgs = t.outreach().await;
    let fired = fired_at(&msgs);
    assert_eq!(fired.iter().map(|(s, _)| s.step.as_str()).collect::<Vec<_>>(), ["call_overdue_21_email"], "{msgs:?}");
    assert_eq!((fired[0].0.tone, fired[0].0.pay_link), (Tone::Firm, true));
    let plans: Vec<PlanUpdated> = of_kind(&msgs, subjects::outreach::PLAN_UPDATED);
    assert!(plans.iter().any(|p| p.reason == "voice_voicemail: call_overdue_21_email planned"), "{plans:?}");
    // The eight planned steps and the one email.
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM scheduler.steps WHERE invoice_id = $1")
        .bind(d.invoice_id)
        .fetch_one(&t.pool)
        .await
        .unwrap();
    assert_eq!(n, 9);
}

#[tokio::test]
async fn a_redelivered_outcome_plans_no_second_step_and_a_halted_plan_none() {
    let mut t = TestApp::spawn().await;
    let (d, _) = with_phone_contact(decision(date(2026, 3, 13), NEW_YORK, Tier::Standard), Some(LOS_ANGELES));
    t.publish_decision(&d).await;
    let (call, _, _) = t.until_fired("call_overdue_21", 35).await;
    let env = t.call_ended(&call, CallOutcome::NoAnswer).await;
    // The same event again (a different stream message: the inbox catches it) ...
    t.deliver(&env, "redelivered").await;
    // ... and a second report of the same call as a new event (the step name catches it).
    t.call_ended(&call, CallOutcome::NoAnswer).await;
    let retries: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM scheduler.steps WHERE invoice_id = $1 AND name LIKE 'call_overdue_21_%'")
            .bind(d.invoice_id)
            .fetch_all(&t.pool)
            .await
            .unwrap();
    assert_eq!(retries, [("call_overdue_21_retry1".to_string(),)]);
    let plans: Vec<PlanUpdated> = of_kind(&t.outreach().await, subjects::outreach::PLAN_UPDATED);
    assert_eq!(plans.len(), 1, "{plans:?}");

    // Paid: the pending retry is cancelled, and a late outcome plans nothing.
    t.pay(d.invoice_id).await;
    t.call_ended(&call, CallOutcome::Voicemail).await;
    assert!(t.step_named(d.invoice_id, "call_overdue_21_email").await.is_none());
    assert_eq!(t.step_named(d.invoice_id, "call_overdue_21_retry1").await.unwrap().0, "cancelled");
    t.advance(Duration::days(10)).await;
    assert!(fired_at(&t.outreach().await).is_empty());
}

/// A cadence whose last step is a call: the call firing does not exhaust it (its outcome may
/// still plan a retry or an email); the outcome that leaves nothing pending does.
#[tokio::test]
async fn a_last_call_exhausts_the_cadence_when_its_outcome_arrives_not_when_it_fires() {
    let mut t = TestApp::spawn().await;
    let steps = serde_json::json!([
        {"name": "overdue_3", "offset_days": 3, "tone": "friendly", "pay_link": true},
        {"name": "call_overdue_7", "offset_days": 7, "tone": "firm", "pay_link": true, "channel": "voice", "max_attempts": 2}
    ]);
    sqlx::query(
        "INSERT INTO scheduler.policies (policy_id, firm_id, name, version, channel, steps, created_at) \
         VALUES ($1, $2, 'default-email', 1, 'mixed', $3, now())",
    )
    .bind(Uuid::now_v7())
    .bind(t.firm)
    .bind(steps)
    .execute(&t.pool)
    .await
    .unwrap();
    let (d, _) = with_phone_contact(decision(date(2026, 3, 2), NEW_YORK, Tier::Standard), Some(LOS_ANGELES));
    t.publish_decision(&d).await;
    // The call: Monday 9 March, 08:00 PDT.
    let (call, at, seen) = t.until_fired("call_overdue_7", 10).await;
    assert_eq!(at, utc(3, 9, 15));
    assert!(of_kind::<CadenceExhausted>(&seen, subjects::outreach::CADENCE_EXHAUSTED).is_empty(), "{seen:?}");
    t.call_ended(&call, CallOutcome::Failed).await;
    assert!(of_kind::<CadenceExhausted>(&t.outreach().await, subjects::outreach::CADENCE_EXHAUSTED).is_empty());
    let (retry, _, seen) = t.until_fired("call_overdue_7_retry1", 2).await;
    assert_eq!(retry.attempt, 2);
    assert!(of_kind::<CadenceExhausted>(&seen, subjects::outreach::CADENCE_EXHAUSTED).is_empty(), "{seen:?}");
    t.call_ended(&retry, CallOutcome::Completed).await;
    let msgs = t.outreach().await;
    let exhausted: Vec<CadenceExhausted> = of_kind(&msgs, subjects::outreach::CADENCE_EXHAUSTED);
    assert_eq!(exhausted.len(), 1, "{msgs:?}");
    assert_eq!((exhausted[0].last_step.as_str(), exhausted[0].steps_fired), ("call_overdue_7_retry1", 3));
    assert_eq!(exhausted[0].last_step_id, retry.step_id);
}

/// The only contact agreed to email and calls; a hard bounce suppressed the email (eligibility
/// keeps the invoice eligible with voice left, and the opt-out of email reaches the scheduler).
async fn bounced_caller(t: &TestApp, due: NaiveDate) -> (EligibilityChanged, ContactSnapshot) {
    let mut d = decision(due, NEW_YORK, Tier::Standard);
    d.past_due = true;
    let k = &mut d.contacts[0];
    k.phone = Some("+13105550100".into());
    k.call_timezone = Some(LOS_ANGELES.into());
    k.channels = vec![Channel::Voice];
    let contact = k.clone();
    t.opt_out(contact.contact_id).await;
    t.publish_decision(&d).await;
    (d, contact)
}

/// Email suppressed for every contact, calls allowed: each email step is skipped with the reason
/// and the channels left, the call goes out at its time, no email is handed to the email
/// service, and the cadence still ends (exhausted) when its last step, an email, is skipped.
#[tokio::test]
async fn with_email_suppressed_everywhere_the_cadence_goes_on_by_phone_and_still_ends() {
    let mut t = TestApp::spawn().await;
    let (d, contact) = bounced_caller(&t, date(2026, 3, 13)).await;
    // The call: Friday 3 April, 08:00 PDT.
    let (call, at, seen) = t.until_fired("call_overdue_21", 35).await;
    assert_eq!((at, call.channel, call.contact.contact_id), (utc(4, 3, 15), Channel::Voice, contact.contact_id));
    assert_eq!(fired_at(&seen).len(), 1, "only the call fired: {:?}", fired_at(&seen));
    assert!(of_kind::<CadenceExhausted>(&seen, subjects::outreach::CADENCE_EXHAUSTED).is_empty());
    t.call_ended(&call, CallOutcome::Completed).await;
    assert!(of_kind::<CadenceExhausted>(&t.outreach().await, subjects::outreach::CADENCE_EXHAUSTED).is_empty());
    // The final notice has nobody to go to either: skipped, and the cadence is over.
    t.advance(Duration::days(12)).await;
    let msgs = t.outreach().await;
    assert!(fired_at(&msgs).is_empty(), "{msgs:?}");
    let exhausted: Vec<CadenceExhausted> = of_kind(&msgs, subjects::outreach::CADENCE_EXHAUSTED);
    assert_eq!(exhausted.len(), 1, "{msgs:?}");
    assert_eq!((exhausted[0].last_step.as_str(), exhausted[0].steps_fired), ("overdue_30", 1));
    let steps = t.steps(d.invoice_id).await;
    for (name, state, reason, detail) in &steps {
        let (want_state, want_reason, left) = match name.as_str() {
            "call_overdue_21" => ("fired", None, None),
            "text_overdue_10" => ("skipped", Some("no_consented_contact"), Some("channels left: voice")),
            _ => ("skipped", Some("contact_opted_out"), Some("channels left: voice")),
        };
        assert_eq!((state.as_str(), reason.as_deref()), (want_state, want_reason), "{name}: {steps:?}");
        if let Some(left) = left {
            assert!(detail.as_deref().is_some_and(|d| d.ends_with(left)), "{name}: {detail:?}");
        }
    }
    assert_eq!(steps.len(), 8);
}

/// A plan made long after its steps were due (downtime, a late invoice) with email suppressed:
/// the email steps are skipped at once, so the final notice, which could never go, does not
/// supersede the call waiting for Monday's call window; the call goes and its outcome ends it.
#[tokio::test]
async fn a_suppressed_email_never_supersedes_a_call_that_can_go() {
    let mut t = TestApp::spawn().await;
    // Due 20 January: every step is overdue on Monday 2 March 00:00 UTC (Sunday in Los Angeles).
    let (d, _) = bounced_caller(&t, date(2026, 1, 20)).await;
    let msgs = t.outreach().await;
    assert!(fired_at(&msgs).is_empty(), "{msgs:?}");
    let skipped: Vec<StepSkipped> = of_kind(&msgs, subjects::outreach::STEP_SKIPPED);
    assert!(skipped.iter().any(|s| s.step == "overdue_30" && s.reason == "contact_opted_out"), "{skipped:?}");
    assert!(skipped.iter().all(|s| s.reason != "superseded"), "{skipped:?}");
    assert_eq!(t.step_named(d.invoice_id, "call_overdue_21").await.unwrap().0, "pending");
    // Monday 08:00 PST.
    t.advance(Duration::hours(17)).await;
    let msgs = t.outreach().await;
    let fired = fired_at(&msgs);
    assert_eq!(fired.len(), 1, "{msgs:?}");
    assert_eq!((fired[0].0.step.as_str(), fired[0].1), ("call_overdue_21", utc(3, 2, 16)));
    assert!(of_kind::<CadenceExhausted>(&msgs, subjects::outreach::CADENCE_EXHAUSTED).is_empty());
    t.call_ended(&fired[0].0, CallOutcome::Completed).await;
    let exhausted: Vec<CadenceExhausted> = of_kind(&t.outreach().await, subjects::outreach::CADENCE_EXHAUSTED);
    assert_eq!(exhausted.len(), 1);
    assert_eq!((exhausted[0].last_step.as_str(), exhausted[0].steps_fired), ("call_overdue_21", 1));
}

/// A firm still on the email-only cadence seeded before calls and texts (stored without
/// `channel`) moves to the current default as its next version.
#[tokio::test]
async fn a_firm_on_the_email_only_cadence_moves_to_the_one_with_calls_and_texts() {
    let mut t = TestApp::spawn().await;
    let legacy = serde_json::json!([
        {"name": "pre_due", "offset_days": -7, "tone": "friendly", "pay_link": false},
        {"name": "due_today", "offset_days": 0, "tone": "friendly", "pay_link": false},
        {"name": "overdue_3", "offset_days": 3, "tone": "friendly", "pay_link": true},
        {"name": "overdue_7", "offset_days": 7, "tone": "friendly", "pay_link": true},
        {"name": "overdue_14", "offset_days": 14, "tone": "firm", "pay_link": true},
        {"name": "overdue_30", "offset_days": 30, "tone": "final", "pay_link": true}
    ]);
    sqlx::query(
        "INSERT INTO scheduler.policies (policy_id, firm_id, name, version, channel, steps, created_at) \
         VALUES ($1, $2, 'default-email', 1, 'email', $3, now())",
    )
    .bind(Uuid::now_v7())
    .bind(t.firm)
    .bind(legacy)
    .execute(&t.pool)
    .await
    .unwrap();
    let d = reachable_by_phone(decision(date(2026, 3, 13), NEW_YORK, Tier::Standard), NEW_YORK);
    t.publish_decision(&d).await;
    let names: Vec<String> = t.schedule(d.invoice_id).await.into_iter().map(|s| s.0).collect();
    assert_eq!(names, CADENCE);
    let versions: Vec<(i32,)> =
        sqlx::query_as("SELECT version FROM scheduler.policies WHERE firm_id = $1 ORDER BY version")
            .bind(t.firm)
            .fetch_all(&t.pool)
            .await
            .unwrap();
    assert_eq!(versions, [(1,), (2,)]);
    t.outreach().await;
    let (due, _, _) = t.until_fired("pre_due", 2).await;
    assert_eq!(due.explanation.policy_version, 2);
    // A second decision reads version 2 as it is.
    let mut newer = d.clone();
    newer.version = 2;
    t.publish_decision(&newer).await;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM scheduler.policies WHERE firm_id = $1")
        .bind(t.firm)
        .fetch_one(&t.pool)
        .await
        .unwrap();
    assert_eq!(n, 2);
}
