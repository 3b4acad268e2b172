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
    /// How many entries the roster has.
    pub entries: u64,
}

impl Device {
    /// The safety number of the roster as the server's log makes it now, verified entry by
    /// entry.
    pub async fn verification(&self) -> Result<Verification> {
        let mut conn = self.replica.connect().await?;
        let roster = self.replica.pull_roster(&mut conn).await?;
        let confirmed = self.replica.store.verified_roster()?;
        Ok(Verification {
            fingerprint: roster.safety_number().to_string(),
            verified: confirmed == Some((roster.len(), roster.head().to_vec())),
            entries: roster.len(),
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
        })
    }
}
