//! The `herald` command: wiring only. See `herald --help`.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use herald::{
    api::spec::{self, Version},
    app,
    config::Settings,
    db, seed, telemetry,
};

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
    /// Write every version's OpenAPI document to openapi/v{n}/ (or one to stdout), or check the
    /// committed ones.
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
        /// The version --stdout prints.
        #[arg(long = "api-version", value_enum, default_value_t = ApiVersionArg::V1)]
        api_version: ApiVersionArg,
        /// Where v1/ and v2/ (each with openapi.json and openapi.yaml) live.
        #[arg(long, default_value = "openapi")]
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ApiVersionArg {
    V1,
    V2,
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
        api_version,
        dir,
    } = &cli.command
    {
        let version = match api_version {
            ApiVersionArg::V1 => Version::V1,
            ApiVersionArg::V2 => Version::V2,
        };
        return openapi(*check, stdout.then_some(version), *format, dir);
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
    let _telemetry = telemetry::init(&settings)?;
    let server = app::start(settings, app::shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    server.wait().await.map_err(|e| e.to_string())
}

fn openapi(
    check: bool,
    stdout: Option<Version>,
    format: Format,
    dir: &std::path::Path,
) -> ExitCode {
    if let Some(version) = stdout {
        let document = spec::document(version);
        match format {
            Format::Json => print!("{}", spec::json(&document)),
            Format::Yaml => print!("{}", spec::yaml(&document)),
        }
        return ExitCode::SUCCESS;
    }
    let mut files = Vec::new();
    for version in Version::ALL {
        let document = spec::document(version);
        let folder = dir.join(version.name());
        files.push((folder.join("openapi.json"), spec::json(&document)));
        files.push((folder.join("openapi.yaml"), spec::yaml(&document)));
    }
    if check {
        let stale: Vec<String> = files
            .iter()
            .filter(|(path, expected)| {
                std::fs::read_to_string(path).ok().as_deref() != Some(expected.as_str())
            })
            .map(|(path, _)| path.display().to_string())
            .collect();
        if stale.is_empty() {
            println!("openapi: committed documents are up to date");
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "openapi: {} differ from what the code generates; run `herald openapi` (or scripts/gen) and commit",
            stale.join(", ")
        );
        return ExitCode::FAILURE;
    }
    for (path, text) in &files {
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(path, text));
        if let Err(err) = written {
            eprintln!("error: {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
