//! The command line: every subcommand and flag of `kintsugi`, as clap parses them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Kintsugi: an end-to-end encrypted, offline-first space for two partners rebuilding trust.
#[derive(Debug, Parser)]
#[command(name = "kintsugi", version, about, propagate_version = true)]
pub struct Cli {
    /// This device's state folder.
    #[arg(long, global = true, env = "KINTSUGI_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Print exactly one JSON value on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the blind sync server.
    Serve(ServeArgs),
    /// Load generator: starts a server and measures couples syncing live, raw pushes or idle
    /// devices; prints the figures as a table, or one JSON object with --json.
    Bench(BenchArgs),
    /// Create a new space; this device becomes its first partner.
    Init(EnrolArgs),
    /// Make a one-time code for your partner (--partner) or another of your devices (--device).
    Invite(InviteArgs),
    /// Join a space with a code from your partner, or link another of your devices.
    ///
    /// Leave out CODE and paste it when asked, or pipe it in: `kintsugi join --name NAME <
    /// code.txt` reads the first line of stdin. The code names its server; --server overrides. A code opens what was written
    /// before the join (a device-link code your private journal too), nothing after.
    Join {
        #[command(flatten)]
        enrol: EnrolArgs,
        /// The code shown by `kintsugi invite`; read from stdin when left out. Warning: a code
        /// given here is visible to other users of this machine (ps, /proc) and stays in your
        /// shell history, and it opens what was written before the join; prefer stdin.
        code: Option<String>,
    },
    /// The boundaries and expectations you agree on.
    #[command(subcommand)]
    Boundary(BoundaryCommand),
    /// Your private journal.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Journal entries either partner shared.
    #[command(subcommand)]
    Shared(SharedCommand),
    /// Your weekly check-in: trust, honest conversations, closeness, forgiveness.
    Checkin(CheckinArgs),
    /// Couples-therapy sessions.
    #[command(subcommand)]
    Therapy(TherapyCommand),
    /// How each of you is doing over the weeks, against typical recovery ranges.
    Progress {
        /// Also draw the chart to this file (.svg or .png).
        #[arg(long, value_name = "FILE")]
        chart: Option<PathBuf>,
    },
    /// Who changed what and when in a document.
    History {
        /// agreement (the default), journal, checkins or shared
        #[arg(default_value = "agreement")]
        doc: String,
    },
    /// Push your changes and pull your partner's.
    Sync {
        /// Stay connected and sync live until interrupted.
        #[arg(long)]
        watch: bool,
    },
    /// The devices of this space.
    Devices,
    /// Your recovery kit: `show` it once to print or store offline, `use` it on a new device
    /// after losing every device.
    #[command(subcommand)]
    Recovery(RecoveryCommand),
    /// The roster's safety number: compare it with your partner's phone, side by side. With
    /// --confirm, record that they matched; devices added later show as unverified.
    Verify {
        /// Record that this number matched the one on your partner's phone. Asks first.
        #[arg(long)]
        confirm: bool,
        /// Do not ask (for scripts).
        #[arg(long)]
        yes: bool,
    },
    /// Leave the space: your private documents are erased from the server and all your devices
    /// revoked; when the last partner leaves, the whole space is erased. Asks first.
    Leave {
        /// Do not ask (for scripts).
        #[arg(long)]
        yes: bool,
    },
    /// Operate a server: stats, backup, restore.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Revoke one of your devices (a lost phone) and every device it linked: they can no
    /// longer sync. A device cannot revoke itself, nor an older device it did not link. Asks
    /// first.
    Revoke {
        /// The device id (or a unique prefix) from `kintsugi devices`.
        device: String,
        /// Do not ask (for scripts).
        #[arg(long)]
        yes: bool,
    },
    /// Erase this device's local state (keys, documents, unsynced changes). Cannot be undone.
    /// Asks first.
    Wipe {
        /// Do not ask (for scripts): erase even changes that were never synced.
        #[arg(long)]
        yes: bool,
    },
    /// Write a document out: json (readable) or automerge (binary, loadable by any Automerge).
    Export {
        /// agreement, journal, checkins or shared
        doc: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// See the whole idea in one command: a server and two phones, offline edits, a merge.
    Demo,
}

/// Flags override the configuration file and the KINTSUGI_* environment variables.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The TOML configuration file (see deploy/kintsugi.toml for every key).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:7878). Plain gRPC is allowed on loopback only.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Folder of the server's store (default ./kintsugi-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// TLS certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log lines as plain text or JSON.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// Calls a device may make per second in the long run (limits.device_calls_per_second).
    #[arg(long, value_name = "N")]
    pub device_calls_per_second: Option<f64>,
    /// Calls a device may make at once (limits.device_call_burst).
    #[arg(long, value_name = "N")]
    pub device_call_burst: Option<u32>,
    /// CreateSpace and AcceptInvite calls per client address per minute
    /// (limits.pairing_calls_per_minute).
    #[arg(long, value_name = "N")]
    pub pairing_calls_per_minute: Option<f64>,
    /// Such calls an address may make at once (limits.pairing_call_burst).
    #[arg(long, value_name = "N")]
    pub pairing_call_burst: Option<u32>,
}

