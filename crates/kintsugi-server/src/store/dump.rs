//! The backup file format: every table of the store as key/value records, with a checksum.
//!
//! A backup must be restorable years later and must never be half-trusted, so the format is
//! small, versioned and checked as a whole before anything is restored:
//!
//! ```text
//! magic    16 bytes  "KINTSUGI-BACKUP\n"
//! version   u32 BE   1
//! records  repeated, each starting with a tag byte:
//!          0x01 table  u16 BE name length, UTF-8 name   (the entries that follow belong to it)
//!          0x02 entry  u32 BE key length, key, u32 BE value length, value
//!          0x03 end    u64 BE tables, u64 BE entries    (exactly once, last)
//! checksum 32 bytes  SHA-256 of every byte before it
//! ```
//!
//! Tables are the store's sled trees by name (`spaces`, `log`, ...) plus `meta` for the
//! entries of the default tree. Keys and values are the stored bytes as they are: records are
//! already protobuf and ids, and values hold only ciphertext and hashes, so a backup reveals
//! nothing the data folder would not. Readers verify the magic, the version and the checksum
//! before they parse a single record, so a truncated or damaged file is refused with a clear
//! message instead of restoring part of a store.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 16] = b"KINTSUGI-BACKUP\n";
/// The format version this server writes and reads.
pub const VERSION: u32 = 1;

const TABLE: u8 = 1;
const ENTRY: u8 = 2;
const END: u8 = 3;
/// Sanity limits for lengths read from a file (the checksum already vouches for them).
const MAX_NAME: usize = 255;
const MAX_KEY: usize = 64 * 1024;
const MAX_VALUE: usize = 1 << 30;

/// What a backup holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DumpSummary {
    pub tables: u64,
    pub entries: u64,
    /// Size of the whole file.
    pub bytes: u64,
}

/// Why a backup could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("reading or writing the backup failed: {0}")]
    Io(#[from] io::Error),
    #[error("it is not a Kintsugi backup file (it does not start with KINTSUGI-BACKUP)")]
    NotABackup,
    #[error(
        "it was written in backup format {0}, and this server reads format {VERSION}; use a newer kintsugi"
    )]
    Version(u32),
    #[error("the backup file is damaged ({0}); use another backup")]
    Damaged(String),
}

/// Writes a backup: `table`, then its `entry`s, for each table; then `finish`.
#[derive(Debug)]
pub struct DumpWriter<W: Write> {
    out: W,
    hasher: Sha256,
    summary: DumpSummary,
}

