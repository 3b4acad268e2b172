//! The store conformance suite run from outside the crate, as a second backend would run it.
//!
//! A backend in another crate (a PostgreSQL store, say) puts
//! `kintsugi-server = { workspace = true, features = ["testing"] }` in its dev-dependencies and
//! writes the one line below with its own type. This test does exactly that with `SledStore`,
//! so the line in the docs is known to compile and pass. Built only with `--features testing`.

use std::path::Path;

use kintsugi_server::store::SledStore;

kintsugi_server::store_conformance_tests!(|dir: &Path| SledStore::open(dir).expect("opens"));
