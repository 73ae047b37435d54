//! The event kinds a firm user can subscribe to (stable names: they are stored in
//! subscriptions and are the `type` of webhook bodies).
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    OptOut,
    EscalationOpened,
    Dispute,
    PaymentAfterOutreach,
    PromiseMade,
    PromiseBroken,
    AllContactsOptedOut,
    DeadLetter,
    DailyDigest,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::OptOut,
        Kind::EscalationOpened,
        Kind::Dispute,
        Kind::PaymentAfterOutreach,
        Kind::PromiseMade,
        Kind::PromiseBroken,
        Kind::AllContactsOptedOut,
        Kind::DeadLetter,
        Kind::DailyDigest,
    ];

    /// What the digest counts (every kind but the digest itself).
    pub const COUNTED: [Kind; 8] = [
        Kind::OptOut,
        Kind::EscalationOpened,
        Kind::Dispute,
        Kind::PromiseMade,
        Kind::PromiseBroken,
        Kind::PaymentAfterOutreach,
        Kind::AllContactsOptedOut,
        Kind::DeadLetter,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::OptOut => "opt_out",
            Kind::EscalationOpened => "escalation_opened",
            Kind::Dispute => "dispute",
            Kind::PaymentAfterOutreach => "payment_after_outreach",
            Kind::PromiseMade => "promise_made",
            Kind::PromiseBroken => "promise_broken",
            Kind::AllContactsOptedOut => "all_contacts_opted_out",
            Kind::DeadLetter => "dead_letter",
            Kind::DailyDigest => "daily_digest",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A few words for subjects and digest lines.
    pub fn label(self) -> &'static str {
        match self {
            Kind::OptOut => "Opt-outs",
            Kind::EscalationOpened => "Escalations opened",
            Kind::Dispute => "Disputes",
            Kind::PaymentAfterOutreach => "Payments after outreach",
            Kind::PromiseMade => "Promises made",
            Kind::PromiseBroken => "Promises broken",
            Kind::AllContactsOptedOut => "Clients with every contact opted out",
            Kind::DeadLetter => "Dead-lettered messages",
            Kind::DailyDigest => "Daily digest",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(k.as_str()));
        }
        assert_eq!(Kind::parse("escalation.opened"), None);
    }
}
