//! Where the lake lives and which objects it holds: listing, formats and the watermark.
//!
//! A lake keeps its transactions under `<lake>/transactions/`, optionally partitioned as
//! `dt=YYYY-MM-DD/` (DESIGN.md, "The lake contract"), and optionally the operator's snapshot
//! of players' restrictions under `<lake>/players/`. A source lists those objects with a
//! fingerprint (key, size, ETag or modification time); the caller keeps the fingerprints of
//! loaded objects as a [`Watermark`], so the next run reads only what is new or changed.
//! [`LakeSource`] is an enum: a local folder, or an S3 bucket through aws-sdk-s3 ([`S3Lake`]).

mod s3;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use s3::{S3_SCHEME, S3Lake, S3Settings};

/// The folder under the lake root that holds the transactions.
pub const TRANSACTIONS_FOLDER: &str = "transactions";

/// The folder under the lake root that holds the players' restrictions snapshot.
pub const PLAYERS_FOLDER: &str = "players";

/// A lake the ETL can list and read.
#[derive(Debug, Clone)]
pub enum LakeSource {
    /// A folder on the local file system.
    Local(LocalLake),
    /// A prefix in an S3 bucket (or an S3-compatible store).
    S3(S3Lake),
}

impl LakeSource {
    /// A lake in the local folder `root` (which holds `transactions/`).
    pub fn local(root: impl Into<PathBuf>) -> Self {
        Self::Local(LocalLake { root: root.into() })
    }

    /// The lake at `url` (`s3://bucket/prefix`), reached with the AWS configuration chain
    /// and `settings`; fails when the URL is malformed or no credentials are found.
    pub async fn s3(url: &str, settings: &S3Settings) -> Result<Self> {
        Ok(Self::S3(S3Lake::connect(url, settings).await?))
    }

    /// Every object under `transactions/`, sorted by key (the order rows are deduplicated in).
    pub async fn list(&self) -> Result<Vec<LakeObject>> {
        self.list_folder(TRANSACTIONS_FOLDER).await
    }

    /// Every object under the lake's `folder` (e.g. [`PLAYERS_FOLDER`]), sorted by key; a
    /// lake without that folder has none.
    pub async fn list_folder(&self, folder: &str) -> Result<Vec<LakeObject>> {
        match self {
            Self::Local(lake) => lake.list(folder).await,
            Self::S3(lake) => lake.list(folder).await,
        }
    }

    /// The object as a file on the local file system, for as long as the returned copy
    /// lives: a local lake's own file, or an S3 object downloaded into the folder `scratch`
    /// (removed with the copy). The copy's object has the same size, ETag and format.
    pub(crate) async fn local_copy(
        &self,
        object: &LakeObject,
        scratch: &Path,
    ) -> Result<LocalCopy, String> {
        let Self::S3(lake) = self else {
            return Ok(LocalCopy {
                lake: self.clone(),
                object: object.clone(),
                scratch: None,
            });
        };
        // Only the file name is used locally: a key may hold `..` or other parts that are
        // not safe as a path.
        let file_name = object
            .key()
            .rsplit('/')
            .next()
            .filter(|name| !name.is_empty() && *name != "." && *name != "..")
            .ok_or_else(|| format!("key {} does not end with a file name", object.key()))?;
        std::fs::create_dir_all(scratch)
            .map_err(|error| format!("cannot create {}: {error}", scratch.display()))?;
        let copy = LocalCopy {
            lake: Self::local(scratch),
            object: LakeObject {
                fingerprint: ObjectFingerprint {
                    key: file_name.to_owned(),
                    ..object.fingerprint.clone()
                },
                format: object.format,
            },
            scratch: Some(scratch.to_owned()),
        };
        let written = lake
            .download(object.key(), &scratch.join(file_name))
            .await?;
        if written != object.fingerprint.size {
            return Err(format!(
                "the object changed while it was read (listed with {} bytes, read {written}); \
                 run again",
                object.fingerprint.size
            ));
        }
        Ok(copy)
    }

    /// The last `length` bytes (or the whole object, if shorter) of the object with `key`.
    pub(crate) async fn read_tail(&self, key: &str, length: u64) -> std::io::Result<Vec<u8>> {
        match self {
            Self::Local(lake) => {
                let path = lake.root.join(key);
                tokio::task::spawn_blocking(move || read_file_tail(&path, length))
                    .await
                    .map_err(std::io::Error::other)?
            }
            Self::S3(lake) => lake.read_tail(key, length).await,
        }
    }

    /// Where DataFusion reads the object with `key` from (a path or an object store URL).
    ///
    /// DataFusion has no object store for `s3://` registered: S3 objects are read through a
    /// [`LakeSource::local_copy`], and their URL here only names them in messages.
    pub(crate) fn location(&self, key: &str) -> String {
        match self {
            Self::Local(lake) => lake.root.join(key).to_string_lossy().into_owned(),
            Self::S3(lake) => lake.url(key),
        }
    }
}

impl fmt::Display for LakeSource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(lake) => write!(formatter, "{}", lake.root.display()),
            Self::S3(lake) => write!(formatter, "{}", lake.root_url()),
        }
    }
}

