//! The job handlers of webhooks: fan-out of an event to its endpoints, and one delivery.

use crate::{
    jobs::{Job, Outcome},
    state::AppState,
};

/// Turns one event into one delivery job per subscribed endpoint.
pub async fn fan_out(_state: &AppState, _job: &Job) -> Outcome {
    // No endpoints exist yet: nothing to deliver.
    Outcome::Done
}

/// One attempt of one delivery.
pub async fn deliver(_state: &AppState, job: &Job) -> Outcome {
    Outcome::Failed {
        error: format!("webhook delivery {} has no handler yet", job.id),
    }
}
