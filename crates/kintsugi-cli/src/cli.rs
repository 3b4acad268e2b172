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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Json,
    Automerge,
}
