//! The provider's callbacks (forwarded by the gateway after it verified `X-Twilio-Signature`).
//! Everything a callback changes is written in one transaction with its outbox events; a hold
//! (opt-out) is written to the bucket before that transaction commits.
use super::Context;
use crate::events::{self, Origin, action_for};
use crate::phone;
use crate::script::{self, CallFacts, Lang, LinkRoute};
use crate::sms::{self, Keyword};
use crate::store::{self, CallRow, Ending, InboundText, Kind, Sent, TurnRow};
use crate::twiml::{Response as TwiML, Verb};
use arflow_contracts::events::{IntentScore, ReplyClassified, ReplyIntent, ReplyKind, StepDue};
use arflow_contracts::msg_id;
use arflow_contracts::streams::contact_hold_key;
use arflow_core::Channel;
use arflow_replies::{Classification, Intent, Source};
use arflow_service::api::ApiError;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use std::collections::HashMap;
use std::sync::Arc;
use tracing::Instrument;
use uuid::Uuid;

type Params = HashMap<String, String>;

/// The longest client text carried on the bus.
const MAX_TEXT: usize = 4_000;

fn xml(t: TwiML) -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], t.render()).into_response()
}

fn xml_raw(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

/// A callback proves the provider placed the call: record its `CallSid` when the REST answer
/// never arrived (or has not yet), so the call is not failed as uncertain.
async fn adopt(conn: &mut PgConnection, row: &CallRow, p: &Params) -> Result<(), sqlx::Error> {
    match (row.provider_sid.as_deref(), param(p, "CallSid")) {
        (None, Some(sid)) if !sid.is_empty() => {
            tracing::info!(call_id = %row.id, state = %row.state, "call id learned from a callback");
            store::mark_placed(conn, row.id, sid, param(p, "CallStatus").unwrap_or("in-progress")).await
        }
        _ => Ok(()),
    }
}

fn param<'a>(p: &'a Params, key: &str) -> Option<&'a str> {
    p.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn is_machine(answered_by: Option<&str>) -> bool {
    answered_by.is_some_and(|a| a.starts_with("machine") || a == "fax")
}

fn span_for(row: &CallRow) -> tracing::Span {
    tracing::info_span!("call", call_id = %row.id, firm_id = %row.firm_id, invoice_id = %row.invoice_id, correlation_id = %row.correlation_id)
}

async fn locked_call(conn: &mut PgConnection, call_id: Uuid) -> Result<CallRow, ApiError> {
    store::call_for_update(conn, call_id).await?.ok_or_else(|| ApiError::NotFound(format!("no call {call_id}")))
}

impl Context {
    fn say(&self, text: String, lang: Lang) -> Verb {
        let voice = match lang {
            Lang::En => self.settings.agent_voice.clone(),
            Lang::Es => self.settings.agent_voice_es.clone(),
        };
        Verb::Say { text, voice, language: lang.locale().to_string() }
    }

    fn gather(&self, call_id: Uuid, turn: i32, text: String, lang: Lang) -> Verb {
        Verb::Gather {
            action: self.callback(&format!("voice/{call_id}/gather?turn={turn}")),
            language: lang.locale().to_string(),
            nested: vec![self.say(text, lang)],
        }
    }
}

