//! The public event contract: `docs/events/*.schema.json` are exactly what the Rust types
//! generate, accept what we publish and reject what we do not, and `docs/asyncapi.yaml`
//! describes every published subject with references that resolve.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use arflow_contracts::Envelope;
use arflow_contracts::events::{
    CaseAction, CaseActionKind, CaseActivity, CaseClient, CaseContact, CaseFirm, CaseInvoice, CaseLinks, CaseReview,
    CaseStatus, EscalationCase, EscalationReason, IntentScore, ReplyIntent, ReviewLabel, Tier,
};
use arflow_contracts::schema::{self, EventSchema};
use arflow_contracts::subjects::escalation;
use arflow_core::Currency;
use chrono::{NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use uuid::Uuid;

const REFRESH: &str = "UPDATE_SCHEMAS=1 cargo test -p arflow-contracts --test public_contract";

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} cannot be read ({e}): run `{REFRESH}`", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

#[test]
fn committed_schemas_are_what_the_types_generate() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    for EventSchema { file, schema, .. } in schema::published() {
        let path = docs().join("events").join(file);
        if update {
            let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            std::fs::write(&path, text).unwrap();
            continue;
        }
        // Compared as JSON values: key order does not matter.
        assert!(read_json(&path) == schema, "docs/events/{file} differs from the Rust types: run `{REFRESH}`");
    }
}

fn validator(file: &str) -> jsonschema::Validator {
    let schema = read_json(&docs().join("events").join(file));
    jsonschema::draft7::options().should_validate_formats(true).build(&schema).unwrap()
}

fn errors(validator: &jsonschema::Validator, event: &Value) -> Vec<String> {
    validator.iter_errors(event).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

/// A case as the escalation service publishes it: a disputed invoice, paused by a firm user.
fn case() -> EscalationCase {
    let opened = Utc.with_ymd_and_hms(2026, 3, 2, 9, 15, 0).unwrap();
    let updated = Utc.with_ymd_and_hms(2026, 3, 3, 14, 0, 0).unwrap();
    let case_id = Uuid::now_v7();
    let invoice_id = Uuid::now_v7();
    EscalationCase {
        case_id,
        version: 2,
        status: CaseStatus::Paused,
        reason: EscalationReason::Dispute,
        evidence: "We never received the second pallet, so we will not pay the full amount.".into(),
        firm: CaseFirm {
            firm_id: Uuid::now_v7(),
            name: "Northwind Accounting".into(),
            timezone: "Europe/Berlin".into(),
        },
        client: CaseClient { client_id: Uuid::now_v7(), name: "Acme GmbH".into(), tier: Tier::LongStanding },
        contact: Some(CaseContact {
            contact_id: Uuid::now_v7(),
            name: "Jana Weber".into(),
            email: Some("jana.weber@acme.example".into()),
            phone: None,
        }),
        invoice: Some(CaseInvoice {
            invoice_id,
            stripe_invoice_id: "in_1Pq2Rs3Tu4Vw5Xy".into(),
            number: Some("NW-2026-0042".into()),
            currency: Currency::parse("EUR").unwrap(),
            amount_due: Decimal::new(1_250_000, 2),
            amount_remaining: Decimal::new(625_050, 2),
            due_date: NaiveDate::from_ymd_opt(2026, 2, 1),
            days_past_due: 30,
            hosted_invoice_url: Some("https://invoice.stripe.com/i/acct_1/test_42".into()),
        }),
        opened_at: opened,
        updated_at: updated,
        resolved_at: None,
        action: CaseAction {
            action: CaseActionKind::Pause,
            actor: "maria@northwind.example".into(),
            note: "Waiting for the delivery note from the warehouse.".into(),
            at: updated,
            paused_until: Some(Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 0).unwrap()),
            agency: None,
        },
        latest_activity: Some(CaseActivity {
            at: opened,
            kind: "reply.classified".into(),
            summary: "Dispute: 'we never received the second pallet'".into(),
        }),
        links: CaseLinks {
            case: format!("https://api.arflow.example/v1/escalations/{case_id}"),
            invoice_activity: Some(format!("https://api.arflow.example/v1/invoices/{invoice_id}/activity")),
            hosted_invoice: Some("https://invoice.stripe.com/i/acct_1/test_42".into()),
        },
        review: None,
    }
}

