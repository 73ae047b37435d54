//! The JetStream streams and key-value buckets arflow provisions (create-or-update, never delete).

pub struct StreamSpec {
    pub name: &'static str,
    pub subjects: &'static [&'static str],
    pub description: &'static str,
    /// Days a message is kept (consumed or not), unless `nats.stream_max_age_days` says otherwise.
    pub max_age_days: u32,
    /// Bytes the stream may hold, unless `nats.stream_max_bytes` says otherwise; when full, new
    /// messages are refused (publishers retry), old ones are never dropped early.
    pub max_bytes: i64,
}

const GIB: i64 = 1 << 30;

pub const STREAMS: &[StreamSpec] = &[
    StreamSpec {
        name: "BILLING",
        subjects: &["billing.>"],
        description: "Firm, client, contact and invoice records and payment events from the gateway",
        max_age_days: 30,
        max_bytes: 4 * GIB,
    },
    StreamSpec {
        name: "ELIGIBILITY",
        subjects: &["eligibility.>"],
        description: "Eligibility decisions per invoice",
        max_age_days: 14,
        max_bytes: GIB,
    },
    StreamSpec {
        name: "OUTREACH",
        subjects: &["outreach.>"],
        description: "Steps due, skipped, sent and their outcomes",
        max_age_days: 14,
        max_bytes: 2 * GIB,
    },
    StreamSpec {
        name: "CONSENT",
        subjects: &["consent.>"],
        description: "Opt-outs and opt-ins",
        max_age_days: 30,
        max_bytes: GIB / 4,
    },
    StreamSpec {
        name: "REPLY",
        subjects: &["reply.>"],
        description: "Client replies, received and classified",
        max_age_days: 14,
        max_bytes: GIB,
    },
    StreamSpec {
        name: "ESCALATION",
        subjects: &["escalation.>"],
        description: "Public: escalation cases opened, updated and resolved",
        max_age_days: 30,
        max_bytes: GIB,
    },
    StreamSpec {
        name: "NOTIFY",
        subjects: &["notification.>"],
        description: "Notifications delivered to firms",
        max_age_days: 14,
        max_bytes: GIB / 2,
    },
    StreamSpec {
        name: "COMMAND",
        subjects: &["command.>"],
        description: "Requests from the public API to the service that owns the record",
        max_age_days: 14,
        max_bytes: GIB / 4,
    },
    StreamSpec {
        name: "DLQ",
        subjects: &["dlq.>"],
        description: "Messages a service could never process, with the reason",
        max_age_days: 90,
        max_bytes: GIB,
    },
];

/// Payment and opt-out holds, checked right before every send (the fences).
pub const HOLDS_BUCKET: &str = "holds";
/// Raw inbound messages (email as received), by `<firm_id>/<sha256>`: events carry the
/// name, not the bytes, so a 10 MB remittance PDF never meets NATS's message size limit.
pub const INBOUND_OBJECTS: &str = "inbound";
/// The simulated clock shared by every service (key `now`).
pub const CLOCK_BUCKET: &str = "clock";
pub const CLOCK_KEY: &str = "now";

/// Hold key of an invoice: `invoice.<id>`.
pub fn invoice_hold_key(invoice_id: uuid::Uuid) -> String {
    format!("invoice.{invoice_id}")
}

/// Hold key of a contact (every channel): `contact.<id>`.
pub fn contact_hold_key(contact_id: uuid::Uuid) -> String {
    format!("contact.{contact_id}")
}

/// Hold key of one channel of a contact: `contact.<id>.<channel>` (a hard bounce stops
/// email only; `contact.<id>` stops every channel).
pub fn contact_channel_hold_key(contact_id: uuid::Uuid, channel: arflow_core::Channel) -> String {
    format!("contact.{contact_id}.{channel}")
}