/// `POST .../voice/{call_id}/answer`: the voicemail for a machine, else the call script.
pub async fn answer(
    State(ctx): State<Arc<Context>>,
    Path(call_id): Path<Uuid>,
    Form(p): Form<Params>,
) -> Result<Response, ApiError> {
    let mut tx = ctx.pool.begin().await?;
    let row = locked_call(&mut tx, call_id).await?;
    let span = span_for(&row);
    let answered_by = param(&p, "AnsweredBy");
    let now = ctx.clock.now();
    adopt(&mut tx, &row, &p).await?;
    store::set_answered(&mut tx, call_id, answered_by).await?;
    let first = store::turns(&mut tx, call_id).await?.is_empty();
    let facts = CallFacts::from_step(&row.step_due.0);
    let response = if is_machine(answered_by) {
        let text = script::voicemail(&facts.firm_name);
        if first {
            store::add_turn(&mut tx, call_id, 0, "agent", &text, None, None, now).await?;
        }
        span.in_scope(|| tracing::info!(answered_by, "answering machine: short voicemail without amounts"));
        TwiML::new().push(ctx.say(text, Lang::En)).push(Verb::Hangup)
    } else {
        let text = script::opening(&facts);
        if first {
            store::add_turn(&mut tx, call_id, 1, "agent", &text, None, None, now).await?;
        }
        span.in_scope(|| tracing::info!(answered_by, script = %row.script, "answered: the script starts"));
        TwiML::new().push(ctx.gather(call_id, 1, text, Lang::En)).push(Verb::Hangup)
    };
    tx.commit().await?;
    Ok(xml(response))
}

#[derive(Debug, serde::Deserialize)]
pub struct TurnQuery {
    #[serde(default)]
    turn: Option<i32>,
}

/// The client's calendar day in the contact's call zone (promised dates are relative to it).
fn reference_day(step: &StepDue, now: DateTime<Utc>) -> NaiveDate {
    match arflow_core::calls::zone(step.contact.call_timezone.as_deref()) {
        Ok(tz) => now.with_timezone(&tz).date_naive(),
        Err(_) => now.date_naive(),
    }
}

fn jiff_date(d: NaiveDate) -> arflow_replies::Date {
    use chrono::Datelike;
    arflow_replies::Date::new(
        i16::try_from(d.year()).unwrap_or(2000),
        i8::try_from(d.month()).unwrap_or(1),
        i8::try_from(d.day()).unwrap_or(1),
    )
    .unwrap_or_default()
}

fn naive(d: arflow_replies::Date) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(i32::from(d.year()), u32::try_from(d.month()).ok()?, u32::try_from(d.day()).ok()?)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// What a reply (spoken or texted) becomes on the bus.
struct Said<'a> {
    reply_id: Uuid,
    channel: Channel,
    text: &'a str,
    classification: &'a Classification,
    invoice_id: Uuid,
    contact_id: Uuid,
    client_id: Uuid,
    matched_by: &'a str,
    answered: Option<String>,
    step: &'a str,
    from: Option<String>,
    received_at: DateTime<Utc>,
    reference_date: NaiveDate,
}

/// Whether an answer waits for a person: the classifier was not confident, and it is not an
/// opt-out (always acted on at once).
fn unclear(c: &Classification) -> bool {
    c.needs_review && c.intent != Intent::OptOut
}

fn classified(s: Said<'_>) -> ReplyClassified {
    let c = s.classification;
    let review = unclear(c);
    ReplyClassified {
        reply_id: s.reply_id,
        channel: s.channel,
        kind: ReplyKind::Reply,
        intent: Some(ReplyIntent::from(c.intent)),
        promised_date: c.promised_date.and_then(naive),
        evidence: c.evidence.clone(),
        sure: !review,
        confidence: c.confidence,
        needs_review: review,
        scores: c.scores.iter().map(|x| IntentScore { intent: x.intent.into(), score: x.score }).collect(),
        labelled_by: None,
        client_text: truncate(s.text, MAX_TEXT),
        invoice_id: Some(s.invoice_id),
        contact_id: Some(s.contact_id),
        client_id: Some(s.client_id),
        matched_by: Some(s.matched_by.to_string()),
        answered_message_id: s.answered,
        step: Some(s.step.to_string()),
        from: s.from,
        subject: None,
        received_at: s.received_at,
        reference_date: s.reference_date,
        bounce: None,
        action: if review { events::REVIEW_ACTION } else { action_for(c.intent) }.to_string(),
    }
}

