//! Making the `Rotation` that starts a new epoch: the key sealed to every reader the roster
//! names, and linked to the epoch before.

use kintsugi_proto::v1::Rotation;

use super::chain::{Link, seal_previous};
use super::hpke_seal::{SealContext, seal_to};
use crate::error::{CoreError, Result};
use crate::keys::SecretKey;
use crate::roster::{EpochAudience, Roster};

/// A new epoch of `audience` with key `key`, sealed to the readers `after` (the roster as the
/// entry leaves it) names, and linked to `previous`, the newest epoch the author holds.
pub(crate) fn new_rotation(
    after: &Roster,
    audience: EpochAudience,
    key: &SecretKey,
    previous: Option<(u64, &SecretKey)>,
) -> Result<Rotation> {
    let epoch = after.epochs(audience).len() as u64;
    let ctx = SealContext {
        space: after.space(),
        audience,
        epoch,
    };
    let mut sealed = Vec::new();
    for (recipient, public) in after.recipients(audience) {
        let key = seal_to(&ctx, recipient, &public, key).ok_or_else(|| {
            CoreError::RosterRefused(format!(
                "the roster holds an unusable key for {recipient:?}; a new epoch cannot be sealed to it"
            ))
        })?;
        sealed.push(key);
    }
    let link = Link {
        space: after.space(),
        audience,
        epoch,
    };
    let previous = previous
        .map(|(before, before_key)| seal_previous(&link, key, before, before_key))
        .unwrap_or_default();
    let member_id = match audience {
        EpochAudience::Space => Vec::new(),
        EpochAudience::Member(member) => member.as_bytes().to_vec(),
    };
    Ok(Rotation {
        member_id,
        sealed,
        previous,
    })
}
