//! The worker loop of one instance: claims due jobs while it has free slots
//! (`JOBS_CONCURRENCY`), runs each in its own task under a lease it keeps extending, and
//! records how it ended. Woken at once by this instance's own writes (`JobsWake`) and every
//! `JOBS_POLL_INTERVAL` for the others'.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use metrics::{counter, gauge, histogram};
use tokio::sync::{Notify, Semaphore};

use super::{Job, JobKind, Outcome, repo};
use crate::{
    error::AppError,
    state::AppState,
    telemetry::{WarnThrottle, trace},
};

/// Wakes this instance's runner after a commit that queued work (saves a poll interval).
#[derive(Debug, Default, Clone)]
pub struct JobsWake(Arc<Notify>);

impl JobsWake {
    pub fn wake(&self) {
        self.0.notify_one();
    }

    async fn woken(&self) {
        self.0.notified().await;
    }
}

/// How this instance takes part in the shared queue.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    pub enabled: bool,
    pub concurrency: usize,
    pub poll_interval: Duration,
    pub lease: Duration,
}

/// Names this worker in `jobs.locked_by` (unique per process start).
fn worker_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "herald".into());
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}/{}/{}", std::process::id(), &nonce[..8])
}

/// Runs until `stop` resolves; jobs still running then are left to their leases (another
/// worker, or this one after a restart, takes them over).
pub async fn run(state: AppState, settings: RunnerSettings, stop: impl Future<Output = ()>) {
    if !settings.enabled {
        tracing::info!("JOBS_ENABLED=false: this instance runs no background jobs");
        return;
    }
    let worker: Arc<str> = worker_name().into();
    let slots = Arc::new(Semaphore::new(settings.concurrency));
    let mut sample = tokio::time::interval(Duration::from_secs(10));
    // While the database is away every poll fails: one warning a minute, not one a poll.
    let warnings = WarnThrottle::new(Duration::from_secs(60));
    tokio::pin!(stop);
    loop {
        let free = slots.available_permits();
        let claimed = if free == 0 {
            Vec::new()
        } else {
            match claim(&state, &worker, settings.lease, free).await {
                Ok(jobs) => jobs,
                Err(err) => {
                    if warnings.allow() {
                        tracing::warn!(error = %err.chain(), "jobs: claiming failed; retrying every poll interval");
                    }
                    Vec::new()
                }
            }
        };
        let full = claimed.len() == free && free > 0;
        for job in claimed {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let state = state.clone();
            let worker = worker.clone();
            let lease = settings.lease;
            tokio::spawn(async move {
                // The job continues the trace of the request that queued it.
                let name = JobKind::parse(&job.kind).map_or("job", JobKind::as_str);
                let traceparent = job.traceparent.clone();
                trace::continuing(
                    name,
                    traceparent.as_deref(),
                    run_one(&state, &worker, lease, job),
                )
                .await;
                drop(permit);
            });
        }
        if full {
            // There may be more due right away; claim again once a slot frees up.
            tokio::select! {
                _ = &mut stop => return,
                permit = slots.acquire() => drop(permit),
            }
            continue;
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = state.jobs_wake.woken() => {}
            _ = tokio::time::sleep(settings.poll_interval) => {}
            _ = sample.tick() => sample_gauges(&state).await,
        }
    }
}

async fn claim(
    state: &AppState,
    worker: &str,
    lease: Duration,
    free: usize,
) -> Result<Vec<Job>, AppError> {
    let mut conn = state.db.conn().await?;
    repo::claim(&mut conn, worker, lease, free as i64).await
}