/// What `kintsugi bench` runs; the server's rate limits are set for it and reported.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// couples: pairs of phones syncing live and editing; raw: devices pushing small envelopes
    /// as fast as the server acknowledges; idle: connected devices doing nothing.
    #[arg(long, value_enum, default_value_t = BenchScenario::Couples)]
    pub scenario: BenchScenario,
    /// Seconds of editing or pushing (couples without --edits, raw).
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    pub duration: f64,
    /// Devices (default: 10 for couples, 100 for raw, 500 for idle).
    #[arg(long, value_name = "N")]
    pub devices: Option<usize>,
    /// Couples: edits per phone, instead of editing for --duration.
    #[arg(long, value_name = "N")]
    pub edits: Option<u64>,
    /// Couples: edits per second per phone; 0 edits as fast as each phone can.
    #[arg(long, default_value_t = 10.0, value_name = "N")]
    pub rate: f64,
    /// Idle devices connected at the end of a couples or raw run, for the memory each costs.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub idle_devices: usize,
    /// The server's limits.device_calls_per_second during the run.
    #[arg(long, default_value_t = 1000.0, value_name = "N")]
    pub device_calls_per_second: f64,
    /// The server's limits.device_call_burst during the run.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub device_call_burst: u32,
    /// The server's limits.pairing_calls_per_minute (the run creates a space per pair).
    #[arg(long, default_value_t = 600_000.0, value_name = "N")]
    pub pairing_calls_per_minute: f64,
    /// The server's limits.pairing_call_burst.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub pairing_call_burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchScenario {
    Couples,
    Raw,
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Plain,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// What the store holds: spaces, devices, documents, envelopes, bytes.
    Stats(AdminTarget),
    /// A consistent copy of the store, online from a running server or offline from a folder.
    Backup {
        #[command(flatten)]
        target: AdminTarget,
        /// The backup file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Rewrite the store so that deleted data (a partner who left) is gone from its files too.
    Vacuum(AdminTarget),
    /// Restore a backup into a new, empty data folder (the server must not be running on it).
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The data folder to create.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
}