/// A lake object made readable from the local file system (see [`LakeSource::local_copy`]).
pub(crate) struct LocalCopy {
    /// A local lake that holds the object.
    pub lake: LakeSource,
    /// The object in that lake.
    pub object: LakeObject,
    /// The scratch folder to remove when the copy is dropped.
    scratch: Option<PathBuf>,
}

impl Drop for LocalCopy {
    fn drop(&mut self) {
        if let Some(scratch) = &self.scratch {
            // Best effort: the next run's `Warehouse::prepare` empties staging anyway.
            let _ = std::fs::remove_dir_all(scratch);
        }
    }
}

/// A lake in a local folder.
#[derive(Debug, Clone)]
pub struct LocalLake {
    root: PathBuf,
}

impl LocalLake {
    /// The lake root, the folder that holds `transactions/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    async fn list(&self, folder: &str) -> Result<Vec<LakeObject>> {
        let root = self.root.clone();
        let folder = folder.to_owned();
        tokio::task::spawn_blocking(move || list_folder(&root, &folder))
            .await
            .map_err(|error| Error::Task(error.to_string()))?
    }
}

fn list_folder(root: &Path, folder: &str) -> Result<Vec<LakeObject>> {
    let metadata = std::fs::metadata(root).map_err(|error| Error::LakeNotFound {
        path: root.to_owned(),
        reason: error.to_string(),
    })?;
    if !metadata.is_dir() {
        return Err(Error::LakeNotFound {
            path: root.to_owned(),
            reason: "not a folder".to_owned(),
        });
    }
    let listed = root.join(folder);
    if !listed.is_dir() {
        return Ok(Vec::new());
    }
    let mut objects = Vec::new();
    let mut pending = vec![listed];
    while let Some(folder) = pending.pop() {
        let listing_error = |error: std::io::Error| Error::LakeListing {
            location: folder.display().to_string(),
            reason: error.to_string(),
        };
        for entry in std::fs::read_dir(&folder).map_err(listing_error)? {
            let entry = entry.map_err(listing_error)?;
            let name = entry.file_name();
            if is_hidden(&name.to_string_lossy()) {
                continue;
            }
            let path = entry.path();
            let metadata = entry.metadata().map_err(listing_error)?;
            if metadata.is_dir() {
                pending.push(path);
                continue;
            }
            let Some(key) = relative_key(root, &path) else {
                continue;
            };
            let modified_nanos = metadata
                .modified()
                .ok()
                .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |duration| duration.as_nanos());
            objects.push(LakeObject::new(
                key,
                metadata.len(),
                format!("{modified_nanos:x}"),
            ));
        }
    }
    objects.sort_by(|left, right| left.fingerprint.key.cmp(&right.fingerprint.key));
    Ok(objects)
}

fn read_file_tail(path: &Path, length: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    file.seek(SeekFrom::Start(size.saturating_sub(length)))?;
    let mut tail = Vec::new();
    file.take(length).read_to_end(&mut tail)?;
    Ok(tail)
}

/// Names starting with `.` or `_` are hidden: editor files, `_SUCCESS` markers of Spark jobs.
fn is_hidden(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

fn relative_key(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = relative
        .components()
        .map(|component| component.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(parts.join("/"))
}

/// What identifies one version of a lake object: a changed size or ETag is a new version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectFingerprint {
    /// The object's key relative to the lake root, `/`-separated
    /// (`transactions/dt=2026-06-30/part-0.parquet`).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The ETag on S3; the modification time in hexadecimal nanoseconds on a local folder.
    pub etag: String,
}

/// One object found in the lake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeObject {
    /// Key, size and ETag.
    pub fingerprint: ObjectFingerprint,
    /// The format its extension names, or `None` for an extension the ETL does not read.
    pub format: Option<ObjectFormat>,
}

impl LakeObject {
    /// An object with `key`, `size` and `etag`, its format taken from the key's extension.
    pub fn new(key: String, size: u64, etag: String) -> Self {
        let format = ObjectFormat::from_key(&key);
        Self {
            fingerprint: ObjectFingerprint { key, size, etag },
            format,
        }
    }

    /// The object's key relative to the lake root.
    pub fn key(&self) -> &str {
        &self.fingerprint.key
    }
}

/// Whether a text file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (`.gz`).
    Gzip,
}

/// A file format of the lake, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectFormat {
    /// Apache Parquet (`.parquet`).
    Parquet,
    /// CSV with a header row (`.csv`, `.csv.gz`).
    Csv(Compression),
    /// Newline-delimited JSON (`.ndjson`, `.jsonl`, `.json`, each optionally `.gz`).
    NdJson(Compression),
}

