//! The `koa-dep` binary.

use clap::Parser;
use koa_dep::cli::{self, Cli, Command, ComponentCmd};
use koa_dep::config::Config;

fn main() {
    koa_dep::app::tune_allocator();
    let cli = Cli::parse();
    let level = match cli.verbose {
        // the demo prints its own table; per-file warnings are in the table
        0 if matches!(cli.command, Command::Demo(_)) => "error",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = || tracing_subscriber::EnvFilter::try_from_env("KOA_DEP_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // the daemon also logs to <log_dir>/koa-dep.log.YYYY-MM-DD (rotated at 0h UT)
    let _guard = match &cli.command {
        Command::Daemon => match Config::load(cli.config.as_deref()) {
            Ok(cfg) => {
                use tracing_subscriber::prelude::*;
                let (file, guard) = tracing_appender::non_blocking(tracing_appender::rolling::daily(cfg.log_dir(), "koa-dep.log"));
                tracing_subscriber::registry()
                    .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter()))
                    .with(
                        tracing_subscriber::fmt::layer()
                            .with_ansi(false)
                            .with_writer(file)
                            .with_filter(tracing_subscriber::EnvFilter::try_from_env("KOA_DEP_LOG").unwrap_or_else(|_| "info".into())),
                    )
                    .init();
                Some(guard)
            }
            Err(_) => None,
        },
        _ => None,
    };
    if _guard.is_none() {
        tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr).init();
    }
    let code = match run(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("koa-dep: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let config = || Config::load(cli.config.as_deref());
    match cli.command {
        Command::Archive(a) => rt.block_on(cli::archive(config()?, a)),
        Command::Demo(d) => rt.block_on(cli::demo(d)),
        Command::Component(ComponentCmd::List { json }) => cli::component_list(&config()?, json),
        Command::Component(ComponentCmd::Run(r)) => rt.block_on(cli::component_run(config()?, r)),
        Command::Component(ComponentCmd::Drp(d)) => cli::component_drp(config()?, d),
        Command::Sample(s) => cli::sample(s),
        Command::Daemon => rt.block_on(cli::daemon(config()?)),
        Command::Reconcile(r) => rt.block_on(cli::reconcile(config()?, r)),
        Command::Report(r) => rt.block_on(cli::report(config()?, r)),
        Command::Ack(a) => rt.block_on(cli::ack(config()?, a)),
        Command::QueueDrp(q) => rt.block_on(cli::queue_drp(config()?, q)),
        Command::Db(c) => rt.block_on(cli::db(config()?, c)),
    }
}
