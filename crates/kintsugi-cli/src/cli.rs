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
    /// Create a new space; this device becomes its first partner.
    Init(EnrolArgs),
    /// Make a one-time code for your partner (--partner) or another of your devices (--device).
    Invite(InviteArgs),
    /// Join a space with a code from your partner, or link another of your devices.
    Join {
        #[command(flatten)]
        enrol: EnrolArgs,
        /// The code shown by `kintsugi invite`.
        code: String,
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
    /// Revoke one of your devices (a lost phone): it can no longer sync.
    Revoke {
        /// The device id (or a unique prefix) from `kintsugi devices`.
        device: String,
    },
    /// Erase this device's local state (keys, documents, unsynced changes). Cannot be undone.
    Wipe {
        /// Confirm: erase even changes that were never synced.
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

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Plain gRPC is allowed on loopback only.
    #[arg(long, default_value = "127.0.0.1:7878", env = "KINTSUGI_LISTEN")]
    pub listen: SocketAddr,
    /// Folder of the server's store.
    #[arg(long, default_value = "kintsugi-data", env = "KINTSUGI_DATA")]
    pub data: PathBuf,
}

#[derive(Debug, Args)]
pub struct EnrolArgs {
    /// The sync server, e.g. http://127.0.0.1:7878
    #[arg(long, env = "KINTSUGI_SERVER")]
    pub server: String,
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

#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct InviteArgs {
    /// Invite your partner (the default).
    #[arg(long)]
    pub partner: bool,
    /// Link another device of yours; the code carries your private key, so keep it to yourself.
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
        text: String,
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
