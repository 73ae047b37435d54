//! Stripe webhook signer and API simulator. (filled in by the gateway work)