/// `POST .../voice/{call_id}/gather?turn=N`: what the client said, classified, answered.
pub async fn gather(
    State(ctx): State<Arc<Context>>,
    Path(call_id): Path<Uuid>,
    Query(q): Query<TurnQuery>,
    Form(p): Form<Params>,
) -> Result<Response, ApiError> {
    let turn = q.turn.unwrap_or(1).max(1);
    let speech = param(&p, "SpeechResult").unwrap_or("").to_string();
    let mut tx = ctx.pool.begin().await?;
    let row = locked_call(&mut tx, call_id).await?;
    let span = span_for(&row);
    // The provider may deliver the same gather again (a retry after a timeout or a lost
    // answer): the same TwiML, and no turn recorded or reply published twice.
    if let Some(previous) = store::gather_response(&mut tx, call_id, turn).await? {
        span.in_scope(|| tracing::info!(turn, "gather seen before; same answer"));
        return Ok(xml_raw(previous));
    }
    let out = gather_locked(&ctx, &mut tx, &row, turn, &speech).instrument(span).await?;
    let rendered = out.response.render();
    store::record_gather(&mut tx, call_id, turn, &rendered, ctx.clock.now()).await?;
    tx.commit().await?;
    if out.published {
        ctx.outbox.notify();
    }
    Ok(xml_raw(rendered))
}

/// The text that carries the payment link promised on the call: one per call (its step id is
/// derived from the call's), fenced and sent by the text worker like a cadence text.
fn pay_link_text(row: &CallRow, now: chrono::DateTime<chrono::Utc>) -> store::NewItem {
    let mut due = row.step_due.0.clone();
    due.step_id = Uuid::new_v5(&row.id, b"pay-link");
    due.step = format!("{}_link", row.step);
    due.channel = Channel::Sms;
    due.pay_link = true;
    due.attempt = 1;
    store::NewItem::of(due, row.firm_id, row.cause_event_id, row.correlation_id, now)
}

struct GatherOut {
    response: TwiML,
    published: bool,
}

