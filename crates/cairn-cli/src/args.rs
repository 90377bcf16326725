//! The command line, as clap derive definitions.

use clap::{ArgAction, Args as ClapArgs, Parser, Subcommand};
use std::path::PathBuf;

const ADDRESSES: &str = "\
ADDRESSES:
  s3://bucket/key          an object (or prefix) in an S3 bucket
  local://key              the local default store (no config; see --root)
  file:///abs/dir/key      a cairn store in a directory
  memory://key             a store in this process's memory (gone when cairn exits)
  ./path, /abs/path        a plain local file or directory
  -                        stdin or stdout (cp only)";

const EXAMPLES: &str = "\
EXAMPLES:
  cairn cp report.pdf local://reports/         store a file in the local default store
  cairn ls -r local://                         list everything stored locally
  cairn cp -r ./photos s3://my-bucket/backup/  upload a directory tree
  cairn cat s3://my-bucket/notes.txt | less    print an object
  cairn --endpoint http://127.0.0.1:3900 --path-style health s3://my-bucket

EXIT CODES:
  0 success, 1 failure, 2 usage error, or some items of a bulk command failed, or some objects
  were copied unverified (no SHA-256 recorded: written by another tool)";

/// cairn: one storage tool for local disk, memory and any S3 endpoint.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, after_help = format!("{ADDRESSES}\n\n{EXAMPLES}"))]
pub struct Args {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes; store settings go through `cairn::Config::set`.
#[derive(Debug, ClapArgs)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Print results as one JSON object per line.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only results (ls, cat, stat, ...) and errors: no per-item lines, summaries,
    /// warnings or progress.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Progress of long commands: bars on a terminal, else a line every
    /// --progress-interval on stderr (auto); or always bars, lines, json lines, or none.
    #[arg(long, global = true, value_name = "MODE", default_value = "auto")]
    pub progress: crate::progress::ProgressMode,
    /// How often timed progress lines print, e.g. 10s or 500ms.
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s")]
    pub progress_interval: humantime::Duration,
    /// Log what cairn does to stderr (-vv for more); RUST_LOG works too.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// S3 endpoint URL, e.g. http://127.0.0.1:9000.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// S3 region.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// AWS profile for credentials.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Path-style S3 addressing (MinIO, Garage, Ceph, moto).
    #[arg(long, global = true)]
    pub path_style: bool,
    /// Per-request timeout, e.g. 30s or 500ms.
    #[arg(long, global = true, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Most retries of a transient failure.
    #[arg(long, global = true, value_name = "N")]
    pub max_retries: Option<String>,
    /// Config file (TOML) instead of ~/.config/cairn/config.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Root directory of the local default store (local://); default $CAIRN_ROOT or
    /// ~/.local/share/cairn.
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// At exit, write the run's metrics (requests, bytes, errors, retries, latency) to FILE in
    /// the Prometheus text format, e.g. for node_exporter's textfile collector.
    #[arg(long, global = true, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Any store option as KEY=VALUE (repeatable), e.g. -o pool_size=32.
    #[arg(short = 'o', long = "option", global = true, value_name = "KEY=VALUE")]
    pub options: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy files and objects: local file <-> store <-> store, or a whole tree with -r.
    #[command(after_help = CP_EXAMPLES)]
    Cp(CpArgs),
    /// List objects (one level, with PRE lines for sub-prefixes; -r for everything below).
    #[command(after_help = LS_EXAMPLES)]
    Ls(LsArgs),
    /// Print an object to stdout.
    #[command(after_help = CAT_EXAMPLES)]
    Cat(CatArgs),
    /// Show an object's size, ETag, last-modified time, content type and metadata.
    #[command(after_help = STAT_EXAMPLES)]
    Stat(StatArgs),
    /// Delete an object, or everything under a prefix with -r.
    #[command(after_help = RM_EXAMPLES)]
    Rm(RmArgs),
    /// Make a bucket (or a local store directory).
    #[command(after_help = MB_EXAMPLES)]
    Mb(MbArgs),
    /// Remove an empty bucket (or local store directory); --force empties it first.
    #[command(after_help = RB_EXAMPLES)]
    Rb(RbArgs),
    /// Check that a store is reachable, authenticated and writable.
    #[command(after_help = HEALTH_EXAMPLES)]
    Health(HealthArgs),
    /// Check stored objects against their recorded SHA-256: ok, corrupt or unverifiable.
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),
    /// Make a destination hold what a source holds: dir <-> store <-> store.
    #[command(after_help = SYNC_EXAMPLES)]
    Sync(SyncArgs),
    /// Save, list, fetch, verify and prune named documents (snapshots, reports) in a store.
    #[command(after_help = ARCHIVE_EXAMPLES)]
    Archive(ArchiveArgs),
    /// Measure a store: put/get/list/delete rates and latencies per object size.
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(BenchArgs),
    /// Administer an S3 bucket: create, info, versioning, encryption, lifecycle, ACL, policy.
    #[command(after_help = BUCKET_EXAMPLES)]
    Bucket(BucketArgs),
    /// Apply a preset of bucket settings (versioning, encryption, lifecycle), idempotently.
    #[command(after_help = SETUP_EXAMPLES)]
    Setup(SetupArgs),
    /// List object versions (with delete markers) or restore an old version.
    #[command(after_help = VERSIONS_EXAMPLES)]
    Versions(VersionsArgs),
    /// Print a presigned URL for GET, PUT or HEAD of one object, to stdout.
    #[command(after_help = PRESIGN_EXAMPLES)]
    Presign(PresignArgs),
    /// List or abort unfinished multipart uploads (they keep billing until aborted).
    #[command(after_help = MULTIPART_EXAMPLES)]
    Multipart(MultipartArgs),
    /// Count objects and bytes under a prefix: in total, by storage class and by prefix.
    #[command(after_help = STATS_EXAMPLES)]
    Stats(StatsArgs),
    /// A tiered store's hot tier: status, flush, evict, verify.
    #[command(after_help = TIER_EXAMPLES)]
    Tier(TierArgs),
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// Write man pages (cairn.1 and one per command) into a directory.
    #[command(after_help = MAN_EXAMPLES)]
    Man(ManArgs),
    /// Serve stores over the S3 protocol, so unchanged boto3 and aws-cli programs use them.
    #[cfg(feature = "serve")]
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
}

