//! `Device`: one install of the core, opened at a folder the app owns.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kintsugi_core::{CodeKind, Device as CoreDevice, Enrolment, system_clock};

use crate::error::{KintsugiError, guarded};
use crate::live::{LiveSync, SyncListener};
use crate::records::{Boundary, JournalEntry, SyncSummary};

type Result<T> = std::result::Result<T, KintsugiError>;

/// One device: its store, its keys, its documents.
#[derive(Debug, uniffi::Object)]
pub struct Device {
    pub(crate) core: Arc<CoreDevice>,
}

/// Creates a new space at `server_url`; this device becomes its first member's.
#[uniffi::export(async_runtime = "tokio")]
pub async fn init_device(
    dir: String,
    server_url: String,
    member_name: String,
    device_name: String,
    ca_cert_pem: Option<String>,
) -> Result<Arc<Device>> {
    let (dir, ca_cert_pem) = (PathBuf::from(dir), ca_cert_pem);
    let names = (&server_url[..], &member_name[..], &device_name[..]);
    Ok(Device::wrap(
        CoreDevice::init(enrolment(&dir, names, ca_cert_pem)).await?,
    ))
}

/// Joins a space with a code from the partner (or links another device of the same member).
#[uniffi::export(async_runtime = "tokio")]
pub async fn join_device(
    dir: String,
    server_url: String,
    member_name: String,
    device_name: String,
    ca_cert_pem: Option<String>,
    code: String,
) -> Result<Arc<Device>> {
    let (dir, ca_cert_pem) = (PathBuf::from(dir), ca_cert_pem);
    let names = (&server_url[..], &member_name[..], &device_name[..]);
    let enrolment = enrolment(&dir, names, ca_cert_pem);
    Ok(Device::wrap(CoreDevice::join(enrolment, &code).await?))
}

/// A new device in `dir`: the server's URL, the member's and the device's names, and the CA to
/// trust, on the phone's clock.
fn enrolment<'a>(
    dir: &'a Path,
    (server_url, member_name, device_name): (&'a str, &'a str, &'a str),
    ca_cert_pem: Option<String>,
) -> Enrolment<'a> {
    Enrolment {
        dir,
        server_url,
        member_name,
        device_name,
        ca_cert_pem,
        clock: system_clock(),
    }
}

impl Device {
    fn wrap(core: CoreDevice) -> Arc<Self> {
        Arc::new(Self {
            core: Arc::new(core),
        })
    }
}

#[uniffi::export]
impl Device {
    /// Opens the device whose state is in `dir`.
    #[uniffi::constructor]
    pub fn open(dir: String) -> Result<Arc<Self>> {
        guarded(|| Ok(Self::wrap(CoreDevice::open(&PathBuf::from(dir))?)))
    }

    /// Proposes a boundary; returns its id.
    pub fn add_boundary(&self, text: String, category: String) -> Result<String> {
        guarded(|| Ok(self.core.add_boundary(&text, &category)?))
    }

    /// Replaces a boundary's text (merged character by character with concurrent edits).
    pub fn edit_boundary(&self, id: String, text: String) -> Result<()> {
        guarded(|| Ok(self.core.edit_boundary(&id, &text).map(drop)?))
    }

    /// Approves a boundary's current text.
    pub fn approve_boundary(&self, id: String) -> Result<()> {
        guarded(|| Ok(self.core.approve_boundary(&id).map(drop)?))
    }

    /// Retires a boundary: it stays in the history, frozen.
    pub fn retire_boundary(&self, id: String) -> Result<()> {
        guarded(|| Ok(self.core.retire_boundary(&id).map(drop)?))
    }

    /// The agreement's boundaries.
    pub fn boundaries(&self) -> Result<Vec<Boundary>> {
        guarded(|| {
            Ok(self
                .core
                .boundaries()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Writes an entry in this member's private journal; returns its id.
    pub fn write_journal(
        &self,
        text: String,
        mood: Option<i64>,
        tags: Vec<String>,
    ) -> Result<String> {
        guarded(|| Ok(self.core.write_journal(&text, mood, &tags)?))
    }

    /// This member's private journal.
    pub fn journal(&self) -> Result<Vec<JournalEntry>> {
        guarded(|| Ok(self.core.journal()?.into_iter().map(Into::into).collect()))
    }

    /// Local changes not yet pushed.
    pub fn pending_changes(&self) -> u64 {
        self.core.pending_changes() as u64
    }

    /// Starts live sync on the core's own runtime; `listener` hears what changed.
    pub fn start_live_sync(&self, listener: Arc<dyn SyncListener>) -> Result<Arc<LiveSync>> {
        LiveSync::start(self.core.clone(), listener)
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Device {
    /// Pushes every local change and pulls the partner's.
    pub async fn sync(&self) -> Result<SyncSummary> {
        Ok(self.core.sync().await?.into())
    }

    /// A one-time code for the partner (`partner`) or for another of this member's devices.
    pub async fn invite(&self, partner: bool) -> Result<String> {
        let kind = if partner {
            CodeKind::Partner
        } else {
            CodeKind::Device
        };
        Ok(self.core.invite(kind).await?.encode())
    }
}