fn published_event(data: EscalationCase) -> Value {
    let firm = data.firm.firm_id;
    let subject = data.case_id;
    let event = Envelope::new(escalation::UPDATED, "escalation", data.updated_at, firm, subject, None, data);
    serde_json::from_slice(&event.to_json().unwrap()).unwrap()
}

/// Breaks one thing in a published event.
type Mutation = fn(&mut Value);

#[test]
fn the_schema_accepts_what_we_publish_and_rejects_what_we_do_not() {
    let v = validator("escalation.v1.schema.json");
    let event = published_event(case());
    assert_eq!(event["data"]["invoice"]["amount_remaining"], json!("6250.50"), "decimals travel as strings");
    assert_eq!(errors(&v, &event), Vec::<String>::new());

    // A client-wide case without contact or invoice, resolved.
    let mut wide = case();
    wide.contact = None;
    wide.invoice = None;
    wide.status = CaseStatus::Resolved;
    wide.resolved_at = Some(wide.updated_at);
    wide.latest_activity = None;
    assert_eq!(errors(&v, &published_event(wide)), Vec::<String>::new());

    // A reply arflow did not understand, labelled by a firm user.
    let mut review = case();
    review.reason = EscalationReason::NeedsReview;
    review.status = CaseStatus::Resolved;
    review.resolved_at = Some(review.updated_at);
    review.action.action = CaseActionKind::Label;
    review.action.paused_until = None;
    review.review = Some(CaseReview {
        reply_id: Uuid::now_v7(),
        channel: arflow_core::Channel::Email,
        client_text: "Re your note: see the comments from my colleague below, regards".into(),
        evidence: String::new(),
        confidence: 0.41,
        scores: vec![
            IntentScore { intent: ReplyIntent::Question, score: 0.41 },
            IntentScore { intent: ReplyIntent::Acknowledged, score: 0.33 },
        ],
        label: Some(ReviewLabel {
            intent: ReplyIntent::OptOut,
            promised_date: None,
            labelled_by: "maria@northwind.example".into(),
            labelled_at: review.updated_at,
        }),
    });
    let labelled = published_event(review);
    assert_eq!(labelled["data"]["review"]["scores"][0]["intent"], json!("question"));
    assert_eq!(errors(&v, &labelled), Vec::<String>::new());
    for (what, mutate) in [
        ("an unknown intent", (|e| e["data"]["review"]["scores"][0]["intent"] = json!("angry")) as Mutation),
        ("a score as a string", |e| e["data"]["review"]["scores"][0]["score"] = json!("0.4")),
        ("a label without its author", |e| {
            drop(e["data"]["review"]["label"].as_object_mut().unwrap().remove("labelled_by"))
        }),
    ] {
        let mut bad = labelled.clone();
        mutate(&mut bad);
        assert!(!v.is_valid(&bad), "the schema accepted a review with {what}");
    }

    let mutations: Vec<(&str, Mutation)> = vec![
        ("amount as a number", |e| e["data"]["invoice"]["amount_due"] = json!(12500.0)),
        ("amount with a comma", |e| e["data"]["invoice"]["amount_due"] = json!("12,500.00")),
        ("lower-case currency", |e| e["data"]["invoice"]["currency"] = json!("eur")),
        ("unknown type", |e| e["type"] = json!("escalation.closed")),
        ("version 2", |e| e["version"] = json!(2)),
        ("unknown status", |e| e["data"]["status"] = json!("closed")),
        ("unknown reason", |e| e["data"]["reason"] = json!("angry")),
        ("missing case id", |e| drop(e["data"].as_object_mut().unwrap().remove("case_id"))),
        ("missing firm id", |e| drop(e.as_object_mut().unwrap().remove("firm_id"))),
        ("not a uuid", |e| e["data"]["case_id"] = json!("case-42")),
        ("not a date", |e| e["data"]["invoice"]["due_date"] = json!("01/02/2026")),
        ("not a time", |e| e["time"] = json!("yesterday")),
    ];
    for (what, mutate) in mutations {
        let mut bad = event.clone();
        mutate(&mut bad);
        assert!(!v.is_valid(&bad), "the schema accepted an event with {what}");
    }
}

