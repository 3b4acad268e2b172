//! Safety numbers, for apps: the roster's fingerprint both partners compare side by side.
//!
//! `verification` pulls the roster and shows its safety number and whether it is the roster
//! the user last confirmed; after comparing with the partner's phone, `confirm_verification`
//! records it, and every device added later shows as unverified until the next comparison.
//! How to compare is in docs/security.md.

use serde::Serialize;

use super::Device;
use crate::error::Result;

/// The roster's safety number and whether the user confirmed this roster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Sixty digits in twelve groups of five.
    pub fingerprint: String,
    /// Whether this is the roster the user last confirmed as compared.
    pub verified: bool,
    /// How many entries the roster log has.
    pub entries: u64,
    /// How many of them broke the roster's rules and were passed over (a partner's junk, or a
    /// server's forgery); they change nothing, but many of them are worth asking about.
    pub passed_over: u64,
    /// The space's current key epoch.
    pub epoch: Option<u64>,
}

impl Device {
    /// The safety number of the roster as the server's log makes it now, verified entry by
    /// entry.
    pub async fn verification(&self) -> Result<Verification> {
        let mut conn = self.replica.connect().await?;
        let roster = self.replica.pull_roster(&mut conn).await?;
        let confirmed = self.replica.store.verified_roster()?;
        // The head alone: entries passed over since do not change what was compared.
        let verified = confirmed.is_some_and(|(_, head)| head == roster.head());
        Ok(Verification {
            fingerprint: roster.safety_number().to_string(),
            verified,
            entries: roster.len(),
            passed_over: roster.passed_over(),
            epoch: roster.current_epoch(crate::roster::EpochAudience::Space),
        })
    }

    /// Records the roster whose safety number `verification` showed as compared. Refuses when
    /// the roster changed in between (the number shown would not be the one confirmed).
    pub async fn confirm_verification(&self, fingerprint: &str) -> Result<Verification> {
        let mut conn = self.replica.connect().await?;
        let roster = self.replica.pull_roster(&mut conn).await?;
        if roster.safety_number().as_str() != fingerprint.trim() {
            return Err(crate::CoreError::InvalidInput(
                "the roster changed since that safety number was shown (or it was mistyped); run `kintsugi verify` again and compare the new number".into(),
            ));
        }
        let head = roster.head();
        self.replica
            .store
            .set_verified_roster(roster.len(), &head)?;
        Ok(Verification {
            fingerprint: roster.safety_number().to_string(),
            verified: true,
            entries: roster.len(),
            passed_over: roster.passed_over(),
            epoch: roster.current_epoch(crate::roster::EpochAudience::Space),
        })
    }
}
