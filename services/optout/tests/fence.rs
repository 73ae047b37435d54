//! Fence 2 under random interleavings: senders claim a contact's keys (as the email sender does,
//! `Holds::claim` right before SMTP) while opt-outs arrive from random sources at random moments.
//! No send may be granted after the hold: every granted claim on the held key has a lower
//! revision than the hold recorded in the ledger.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use arflow_bus::Claim;
use arflow_contracts::events::{ReplyIntent, ReplyKind};
use arflow_contracts::streams::{contact_channel_hold_key, contact_hold_key};
use arflow_core::Channel;
use common::{Person, TestApp, classified, hard_bounce};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// One send: the revisions of its claims on the contact key and the contact's email key.
#[derive(Debug, Clone, Copy)]
struct Send {
    contact: u64,
    email: u64,
}

/// Claims both keys in a loop until stopped; returns every send that was granted.
async fn sender(app: Arc<TestApp>, p: Person, seed: u64, stop: Arc<AtomicBool>) -> Vec<Send> {
    let mut rng = StdRng::seed_from_u64(seed);
    let holds = app.bus.holds();
    let mut sends = Vec::new();
    let mut after_stop = 0;
    while after_stop < 3 {
        if stop.load(Ordering::SeqCst) {
            after_stop += 1;
        }
        let by = format!("email:{}", Uuid::now_v7());
        let now = chrono::Utc::now();
        let Claim::Granted { revision: contact } = holds.claim(&contact_hold_key(p.contact), &by, now).await.unwrap()
        else {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        let key = contact_channel_hold_key(p.contact, Channel::Email);
        if let Claim::Granted { revision: email } = holds.claim(&key, &by, now).await.unwrap() {
            sends.push(Send { contact, email });
        }
        tokio::time::sleep(Duration::from_micros(rng.random_range(0..3_000))).await;
    }
    sends
}

#[tokio::test]
async fn no_send_is_granted_after_the_hold_over_random_interleavings() {
    let seed: u64 = std::env::var("FENCE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("FENCE_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let app = Arc::new(TestApp::spawn().await);
    let firm = Uuid::now_v7();
    let (rounds, contacts) = (4, 8);
    let (mut checked, mut granted) = (0, 0);
    for round in 0..rounds {
        let mut people = Vec::new();
        for i in 0..contacts {
            people.push(app.person(firm, &format!("c{round}-{i}@client.test")).await);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let senders: Vec<_> =
            people.iter().map(|p| tokio::spawn(sender(app.clone(), p.clone(), rng.random(), stop.clone()))).collect();
        // Opt-outs from random sources at random moments, while the senders run.
        let mut opt_outs = Vec::new();
        for p in &people {
            let (app, p) = (app.clone(), p.clone());
            let delay = Duration::from_millis(rng.random_range(0..40));
            let source = rng.random_range(0..4);
            opt_outs.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                match source {
                    0 => {
                        let r = app.post_json(p.firm, "/v1/consent/opt-outs", json!({"contact_id": p.contact})).await;
                        assert_eq!(r.status(), 201);
                        // The answer comes after the hold: a claim now is refused.
                        let key = contact_hold_key(p.contact);
                        let claim = app.bus.holds().claim(&key, "late", chrono::Utc::now()).await.unwrap();
                        assert!(matches!(claim, Claim::Held { .. }));
                    }
                    1 => {
                        let body = json!({"contact_id": p.contact, "channel": "email"});
                        assert_eq!(app.post_json(p.firm, "/v1/consent/opt-outs", body).await.status(), 201);
                    }
                    2 => {
                        let r = classified(&p, ReplyKind::Reply, Some(ReplyIntent::OptOut), "stop");
                        app.reply(&p, r).await;
                    }
                    _ => {
                        app.reply(&p, hard_bounce(&p)).await;
                    }
                }
            }));
        }
        for o in opt_outs {
            o.await.unwrap();
        }
        let mut recorded = Vec::new();
        for p in &people {
            let entry = app.history(p, 1).await.remove(0);
            recorded.push(entry);
        }
        stop.store(true, Ordering::SeqCst);
        for ((p, entry), s) in people.iter().zip(&recorded).zip(senders) {
            let sends = s.await.unwrap();
            granted += sends.len();
            let hold = entry["hold_revision"].as_u64().unwrap();
            let email_only = entry["channel"] == "email";
            let late: Vec<&Send> =
                sends.iter().filter(|s| if email_only { s.email > hold } else { s.contact > hold }).collect();
            assert!(
                late.is_empty(),
                "seed {seed}: {} sends after the hold {hold} of {}: {late:?}",
                late.len(),
                p.contact
            );
            let key = if email_only {
                contact_channel_hold_key(p.contact, Channel::Email)
            } else {
                contact_hold_key(p.contact)
            };
            assert!(app.held(&key).await.is_some(), "seed {seed}: {key} is held");
            checked += 1;
        }
    }
    assert_eq!(checked, rounds * contacts);
    assert!(granted > 0, "the senders raced the opt-outs (sends before the holds)");
    Arc::try_unwrap(app).ok().unwrap().stop().await;
}
