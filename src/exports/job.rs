//! The export job.

use crate::{
    jobs::{Job, Outcome},
    state::AppState,
};

pub async fn run(_state: &AppState, job: &Job) -> Outcome {
    Outcome::Failed {
        error: format!("export {} has no handler yet", job.id),
    }
}
