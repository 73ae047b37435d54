//! The seeded portfolio and what its clients do, day by day: which invoices are paid (signed
//! Stripe `invoice.paid` webhooks), which contacts unsubscribe (the one-click link of an email
//! they got) and which answer a reminder (inbound email: an opt-out or a promise to pay).
//! Everything here comes from the seed, so the reference and the faulted run see the same world.
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Where clients are: a few zones, so the clock stops a few times a day.
const ZONES: &[(&str, &str)] =
    &[("America/New_York", "+1212555"), ("America/Chicago", "+1312555"), ("Europe/London", "+44740012")];

#[derive(Debug, Clone)]
pub struct Client {
    pub customer: String,
    pub name: String,
    pub tz: &'static str,
    pub email: String,
    /// Some clients gave a mobile number and agreed to calls and texts.
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// RFC 8058 one-click unsubscribe with the link of the invoice's latest email.
    Unsubscribe,
    /// "Please stop emailing me" to the invoice's latest email (inbound webhook).
    ReplyStop,
    /// "We will pay next Friday" to the invoice's latest email.
    ReplyPromise,
}

#[derive(Debug, Clone)]
pub struct Invoice {
    pub stripe_id: String,
    pub client: usize,
    pub amount_minor: i64,
    /// Days from the start to the due date.
    pub due_in_days: i64,
    /// The simulated day on which Stripe reports it paid.
    pub pay_day: Option<u32>,
    /// What the client does, from that day on (once it got an email for this invoice).
    pub act: Option<(u32, Act)>,
}

#[derive(Debug, Clone)]
pub struct Portfolio {
    pub clients: Vec<Client>,
    pub invoices: Vec<Invoice>,
    pub webhook_secret: String,
}

impl Portfolio {
    pub fn generate(seed: u64, invoices: usize, days: u32) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let n_clients = invoices.div_ceil(5).max(4);
        let clients = (0..n_clients)
            .map(|i| {
                let (tz, prefix) = ZONES[rng.random_range(0..ZONES.len())];
                let phone = rng.random_bool(0.25).then(|| format!("{prefix}{:04}", 1000 + i % 9000));
                Client {
                    customer: format!("cus_chaos_{i:04}"),
                    name: format!("Chaos Client {i}"),
                    tz,
                    email: format!("billing{i:04}@client{i:04}.test"),
                    phone,
                }
            })
            .collect::<Vec<_>>();
        let mut acted = std::collections::HashSet::new();
        let invoices = (0..invoices)
            .map(|j| {
                let client = rng.random_range(0..n_clients);
                let pay_day = rng.random_bool(0.35).then(|| rng.random_range(1..=days));
                // At most one act per client (its contact is the one who unsubscribes or answers).
                let act = if rng.random_bool(0.12) && acted.insert(client) {
                    let kind = match rng.random_range(0..3) {
                        0 => Act::Unsubscribe,
                        1 => Act::ReplyStop,
                        _ => Act::ReplyPromise,
                    };
                    Some((rng.random_range(1..=days), kind))
                } else {
                    None
                };
                Invoice {
                    stripe_id: format!("in_chaos_{j:05}"),
                    client,
                    amount_minor: rng.random_range(20_000..=900_000),
                    due_in_days: rng.random_range(-10..=20),
                    pay_day,
                    act,
                }
            })
            .collect();
        Portfolio { clients, invoices, webhook_secret: format!("whsec_chaos_{seed:016x}") }
    }
}