/// Runs one claimed job, extending its lease every third of it; abandons the work if the lease
/// was lost (the job is someone else's now).
async fn run_one(state: &AppState, worker: &str, lease: Duration, job: Job) {
    let started = Instant::now();
    let kind: &'static str = JobKind::parse(&job.kind).map_or("unknown", JobKind::as_str);
    let work = dispatch(state, &job);
    tokio::pin!(work);
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + lease / 3,
        (lease / 3).max(Duration::from_millis(100)),
    );
    // Until when the lease surely holds (as last extended); past it, another worker may own the
    // job, so this run stops rather than work on beside it.
    let mut held_until = tokio::time::Instant::now() + lease;
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            _ = heartbeat.tick() => {
                let asked = tokio::time::Instant::now();
                let kept = match state.db.conn().await {
                    Ok(mut conn) => repo::extend_lease(&mut conn, &job, worker, lease).await,
                    Err(err) => Err(err),
                };
                match kept {
                    Ok(true) => held_until = asked + lease,
                    Ok(false) => {
                        tracing::warn!(job.id = %job.id, job.kind = kind, "jobs: lease lost; abandoning the job to its new owner");
                        counter!("herald_jobs_finished_total", "kind" => kind, "outcome" => "lease_lost").increment(1);
                        return;
                    }
                    Err(err) if tokio::time::Instant::now() + lease / 3 >= held_until => {
                        tracing::warn!(job.id = %job.id, error = %err.chain(), "jobs: the lease could not be extended and is running out; abandoning the run");
                        counter!("herald_jobs_finished_total", "kind" => kind, "outcome" => "lease_lost").increment(1);
                        return;
                    }
                    // The database is briefly away: keep working while the lease still holds.
                    Err(err) => tracing::warn!(job.id = %job.id, error = %err.chain(), "jobs: could not extend a lease"),
                }
            }
        }
    };
    histogram!("herald_job_duration_seconds", "kind" => kind).record(started.elapsed());
    let (state_text, retry_at, error, label) = match &outcome {
        Outcome::Done => ("succeeded", None, None, "succeeded"),
        Outcome::RetryAfter { after, error } => (
            "queued",
            Some(Utc::now() + chrono::Duration::from_std(*after).unwrap_or(chrono::Duration::MAX)),
            Some(error.as_str()),
            "retried",
        ),
        Outcome::Failed { error } => ("failed", None, Some(error.as_str()), "failed"),
    };
    counter!("herald_jobs_finished_total", "kind" => kind, "outcome" => label).increment(1);
    match error {
        Some(error) => {
            tracing::info!(job.id = %job.id, job.kind = kind, job.attempt = job.attempts, job.outcome = label, error, "job ended")
        }
        None => {
            tracing::debug!(job.id = %job.id, job.kind = kind, job.attempt = job.attempts, job.outcome = label, "job ended")
        }
    }
    let finished = match state.db.conn().await {
        Ok(mut conn) => repo::finish(&mut conn, &job, worker, state_text, retry_at, error).await,
        Err(err) => Err(err),
    };
    match finished {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(job.id = %job.id, "jobs: the job was taken over before it finished here")
        }
        Err(err) => {
            tracing::warn!(job.id = %job.id, error = %err.chain(), "jobs: could not record how a job ended; its lease will run out and it runs again")
        }
    }
}

/// The handler of each kind.
async fn dispatch(state: &AppState, job: &Job) -> Outcome {
    match JobKind::parse(&job.kind) {
        Some(JobKind::EventFanout) => crate::webhooks::jobs::fan_out(state, job).await,
        Some(JobKind::WebhookDelivery) => crate::webhooks::jobs::deliver(state, job).await,
        Some(JobKind::Export) => crate::exports::job::run(state, job).await,
        None => Outcome::Failed {
            error: format!("no handler for job kind {:?}", job.kind),
        },
    }
}

impl Outcome {
    /// A transient failure (database or pool away): retried with exponential backoff, 1 s
    /// doubling up to 5 minutes.
    pub fn transient(error: &AppError, attempts: i32) -> Self {
        let exponent = u32::try_from(attempts.clamp(1, 9) - 1).unwrap_or(0);
        Self::RetryAfter {
            after: Duration::from_secs(1 << exponent).min(Duration::from_secs(300)),
            error: error.chain(),
        }
    }
}

/// Queued and running jobs by kind, and the queue's age (how long the oldest due job has waited).
async fn sample_gauges(state: &AppState) {
    let Ok(mut conn) = state.db.conn().await else {
        return;
    };
    if let Ok(counts) = repo::counts(&mut conn).await {
        for kind in JobKind::ALL {
            for job_state in ["queued", "running"] {
                let n = counts
                    .iter()
                    .find(|(k, s, _)| k == kind.as_str() && s == job_state)
                    .map_or(0, |(_, _, n)| *n);
                gauge!("herald_jobs", "kind" => kind.as_str(), "state" => job_state).set(n as f64);
            }
        }
    }
    if let Ok(oldest) = repo::oldest_due(&mut conn).await {
        let age = oldest.map_or(0.0, |at| {
            (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
        });
        gauge!("herald_job_queue_age_seconds").set(age);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_back_off_exponentially_to_a_bound() {
        let err = AppError::Unavailable("database".into());
        let after = |n| match Outcome::transient(&err, n) {
            Outcome::RetryAfter { after, .. } => after,
            other => panic!("{other:?}"),
        };
        assert_eq!(after(1), Duration::from_secs(1));
        assert_eq!(after(2), Duration::from_secs(2));
        assert_eq!(after(9), Duration::from_secs(256));
        assert_eq!(after(50), Duration::from_secs(256));
    }
}