const COMPLETIONS_EXAMPLES: &str = "\
EXAMPLES:
  cairn completions bash > ~/.local/share/bash-completion/completions/cairn
  cairn completions zsh > \"${fpath[1]}/_cairn\"
  cairn completions fish > ~/.config/fish/completions/cairn.fish
  cairn completions powershell >> $PROFILE";

#[derive(Debug, ClapArgs)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: clap_complete::Shell,
}

const MAN_EXAMPLES: &str = "\
EXAMPLES:
  cairn man ~/.local/share/man/man1 && man cairn-sync
  sudo cairn man /usr/local/share/man/man1";

#[derive(Debug, ClapArgs)]
pub struct ManArgs {
    /// The directory to write into (created if missing).
    pub dir: PathBuf,
}

#[cfg(feature = "serve")]
const SERVE_EXAMPLES: &str = "\
BUCKETS:
  With --root DIR (the global flag), every top-level directory of DIR is a bucket on the
  local store, and CreateBucket/DeleteBucket make and remove them. --bucket NAME=URL maps a
  bucket to any cairn URL: layered stacks (compression, encryption) and s3:// pass-through.
  With neither, the local default store's top-level directories are the buckets.

EXAMPLES:
  export CAIRN_SERVE_ACCESS_KEY=dev CAIRN_SERVE_SECRET_KEY=dev-secret
  cairn --root /srv/data serve                      directories of /srv/data as buckets
  cairn serve --bucket logs='file:///srv/logs?compression=zstd&encryption_key=file:/etc/k'
  cairn serve --bucket mirror='s3://real-bucket/prefix' --listen 127.0.0.1:9100
  cairn serve --anonymous --listen 127.0.0.1:0      unsigned requests, any free port
  cairn serve --serve-config serve.toml             buckets, listen address, limits from TOML
  cairn serve --listen 0.0.0.0:9443 --tls-cert cert.pem --tls-key key.pem
  cairn serve --metrics 127.0.0.1:9464              Prometheus text at /metrics

  Then, in Python:  boto3.client('s3', endpoint_url='http://127.0.0.1:9010',
                        aws_access_key_id='dev', aws_secret_access_key='dev-secret')

SHUTDOWN:
  SIGTERM or Ctrl-C: stops accepting, lets requests in flight finish (up to --grace), keeps
  open multipart uploads (they live under the state directory) for the next start.";

#[cfg(feature = "serve")]
#[derive(Debug, ClapArgs)]
pub struct ServeArgs {
    /// Map bucket NAME to a cairn store URL (repeatable).
    #[arg(long = "bucket", value_name = "NAME=URL")]
    pub buckets: Vec<String>,
    /// TOML file with the same settings: `listen`, `root`, `state_dir`, `[buckets]` NAME = URL.
    #[arg(long, value_name = "FILE")]
    pub serve_config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:9010]. Anything but loopback must be asked
    /// for here; without TLS a warning is printed.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Access key id clients sign with.
    #[arg(long, env = "CAIRN_SERVE_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<String>,
    /// Secret key clients sign with (prefer the env variable: argv is visible to others).
    #[arg(long, env = "CAIRN_SERVE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Accept unsigned requests (signed ones are still checked when keys are given).
    #[arg(long)]
    pub anonymous: bool,
    /// PEM certificate chain for TLS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (with --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Where open multipart uploads are kept [default: ROOT/.cairn/serve].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Requests in flight at once; more are answered 503 SlowDown.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_requests: usize,
    /// Requests in flight on one connection (HTTP/2); more are answered 503 SlowDown.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_requests_per_connection: usize,
    /// Memory for request bodies and part buffers across all requests, e.g. 256M.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_any_size)]
    pub memory_limit: u64,
    /// Seconds requests in flight may take to finish after SIGTERM.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub grace: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics: requests by method and status, and
    /// the stores' requests, bytes, errors and latency.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

