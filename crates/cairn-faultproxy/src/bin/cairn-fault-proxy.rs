//! `cairn-fault-proxy --upstream http://127.0.0.1:3900 --rate 0.1`: runs the fault proxy
//! until SIGINT/SIGTERM, prints `listening on http://127.0.0.1:PORT` first and the counts last.

use cairn_faultproxy::{Fault, FaultProxy, Plan, Rule};
use clap::Parser;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "A seeded HTTP fault proxy in front of an S3 server")]
struct Args {
    /// The server to forward to, http://HOST:PORT.
    #[arg(long)]
    upstream: String,
    /// Where to listen (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Seeds every fault choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fault rate per request in all, shared equally by those of --faults that can hit it.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Faults that share --rate (reset, 500, slowdown, unavailable, 429, stall, truncate, flip).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "reset,500,slowdown,unavailable,429,stall,truncate,flip"
    )]
    faults: Vec<Fault>,
    /// A fault with its own rate and methods, FAULT=RATE[@GET,PUT]; repeatable, added to --rate.
    #[arg(long = "fault")]
    rules: Vec<Rule>,
    /// How long a stall holds a request before resetting it, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    stall_ms: u64,
    /// Answer 503 SlowDown to requests beyond this many in flight.
    #[arg(long)]
    slowdown_above: Option<usize>,
    /// Hold every request this long before answering it, in milliseconds (a slow server).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let a = Args::parse();
    let mut plan = if a.rate > 0.0 {
        Plan::uniform(a.seed, a.rate, &a.faults)
    } else {
        Plan {
            seed: a.seed,
            ..Plan::clean()
        }
    };
    plan.rules.extend(a.rules);
    plan.stall = Duration::from_millis(a.stall_ms);
    plan.slowdown_above = a.slowdown_above;
    plan.latency = Duration::from_millis(a.latency_ms);
    let proxy = match FaultProxy::bind(a.listen, &a.upstream, plan).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("listening on {}", proxy.endpoint());
    let _ = std::io::stdout().flush();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("{}", proxy.counts());
    std::process::ExitCode::SUCCESS
}
