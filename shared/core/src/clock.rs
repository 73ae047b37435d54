//! All time comes from a `Clock`. Production uses the system clock; tests and the
//! demo use a simulated clock whose value is shared through the `clock` key-value
//! bucket (the bus crate keeps a `Clock::simulated` in step with that bucket).
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
enum Inner {
    System,
    Simulated(watch::Sender<DateTime<Utc>>),
}

impl Clock {
    pub fn system() -> Self {
        Clock { inner: Arc::new(Inner::System) }
    }

    /// A simulated clock starting at `start`; moved only by `set`.
    pub fn simulated(start: DateTime<Utc>) -> Self {
        let (tx, _rx) = watch::channel(start);
        Clock { inner: Arc::new(Inner::Simulated(tx)) }
    }

    pub fn is_simulated(&self) -> bool {
        matches!(*self.inner, Inner::Simulated(_))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &*self.inner {
            Inner::System => Utc::now(),
            Inner::Simulated(tx) => *tx.borrow(),
        }
    }

    /// Moves a simulated clock. Time never goes backwards: an older value is ignored.
    /// Returns whether the clock moved. A system clock ignores this.
    pub fn set(&self, to: DateTime<Utc>) -> bool {
        match &*self.inner {
            Inner::System => false,
            Inner::Simulated(tx) => tx.send_if_modified(|now| {
                if to > *now {
                    *now = to;
                    true
                } else {
                    false
                }
            }),
        }
    }

    /// A receiver that wakes whenever a simulated clock moves; `None` for the system clock.
    pub fn changes(&self) -> Option<watch::Receiver<DateTime<Utc>>> {
        match &*self.inner {
            Inner::System => None,
            Inner::Simulated(tx) => Some(tx.subscribe()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn simulated_clock_only_moves_forward() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = Clock::simulated(t0);
        assert!(clock.set(t0 + chrono::Duration::days(1)));
        assert!(!clock.set(t0));
        assert_eq!(clock.now(), t0 + chrono::Duration::days(1));
    }
}