#[cfg(feature = "serve")]
fn parse_any_size(s: &str) -> Result<u64, String> {
    parse_size(s).ok_or_else(|| format!("{s:?} is not a size; write e.g. 256M or 1G"))
}

const BUCKET_EXAMPLES: &str = "\
EXAMPLES:
  cairn bucket create s3://reports --object-lock
  cairn bucket info s3://reports --json
  cairn bucket versioning s3://reports on            (on | off | status)
  cairn bucket encryption set s3://reports aes256    (aes256 | aws:kms --kms-key ID | off)
  cairn bucket lifecycle set s3://reports rules.toml   or   --preset analysis
  cairn bucket acl s3://race-data public-read
  cairn bucket policy set s3://race-data policy.json

A lifecycle file holds [[rule]] tables (TOML) or {\"rules\": [...]} (JSON), each with id,
prefix, expiration_days, transitions = [{ days, storage_class }], noncurrent_expiration_days
and abort_incomplete_multipart_days. Settings are read back after they are set: a rule the
server dropped is an error, never a success. A server that lacks a setting (Garage: versioning,
encryption, ACLs, policies, lifecycle transitions) is named before anything changes.";

const SETUP_EXAMPLES: &str = "\
EXAMPLES:
  cairn setup s3://analysis --preset analysis --dry-run   show the plan
  cairn setup s3://analysis --preset analysis             SSE, versioning, 30/90/365 lifecycle
  cairn setup s3://scratch --preset scratch --skip-unsupported

Presets live in crates/cairn/presets/buckets.toml: analysis, archive, scratch. Running it again
changes nothing and says so.";

const VERSIONS_EXAMPLES: &str = "\
EXAMPLES:
  cairn versions ls s3://reports/2026/
  cairn versions restore s3://reports/q3.json 3HL4kqtJlcpXroDTDmjVBH40Nrjfkd
  cairn cat --version-id 3HL4kqtJlcpX... s3://reports/q3.json
  cairn rm --version-id 3HL4kqtJlcpX... s3://reports/q3.json     deletes that version for good";

const PRESIGN_EXAMPLES: &str = "\
EXAMPLES:
  cairn presign s3://bucket/report.pdf                       GET, valid 15 minutes
  cairn presign --method put --expires 1h s3://bucket/upload.bin
  curl -T file.bin \"$(cairn presign --method put s3://bucket/file.bin)\"

Anyone holding the URL has the access until it expires (at most 7 days). Stores that compress
or encrypt refuse: the URL would bypass cairn.";

const MULTIPART_EXAMPLES: &str = "\
EXAMPLES:
  cairn multipart ls s3://bucket/
  cairn multipart abort --older-than 1d --dry-run s3://bucket/
  cairn multipart abort --older-than 0s s3://bucket/tmp/";

const STATS_EXAMPLES: &str = "\
EXAMPLES:
  cairn stats s3://analysis/analysis/ --depth 2     per year and month
  cairn stats local:// --json

Sizes are bytes as stored (after compression and encryption): what the provider bills.";

#[derive(Debug, ClapArgs)]
pub struct BucketArgs {
    #[command(subcommand)]
    pub command: BucketCommand,
}

#[derive(Debug, Subcommand)]
pub enum BucketCommand {
    /// Create a bucket in the configured region.
    Create {
        /// s3://BUCKET
        url: String,
        /// Enable S3 Object Lock (turns on versioning; cannot be turned off).
        #[arg(long)]
        object_lock: bool,
    },
    /// Show region, provider, versioning, encryption, lifecycle and what the server lacks.
    Info {
        /// s3://BUCKET
        url: String,
    },
    /// Remove a bucket; --force deletes every object and version first.
    Rm {
        /// s3://BUCKET
        url: String,
        /// Empty it first.
        #[arg(long)]
        force: bool,
    },
    /// Turn versioning on or off (suspend), or show its status.
    Versioning {
        /// s3://BUCKET
        url: String,
        /// on, off or status.
        #[arg(value_parser = ["on", "off", "status"], default_value = "status")]
        state: String,
    },
    /// Default server-side encryption.
    Encryption {
        #[command(subcommand)]
        command: EncryptionCommand,
    },
    /// Lifecycle rules.
    Lifecycle {
        #[command(subcommand)]
        command: LifecycleCommand,
    },
    /// Apply a canned ACL to the bucket (private, public-read, ...), or show its grants.
    Acl {
        /// s3://BUCKET
        url: String,
        /// The canned ACL; none to show the grants.
        canned: Option<String>,
    },
    /// The bucket policy.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum EncryptionCommand {
    /// Set it: aes256, aws:kms (with --kms-key) or off.
    Set {
        /// s3://BUCKET
        url: String,
        /// aes256, aws:kms or off.
        kind: String,
        /// KMS key id or ARN for aws:kms.
        #[arg(long, value_name = "ID")]
        kms_key: Option<String>,
    },
    /// Show it.
    Get {
        /// s3://BUCKET
        url: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum LifecycleCommand {
    /// Replace the rules with those of a TOML/JSON file or a preset.
    Set {
        /// s3://BUCKET
        url: String,
        /// The rules file.
        #[arg(required_unless_present = "preset", conflicts_with = "preset")]
        file: Option<PathBuf>,
        /// The lifecycle of a preset (see `cairn setup --help`).
        #[arg(long)]
        preset: Option<String>,
    },
    /// Show the rules.
    Get {
        /// s3://BUCKET
        url: String,
    },
    /// Remove every rule.
    Rm {
        /// s3://BUCKET
        url: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show it.
    Get {
        /// s3://BUCKET
        url: String,
    },
    /// Replace it with a JSON file.
    Set {
        /// s3://BUCKET
        url: String,
        /// The policy document (JSON).
        file: PathBuf,
    },
    /// Remove it.
    Rm {
        /// s3://BUCKET
        url: String,
    },
}

#[derive(Debug, ClapArgs)]
pub struct SetupArgs {
    /// s3://BUCKET
    pub url: String,
    /// The preset to apply.
    #[arg(long)]
    pub preset: String,
    /// Show what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply what this server can take and leave the rest (named in the output).
    #[arg(long)]
    pub skip_unsupported: bool,
}

#[derive(Debug, ClapArgs)]
pub struct VersionsArgs {
    #[command(subcommand)]
    pub command: VersionsCommand,
}

#[derive(Debug, Subcommand)]
pub enum VersionsCommand {
    /// List every version and delete marker under a prefix, newest first per key.
    Ls {
        /// s3://BUCKET/PREFIX
        url: String,
    },
    /// Make an old version the current one (a server-side copy; the old one stays).
    Restore {
        /// s3://BUCKET/KEY
        url: String,
        /// The version id (from `cairn versions ls`).
        version: String,
    },
}

#[derive(Debug, ClapArgs)]
pub struct PresignArgs {
    /// s3://BUCKET/KEY
    pub url: String,
    /// GET, PUT or HEAD.
    #[arg(long, default_value = "GET", value_parser = ["GET", "PUT", "HEAD", "get", "put", "head"])]
    pub method: String,
    /// How long the URL is valid: 30s, 15m, 12h, 7d (at most 7 days).
    #[arg(long, default_value = "15m", value_name = "DURATION")]
    pub expires: String,
}

#[derive(Debug, ClapArgs)]
pub struct MultipartArgs {
    #[command(subcommand)]
    pub command: MultipartCommand,
}

#[derive(Debug, Subcommand)]
pub enum MultipartCommand {
    /// List unfinished uploads: key, age, parts and bytes so far.
    Ls {
        /// s3://BUCKET[/PREFIX]
        url: String,
    },
    /// Abort unfinished uploads started longer ago than --older-than.
    Abort {
        /// s3://BUCKET[/PREFIX]
        url: String,
        /// Only uploads at least this old: 0s, 1h, 1d.
        #[arg(long, value_name = "DURATION")]
        older_than: String,
        /// List what would be aborted; abort nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

const TIER_EXAMPLES: &str = "\
EXAMPLES:
  cairn cp -r ./segments 'tier+s3://ledger/seg/?hot=/var/cache/cairn&mode=write-back'
  cairn tier status 'tier+s3://ledger?hot=/var/cache/cairn'
  cairn tier flush 'tier+s3://ledger?hot=/var/cache/cairn'     wait until cold has every write
  cairn tier evict 'tier+s3://ledger?hot=/var/cache/cairn' seg/old/
  cairn tier verify 'tier+s3://ledger?hot=/var/cache/cairn' --json

A tier+URL puts a local hot directory (hot=) in front of the store at URL. Reads fill it; in
write-back mode (mode=write-back) writes land there and a journal, and reach the store in the
background. Every command that writes through a write-back tier flushes it before it exits;
writes a crash left behind are replayed by the next open. Options: hot_max, hot_max_entries,
ttl, immutable, dirty_max, demote_after, pin, flush_concurrency, flush_delay (see the
README).
One process owns a hot directory at a time.";

#[derive(Debug, ClapArgs)]
pub struct TierArgs {
    #[command(subcommand)]
    pub command: TierCommand,
}

#[derive(Debug, Subcommand)]
pub enum TierCommand {
    /// Hot bytes and objects, dirty bytes, flush lag, hits, misses and the hit rate.
    Status {
        /// tier+URL?hot=DIR
        url: String,
    },
    /// Upload every write still owed to the cold store; returns when nothing is dirty.
    Flush {
        /// tier+URL?hot=DIR
        url: String,
    },
    /// Drop the clean hot copies under a prefix (the cold store keeps them).
    Evict {
        /// tier+URL?hot=DIR
        url: String,
        /// Only keys under this prefix of the store (default: all).
        prefix: Option<String>,
    },
    /// Compare the clean hot copies under a prefix with the cold store; exit 2 if any differ.
    Verify {
        /// tier+URL?hot=DIR
        url: String,
        /// Only keys under this prefix of the store (default: all).
        prefix: Option<String>,
    },
}

#[derive(Debug, ClapArgs)]
pub struct StatsArgs {
    /// A store URL or path, optionally with a prefix.
    pub url: String,
    /// Break the totals down by the first N levels of the key below the prefix.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub depth: usize,
}

const BENCH_EXAMPLES: &str = "\
EXAMPLES:
  cairn bench memory://                                   the in-process baseline
  cairn bench s3://bucket --sizes 4K,1M --count 50 --large 64M --report run.json
  cairn bench local:// --baseline run.json --regress-pct 10     fail on a slowdown
  cairn bench s3://bucket --baseline archive:ci-s3 --archive ci-s3
  cairn bench history archive:ci-s3 --plot trend.svg     every archived run, charted

A metric worse than the baseline by more than --regress-pct percent (ops/s, MB/s down or p99
latency up) lists the regressions and exits 1. `archive:NAME` is the newest report saved with
--archive NAME in the --archive-store (default local://archive); saving there is best effort.";

#[derive(Debug, ClapArgs)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// The store to measure (objects go under a temporary prefix, removed afterwards).
    #[arg(required = true)]
    pub url: Option<String>,
    /// Object sizes, comma-separated, with K/M/G suffixes (powers of 1024).
    #[arg(long, value_name = "LIST", default_value = "1K,10K,100K,1M")]
    pub sizes: String,
    /// Objects per size.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub count: usize,
    /// Operations in flight at once.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 16)]
    pub concurrency: usize,
    /// Size of one large transfer through the multipart engine; 0 skips it.
    #[arg(long, value_name = "SIZE", default_value = "256M")]
    pub large: String,
    /// Write the versioned JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,
    /// Write the report as a Markdown table to FILE.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<std::path::PathBuf>,
    /// Compare with a earlier report: a JSON file, or archive:NAME.
    #[arg(long, value_name = "FILE|archive:NAME")]
    pub baseline: Option<String>,
    /// Percent worse than the baseline that counts as a regression.
    #[arg(long, value_name = "PCT", default_value_t = 15.0)]
    pub regress_pct: f64,
    /// Save the report in the archive under NAME (kind `bench`), best effort.
    #[arg(long, value_name = "NAME")]
    pub archive: Option<String>,
    /// The archive for --archive and archive:NAME baselines.
    #[arg(long, value_name = "URL", default_value = "local://archive")]
    pub archive_store: String,
    /// The commit measured, recorded in the report (default: $CAIRN_COMMIT, $GITHUB_SHA,
    /// $CI_COMMIT_SHA, or `git rev-parse --short HEAD` in the current directory).
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Every report of a series over time: a table, regressions, and charts.
    #[command(after_help = BENCH_HISTORY_EXAMPLES)]
    History(BenchHistoryArgs),
}

const BENCH_HISTORY_EXAMPLES: &str = "\
EXAMPLES:
  cairn bench history archive:ci-s3                  reports saved with bench --archive ci-s3
  cairn bench history ./reports --plot history.svg   a directory of report files, charted
  cairn bench history s3://bucket/bench/ --html history.html --window 10
  cairn bench history archive:ci-s3 --json | jq '.rows[] | select(.regression)'
  cairn bench history ./reports --op put,get --metric ops_per_sec,p99_ms --plot h.png

Each (op, size, metric) is a series: ops/s, MB/s, p50 and p99 latency. A value worse than the
previous report's by more than --regress-pct percent is a regression (the rule of
bench --baseline; p50 is shown, not judged). Exit code 1 if the newest report has one, 2 if a
report could not be read; files that are not reports, or have a schema this cairn does not
read, are named and left out. Schemas 1 and 2 load (2 added the commit).";

#[derive(Debug, ClapArgs)]
pub struct BenchHistoryArgs {
    /// archive:NAME (reports saved with bench --archive NAME), a store prefix, or a directory
    /// of report files (every *.json below it).
    pub source: String,
    /// Percent worse than the previous report that counts as a regression.
    #[arg(long, value_name = "PCT", default_value_t = 15.0)]
    pub regress_pct: f64,
    /// The rolling median covers the last N reports.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub window: u16,
    /// Only these operations (comma-separated: put,get,large_download, ...).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub op: Vec<String>,
    /// Only these metrics (comma-separated: ops_per_sec, mb_per_sec, p50_ms, p99_ms).
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = ["ops_per_sec", "mb_per_sec", "p50_ms", "p99_ms"])]
    pub metric: Vec<String>,
    /// Draw one chart per series into FILE (.svg or .png), regressions marked.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Write one self-contained HTML page with the charts and the table.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// The archive that archive:NAME reads.
    #[arg(long, value_name = "URL", default_value = "local://archive")]
    pub archive_store: String,
}
const ARCHIVE_EXAMPLES: &str = "\
EXAMPLES:
  cairn archive save agent-7 snapshot state.json --meta run=42
  cairn archive --store s3://bucket/archive save repo-x bench report.json --best-effort
  cairn archive ls --name agent-7 --since 2026-01-01T00:00:00Z
  cairn archive latest agent-7 --kind snapshot
  cairn archive get agent-7/2026/11/20261123T083000.123Z-snapshot.json --output state.json
  cairn archive prune --keep 10 --dry-run

Documents are stored as {prefix}/{name}/{yyyy}/{mm}/{timestamp}-{kind}.{ext} (see --template)
in the store given by --store (default local://archive; its path is the archive's prefix).";

#[derive(Debug, ClapArgs)]
pub struct ArchiveArgs {
    /// The archive's store and prefix, e.g. s3://bucket/archive or file:///srv/archive.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        default_value = "local://archive"
    )]
    pub store: String,
    /// A key prefix under the store URL's own path.
    #[arg(long, global = true, value_name = "P")]
    pub prefix: Option<String>,
    /// Key template, e.g. 'benchmarks/{name}/{timestamp}-{kind}.{ext}'.
    #[arg(long, global = true, value_name = "T")]
    pub template: Option<String>,
    #[command(subcommand)]
    pub command: ArchiveCommand,
}

#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// Save a document (a file, or - for stdin) under NAME and KIND.
    #[command(
        after_help = "EXAMPLES:\n  cairn archive save agent-7 snapshot state.json --meta run=42\n  \
        make-report | cairn archive save repo-x report - --content-type application/json --best-effort"
    )]
    Save(ArchiveSaveArgs),
    /// List documents, newest first.
    #[command(after_help = "EXAMPLES:\n  cairn archive ls --name agent-7\n  \
        cairn archive ls --kind bench --since 2026-11-01T00:00:00Z --json")]
    Ls(ArchiveLsArgs),
    /// Show the newest document of NAME.
    #[command(after_help = "EXAMPLES:\n  cairn archive latest agent-7\n  \
        cairn archive get \"$(cairn archive latest agent-7 --kind snapshot)\" --output state.json")]
    Latest(ArchiveLatestArgs),
    /// Fetch a document by key to a file or stdout.
    #[command(
        after_help = "EXAMPLES:\n  cairn archive get agent-7/2026/11/20261123T083000.123Z-snapshot.json --output s.json"
    )]
    Get(ArchiveGetArgs),
    /// Check documents against their recorded SHA-256 (exit 2 if any is corrupt).
    #[command(after_help = "EXAMPLES:\n  cairn archive verify --name agent-7")]
    Verify(ArchiveVerifyArgs),
    /// Delete old documents, per name: keep the newest N and/or drop those older than a duration.
    #[command(after_help = "EXAMPLES:\n  cairn archive prune --keep 10\n  \
        cairn archive prune --older-than 30d --name agent-7 --dry-run")]
    Prune(ArchivePruneArgs),
}