impl<W: Write> DumpWriter<W> {
    /// Starts a backup on `out` with the magic and the version.
    pub fn new(out: W) -> Result<Self, DumpError> {
        let mut writer = Self {
            out,
            hasher: Sha256::new(),
            summary: DumpSummary::default(),
        };
        writer.put(MAGIC)?;
        writer.put(&VERSION.to_be_bytes())?;
        Ok(writer)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), DumpError> {
        self.hasher.update(bytes);
        self.out.write_all(bytes)?;
        self.summary.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Starts the records of table `name`.
    pub fn table(&mut self, name: &str) -> Result<(), DumpError> {
        let length = u16::try_from(name.len())
            .ok()
            .filter(|n| usize::from(*n) <= MAX_NAME)
            .ok_or_else(|| DumpError::Damaged(format!("table name {name:?} is too long")))?;
        self.put(&[TABLE])?;
        self.put(&length.to_be_bytes())?;
        self.put(name.as_bytes())?;
        self.summary.tables += 1;
        Ok(())
    }

    /// Adds one record to the current table.
    pub fn entry(&mut self, key: &[u8], value: &[u8]) -> Result<(), DumpError> {
        let too_long = || DumpError::Damaged("a record is too long for the format".into());
        let key_length = u32::try_from(key.len()).map_err(|_| too_long())?;
        let value_length = u32::try_from(value.len()).map_err(|_| too_long())?;
        self.put(&[ENTRY])?;
        self.put(&key_length.to_be_bytes())?;
        self.put(key)?;
        self.put(&value_length.to_be_bytes())?;
        self.put(value)?;
        self.summary.entries += 1;
        Ok(())
    }

    /// Writes the end record and the checksum, and flushes.
    pub fn finish(mut self) -> Result<DumpSummary, DumpError> {
        let (tables, entries) = (self.summary.tables, self.summary.entries);
        self.put(&[END])?;
        self.put(&tables.to_be_bytes())?;
        self.put(&entries.to_be_bytes())?;
        let checksum = self.hasher.finalize_reset();
        self.out.write_all(&checksum)?;
        self.out.flush()?;
        self.summary.bytes += checksum.len() as u64;
        Ok(self.summary)
    }
}

/// Writes a backup to a new file at `path` (mode 0600), synced to disk when `fill` succeeds.
pub fn write_file(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<DumpSummary, crate::store::StoreError>,
) -> Result<DumpSummary, crate::store::StoreError> {
    let file = crate::owner_only::create_private_file(path)?;
    let mut buffered = BufWriter::new(&file);
    let summary = fill(&mut buffered)?;
    buffered.flush()?;
    drop(buffered);
    file.sync_all()?;
    Ok(summary)
}

/// Checks the magic, the version and the checksum of the backup at `path`, then its records.
pub fn verify(path: &Path) -> Result<DumpSummary, DumpError> {
    read(path, |_, _, _| Ok(()))
}

/// Verifies the backup at `path`, then calls `visit(table, key, value)` for every record in
/// order. Nothing is visited unless the whole file checks out.
pub fn read(
    path: &Path,
    mut visit: impl FnMut(&str, Vec<u8>, Vec<u8>) -> Result<(), DumpError>,
) -> Result<DumpSummary, DumpError> {
    let length = std::fs::metadata(path)?.len();
    check_checksum(path, length)?;
    let body = BufReader::new(File::open(path)?).take(length.saturating_sub(32));
    let mut reader = Records { inner: body };
    let mut magic = [0u8; 16];
    reader.exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(DumpError::NotABackup);
    }
    let version = reader.u32()?;
    if version != VERSION {
        return Err(DumpError::Version(version));
    }
    let mut table: Option<String> = None;
    let mut summary = DumpSummary {
        bytes: length,
        ..DumpSummary::default()
    };
    loop {
        match reader.u8()? {
            TABLE => {
                let length = usize::from(reader.u16()?);
                let name = reader.bytes(length, MAX_NAME)?;
                let name = String::from_utf8(name)
                    .map_err(|_| DumpError::Damaged("a table name is not UTF-8".into()))?;
                table = Some(name);
                summary.tables += 1;
            }
            ENTRY => {
                let Some(name) = &table else {
                    return Err(DumpError::Damaged("a record before any table".into()));
                };
                let key_length = reader.u32()? as usize;
                let key = reader.bytes(key_length, MAX_KEY)?;
                let value_length = reader.u32()? as usize;
                let value = reader.bytes(value_length, MAX_VALUE)?;
                visit(name, key, value)?;
                summary.entries += 1;
            }
            END => {
                let (tables, entries) = (reader.u64()?, reader.u64()?);
                if (tables, entries) != (summary.tables, summary.entries) {
                    return Err(DumpError::Damaged("its record counts do not add up".into()));
                }
                return Ok(summary);
            }
            other => {
                return Err(DumpError::Damaged(format!("unknown record tag {other}")));
            }
        }
    }
}

