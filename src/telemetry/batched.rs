//! A log writer that never wakes anyone per line: lines are appended to a shared buffer and a
//! background thread writes the buffer out every 50 ms (sooner once 256 KiB are waiting), with
//! one `write` system call per batch.
//!
//! Why not tracing-appender's `non_blocking`: its worker sleeps on a channel and is woken for
//! the first line of every batch, then flushes — under load that is a context switch and a
//! `write` per request (in profiles of `scripts/bench`, ~12% of a database read's CPU went to
//! task switches). Lines are lost only if the process is killed outright, as with any buffered
//! writer; at most 8 MiB wait in memory, and lines beyond that are dropped and counted.

use std::{
    io::{self, Write},
    sync::{Arc, Condvar, Mutex},
    thread::JoinHandle,
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

const FLUSH_EVERY: Duration = Duration::from_millis(50);
const FLUSH_AT_BYTES: usize = 256 * 1024;
const MAX_WAITING_BYTES: usize = 8 * 1024 * 1024;

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    buffer: Vec<u8>,
    dropped_lines: u64,
    closing: bool,
}

/// The `MakeWriter` handed to a tracing layer.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Flushes what is left and stops the thread when dropped.
pub struct BatchedGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A writer to `sink` and the guard that keeps its thread running.
pub fn batched(mut sink: impl Write + Send + 'static) -> (BatchedWriter, BatchedGuard) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
    });
    let worker = shared.clone();
    let thread = std::thread::Builder::new()
        .name("herald-log-writer".into())
        .spawn(move || {
            let mut batch = Vec::new();
            loop {
                let (closing, dropped) = {
                    let Ok(guard) = worker.state.lock() else { return };
                    let Ok((mut state, _)) = worker
                        .wake
                        .wait_timeout_while(guard, FLUSH_EVERY, |s| !s.closing && s.buffer.len() < FLUSH_AT_BYTES)
                    else {
                        return;
                    };
                    std::mem::swap(&mut batch, &mut state.buffer);
                    (state.closing, std::mem::take(&mut state.dropped_lines))
                };
                if dropped > 0 {
                    let _ = writeln!(
                        batch,
                        "{{\"level\":\"WARN\",\"message\":\"log writer fell behind: {dropped} lines dropped\",\"target\":\"herald::telemetry\"}}"
                    );
                }
                if !batch.is_empty() {
                    // Nowhere to report a failing log sink; the next batch tries again.
                    let _ = sink.write_all(&batch).and_then(|()| sink.flush());
                    batch.clear();
                }
                if closing {
                    return;
                }
            }
        })
        .ok();
    (
        BatchedWriter {
            shared: shared.clone(),
        },
        BatchedGuard { shared, thread },
    )
}

impl Write for BatchedWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let Ok(mut state) = self.shared.state.lock() else {
            return Ok(bytes.len());
        };
        if state.buffer.len() + bytes.len() > MAX_WAITING_BYTES {
            state.dropped_lines += 1;
        } else {
            state.buffer.extend_from_slice(bytes);
            if state.buffer.len() >= FLUSH_AT_BYTES {
                self.shared.wake.notify_one();
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = BatchedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for BatchedGuard {
    fn drop(&mut self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.closing = true;
        }
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::CapturedOutput;

    #[test]
    fn every_line_arrives_in_order_by_the_time_the_guard_drops() {
        let sink = CapturedOutput::default();
        let (writer, guard) = batched(sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        writer.write_all(format!("{t}:{i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        drop(guard);
        let text = sink.text();
        assert_eq!(text.lines().count(), 4000);
        for t in 0..4 {
            let mine: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{t}:")))
                .map(|i| i.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..1000).collect::<Vec<_>>());
        }
    }

    #[test]
    fn lines_are_written_within_the_flush_interval_without_a_wake_up() {
        let sink = CapturedOutput::default();
        let (mut writer, _guard) = batched(sink.clone());
        writer.write_all(b"one line\n").unwrap();
        // Nothing else is written: only the periodic flush can deliver the line. Wait for it
        // (a liveness bound, far above FLUSH_EVERY) rather than sleep a guessed time.
        let started = std::time::Instant::now();
        while sink.text().is_empty() {
            assert!(started.elapsed() < Duration::from_secs(10), "never flushed");
            std::thread::sleep(FLUSH_EVERY / 5);
        }
        assert_eq!(sink.text(), "one line\n");
    }
}