#[derive(Debug, ClapArgs)]
pub struct ArchiveSaveArgs {
    /// The archive name (e.g. an agent or repository id).
    pub name: String,
    /// The kind of document (snapshot, report, bench, ...).
    pub kind: String,
    /// The file to save, or - for stdin.
    pub file: String,
    /// User metadata (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Content type (default: from the file's extension).
    #[arg(long, value_name = "MIME")]
    pub content_type: Option<String>,
    /// Never fail: report a failure as a warning on stderr and exit 0.
    #[arg(long)]
    pub best_effort: bool,
}

#[derive(Debug, ClapArgs)]
pub struct ArchiveLsArgs {
    /// Only this name.
    #[arg(long)]
    pub name: Option<String>,
    /// Only this kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// Only documents saved at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only documents saved before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only documents with this metadata (repeatable; one request per document).
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
}

#[derive(Debug, ClapArgs)]
pub struct ArchiveLatestArgs {
    /// The archive name.
    pub name: String,
    /// Only this kind.
    #[arg(long)]
    pub kind: Option<String>,
}

#[derive(Debug, ClapArgs)]
pub struct ArchiveGetArgs {
    /// The document's key, as `archive ls` shows it.
    pub key: String,
    /// Write to this file (atomically) or - for stdout (the default). (`-o` is the global
    /// store option flag.)
    #[arg(long, value_name = "FILE")]
    pub output: Option<String>,
}