fn check_checksum(path: &Path, length: u64) -> Result<(), DumpError> {
    if length < (MAGIC.len() + 4 + 17 + 32) as u64 {
        let mut start = Vec::new();
        File::open(path)?.take(16).read_to_end(&mut start)?;
        return Err(if MAGIC.starts_with(&start) && !start.is_empty() {
            DumpError::Damaged("it is truncated".into())
        } else {
            DumpError::NotABackup
        });
    }
    let mut file = BufReader::new(File::open(path)?);
    let mut hasher = Sha256::new();
    let copied = io::copy(
        &mut (&mut file).take(length - 32),
        &mut HashSink(&mut hasher),
    )?;
    let mut stored = [0u8; 32];
    file.read_exact(&mut stored)?;
    if copied != length - 32 || hasher.finalize().as_slice() != stored {
        let mut magic = [0u8; 16];
        File::open(path)?.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(DumpError::NotABackup);
        }
        return Err(DumpError::Damaged(
            "its checksum does not match; it was truncated or changed".into(),
        ));
    }
    Ok(())
}

struct HashSink<'a>(&'a mut Sha256);

impl Write for HashSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Records<R: Read> {
    inner: R,
}

impl<R: Read> Records<R> {
    fn exact(&mut self, buffer: &mut [u8]) -> Result<(), DumpError> {
        self.inner.read_exact(buffer).map_err(|error| {
            if error.kind() == io::ErrorKind::UnexpectedEof {
                DumpError::Damaged("it ends in the middle of a record".into())
            } else {
                DumpError::Io(error)
            }
        })
    }

    fn u8(&mut self) -> Result<u8, DumpError> {
        let mut b = [0u8; 1];
        self.exact(&mut b)?;
        Ok(b[0])
    }

    fn u16(&mut self) -> Result<u16, DumpError> {
        let mut b = [0u8; 2];
        self.exact(&mut b)?;
        Ok(u16::from_be_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, DumpError> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, DumpError> {
        let mut b = [0u8; 8];
        self.exact(&mut b)?;
        Ok(u64::from_be_bytes(b))
    }

    fn bytes(&mut self, length: usize, limit: usize) -> Result<Vec<u8>, DumpError> {
        if length > limit {
            return Err(DumpError::Damaged(format!(
                "a record claims {length} bytes, over the limit of {limit}"
            )));
        }
        let mut buffer = vec![0u8; length];
        self.exact(&mut buffer)?;
        Ok(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("backup.kbk");
        let mut out = Vec::new();
        let mut writer = DumpWriter::new(&mut out).expect("header");
        writer.table("spaces").expect("table");
        writer.entry(b"k1", b"v1").expect("entry");
        writer.entry(b"k2", &[0u8; 300]).expect("entry");
        writer.table("log").expect("table");
        let summary = writer.finish().expect("finished");
        assert_eq!((summary.tables, summary.entries), (2, 2));
        assert_eq!(summary.bytes, out.len() as u64);
        std::fs::write(&path, out).expect("written");
        path
    }

    #[test]
    fn a_backup_reads_back_record_by_record() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = sample(dir.path());
        let mut seen = Vec::new();
        let summary = read(&path, |table, key, value| {
            seen.push((table.to_owned(), key, value.len()));
            Ok(())
        })
        .expect("read");
        assert_eq!((summary.tables, summary.entries), (2, 2));
        assert_eq!(
            seen,
            [
                ("spaces".to_owned(), b"k1".to_vec(), 2),
                ("spaces".to_owned(), b"k2".to_vec(), 300)
            ]
        );
    }

    #[test]
    fn a_damaged_or_foreign_file_is_refused_before_anything_is_read() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = sample(dir.path());
        let good = std::fs::read(&path).expect("read");
        let mut flipped = good.clone();
        flipped[40] ^= 1;
        std::fs::write(&path, &flipped).expect("written");
        let mut visited = 0;
        let error = read(&path, |_, _, _| {
            visited += 1;
            Ok(())
        })
        .expect_err("damaged");
        assert!(matches!(error, DumpError::Damaged(_)), "{error}");
        assert_eq!(visited, 0);
        std::fs::write(&path, &good[..good.len() - 5]).expect("written");
        assert!(matches!(verify(&path), Err(DumpError::Damaged(_))));
        std::fs::write(
            &path,
            b"PK\x03\x04 a zip file, not a backup at all....................",
        )
        .expect("written");
        assert!(matches!(verify(&path), Err(DumpError::NotABackup)));
    }
}