async fn gather_locked(
    ctx: &Context,
    conn: &mut PgConnection,
    row: &CallRow,
    turn: i32,
    speech: &str,
) -> Result<GatherOut, ApiError> {
    let now = ctx.clock.now();
    let step = &row.step_due.0;
    let facts = CallFacts::from_step(step);
    let mut lang = Lang::parse(&row.language);
    if lang == Lang::En && script::is_spanish(speech) {
        lang = Lang::Es;
        store::set_language(conn, row.id, lang.code()).await?;
        tracing::info!("the client speaks Spanish; answering in Spanish");
    }
    let reference = reference_day(step, now);
    let classification =
        (!speech.is_empty()).then(|| arflow_replies::classify(Source::Voice, speech, jiff_date(reference)));
    // An answer not understood with confidence is not acted on: the agent asks again, and a
    // caller still unclear at the end goes to a person (`review_unclear_answer`).
    let (classification, unclear_answer) = match classification {
        Some(c) if unclear(&c) => {
            tracing::info!(turn, guess = %c.intent, confidence = c.confidence, "client turn not understood with confidence");
            (None, true)
        }
        other => (other, false),
    };
    let mut published = false;
    if unclear_answer && store::add_turn(conn, row.id, turn, "client", speech, None, None, now).await? {
        store::mark_turn_unclear(conn, row.id, turn).await?;
    }
    if let Some(c) = &classification {
        let fresh =
            store::add_turn(conn, row.id, turn, "client", speech, Some(c.intent.as_str()), Some(&c.evidence), now)
                .await?;
        tracing::info!(turn, intent = %c.intent, evidence = %c.evidence, fresh, "client turn understood");
        if fresh {
            if c.intent == Intent::OptOut {
                // Fence 2: the hold first, so nothing can claim the contact from now on.
                let by = format!("call:{}:turn-{turn}", row.id);
                match ctx.bus.holds().hold(&contact_hold_key(row.contact_id), "opted_out", &by, now).await {
                    Ok(revision) => tracing::info!(contact_id = %row.contact_id, revision,
                        "contact hold written (asked not to be called)"),
                    // The provider does not retry a failed answer, so failing here would lose the
                    // opt-out: it is still recorded and published below, and the opt-out service
                    // writes the hold when the bucket answers again.
                    Err(e) => tracing::error!(contact_id = %row.contact_id, error = %e,
                        "contact hold could not be written now; the opt-out is recorded and the opt-out service holds"),
                }
            }
            if let Some(d) = c.promised_date.and_then(naive) {
                store::set_promised_date(conn, row.id, d).await?;
            }
            if c.intent == Intent::PromiseToPay && facts.link == LinkRoute::Text {
                // The agent says the link is on its way: the text is queued in this transaction.
                let queued = store::insert(conn, Kind::Text, &pay_link_text(row, now)).await?;
                tracing::info!(queued, "payment link text queued after the promise");
            }
            let msg = said_on_call(row, arflow_core::new_id(), speech, c, reference, &format!("turn-{turn}"), now)?;
            arflow_store::outbox::enqueue(conn, &[msg]).await?;
            published = true;
        }
    }
    let intent = classification.as_ref().map(|c| c.intent);
    let promised = classification.as_ref().and_then(|c| c.promised_date).and_then(naive);
    let closing = intent.and_then(|i| script::closing(i, promised, &facts, lang));
    let max_turns = i32::try_from(ctx.settings.max_turns).unwrap_or(3);
    let response = match closing {
        Some(text) => {
            store::add_turn(conn, row.id, turn, "agent", &text, None, None, now).await?;
            TwiML::new().push(ctx.say(text, lang)).push(Verb::Hangup)
        }
        None if turn < max_turns => {
            let text = script::reprompt(&facts, lang);
            store::add_turn(conn, row.id, turn + 1, "agent", &text, None, None, now).await?;
            TwiML::new().push(ctx.gather(row.id, turn + 1, text, lang)).push(Verb::Hangup)
        }
        None => {
            let text = script::close_unclear(&facts, lang);
            store::add_turn(conn, row.id, turn, "agent", &text, None, None, now).await?;
            published |= review_unclear_answer(conn, row, now).await?;
            TwiML::new().push(ctx.say(text, lang)).push(Verb::Hangup)
        }
    };
    Ok(GatherOut { response, published })
}

/// `reply.classified` for what the client said on the call (`call:<id>:<what>`).
fn said_on_call(
    row: &CallRow,
    reply_id: Uuid,
    text: &str,
    classification: &Classification,
    reference_date: NaiveDate,
    what: &str,
    now: DateTime<Utc>,
) -> Result<arflow_store::OutboxMessage, ApiError> {
    let event = classified(Said {
        reply_id,
        channel: Channel::Voice,
        text,
        classification,
        invoice_id: row.invoice_id,
        contact_id: row.contact_id,
        client_id: row.client_id,
        matched_by: "call",
        answered: row.provider_sid.clone(),
        step: &row.step,
        from: row.to_number.clone(),
        received_at: now,
        reference_date,
    });
    events::reply_classified(Origin::from(row), &event, msg_id::call(row.id, what), now).map_err(ApiError::internal)
}