#[derive(Debug, ClapArgs)]
pub struct ArchiveVerifyArgs {
    /// Only this name.
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, ClapArgs)]
#[command(group(clap::ArgGroup::new("policy").required(true).multiple(true).args(["keep", "older_than"])))]
pub struct ArchivePruneArgs {
    /// Keep the newest N documents of each name.
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// Delete documents older than this, e.g. 30d or 12h (with --keep: both must hold).
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<String>,
    /// Only this name.
    #[arg(long)]
    pub name: Option<String>,
    /// Show what would be deleted; delete nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}
const SYNC_EXAMPLES: &str = "\
EXAMPLES:
  cairn sync ./site s3://bucket/www/            upload what changed
  cairn sync s3://bucket/www/ ./copy --delete   mirror, deleting what the source lacks
  cairn sync --dry-run --delete ./a local://a/  show what would change
  cairn sync --checksum --include '*.csv' ./data s3://bucket/data/
  cairn sync --exclude 'tmp/**' --acl public-read ./site s3://bucket/www/

Objects are the same when sizes match and the destination is not older (to the second);
--checksum compares SHA-256s instead. Globs match keys relative to SRC/DST (`*` crosses `/`);
excluded keys are never deleted. Failed items do not stop the rest: exit code 2 at the end.
Objects with no recorded SHA-256 (written by another tool) are copied but named as unverified,
also exit code 2; -o checksum=false on the source checks (and names) nothing.

On a terminal: a progress bar and one line per change. In a pipe or CI log: a progress line
every 10s on stderr (--progress-interval, --progress=json for JSON lines) and the summary;
--list brings back the per-object lines. -q prints only errors.";

/// How large objects move: shared by `cp` and `sync`.
#[derive(Debug, Clone, ClapArgs)]
pub struct TransferFlags {
    /// Bytes per multipart part and per ranged GET, e.g. 16M (5M to 5G; raised if an object
    /// needs more than 10,000 parts).
    #[arg(long, value_name = "SIZE", default_value = "8M", value_parser = parse_part_size)]
    pub part_size: u64,
    /// Parts of one large object in flight at once. Memory stays within
    /// part size × parts (64 MiB by default), whatever the object or tree size.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parts: u16,
    /// Do not fsync downloaded files. Files are still replaced atomically (temp file + rename),
    /// as cp(1) and the aws cli do; a power loss may then lose recent downloads.
    #[arg(long)]
    pub no_fsync: bool,
}

impl TransferFlags {
    /// Applies the flags to transfer options.
    pub fn apply(&self, opts: &mut cairn::transfer::TransferOptions) {
        opts.part_size = self.part_size as usize;
        opts.concurrency = self.parts.into();
        opts.durable = !self.no_fsync;
    }
}

/// `1K` → 1024, `2M` → 2 MiB, `512` → 512.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&s[..i], 1 << 20),
        (i, 'G' | 'g') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn parse_part_size(s: &str) -> Result<u64, String> {
    let n = parse_size(s).ok_or_else(|| format!("{s:?} is not a size; write e.g. 8M or 64M"))?;
    if !(5 << 20..=5 << 30).contains(&n) {
        return Err(format!(
            "{s} is outside S3's part sizes; pick between 5M and 5G"
        ));
    }
    Ok(n)
}

#[derive(Debug, ClapArgs)]
pub struct SyncArgs {
    /// The source: a directory, or a store URL with an optional prefix.
    pub src: String,
    /// The destination: a directory (created if missing), or a store URL with an optional prefix.
    pub dst: String,
    /// Delete destination objects that the source does not have.
    #[arg(long)]
    pub delete: bool,
    /// Show what would be done; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Compare by SHA-256 instead of size and time.
    #[arg(long)]
    pub checksum: bool,
    /// Only keys matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out keys matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Canned ACL for uploaded objects, e.g. public-read (S3 only).
    #[arg(long, value_name = "ACL")]
    pub acl: Option<String>,
    /// Storage class for uploaded objects, e.g. STANDARD_IA (S3 only).
    #[arg(long, value_name = "CLASS")]
    pub storage_class: Option<String>,
    /// Objects copied at once.
    #[arg(short = 'j', long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// One line per object changed (upload KEY, delete KEY), also in a pipe (as -v does).
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub transfer: TransferFlags,
}
const VERIFY_EXAMPLES: &str = "\
EXAMPLES:
  cairn verify local://reports/run.json        one object
  cairn verify local://reports/                everything under reports/
  cairn verify --json s3://bucket/backup/ | jq 'select(.status != \"ok\")'

Objects are read as stored (no decryption key needed). Exit code 2 if any object is corrupt
or could not be read, and for unverifiable objects (no recorded digest): each is named in the
summary and counted in --json.";

#[derive(Debug, ClapArgs)]
pub struct VerifyArgs {
    /// An object, or a prefix ending in `/` (or a bare store) to verify everything below.
    pub url: String,
}

const CP_EXAMPLES: &str = "\
EXAMPLES:
  cairn cp notes.txt local://docs/             into a prefix (keeps the name)
  cairn cp notes.txt s3://bucket/docs/n.txt    to a new name
  cairn cp s3://bucket/docs/n.txt .            download into the current directory
  cairn cp -r ./site s3://bucket/www/          upload a tree to s3://bucket/www/site/...
  cairn cp -r s3://bucket/www/site ./copy      download a tree into ./copy/...
  tar c dir | cairn cp - s3://bucket/dir.tar   upload from stdin
  cairn cp s3://bucket/dir.tar - | tar x       download to stdout

A destination ending in `/`, an existing directory or a bare store (local://, s3://bucket)
means \"into\": the source's name is appended.

An object with no recorded SHA-256 (written by another tool) is copied but named as unverified,
and the exit code is 2; -o checksum=false copies without checking (nor naming) anything.";

const LS_EXAMPLES: &str = "\
EXAMPLES:
  cairn ls                                     the top level of the local default store
  cairn ls -r local://reports/                 everything under reports/
  cairn ls -l s3://bucket/logs/2026-           sizes, dates and ETags of keys starting so
  cairn ls -r --json s3://bucket | jq .key     one JSON object per line";

const CAT_EXAMPLES: &str = "\
EXAMPLES:
  cairn cat local://reports/run.json
  cairn cat s3://bucket/big.log | head

An object with no recorded SHA-256 (written by another tool) is printed unchecked: a line on
stderr names it and the exit code is 2 (-o checksum=false: no check, no warning).";

const STAT_EXAMPLES: &str = "\
EXAMPLES:
  cairn stat s3://bucket/photo.jpg
  cairn stat --json local://reports/run.json";

const RM_EXAMPLES: &str = "\
EXAMPLES:
  cairn rm local://reports/old.json            one object
  cairn rm -r s3://bucket/tmp/                 everything under tmp/";

const MB_EXAMPLES: &str = "\
EXAMPLES:
  cairn mb s3://new-bucket
  cairn mb file:///srv/cairn-store";

const RB_EXAMPLES: &str = "\
EXAMPLES:
  cairn rb s3://old-bucket
  cairn rb --force file:///srv/cairn-store     delete its objects first";

const HEALTH_EXAMPLES: &str = "\
EXAMPLES:
  cairn health                                 the local default store
  cairn --endpoint http://127.0.0.1:3900 --path-style health s3://bucket";

#[derive(Debug, ClapArgs)]
pub struct CpArgs {
    /// What to copy: a path, a URL, or - for stdin.
    pub src: String,
    /// Where to: a path, a URL, or - for stdout.
    pub dst: String,
    /// Copy a directory or prefix and everything below it.
    #[arg(short, long)]
    pub recursive: bool,
    /// Content type to store with uploaded objects.
    #[arg(long, value_name = "MIME")]
    pub content_type: Option<String>,
    /// User metadata to store with uploaded objects (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Files copied at once with -r.
    #[arg(short = 'j', long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Copy this version of the source object instead of the current one.
    #[arg(long, value_name = "ID", conflicts_with = "recursive")]
    pub version_id: Option<String>,
    #[command(flatten)]
    pub transfer: TransferFlags,
}

#[derive(Debug, ClapArgs)]
pub struct LsArgs {
    /// A store URL or path, optionally with a key prefix (default: local://).
    pub url: Option<String>,
    /// List everything below, not one level.
    #[arg(short, long)]
    pub recursive: bool,
    /// Show date, size and ETag.
    #[arg(short, long)]
    pub long: bool,
}

#[derive(Debug, ClapArgs)]
pub struct CatArgs {
    /// The object to print.
    pub url: String,
    /// Print this version instead of the current one (see `cairn versions ls`).
    #[arg(long, value_name = "ID")]
    pub version_id: Option<String>,
}

#[derive(Debug, ClapArgs)]
pub struct StatArgs {
    /// The object to describe.
    pub url: String,
}

#[derive(Debug, ClapArgs)]
pub struct RmArgs {
    /// The object (or with -r, the prefix) to delete.
    pub url: String,
    /// Delete everything under the prefix.
    #[arg(short, long, conflicts_with = "version_id")]
    pub recursive: bool,
    /// Delete this version of the object for good (see `cairn versions ls`).
    #[arg(long, value_name = "ID")]
    pub version_id: Option<String>,
}

#[derive(Debug, ClapArgs)]
pub struct MbArgs {
    /// The bucket (s3://name) or local store directory to create.
    pub url: String,
}

#[derive(Debug, ClapArgs)]
pub struct RbArgs {
    /// The bucket (s3://name) or local store directory to remove.
    pub url: String,
    /// Delete every object in it first.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, ClapArgs)]
pub struct HealthArgs {
    /// The store to check (default: local://).
    pub url: Option<String>,
}