impl ObjectFormat {
    /// The format named by the end of `key`, case-insensitively; `None` when unknown.
    ///
    /// ```
    /// use crmbet_etl::{Compression, ObjectFormat};
    /// assert_eq!(ObjectFormat::from_key("a/part-0.csv.gz"), Some(ObjectFormat::Csv(Compression::Gzip)));
    /// assert_eq!(ObjectFormat::from_key("a/part-0.xlsx"), None);
    /// ```
    pub fn from_key(key: &str) -> Option<Self> {
        let name = key.to_ascii_lowercase();
        let (name, compression) = match name.strip_suffix(".gz") {
            Some(stem) => (stem, Compression::Gzip),
            None => (name.as_str(), Compression::None),
        };
        let extension = name.rsplit_once('.').map(|(_, extension)| extension)?;
        match (extension, compression) {
            ("parquet", Compression::None) => Some(Self::Parquet),
            ("csv", _) => Some(Self::Csv(compression)),
            ("ndjson" | "jsonl" | "json", _) => Some(Self::NdJson(compression)),
            _ => None,
        }
    }

    /// The extensions the ETL reads, for messages.
    pub const KNOWN_EXTENSIONS: &'static str =
        ".parquet, .csv, .ndjson, .jsonl, .json (text formats also with .gz)";
}

/// The fingerprints of the objects already loaded; the caller keeps it between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watermark {
    loaded: HashSet<ObjectFingerprint>,
}

impl Watermark {
    /// An empty watermark: every object is new.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether this exact version of the object was loaded before.
    pub fn contains(&self, fingerprint: &ObjectFingerprint) -> bool {
        self.loaded.contains(fingerprint)
    }

    /// Records `fingerprint` as loaded.
    pub fn insert(&mut self, fingerprint: ObjectFingerprint) {
        self.loaded.insert(fingerprint);
    }

    /// How many object versions are recorded.
    pub fn len(&self) -> usize {
        self.loaded.len()
    }

    /// Whether no object was loaded yet.
    pub fn is_empty(&self) -> bool {
        self.loaded.is_empty()
    }
}

impl FromIterator<ObjectFingerprint> for Watermark {
    fn from_iter<I: IntoIterator<Item = ObjectFingerprint>>(iter: I) -> Self {
        Self {
            loaded: iter.into_iter().collect(),
        }
    }
}

impl Extend<ObjectFingerprint> for Watermark {
    fn extend<I: IntoIterator<Item = ObjectFingerprint>>(&mut self, iter: I) {
        self.loaded.extend(iter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_extensions() {
        let cases = [
            (
                "t/dt=2026-01-01/part-0.parquet",
                Some(ObjectFormat::Parquet),
            ),
            ("t/PART.PARQUET", Some(ObjectFormat::Parquet)),
            ("t/a.csv", Some(ObjectFormat::Csv(Compression::None))),
            ("t/a.csv.gz", Some(ObjectFormat::Csv(Compression::Gzip))),
            ("t/a.ndjson", Some(ObjectFormat::NdJson(Compression::None))),
            (
                "t/a.jsonl.gz",
                Some(ObjectFormat::NdJson(Compression::Gzip)),
            ),
            ("t/a.json", Some(ObjectFormat::NdJson(Compression::None))),
            ("t/a.parquet.gz", None),
            ("t/a.txt", None),
            ("t/noextension", None),
            ("t/a.gz", None),
        ];
        for (key, expected) in cases {
            assert_eq!(ObjectFormat::from_key(key), expected, "{key}");
        }
    }

    #[tokio::test]
    async fn lists_nested_objects_in_key_order_and_skips_hidden_files() {
        let lake = tempfile::tempdir().unwrap();
        let root = lake.path();
        for name in [
            "transactions/dt=2026-01-02/part-0.parquet",
            "transactions/dt=2026-01-01/part-1.csv",
            "transactions/dt=2026-01-01/part-0.csv",
            "transactions/_SUCCESS",
            "transactions/.part-0.crc",
            "transactions/notes.txt",
            "other/ignored.parquet",
        ] {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"x").unwrap();
        }
        let objects = LakeSource::local(root).list().await.unwrap();
        let keys: Vec<&str> = objects.iter().map(LakeObject::key).collect();
        assert_eq!(
            keys,
            [
                "transactions/dt=2026-01-01/part-0.csv",
                "transactions/dt=2026-01-01/part-1.csv",
                "transactions/dt=2026-01-02/part-0.parquet",
                "transactions/notes.txt",
            ]
        );
        assert_eq!(objects[3].format, None);
        assert!(objects.iter().all(|object| object.fingerprint.size == 1));
    }

    #[tokio::test]
    async fn missing_lake_is_an_error_and_missing_transactions_is_empty() {
        let error = LakeSource::local("/nonexistent/lake")
            .list()
            .await
            .unwrap_err();
        assert!(matches!(error, Error::LakeNotFound { .. }), "{error}");
        let lake = tempfile::tempdir().unwrap();
        assert!(
            LakeSource::local(lake.path())
                .list()
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn watermark_tells_a_changed_object_from_a_loaded_one() {
        let loaded = ObjectFingerprint {
            key: "transactions/a.csv".to_owned(),
            size: 10,
            etag: "1".to_owned(),
        };
        let watermark: Watermark = [loaded.clone()].into_iter().collect();
        assert!(watermark.contains(&loaded));
        let changed = ObjectFingerprint { size: 11, ..loaded };
        assert!(!watermark.contains(&changed));
    }
}
