//! The couple's other documents on the `Device` object: check-ins, therapy sessions, sharing a
//! journal entry, and the space's devices (listing, revoking, leaving).

use kintsugi_core::Answers;

use crate::device::Device;
use crate::error::{KintsugiError, guarded};
use crate::records::{CheckIn, LeftSpace, SpaceDevice, TherapySession};

type Result<T> = std::result::Result<T, KintsugiError>;

#[uniffi::export]
impl Device {
    /// Records this partner's check-in for `week` (`2026-W40`; this week when `None`); returns
    /// the week. Scales run 1 to 10.
    pub fn check_in(
        &self,
        week: Option<String>,
        trust: i64,
        conversations: i64,
        closeness: Option<i64>,
        forgiveness: Option<i64>,
        note: String,
    ) -> Result<String> {
        let answers = Answers {
            trust,
            conversations,
            closeness,
            forgiveness,
            note,
        };
        guarded(|| Ok(self.core.check_in(week.as_deref(), answers)?.to_string()))
    }

    /// Both partners' check-ins.
    pub fn checkins(&self) -> Result<Vec<CheckIn>> {
        guarded(|| Ok(self.core.checkins()?.into_iter().map(Into::into).collect()))
    }

    /// Logs a therapy session on `date` (`2026-10-01`; today when `None`); `attended` names
    /// partners, empty for both. Returns its id.
    pub fn log_therapy(
        &self,
        date: Option<String>,
        attended: Vec<String>,
        note: String,
    ) -> Result<String> {
        guarded(|| Ok(self.core.log_therapy(date.as_deref(), &attended, &note)?))
    }

    /// The therapy sessions either partner logged.
    pub fn therapy_sessions(&self) -> Result<Vec<TherapySession>> {
        guarded(|| {
            Ok(self
                .core
                .therapy_sessions()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Shares one private journal entry with the partner (a copy; the journal stays
    /// private); returns the shared entry's id.
    pub fn share_journal(&self, entry_id: String) -> Result<String> {
        guarded(|| Ok(self.core.share_journal(&entry_id)?))
    }
}

/// How many changes in `dir` were never synced (`None`: the store is too damaged to tell):
/// what a wipe would lose, for the app to ask about first.
#[uniffi::export]
pub fn unsynced_changes(dir: String) -> Result<Option<u64>> {
    let count = || kintsugi_core::Device::unsynced_changes(std::path::Path::new(&dir));
    guarded(|| Ok(count()?.map(|n| n as u64)))
}

/// Erases the device in `dir` (its keys and local data) on this phone only; changes never
/// synced are lost with it (`unsynced_changes` says how many).
#[uniffi::export]
pub fn wipe_device(dir: String) -> Result<()> {
    guarded(|| Ok(kintsugi_core::Device::wipe(std::path::Path::new(&dir))?))
}

#[uniffi::export(async_runtime = "tokio")]
impl Device {
    /// The space's devices, as the verified roster shows them.
    pub async fn devices(&self) -> Result<Vec<SpaceDevice>> {
        Ok(self
            .core
            .devices()
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Revokes a device (by id, or a unique prefix); returns the devices after.
    pub async fn revoke(&self, device: String) -> Result<Vec<SpaceDevice>> {
        Ok(self
            .core
            .revoke(&device)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Leaves the space: erases this member's private documents on the server and revokes
    /// their devices; the last partner to leave erases the whole space.
    pub async fn leave(&self) -> Result<LeftSpace> {
        Ok(self.core.leave().await?.into())
    }
}
