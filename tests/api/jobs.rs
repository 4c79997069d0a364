//! The job queue on PostgreSQL: concurrent claimers never hold one job at once, a lapsed lease
//! is taken over, and a worker that lost its claim cannot record an outcome.

use std::{collections::HashSet, time::Duration};

use chrono::Utc;
use herald::jobs::{
    JobKind,
    repo::{self, NewJob},
};

use crate::support::{Options, TestApp};

async fn queue(app: &TestApp, n: usize) {
    let mut conn = app.state.db.conn().await.unwrap();
    for _ in 0..n {
        repo::enqueue(
            &mut conn,
            NewJob {
                // A kind no runner runs here: these apps have JOBS_ENABLED=false.
                kind: JobKind::Export,
                payload: serde_json::json!({}),
                run_at: Utc::now(),
                traceparent: None,
            },
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_concurrent_claimers_share_200_jobs_without_a_duplicate() {
    let app = TestApp::with(Options::default().env("JOBS_ENABLED", "false")).await;
    queue(&app, 200).await;
    let claimers = (0..16).map(|i| {
        let db = app.state.db.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let mut conn = db.conn().await.unwrap();
                let jobs = repo::claim(&mut conn, &format!("w{i}"), Duration::from_secs(60), 7)
                    .await
                    .unwrap();
                if jobs.is_empty() {
                    return mine;
                }
                mine.extend(jobs.into_iter().map(|j| j.id));
            }
        })
    });
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 200, "every job claimed once");
    assert_eq!(distinct.len(), 200, "no job claimed twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lapsed_lease_is_taken_over_and_the_old_worker_cannot_finish_the_job() {
    let app = TestApp::with(Options::default().env("JOBS_ENABLED", "false")).await;
    queue(&app, 1).await;
    let mut conn = app.state.db.conn().await.unwrap();
    let first = repo::claim(&mut conn, "slow", Duration::from_secs(1), 10)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempts, 1);
    // Held: nobody else gets it while the lease runs.
    assert!(
        repo::claim(&mut conn, "other", Duration::from_secs(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        repo::extend_lease(&mut conn, &first[0], "slow", Duration::from_secs(1))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let second = repo::claim(&mut conn, "other", Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(second.len(), 1, "taken over after the lease");
    assert_eq!(second[0].id, first[0].id);
    assert_eq!(second[0].attempts, 2);
    // The first worker's claim is gone: it can neither extend nor finish.
    assert!(
        !repo::extend_lease(&mut conn, &first[0], "slow", Duration::from_secs(1))
            .await
            .unwrap()
    );
    assert!(
        !repo::finish(&mut conn, &first[0], "slow", "succeeded", None, None)
            .await
            .unwrap()
    );
    assert!(
        repo::finish(
            &mut conn,
            &second[0],
            "other",
            "queued",
            Some(Utc::now() + chrono::Duration::hours(1)),
            Some("later")
        )
        .await
        .unwrap()
    );
    // Queued for later: not due now.
    assert!(
        repo::claim(&mut conn, "third", Duration::from_secs(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
}