#[test]
fn informational_schemas_accept_their_events() {
    use arflow_contracts::events::{ConsentChanged, NotificationOutcome};
    use arflow_contracts::subjects::{consent, notification};
    let firm = Uuid::now_v7();
    let data = ConsentChanged {
        contact_id: Uuid::now_v7(),
        client_id: Uuid::now_v7(),
        channel: Some(arflow_core::Channel::Email),
        source: "email_reply".into(),
        evidence: "please stop emailing me".into(),
    };
    let event = Envelope::new(consent::OPTED_OUT, "optout", Utc::now(), firm, data.contact_id, None, data);
    let event: Value = serde_json::from_slice(&event.to_json().unwrap()).unwrap();
    assert_eq!(errors(&validator("consent.v1.schema.json"), &event), Vec::<String>::new());

    let data = NotificationOutcome {
        delivery_id: Uuid::now_v7(),
        subscription_id: Uuid::now_v7(),
        channel: "webhook".into(),
        event_kind: "escalation_opened".into(),
        event_id: Uuid::now_v7(),
        attempts: 3,
        detail: "200 OK".into(),
    };
    let event = Envelope::new(notification::DELIVERED, "notification", Utc::now(), firm, data.delivery_id, None, data);
    let event: Value = serde_json::from_slice(&event.to_json().unwrap()).unwrap();
    assert_eq!(errors(&validator("notification.v1.schema.json"), &event), Vec::<String>::new());
}

/// Every `$ref` in `value`, with where it was found.
fn refs(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push((at.to_string(), r.clone())),
                    _ => refs(v, &format!("{at}/{k}"), out),
                }
            }
        }
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| refs(v, &format!("{at}/{i}"), out)),
        _ => {}
    }
}

#[test]
fn asyncapi_describes_every_published_subject() {
    let text = std::fs::read_to_string(docs().join("asyncapi.yaml")).unwrap();
    let doc: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(doc["asyncapi"], json!("3.0.0"));

    // Every reference resolves: local ones in the document, file ones to an existing file and pointer.
    let mut found = vec![];
    refs(&doc, "", &mut found);
    assert!(!found.is_empty());
    for (at, r) in &found {
        let (file, pointer) = r.split_once('#').unwrap_or((r.as_str(), ""));
        let target = if file.is_empty() { doc.clone() } else { read_json(&docs().join(file)) };
        assert!(target.pointer(pointer).is_some(), "$ref {r} at {at} does not resolve");
    }

    // The channels are exactly the published subjects, each with the firm id last.
    let mut channels = BTreeSet::new();
    for (name, channel) in doc["channels"].as_object().unwrap() {
        let address = channel["address"].as_str().unwrap_or_else(|| panic!("channel {name} has no address"));
        let kind = address.strip_suffix(".{firm_id}").unwrap_or_else(|| panic!("{address} does not end in the firm"));
        assert!(channel["parameters"]["firm_id"].is_object(), "channel {name} does not describe firm_id");
        channels.insert(kind.to_string());
    }
    let published: BTreeSet<String> =
        schema::published().iter().flat_map(|s| s.kinds.iter().map(|k| k.to_string())).collect();
    assert_eq!(channels, published);
    for kind in [escalation::OPENED, escalation::UPDATED, escalation::RESOLVED] {
        assert!(channels.contains(kind), "{kind} is not in docs/asyncapi.yaml");
    }

    // Each channel is received by an operation, and every operation names a real channel.
    let mut received = BTreeSet::new();
    for (name, op) in doc["operations"].as_object().unwrap() {
        assert_eq!(op["action"], json!("receive"), "operation {name}");
        let r = op["channel"]["$ref"].as_str().unwrap();
        let channel = r.strip_prefix("#/channels/").unwrap();
        received.insert(doc["channels"][channel]["address"].as_str().unwrap().to_string());
    }
    assert_eq!(received.len(), channels.len(), "every channel has a receive operation");
}