/// A stopped server's data folder, or a running server (with its admin token).
#[derive(Debug, Args)]
pub struct AdminTarget {
    /// The data folder of a stopped server.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "server",
        required_unless_present = "server"
    )]
    pub data: Option<PathBuf>,
    /// A running server, e.g. http://127.0.0.1:7878; needs --token-file.
    #[arg(long, value_name = "URL", requires = "token_file")]
    pub server: Option<String>,
    /// The server's admin token (the file DATA/admin-token the server wrote at first start).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The CA certificate of a server outside the web PKI.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EnrolArgs {
    /// The sync server, e.g. http://127.0.0.1:7878 (`join` takes it from the invite code when
    /// left out).
    #[arg(long, env = "KINTSUGI_SERVER")]
    pub server: Option<String>,
    /// Your name, as your partner will see it.
    #[arg(long)]
    pub name: String,
    /// What to call this device (default: the machine's host name).
    #[arg(long)]
    pub device_name: Option<String>,
    /// The CA certificate (PEM) that signed the server's certificate, for a server outside the
    /// web PKI (e.g. a home server with its own CA). The device remembers it.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RecoveryCommand {
    /// Print your recovery kit, once: this device forgets it afterwards, so a lost phone holds
    /// none. Write it down or print it and keep it offline.
    Show {
        /// Make a new kit (the old one stops working); only on your first device.
        #[arg(long)]
        new: bool,
    },
    /// Enrol this device with your recovery kit, read from stdin: it gets your whole history
    /// back and every other device of yours is revoked.
    Use(RecoverArgs),
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The sync server, e.g. http://127.0.0.1:7878
    #[arg(long, env = "KINTSUGI_SERVER")]
    pub server: String,
    /// What to call this device (default: the machine's host name).
    #[arg(long)]
    pub device_name: Option<String>,
    /// The CA certificate (PEM) of a server outside the web PKI.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct InviteArgs {
    /// Invite your partner (the default).
    #[arg(long)]
    pub partner: bool,
    /// Link another device of yours; the code opens your private journal up to the join, so
    /// keep it to yourself.
    #[arg(long)]
    pub device: bool,
}

#[derive(Debug, Subcommand)]
pub enum BoundaryCommand {
    /// Propose a boundary or expectation; prints its id.
    Add {
        text: String,
        #[arg(long, default_value = "general")]
        category: String,
    },
    /// Replace a boundary's text; your partner will be asked to approve it again.
    Edit { id: String, text: String },
    /// Approve a boundary's current text.
    Approve { id: String },
    /// Retire a boundary: it stays in the history, marked retired.
    Retire { id: String },
    /// Every boundary with its status.
    List,
    /// One boundary.
    Show { id: String },
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Write a private entry; prints its id.
    Write {
        /// The entry; `-` reads it from stdin (for a long one, or to keep it out of your
        /// shell history).
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        text: Option<String>,
        /// Read the entry from this file (UTF-8 text).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// How you feel, 1 (very low) to 5 (very good).
        #[arg(long)]
        mood: Option<i64>,
        /// A tag; repeat for more.
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Your entries.
    List,
    /// Share one entry with your partner; the rest of your journal stays private.
    Share { id: String },
}

#[derive(Debug, Subcommand)]
pub enum SharedCommand {
    /// The journal entries either of you shared.
    List,
}

#[derive(Debug, Args)]
pub struct CheckinArgs {
    /// The ISO week, e.g. 2026-W40 (default: this week). A second check-in replaces the first.
    #[arg(long)]
    pub week: Option<String>,
    /// How much you trust your partner this week, 1-10.
    #[arg(long)]
    pub trust: i64,
    /// Honest conversations about the relationship this week.
    #[arg(long)]
    pub conversations: i64,
    /// Emotional closeness, 1-10.
    #[arg(long)]
    pub closeness: Option<i64>,
    /// Forgiveness, 1-10.
    #[arg(long)]
    pub forgiveness: Option<i64>,
    #[arg(long, default_value = "")]
    pub note: String,
}

#[derive(Debug, Subcommand)]
pub enum TherapyCommand {
    /// Log a session.
    Log {
        /// The session's date, e.g. 2026-01-08 (default: today).
        #[arg(long)]
        date: Option<String>,
        /// A partner who attended; repeat for both (default: both).
        #[arg(long = "attended")]
        attended: Vec<String>,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Every session logged.
    List,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Json,
    Automerge,
}