/// A caller whose last answers were all unclear (the classifier not confident of any) goes to a
/// person: one `reply.classified` with `needs_review` and what they said (those turns, in
/// order), so the invoice pauses and a review case opens. At the last turn, or when the call
/// ends first (the caller hung up); once per call. Returns whether it was published.
async fn review_unclear_answer(conn: &mut PgConnection, row: &CallRow, now: DateTime<Utc>) -> Result<bool, ApiError> {
    let turns = store::turns(conn, row.id).await?;
    let mut unclear_turns: Vec<&TurnRow> =
        turns.iter().rev().filter(|t| t.speaker == "client").take_while(|t| t.needs_review).collect();
    unclear_turns.reverse();
    let Some(last) = unclear_turns.last() else { return Ok(false) };
    let reply_id = arflow_core::new_id();
    if !store::set_review_reply(conn, row.id, reply_id).await? {
        return Ok(false);
    }
    let step = &row.step_due.0;
    let reference = reference_day(step, now);
    // The classifier's view of the last answer, for the reviewer; flagged whatever it says now.
    let mut c = arflow_replies::classify(Source::Voice, &last.text, jiff_date(reference));
    c.needs_review = c.intent != Intent::OptOut;
    let said: Vec<&str> = unclear_turns.iter().map(|t| t.text.as_str()).collect();
    let msg = said_on_call(row, reply_id, &said.join("\n"), &c, reference, "review", now)?;
    arflow_store::outbox::enqueue(conn, &[msg]).await?;
    tracing::info!(%reply_id, turns = said.len(), "the caller's answer was unclear: sent to a person for review");
    Ok(true)
}

/// The outcome of a final provider status, or `None` while the call goes on.
pub fn outcome_for(status: &str, answered_by: Option<&str>) -> Option<&'static str> {
    match status {
        "completed" if is_machine(answered_by) => Some("voicemail"),
        "completed" => Some("completed"),
        "busy" | "no-answer" => Some("no_answer"),
        "failed" | "canceled" => Some("failed"),
        _ => None,
    }
}

/// The ending in words, from the status and what the client said.
pub fn detail_for(outcome: &str, status: &str, turns: &[TurnRow], promised: Option<NaiveDate>) -> String {
    match outcome {
        "voicemail" => "voicemail left (no amount or invoice details said)".into(),
        "no_answer" if status == "busy" => "busy".into(),
        "no_answer" => "no answer".into(),
        "failed" => format!("the provider could not connect the call ({status})"),
        _ => {
            let last = turns.iter().rev().find_map(|t| {
                (t.speaker == "client").then(|| t.intent.as_deref().and_then(|i| i.parse::<Intent>().ok())).flatten()
            });
            let unclear_last = turns.iter().rev().find(|t| t.speaker == "client").is_some_and(|t| t.needs_review);
            if unclear_last {
                return "the client's answer was not understood with confidence; a person will review it".into();
            }
            match last {
                Some(Intent::PromiseToPay) => match promised {
                    Some(d) => format!("promise to pay on {d} confirmed"),
                    None => "promise to pay (no date) noted".into(),
                },
                Some(Intent::OptOut) => "the client asked not to be contacted again; confirmed, contact held".into(),
                Some(i @ (Intent::Dispute | Intent::PaymentPlan | Intent::Question | Intent::WrongContact)) => {
                    format!("{}: told a person will follow up", i.as_str().replace('_', " "))
                }
                Some(Intent::AlreadyPaid) => "the client says it is paid; records to be checked".into(),
                Some(_) => "spoke with the client; no clear answer".into(),
                None => "answered; the client said nothing".into(),
            }
        }
    }
}

