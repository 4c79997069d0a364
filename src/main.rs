//! The `herald` command: wiring only. See `herald --help`.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use herald::{app, config::Settings, db, http::spec, seed, telemetry};

// mimalloc instead of glibc's malloc: a request allocates many small, short-lived buffers from
// two worker threads, where glibc's arenas cost ~10% of a cached read's CPU in profiles and keep
// freed argon2 blocks resident. (scripts/bench's floors use the same allocator.)
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Herald: a code-first OpenAPI REST service (posts, users, airports).
///
/// Configuration comes from environment variables and a `.env` file in the working directory
/// (see `.env.example` for every variable and its default).
#[derive(Parser)]
#[command(name = "herald", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API on $PORT (docs at /docs); applies pending migrations when AUTO_MIGRATE is on.
    Serve,
    /// Apply pending database migrations to $DATABASE_URL and exit.
    Migrate,
    /// Create the tutorial's accounts and posts (idempotent); optionally add many posts.
    Seed {
        /// Also add this many published posts (for benchmarks).
        #[arg(long, default_value_t = 0)]
        posts: u64,
    },
    /// Write the OpenAPI document to openapi/ (or stdout), or check the committed one.
    Openapi {
        /// Exit non-zero if the files in --dir differ from what the code generates.
        #[arg(long)]
        check: bool,
        /// Print to stdout instead of writing files.
        #[arg(long, conflicts_with = "check")]
        stdout: bool,
        /// Format for --stdout.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Where openapi.json and openapi.yaml live.
        #[arg(long, default_value = "openapi")]
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Yaml,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Openapi {
        check,
        stdout,
        format,
        dir,
    } = &cli.command
    {
        return openapi(*check, *stdout, *format, dir);
    }
    // A missing .env is fine; a malformed one is reported like any bad variable.
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        eprintln!("invalid configuration: .env: {err}");
        return ExitCode::from(2);
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli.command, settings))
}

async fn run(command: Command, settings: Settings) -> ExitCode {
    let result = match command {
        Command::Serve => serve(settings).await,
        Command::Migrate => db::run_migrations(settings.database_url.expose())
            .await
            .map(|n| println!("applied {n} migration(s)"))
            .map_err(|e| e.to_string()),
        Command::Seed { posts } => {
            let database = db::Db::new(
                settings.database_url.expose(),
                2,
                settings.database_acquire_timeout,
            );
            match db::run_migrations(settings.database_url.expose()).await {
                Ok(_) => seed::run(&database, posts).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
        Command::Openapi { .. } => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    let _telemetry = telemetry::init(&settings).map_err(|e| format!("LOG_DIR: {e}"))?;
    let server = app::start(settings, app::shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    server.wait().await.map_err(|e| e.to_string())
}

fn openapi(check: bool, stdout: bool, format: Format, dir: &std::path::Path) -> ExitCode {
    let document = spec::document();
    let files = [
        ("openapi.json", spec::json(&document)),
        ("openapi.yaml", spec::yaml(&document)),
    ];
    if stdout {
        let text = match format {
            Format::Json => &files[0].1,
            Format::Yaml => &files[1].1,
        };
        print!("{text}");
        return ExitCode::SUCCESS;
    }
    if check {
        let mut stale = Vec::new();
        for (name, expected) in &files {
            let path = dir.join(name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(expected.as_str()) {
                stale.push(path.display().to_string());
            }
        }
        if stale.is_empty() {
            println!("openapi: committed spec is up to date");
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "openapi: {} differ from what the code generates; run `herald openapi` (or scripts/gen) and commit",
            stale.join(", ")
        );
        return ExitCode::FAILURE;
    }
    if let Err(err) = std::fs::create_dir_all(dir) {
        eprintln!("error: {}: {err}", dir.display());
        return ExitCode::FAILURE;
    }
    for (name, text) in &files {
        let path = dir.join(name);
        if let Err(err) = std::fs::write(&path, text) {
            eprintln!("error: {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
