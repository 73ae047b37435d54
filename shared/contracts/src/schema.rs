//! JSON Schemas of the events other systems may read, generated from the Rust types so the
//! documents in `docs/events/` cannot drift from what is published (a test compares them).
use crate::envelope::Envelope;
use crate::events::{ConsentChanged, EscalationCase, NotificationOutcome};
use crate::subjects::{consent, escalation, notification};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

/// One schema document of `docs/events/`.
pub struct EventSchema {
    /// File name in `docs/events/`, e.g. `escalation.v1.schema.json`.
    pub file: &'static str,
    /// The envelope `type`s it describes.
    pub kinds: &'static [&'static str],
    pub version: u32,
    pub schema: Value,
}

/// Every event family with a published schema: escalations (the public contract), and
/// consent and notification events (documented for information, not granted to outsiders).
pub fn published() -> Vec<EventSchema> {
    vec![
        envelope::<EscalationCase>(
            "escalation.v1.schema.json",
            &[escalation::OPENED, escalation::UPDATED, escalation::RESOLVED],
            "An escalation case was opened, changed or resolved. `data` is the whole case every time; \
             keep the highest `data.version` per `data.case_id`.",
        ),
        envelope::<ConsentChanged>(
            "consent.v1.schema.json",
            &[consent::OPTED_OUT, consent::OPTED_IN],
            "A contact opted out of (or back into) one channel or every channel. Informational: not granted \
             to external consumers.",
        ),
        envelope::<NotificationOutcome>(
            "notification.v1.schema.json",
            &[notification::DELIVERED, notification::FAILED],
            "A notification to a firm destination was delivered or finally failed. Informational: not granted \
             to external consumers.",
        ),
    ]
}

/// The envelope with `data: T`, its `type` narrowed to `kinds` and its `version` fixed to 1.
fn envelope<T: JsonSchema>(file: &'static str, kinds: &'static [&'static str], description: &str) -> EventSchema {
    // Draft-07: the JSON Schema version AsyncAPI tools read. The serialize contract: what we
    // publish (every field present, decimals as strings), not everything serde would accept.
    let generator = SchemaSettings::draft07().for_serialize().into_generator();
    let mut schema = generator.into_root_schema_for::<Envelope<T>>().to_value();
    let family = file.split('.').next().unwrap_or(file);
    schema["title"] = json!(format!("arflow {family} event, version 1"));
    schema["description"] = json!(description);
    schema["properties"]["type"] = json!({
        "description": "The event type: the subject without the firm id.",
        "type": "string",
        "enum": kinds,
    });
    schema["properties"]["version"] = json!({
        "description": "Contract version of `data`. A breaking change publishes version 2 beside version 1.",
        "const": 1,
    });
    uuid_patterns(&mut schema);
    EventSchema { file, kinds, version: 1, schema }
}

/// Draft-07 has no `uuid` format, so validators would accept any string: add the pattern of
/// what `uuid` serialises (lower case, hyphenated).
fn uuid_patterns(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.get("format").and_then(Value::as_str) == Some("uuid") {
                map.insert("pattern".into(), json!("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"));
            }
            map.values_mut().for_each(uuid_patterns);
        }
        Value::Array(items) => items.iter_mut().for_each(uuid_patterns),
        _ => {}
    }
}