/// `POST .../voice/{call_id}/status`: every status recorded; a final one ends the call once.
pub async fn status(
    State(ctx): State<Arc<Context>>,
    Path(call_id): Path<Uuid>,
    Form(p): Form<Params>,
) -> Result<StatusCode, ApiError> {
    let status = param(&p, "CallStatus").ok_or_else(|| ApiError::Validation("CallStatus is missing".into()))?;
    let answered_by = param(&p, "AnsweredBy");
    let duration = param(&p, "CallDuration").and_then(|d| d.parse::<i32>().ok());
    let sequence = param(&p, "SequenceNumber").and_then(|d| d.parse::<i32>().ok());
    let now = ctx.clock.now();
    let mut tx = ctx.pool.begin().await?;
    let row = locked_call(&mut tx, call_id).await?;
    adopt(&mut tx, &row, &p).await?;
    let published = settle_status(&mut tx, &row, status, answered_by, duration, sequence, now).await?;
    tx.commit().await?;
    if published {
        ctx.outbox.notify();
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Records a provider status of `row` (locked by the caller) and, for a final one, ends the call
/// once with its event; true when an event was enqueued. Shared by the status callback and the
/// dialer's reconciliation of calls whose final callback never came.
pub async fn settle_status(
    tx: &mut PgConnection,
    row: &CallRow,
    status: &str,
    answered_by: Option<&str>,
    duration: Option<i32>,
    sequence: Option<i32>,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let call_id = row.id;
    let span = span_for(row);
    store::record_status(&mut *tx, call_id, status, sequence, answered_by, duration, now).await?;
    let answered = answered_by.or(row.answered_by.as_deref());
    let Some(outcome) = outcome_for(status, answered) else { return Ok(false) };
    let turns = store::turns(&mut *tx, call_id).await?;
    let detail = detail_for(outcome, status, &turns, row.promised_date);
    let ending = Ending {
        outcome,
        provider_status: Some(status),
        answered_by,
        duration_secs: duration,
        detail: &detail,
        at: now,
    };
    let Some(ended) = store::end_call(&mut *tx, call_id, &ending).await? else { return Ok(false) };
    let msg = events::call_ended(&ended, &turns, now).map_err(ApiError::internal)?;
    arflow_store::outbox::enqueue(&mut *tx, &[msg]).await?;
    // A caller who hung up on an unclear answer still goes to a person.
    review_unclear_answer(&mut *tx, &ended, now).instrument(span.clone()).await?;
    span.in_scope(|| tracing::info!(outcome, status, %detail, "call ended"));
    Ok(true)
}

/// `POST .../voice/{call_id}/recording`: the recording's link (also after the call ended).
pub async fn recording(
    State(ctx): State<Arc<Context>>,
    Path(call_id): Path<Uuid>,
    Form(p): Form<Params>,
) -> Result<StatusCode, ApiError> {
    let url = param(&p, "RecordingUrl").ok_or_else(|| ApiError::Validation("RecordingUrl is missing".into()))?;
    let mut conn = ctx.pool.acquire().await?;
    if !store::set_recording(&mut conn, call_id, url, param(&p, "RecordingSid")).await? {
        return Err(ApiError::NotFound(format!("no call {call_id}")));
    }
    tracing::info!(%call_id, "recording stored");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../voice/{call_id}/transcription`
pub async fn transcription(
    State(ctx): State<Arc<Context>>,
    Path(call_id): Path<Uuid>,
    Form(p): Form<Params>,
) -> Result<StatusCode, ApiError> {
    let text = param(&p, "TranscriptionText").unwrap_or("");
    let mut conn = ctx.pool.acquire().await?;
    if !store::set_transcription(&mut conn, call_id, text).await? {
        return Err(ApiError::NotFound(format!("no call {call_id}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../sms/inbound`: STOP (and opt-outs in words) hold the contact on every channel first;
/// HELP is answered; anything else is classified. Once per MessageSid.
pub async fn sms_inbound(State(ctx): State<Arc<Context>>, Form(p): Form<Params>) -> Result<Response, ApiError> {
    let sid = param(&p, "MessageSid").ok_or_else(|| ApiError::Validation("MessageSid is missing".into()))?;
    let from_raw = param(&p, "From").ok_or_else(|| ApiError::Validation("From is missing".into()))?;
    let from = phone::normalise_sender(from_raw);
    let body = p.get("Body").map(String::as_str).unwrap_or("").trim().to_string();
    let mut tx = ctx.pool.begin().await?;
    store::lock_message_sid(&mut tx, sid).await?;
    if let Some(previous) = store::inbound_response(&mut tx, sid).await? {
        tracing::info!(message_sid = %sid, "inbound text seen before; same answer");
        return Ok(xml_raw(previous));
    }
    let now = ctx.clock.now();
    let reached = store::reached_at(&mut tx, &from).await?;
    let Some((m, others)) = reached.split_first() else {
        let response = TwiML::new().render();
        let record = InboundText {
            message_sid: sid,
            from_number: &from,
            to_number: param(&p, "To"),
            body: &body,
            matched: None,
            kind: "unmatched",
            intent: None,
            reply_id: None,
            response: &response,
            received_at: now,
        };
        store::insert_inbound(&mut tx, &record).await?;
        tx.commit().await?;
        tracing::info!(from = %arflow_core::mask::phone(&from), "inbound text from an unknown number; recorded");
        return Ok(xml_raw(response));
    };
    let span = tracing::info_span!("sms_inbound", firm_id = %m.firm_id, invoice_id = %m.invoice_id, correlation_id = %m.correlation_id);
    let out =
        inbound_matched(&ctx, &mut tx, m, others, sid, &from, param(&p, "To"), &body, now).instrument(span).await?;
    tx.commit().await?;
    if out.1 {
        ctx.outbox.notify();
    }
    Ok(xml_raw(out.0))
}

#[allow(clippy::too_many_arguments)]
async fn inbound_matched(
    ctx: &Context,
    conn: &mut PgConnection,
    m: &Sent,
    others: &[Sent],
    sid: &str,
    from: &str,
    to: Option<&str>,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(String, bool), ApiError> {
    let step = &m.step_due.0;
    let firm = step.firm.name.as_str();
    let reference = reference_day(step, now);
    let kw = sms::keyword(body);
    let classification = match kw {
        Some(Keyword::Stop) => Classification::certain(Intent::OptOut, None, body.to_string()),
        _ => arflow_replies::classify(Source::Sms, body, jiff_date(reference)),
    };
    let opt_out = kw != Some(Keyword::Help) && classification.intent == Intent::OptOut;
    // STOP is about the number: every contact reached at it (a phone shared by two contacts,
    // or by two firms' contacts, all texted from our number) is held, not just the latest.
    let stopped: Vec<&Sent> = if opt_out { std::iter::once(m).chain(others).collect() } else { vec![m] };
    let (kind, response, publish) = if kw == Some(Keyword::Help) {
        ("help", TwiML::new().push(Verb::Message(sms::help_reply(firm, &step.firm.sender_email))), false)
    } else if opt_out {
        // Fence 2: the holds first.
        for s in &stopped {
            match ctx.bus.holds().hold(&contact_hold_key(s.contact_id), "opted_out", &format!("sms:{sid}"), now).await {
                Ok(revision) => tracing::info!(firm_id = %s.firm_id, contact_id = %s.contact_id, revision,
                    "contact hold written (STOP)"),
                // Twilio does not retry an inbound text: failing would lose the STOP. It is
                // recorded and published below; the opt-out service holds when the bucket answers.
                Err(e) => tracing::error!(firm_id = %s.firm_id, contact_id = %s.contact_id, error = %e,
                    "contact hold could not be written now; the STOP is recorded and the opt-out service holds"),
            }
        }
        ("stop", TwiML::new().push(Verb::Message(sms::stop_reply(firm))), true)
    } else {
        ("reply", TwiML::new(), !body.is_empty())
    };
    let reply_id = arflow_core::new_id();
    let mut published = false;
    if publish {
        let mut messages = Vec::with_capacity(stopped.len());
        for (i, s) in stopped.iter().enumerate() {
            // Each contact's opt-out in its own firm's stream (the first is the matched reply).
            let id = if i == 0 { reply_id } else { arflow_core::new_id() };
            let event = classified(Said {
                reply_id: id,
                channel: Channel::Sms,
                text: body,
                classification: &classification,
                invoice_id: s.invoice_id,
                contact_id: s.contact_id,
                client_id: s.client_id,
                matched_by: if s.via == "text" { "sms_sender" } else { "call_number" },
                answered: None,
                step: &s.step,
                from: Some(from.to_string()),
                received_at: now,
                reference_date: reference_day(&s.step_due.0, now),
            });
            let origin = Origin {
                firm_id: s.firm_id,
                invoice_id: s.invoice_id,
                correlation_id: s.correlation_id,
                cause_event_id: s.cause_event_id,
            };
            messages.push(
                events::reply_classified(origin, &event, msg_id::reply(id, "classified"), now)
                    .map_err(ApiError::internal)?,
            );
        }
        arflow_store::outbox::enqueue(conn, &messages).await?;
        published = true;
    }
    tracing::info!(kind, intent = %classification.intent, "inbound text understood");
    let rendered = response.render();
    let record = InboundText {
        message_sid: sid,
        from_number: from,
        to_number: to,
        body,
        matched: Some(m),
        kind,
        intent: (kind != "help").then(|| classification.intent.as_str()),
        reply_id: published.then_some(reply_id),
        response: &rendered,
        received_at: now,
    };
    store::insert_inbound(conn, &record).await?;
    Ok((rendered, published))
}

/// `POST .../sms/{text_id}/status`: delivery status; `failed`/`undelivered` -> `outreach.sms.failed`.
pub async fn sms_status(
    State(ctx): State<Arc<Context>>,
    Path(text_id): Path<Uuid>,
    Form(p): Form<Params>,
) -> Result<StatusCode, ApiError> {
    let status = param(&p, "MessageStatus").ok_or_else(|| ApiError::Validation("MessageStatus is missing".into()))?;
    let code = param(&p, "ErrorCode");
    let now = ctx.clock.now();
    let mut tx = ctx.pool.begin().await?;
    if !store::set_text_status(&mut tx, text_id, status).await? {
        return Err(ApiError::NotFound(format!("no text {text_id}")));
    }
    let mut published = false;
    if matches!(status, "failed" | "undelivered") {
        let reason = match code {
            Some(c) => format!("not delivered: {status} (error {c})"),
            None => format!("not delivered: {status}"),
        };
        if let Some(row) = store::mark_text_failed(&mut tx, text_id, &reason, Some(status), code).await? {
            let msg = events::sms_failed(&row, &reason, true, now).map_err(ApiError::internal)?;
            arflow_store::outbox::enqueue(&mut tx, &[msg]).await?;
            published = true;
            tracing::info!(%text_id, firm_id = %row.firm_id, invoice_id = %row.invoice_id, %reason, "text not delivered");
        }
    }
    tx.commit().await?;
    if published {
        ctx.outbox.notify();
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(speaker: &str, intent: Option<&str>) -> TurnRow {
        TurnRow {
            seq: 1,
            turn: 1,
            speaker: speaker.into(),
            text: String::new(),
            intent: intent.map(Into::into),
            evidence: None,
            at: Utc::now(),
            needs_review: false,
        }
    }

    #[test]
    fn final_statuses_decide_the_outcome() {
        assert_eq!(outcome_for("completed", Some("human")), Some("completed"));
        assert_eq!(outcome_for("completed", None), Some("completed"));
        assert_eq!(outcome_for("completed", Some("machine_end_beep")), Some("voicemail"));
        assert_eq!(outcome_for("completed", Some("fax")), Some("voicemail"));
        assert_eq!(outcome_for("busy", None), Some("no_answer"));
        assert_eq!(outcome_for("no-answer", None), Some("no_answer"));
        assert_eq!(outcome_for("failed", None), Some("failed"));
        assert_eq!(outcome_for("canceled", None), Some("failed"));
        for s in ["queued", "initiated", "ringing", "in-progress", "answered"] {
            assert_eq!(outcome_for(s, None), None);
        }
    }

    #[test]
    fn details_say_what_happened() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 20);
        assert_eq!(
            detail_for("completed", "completed", &[turn("client", Some("promise_to_pay"))], d),
            "promise to pay on 2026-03-20 confirmed"
        );
        assert_eq!(detail_for("no_answer", "busy", &[], None), "busy");
        assert!(detail_for("completed", "completed", &[turn("client", Some("dispute"))], None).starts_with("dispute"));
        assert!(detail_for("voicemail", "completed", &[], None).contains("no amount"));
    }
}
