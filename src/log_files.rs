//! Daily log files named `<prefix>-YYYY-MM-DD.log` (UTC dates). When the date changes, the
//! finished file is gzip-compressed to `<prefix>-YYYY-MM-DD.log.gz` and files older than the
//! retention are deleted, on a background thread so logging never waits for it.
//!
//! Why hand-written: tracing-appender rotates daily but names files `prefix.DATE.suffix` and
//! cannot compress; logroller and file-rotate compress but append the date after the extension.
//! The contract's names (`application-2026-11-23.log`) and per-file retention need their own
//! ~100 lines; gzip itself is flate2's.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
    sync::Arc,
};

use chrono::{NaiveDate, Utc};

/// How many days of files to keep, today's included.
#[derive(Debug, Clone, Copy)]
pub struct Retention(u32);

impl Retention {
    pub fn days(days: u32) -> Self {
        Self(days.max(1))
    }
}

/// Today's date; injectable so tests can cross midnight.
pub type Clock = Arc<dyn Fn() -> NaiveDate + Send + Sync>;

pub struct DailyFile {
    dir: PathBuf,
    prefix: String,
    retention: Retention,
    clock: Clock,
    date: NaiveDate,
    file: BufWriter<File>,
}

impl DailyFile {
    pub fn open(dir: &Path, prefix: &str, retention: Retention) -> io::Result<Self> {
        Self::with_clock(dir, prefix, retention, Arc::new(|| Utc::now().date_naive()))
    }

    pub fn with_clock(
        dir: &Path,
        prefix: &str,
        retention: Retention,
        clock: Clock,
    ) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let date = clock();
        let file = open_append(&path_for(dir, prefix, date))?;
        let mut this = Self {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            retention,
            clock,
            date,
            file,
        };
        // Files left by an earlier run that stopped before midnight.
        this.tidy(false);
        Ok(this)
    }

    fn rotate_if_needed(&mut self) -> io::Result<()> {
        let today = (self.clock)();
        if today == self.date {
            return Ok(());
        }
        self.file.flush()?;
        self.file = open_append(&path_for(&self.dir, &self.prefix, today))?;
        self.date = today;
        self.tidy(true);
        Ok(())
    }

    /// Compresses finished files and deletes expired ones (in the background when `spawn`).
    fn tidy(&mut self, spawn: bool) {
        let (dir, prefix, today, keep) = (
            self.dir.clone(),
            self.prefix.clone(),
            self.date,
            self.retention.0,
        );
        let work = move || {
            if let Err(err) = tidy(&dir, &prefix, today, keep) {
                eprintln!("log file housekeeping failed in {}: {err}", dir.display());
            }
        };
        if spawn {
            std::thread::spawn(work);
        } else {
            work();
        }
    }
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.rotate_if_needed()?;
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn path_for(dir: &Path, prefix: &str, date: NaiveDate) -> PathBuf {
    dir.join(format!("{prefix}-{}.log", date.format("%Y-%m-%d")))
}

fn open_append(path: &Path) -> io::Result<BufWriter<File>> {
    Ok(BufWriter::new(
        OpenOptions::new().create(true).append(true).open(path)?,
    ))
}

/// The date in `<prefix>-YYYY-MM-DD.log[.gz]`, if the name has that shape.
fn date_of(name: &str, prefix: &str) -> Option<(NaiveDate, bool)> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('-')?;
    let (date, compressed) = match rest.strip_suffix(".log.gz") {
        Some(date) => (date, true),
        None => (rest.strip_suffix(".log")?, false),
    };
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .map(|d| (d, compressed))
}

fn tidy(dir: &Path, prefix: &str, today: NaiveDate, keep_days: u32) -> io::Result<()> {
    // One pass at a time, so two passes never compress or delete the same file.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let oldest_kept = today - chrono::Duration::days(i64::from(keep_days) - 1);
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((date, compressed)) = date_of(&name, prefix) else {
            continue;
        };
        let path = entry.path();
        if date < oldest_kept {
            fs::remove_file(&path)?;
        } else if date < today && !compressed {
            gzip(&path)?;
        }
    }
    Ok(())
}

/// `x.log` → `x.log.gz`, then removes `x.log`.
fn gzip(path: &Path) -> io::Result<()> {
    let mut target = path.as_os_str().to_owned();
    target.push(".gz");
    let mut encoder =
        flate2::write::GzEncoder::new(File::create(&target)?, flate2::Compression::default());
    io::copy(&mut File::open(path)?, &mut encoder)?;
    encoder.finish()?.sync_all()?;
    fs::remove_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{
        io::Read,
        sync::atomic::{AtomicI64, Ordering},
    };

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(n)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn rotation_compresses_yesterday_and_drops_what_is_past_retention() {
        let dir = std::env::temp_dir().join(format!("herald-logs-{}", uuid::Uuid::now_v7()));
        let today = Arc::new(AtomicI64::new(0));
        let clock_day = today.clone();
        let clock: Clock = Arc::new(move || day(clock_day.load(Ordering::SeqCst)));
        let mut log =
            DailyFile::with_clock(&dir, "application", Retention::days(3), clock).unwrap();
        for n in 0..5 {
            today.store(n, Ordering::SeqCst);
            writeln!(log, "line of day {n}").unwrap();
            log.flush().unwrap();
        }
        // Compression runs on a thread: wait for it.
        for _ in 0..100 {
            if names(&dir).len() == 3
                && names(&dir).iter().filter(|n| n.ends_with(".gz")).count() == 2
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(
            names(&dir),
            vec![
                "application-2026-01-03.log.gz",
                "application-2026-01-04.log.gz",
                "application-2026-01-05.log",
            ]
        );
        let mut text = String::new();
        flate2::read::GzDecoder::new(
            File::open(dir.join("application-2026-01-04.log.gz")).unwrap(),
        )
        .read_to_string(&mut text)
        .unwrap();
        assert_eq!(text, "line of day 3\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_matching_names_are_touched() {
        assert_eq!(
            date_of("error-2026-01-02.log", "error"),
            Some((day(1), false))
        );
        assert_eq!(
            date_of("error-2026-01-02.log.gz", "error"),
            Some((day(1), true))
        );
        assert_eq!(date_of("application-2026-01-02.log", "error"), None);
        assert_eq!(date_of("error-latest.log", "error"), None);
    }
}
